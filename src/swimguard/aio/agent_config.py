"""Socket-level settings of the asyncio driver (the simulator never sees these).

Protocol timing lives in `swimguard.config.Config`; this holds only what a real
network needs: buffer sizes and the bounds that stop a misbehaving peer from
holding resources (connection count, write buffers, connection lifetime), and the
files a real agent keeps across restarts (Serf's snapshot and keyring file).
"""

from __future__ import annotations

import dataclasses

from swimguard.aio.gray_fault import GrayFaultOptions
from swimguard.serf.coalesce import Coalesce
from swimguard.serf.status import StatusTimes


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class AgentConfig:
    """Bounds and buffer sizes of one `Agent`'s sockets and event buffer.

    Every limit is checked at construction; a bad value raises `ValueError`
    naming the field.
    """

    max_streams: int = 128
    """Open TCP connections (inbound + outbound) at once; more inbound ones are cut
    at accept and counted as `tcp_conn_limit`, more outbound ones fail at once."""

    outbound_stream_share: float = 0.125
    """Share of `max_streams` only our own outbound streams (push/pull, TCP pings,
    reliable messages) may use: inbound connections beyond `max_streams` minus this
    share are cut at accept (`tcp_conn_limit`), so peers holding connections open
    cannot stop us from connecting out. 0 shares everything."""

    max_inbound_per_peer: int = 8
    """Inbound connections one source IP may hold open at once; more are cut at
    accept (`tcp_peer_limit`), so one address cannot fill the inbound share (a
    memberlist peer opens at most a push/pull, a TCP ping and reliable messages)."""

    stream_decode_slice: int = 32 * 1024
    """Bytes of a stream the core decodes per call (a few ms); a connection with more
    buffered stops reading until the core has caught up."""

    stream_slices_per_turn: int = 2
    """Slices of stream decoding per event-loop turn, all streams together (taken in
    turn, round-robin): however many streams arrive at once, decoding them holds the
    loop for at most this many slices before timers and datagrams run again."""

    max_stream_buffer_bytes: int = 24 * 1024 * 1024
    """Unsent bytes one TCP connection may hold (push/pull states are at most
    20 MiB on the wire); above it the connection is aborted (`tcp_write_overflow`)."""

    stream_close_grace: float = 2.0
    """Seconds a connection closed by the core may spend flushing its unsent bytes
    before it is aborted (guards against a peer that stops reading)."""

    stream_max_lifetime: float = 120.0
    """Hard cap on any TCP connection's life, in seconds. The core closes streams at
    its own deadlines; this only catches a stream the core forgot."""

    udp_receive_buffer_bytes: int = 2 * 1024 * 1024
    """Kernel `SO_RCVBUF` asked for the UDP socket (memberlist asks for 2 MiB)."""

    event_buffer: int = 4096
    """Events held for `Agent.events()` before new ones are dropped and reported
    as `EventsLost`."""

    drop_log_interval: float = 10.0
    """At most one warning per this many seconds summarises dropped input."""

    bind_attempts: int = 32
    """Tries at finding a port free for both UDP and TCP when binding port 0."""

    serf_status_times: StatusTimes = dataclasses.field(default_factory=StatusTimes)
    """With `serf_compat`: how long failed and left members stay in `serf_members()`
    and how often failed ones are retried (Serf's 30 s / 24 h / 24 h)."""

    serf_coalesce: Coalesce | None = None
    """With `serf_compat`: hold member and user events in `events()` as serf's agent
    does (`swimguard.serf.coalesce.SERF_AGENT_COALESCE`: 3 s / 1 s). None (the
    default, as Serf the library) delivers every event at once."""

    exit_leave_timeout: float = 1.0
    """Seconds leaving `async with Agent(...)` may spend on a graceful `leave()` before the
    agent closes (peers then see the member left, not failed). Skipped when we already
    left or know no other live member; 0 closes at once, like `close()`."""

    gray_fault: GrayFaultOptions | None = None
    """Injected gray failure for tests and benchmarks (`aio.gray_fault`): slow episodes
    during which our input is read late. None (the default) builds none of it."""

    # -- files kept across restarts (`aio.agent_persist`) --

    snapshot_path: str | None = None
    """Serf's snapshot file (`--snapshot`): members and clocks appended as they change;
    at start the remembered members are rejoined and old events are not replayed."""

    rejoin_after_leave: bool = False
    """Serf's `--rejoin`: rejoin the snapshot's members even after a graceful leave."""

    keyring_file: str | None = None
    """Serf's keyring file (`--keyring-file`): JSON list of base64 keys, primary first;
    read at start, rewritten after every key change made by a key query."""

    def __post_init__(self) -> None:
        positive_ints = (
            "max_streams",
            "max_stream_buffer_bytes",
            "event_buffer",
            "bind_attempts",
            "max_inbound_per_peer",
            "stream_decode_slice",
            "stream_slices_per_turn",
        )
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"AgentConfig.{name} must be a positive int, got {value!r}")
        if self.udp_receive_buffer_bytes < 0:
            raise ValueError(
                "AgentConfig.udp_receive_buffer_bytes must be >= 0 "
                f"(0 = kernel default), got {self.udp_receive_buffer_bytes!r}"
            )
        positive_floats = ("stream_close_grace", "stream_max_lifetime", "drop_log_interval")
        for name in positive_floats:
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"AgentConfig.{name} must be > 0 seconds, got {value!r}")
        grace = self.exit_leave_timeout
        if not isinstance(grace, int | float) or not 0 <= grace < float("inf"):
            raise ValueError(
                f"AgentConfig.exit_leave_timeout must be >= 0 seconds, got {grace!r}"
            )
        share = self.outbound_stream_share
        if not isinstance(share, int | float) or not 0 <= share < 1:
            raise ValueError(f"AgentConfig.outbound_stream_share must be in [0, 1), got {share!r}")

    @property
    def max_inbound_streams(self) -> int:
        """Inbound connections allowed at once: `max_streams` less the outbound share."""
        return max(1, self.max_streams - int(self.max_streams * self.outbound_stream_share))
