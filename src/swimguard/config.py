"""Protocol configuration: one frozen value with memberlist's LAN/WAN/local presets.

Every field mirrors a memberlist 0.2.2 `Config` knob (same meaning, seconds instead
of Go durations) unless its docstring says it is a swimguard extension. Build one
with `Config.lan()`, `Config.wan()` or `Config.local()` and override fields by
keyword (`Config.lan(probe_interval=2.0)`) or with `dataclasses.replace`. Values
are validated at construction; a bad one raises `ValueError` naming the field.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from typing import Any, Final

__all__ = ["META_MAX_SIZE", "PROTOCOL_VERSION_MAX", "PROTOCOL_VERSION_MIN", "Config"]

PROTOCOL_VERSION_MIN: Final = 1
"""Lowest memberlist protocol version this implementation understands (Vsn[0])."""
PROTOCOL_VERSION_MAX: Final = 5
"""Highest memberlist protocol version this implementation understands (Vsn[1])."""
META_MAX_SIZE: Final = 512
"""memberlist's `MetaMaxSize`: the largest node metadata we send."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Config:
    """SWIM + Lifeguard tuning. Defaults are memberlist's `DefaultLANConfig()`."""

    protocol_version: int = 2
    """memberlist protocol spoken (Vsn[2]). 2 is what Serf uses; features gate on the peer's max."""
    delegate_protocol_min: int = 2
    """Vsn[3]. Serf-compatible default: Serf agents reject push/pull from DMin/DMax/DCur = 0."""
    delegate_protocol_max: int = 5
    """Vsn[4]."""
    delegate_protocol_version: int = 5
    """Vsn[5]; default `01 05 02 02 05 05`, the bytes Serf 0.9.4 agents send."""

    tcp_timeout: float = 10.0
    """Deadline of a whole stream exchange (push/pull, reliable user message)."""
    indirect_checks: int = 3
    """Peers asked to probe a target that missed its direct ack."""
    retransmit_mult: int = 4
    """Each broadcast is sent at most `retransmit_mult * ceil(log10(n + 1))` times."""
    suspicion_mult: int = 4
    """Min suspicion timeout = `suspicion_mult * max(1, log10(n)) * probe_interval`."""
    suspicion_max_timeout_mult: int = 6
    """Max suspicion timeout = this × min (Lifeguard starts there and shrinks)."""
    push_pull_interval: float = 30.0
    """Full-state sync period, scaled by `ceil(log2(n) - 5) + 1` above 32 nodes; 0 disables."""
    probe_timeout: float = 0.5
    """Wait for a direct ack before asking for indirect probes (not scaled by awareness)."""
    probe_interval: float = 1.0
    """Probe period; a failed probe waits `probe_interval * (health score + 1)`."""
    disable_tcp_pings: bool = False
    """Do not run the TCP fallback ping alongside indirect probes."""
    awareness_max_multiplier: int = 8
    """Health score lies in [0, awareness_max_multiplier - 1]."""
    gossip_nodes: int = 3
    """Peers gossiped to per gossip round."""
    gossip_interval: float = 0.2
    """Gossip round period; 0 disables gossip rounds (piggybacking still happens)."""
    gossip_to_the_dead_time: float = 30.0
    """Dead members still receive gossip (and stay in the table) this long."""
    gossip_verify_incoming: bool = True
    """With a keyring: reject unencrypted input."""
    gossip_verify_outgoing: bool = True
    """With a keyring: encrypt output."""
    enable_compression: bool = True
    """LZW-compress packets (when shorter) and streams (always)."""
    udp_buffer_size: int = 1400
    """Largest UDP payload we build (before encryption overhead)."""
    dead_node_reclaim_time: float = 0.0
    """A dead member's name may be taken by a new address after this long; 0 = never."""

    cidrs_allowed: tuple[str, ...] = ()
    """memberlist `CIDRsAllowed`: when non-empty, alive messages from or about addresses
    outside these networks ("10.0.0.0/8", "::1/128") are dropped. Empty allows all."""

    # --- Lifeguard switches (swimguard extension: memberlist always has all three on).
    lha_probe: bool = True
    """Lifeguard local health (awareness): failed probes, missed nacks and refutations
    raise the score, which stretches the failed-probe wait. Off = SWIM probing."""
    lha_suspicion: bool = True
    """Lifeguard dynamic suspicion: start at the max timeout, shrink with confirmations.
    Off = a fixed timeout equal to the min (SWIM)."""
    buddy_system: bool = True
    """Pings to a suspected member carry the suspicion (compound ping + suspect)."""

    # --- swimguard extensions.
    loop_lag_health: bool = True
    """Feed driver-measured timer lateness into the health score (see `protocol.awareness`)."""
    loop_lag_threshold: float = 0.5
    """Lag above `loop_lag_threshold * probe_timeout` counts as a local stall."""
    health_scaled_suspicion: bool = True
    """Stretch our own suspicion timeouts by our health multiplier (score + 1), as Lifeguard
    stretches probe timeouts: a member that is itself slow waits longer before declaring
    anyone dead (it still learns real deaths from healthy members' gossip). A healthy member
    (score 0) is unaffected. memberlist has no such rule."""
    slow_refresh_interval: float = 2.0
    """While our own health score is at least `slow_refresh_min_score` and datagrams still
    reach us, re-announce ourselves alive with a new incarnation at most this often (seconds;
    0 = off; twice the probe interval in the presets). A member that reads its input late
    cannot refute a suspicion in time, but it can refute ahead of one: a suspicion raised
    before the new incarnation lands is void. A member that hears nothing (cut off inbound)
    never refreshes. memberlist has no such rule."""
    slow_refresh_min_score: int = 4
    """Health score at or above which `slow_refresh_interval` applies (half the default
    maximum: members that are really slow, not ones that missed a nack)."""
    reap_left_nodes: bool = True
    """Also drop *left* members after `gossip_to_the_dead_time` (memberlist >= 0.3 does;
    0.2.2 keeps them forever). Set False for exact 0.2.2 table contents."""
    join_sync_delay: float = 0.0
    """Join-time sync (0 = off, memberlist's rule, the default; 2.0 is the setting
    measured in docs/research/mass-join.md): once a join succeeded, our first
    periodic push/pull waits until our member table has not changed size for this many
    seconds (a storm of joins has passed), and comes at the latest `push_pull_interval`
    after the join, instead of at a random time within `push_pull_interval`. Closes the
    gaps a mass join leaves in seconds instead of scaled push/pull periods (minutes); it
    moves a push/pull and adds none. Needs `push_pull_interval > 0`. A plain push/pull on
    the wire, which serf and memberlist answer. See `protocol.join_sync`."""
    max_inbound_streams: int = 128
    """Concurrent inbound streams; more are closed at once (memberlist: 128 push/pulls)."""
    max_user_broadcasts: int = 4096
    """User broadcasts queued at most; beyond it the most-sent ones are dropped (Serf's
    `MaxQueueDepth` rule), so a fast broadcaster cannot grow memory without bound."""
    max_stream_bytes: int = 20 * 1024 * 1024
    """Largest stream message accepted (memberlist's `maxPushStateBytes`)."""
    max_members: int = 100_000
    """Members the table holds at most (any state, ourselves included); an alive about a
    new member beyond it is dropped (`table_full`). memberlist has no limit, so one peer
    could grow our memory without bound with invented members (each ~1 KiB here)."""
    explain_members: int = 256
    """Members whose decisions we remember for `explain` (suspicions, confirmations, deaths,
    last probe results); recording one more forgets the one recorded longest ago, so memory
    stays bounded whatever the cluster size (0 = remember nothing)."""
    self_fence_after: float = 0.0
    """Self-fencing (0 = off): once our health score has stayed at its maximum
    (`awareness_max_multiplier - 1`) this many seconds, leave the cluster gracefully and emit
    `SelfFenced`. A member that slow for that long harms the cluster more than its absence
    would; a supervisor can restart it. One point below the maximum still counts (one ack
    got through between two stalls); two points below start the wait again. Needs
    `awareness_max_multiplier >= 2`."""
    max_inbound_stream_memory: int = 64 * 1024 * 1024
    """Memory (bytes, estimated: input held plus decoded member states) all inbound
    streams may hold together while they arrive; above it the largest is closed and
    counted as `stream_memory_budget`. A push/pull costs about 300 bytes per member
    while decoded, so the default takes one of ~200,000 members."""

    def __post_init__(self) -> None:
        _check_positive(self, "tcp_timeout", "probe_timeout", "probe_interval")
        _check_non_negative(
            self,
            "push_pull_interval",
            "join_sync_delay",
            "gossip_interval",
            "gossip_to_the_dead_time",
            "dead_node_reclaim_time",
            "loop_lag_threshold",
            "slow_refresh_interval",
            "self_fence_after",
        )
        _check_int(self, "protocol_version", PROTOCOL_VERSION_MIN, PROTOCOL_VERSION_MAX)
        for name in ("delegate_protocol_min", "delegate_protocol_max", "delegate_protocol_version"):
            _check_int(self, name, 0, 255)
        if not (
            self.delegate_protocol_min
            <= self.delegate_protocol_version
            <= self.delegate_protocol_max
        ):
            raise ValueError(
                "Config.delegate_protocol_version: must lie in "
                f"[delegate_protocol_min, delegate_protocol_max] = "
                f"[{self.delegate_protocol_min}, {self.delegate_protocol_max}], "
                f"got {self.delegate_protocol_version}"
            )
        _check_int(self, "indirect_checks", 0, 255)
        _check_int(self, "retransmit_mult", 1, 1 << 16)
        _check_int(self, "suspicion_mult", 1, 1 << 16)
        _check_int(self, "suspicion_max_timeout_mult", 1, 1 << 16)
        _check_int(self, "awareness_max_multiplier", 1, 1 << 16)
        _check_int(self, "slow_refresh_min_score", 1, 1 << 16)
        _check_int(self, "gossip_nodes", 0, 1 << 16)
        _check_int(self, "udp_buffer_size", 512, 65_507)
        _check_int(self, "max_inbound_streams", 1, 1 << 20)
        _check_int(self, "max_inbound_stream_memory", 1, 1 << 40)
        _check_int(self, "max_stream_bytes", 1024, 1 << 31)
        _check_int(self, "max_user_broadcasts", 1, 1 << 24)
        _check_int(self, "max_members", 2, 1 << 24)
        _check_int(self, "explain_members", 0, 1 << 20)
        if self.self_fence_after > 0 and self.awareness_max_multiplier < 2:
            raise ValueError(
                "Config.self_fence_after: needs awareness_max_multiplier >= 2 (a health score "
                "that can rise), got awareness_max_multiplier="
                f"{self.awareness_max_multiplier}"
            )
        if not isinstance(self.cidrs_allowed, tuple):
            raise ValueError(
                f"Config.cidrs_allowed: must be a tuple of CIDR strings, got {self.cidrs_allowed!r}"
            )
        for cidr in self.cidrs_allowed:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except (TypeError, ValueError):
                raise ValueError(f"Config.cidrs_allowed: invalid CIDR {cidr!r}") from None
        if self.probe_timeout > self.probe_interval:
            raise ValueError(
                f"Config.probe_timeout: must not exceed probe_interval ({self.probe_interval}), "
                f"got {self.probe_timeout}"
            )
        for name in (
            "disable_tcp_pings",
            "gossip_verify_incoming",
            "gossip_verify_outgoing",
            "enable_compression",
            "lha_probe",
            "lha_suspicion",
            "buddy_system",
            "loop_lag_health",
            "health_scaled_suspicion",
            "reap_left_nodes",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"Config.{name}: must be a bool, got {getattr(self, name)!r}")

    @property
    def vsn(self) -> bytes:
        """The 6-byte `Vsn` we advertise: [PMin, PMax, PCur, DMin, DMax, DCur]."""
        return bytes(
            (
                PROTOCOL_VERSION_MIN,
                PROTOCOL_VERSION_MAX,
                self.protocol_version,
                self.delegate_protocol_min,
                self.delegate_protocol_max,
                self.delegate_protocol_version,
            )
        )

    @property
    def lifeguard(self) -> bool:
        """True when all three Lifeguard parts are on."""
        return self.lha_probe and self.lha_suspicion and self.buddy_system

    @classmethod
    def lan(cls, **overrides: Any) -> Config:
        """memberlist `DefaultLANConfig()` (Serf's default profile)."""
        return cls(**overrides)

    @classmethod
    def wan(cls, **overrides: Any) -> Config:
        """memberlist `DefaultWANConfig()`."""
        values: dict[str, Any] = {
            "tcp_timeout": 30.0,
            "suspicion_mult": 6,
            "push_pull_interval": 60.0,
            "probe_timeout": 3.0,
            "probe_interval": 5.0,
            "slow_refresh_interval": 10.0,
            "gossip_nodes": 4,
            "gossip_interval": 0.5,
            "gossip_to_the_dead_time": 60.0,
        }
        values.update(overrides)
        return cls(**values)

    @classmethod
    def local(cls, **overrides: Any) -> Config:
        """memberlist `DefaultLocalConfig()` (loopback / same host)."""
        values: dict[str, Any] = {
            "tcp_timeout": 1.0,
            "indirect_checks": 1,
            "retransmit_mult": 2,
            "suspicion_mult": 3,
            "push_pull_interval": 15.0,
            "probe_timeout": 0.2,
            "probe_interval": 1.0,
            "gossip_interval": 0.1,
            "gossip_to_the_dead_time": 15.0,
        }
        values.update(overrides)
        return cls(**values)

    @classmethod
    def swim(cls, base: Config | None = None) -> Config:
        """`base` (LAN by default) with every Lifeguard part and swimguard's health inputs off."""
        return dataclasses.replace(
            base if base is not None else cls.lan(),
            lha_probe=False,
            lha_suspicion=False,
            buddy_system=False,
            loop_lag_health=False,
            health_scaled_suspicion=False,
            slow_refresh_interval=0.0,
        )


def _check_positive(cfg: Config, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if not _is_number(value) or not value > 0:
            raise ValueError(f"Config.{name}: must be a finite number > 0, got {value!r}")


def _check_non_negative(cfg: Config, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if not _is_number(value) or value < 0:
            raise ValueError(f"Config.{name}: must be a finite number >= 0, got {value!r}")


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _check_int(cfg: Config, name: str, lo: int, hi: int) -> None:
    value = getattr(cfg, name)
    if type(value) is not int or not lo <= value <= hi:
        raise ValueError(f"Config.{name}: must be an integer in [{lo}, {hi}], got {value!r}")
