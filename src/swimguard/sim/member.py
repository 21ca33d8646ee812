"""One simulated process slot: a name, an address, and the node currently running there.

Members are never removed from a cluster: a crashed member keeps its index and address, so a
restart under the same name is a new node (a new epoch) at the same address, and stale
deliveries (timers, delayed inputs, stream segments of the old process) are recognised by
their epoch.
"""

from __future__ import annotations

import bisect

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
        "lag_times",
        "lag_values",
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
        # Inputs that waited (arrival time, lag), in arrival order: what the member's peers
        # could not see, kept so a false declaration can be judged afterwards (report.py).
        self.lag_times: list[float] = []
        self.lag_values: list[float] = []

    def record_lag(self, arrival: float, lag: float) -> None:
        """An input arriving at `arrival` will be processed `lag` seconds later."""
        if lag <= 0.0:
            return
        times = self.lag_times
        if not times or arrival >= times[-1]:
            times.append(arrival)
            self.lag_values.append(lag)
            return
        # Stream segments are recorded when sent, ahead of their arrival: keep the order.
        at = bisect.bisect_right(times, arrival)
        times.insert(at, arrival)
        self.lag_values.insert(at, lag)

    def max_input_lag(self, start: float, end: float) -> float:
        """The longest wait of any input that arrived in [start, end] (0.0 if none waited)."""
        times = self.lag_times
        lo = bisect.bisect_left(times, start)
        hi = bisect.bisect_right(times, end, lo)
        return max(self.lag_values[lo:hi], default=0.0)

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
