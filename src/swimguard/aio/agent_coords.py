"""The agent's network-coordinate API: our coordinate, our peers', RTT estimates.

Mixed into `Agent`; the coordinates themselves live in the node (`SerfNode.coordinates`,
updated from every direct probe's ack, Go and Python members alike), so these are
plain reads: no IO, nothing to await.
"""

from __future__ import annotations

from swimguard.aio.driver import DrivenNode
from swimguard.errors import UsageError
from swimguard.serf.coordinate import Coordinate, estimate_rtt
from swimguard.serf.coordinate_exchange import CoordinateExchange
from swimguard.serf.node import SerfNode

__all__ = ["AgentCoordinates"]


class AgentCoordinates:
    """Vivaldi coordinates, as Serf keeps them (`serf rtt`, RPC `get-coordinate`)."""

    name: str
    _node: DrivenNode | None

    def coordinate(self, name: str | None = None) -> Coordinate | None:
        """`name`'s coordinate as it last reported it in an ack to us; ours by default.

        None for a member we have not probed yet (or one without coordinates, such as a
        plain memberlist node).
        """
        return self._coordinates().coordinate(self.name if name is None else name)

    def rtt(self, a: str, b: str | None = None) -> float | None:
        """Estimated round-trip time between members `a` and `b` (default: us), in seconds.

        None when either coordinate is unknown. Like `serf rtt`, it works for any two
        members we have coordinates for, not only for ourselves.
        """
        coords = self._coordinates()
        ca = coords.coordinate(a)
        cb = coords.coordinate(self.name if b is None else b)
        if ca is None or cb is None:
            return None
        return estimate_rtt(ca, cb)

    @property
    def coordinate_resets(self) -> int:
        """Times our coordinate went non-finite and restarted at the origin (Serf's stat)."""
        return self._coordinates().resets

    def _coordinates(self) -> CoordinateExchange:
        node = self._node
        if node is None:
            raise UsageError("Agent not started (use `async with Agent(...)` or `await start()`)")
        if not isinstance(node, SerfNode):
            raise UsageError("network coordinates need serf_compat=True")
        return node.coordinates
