"""One simulated process slot: a name, an address, and the node currently running there.

Members are never removed from a cluster: a crashed member keeps its index and address, so a
restart under the same name is a new node (a new epoch) at the same address, and stale
deliveries (timers, delayed inputs, stream segments of the old process) are recognised by
their epoch.
"""

from __future__ import annotations

from swimguard.protocol.api import NodeAPI
from swimguard.protocol.outgoing import Address
from swimguard.sim.slow import SlowSpec

__all__ = ["CRASHED", "LEAVING", "LEFT", "UP", "SimMember", "address_for"]

UP, CRASHED, LEFT, LEAVING = "up", "crashed", "left", "leaving"


def address_for(index: int, port: int = 7946) -> Address:
    """The advertise address of member `index`: a distinct IPv4 text address."""
    return (f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}", port)


class SimMember:
    """One simulated process slot and what the simulator knows about the process in it."""

    __slots__ = (
        "_state",
        "addr",
        "bytes_sent",
        "down_at",
        "epoch",
        "ever_slow",
        "fifo_time",
        "index",
        "msgs_sent",
        "name",
        "node",
        "restarts",
        "slow",
        "stalled_until",
        "stream_fifo_time",
        "timer_deadline",
        "timer_gen",
        "up",
    )

    def __init__(self, index: int, name: str, addr: Address, node: NodeAPI) -> None:
        self.index = index
        self.name = name
        self.addr = addr
        self.node = node
        self.up = True
        self.state = UP
        self.epoch = 0
        self.restarts = 0
        self.slow: SlowSpec | None = None
        self.ever_slow = False
        self.stalled_until = 0.0  # frozen (see SimCluster.stall) while the clock is below it
        self.fifo_time = 0.0
        self.stream_fifo_time = 0.0
        self.timer_deadline: float | None = None
        self.timer_gen = 0
        self.msgs_sent = 0
        self.bytes_sent = 0
        self.down_at: float | None = None

    @property
    def state(self) -> str:
        """ "up", "leaving", "crashed" or "left"."""
        return self._state

    @state.setter
    def state(self, value: str) -> None:
        self._state = value
        # A plain attribute: the hot path reads it for every delivery.
        self.up = value in (UP, LEAVING)

    def __repr__(self) -> str:
        return f"SimMember({self.name!r}, {self.state}, epoch={self.epoch})"
