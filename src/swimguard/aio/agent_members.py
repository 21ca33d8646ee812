"""`AgentMembers`: the Serf view of the membership on `Agent` (a mixin: agent.py stays small).

`serf_members()` lists every member as Serf shows it: alive, leaving, left or failed, with
failed and left members kept (and failed ones retried) until their reconnect or tombstone
timeout reaps them (`AgentConfig.serf_status_times`, Serf's 30 s / 24 h / 24 h by
default). `force_leave()` is Serf's `force-leave`. This is the table an RPC `members`
command should read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from swimguard.aio.driver import DrivenNode, Driver
from swimguard.errors import UsageError
from swimguard.protocol.names import name_problem
from swimguard.protocol.outgoing import Address
from swimguard.serf.node import SerfNode
from swimguard.serf.status import SerfMember, SerfStatus

__all__ = ["AgentMembers"]


class AgentMembers:
    """Adds `serf_members()` and `force_leave()` to the class that owns the node and driver."""

    _node: DrivenNode | None
    _driver: Driver | None

    def serf_members(
        self,
        *,
        status: SerfStatus | Iterable[SerfStatus] | None = None,
        tags: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> list[SerfMember]:
        """Members with their Serf status, filtered as `serf members` filters.

        `status`: one status or several; `tags`: tag name -> regexp; `name`: a regexp.
        Regexps are RE2 (Go's syntax) anchored at both ends, as serf anchors them; a
        missing tag never matches. ValueError for an expression RE2 rejects. Needs
        `serf_compat`.
        """
        return self._serf_node().status.members(status=status, tags=tags, name=name)

    def force_leave(self, name: str, *, prune: bool = False) -> None:
        """Serf's `force-leave`: gossip that `name` left. A failed member becomes left
        everywhere (and is not retried); an alive one refutes it. `prune` also erases it
        from every member's list at once (a `MemberReaped` with `forced`). Like serf, an
        unknown name is not an error. ValueError for a name that could not be sent."""
        node = self._serf_node()
        problem = name_problem(name)
        if problem is not None:
            raise ValueError(f"bad member name {name!r}: {problem.value}")
        assert self._driver is not None
        self._driver.input(lambda now: node.force_leave(name, prune=prune, now=now))

    def _join_input(self, seeds: list[Address], replay: bool, now: float) -> None:
        """Start a join in the node (`replay=False`: Serf's join ignoring old events)."""
        node = self._node
        assert node is not None
        if isinstance(node, SerfNode):
            node.join(seeds, now=now, replay=replay)
        else:
            node.join(seeds, now=now)

    def _serf_node(self) -> SerfNode:
        node = self._node
        if node is None or self._driver is None:
            raise UsageError("Agent not started (use `async with Agent(...)` or `await start()`)")
        if not isinstance(node, SerfNode):
            raise UsageError("Serf member status needs serf_compat=True")
        return node
