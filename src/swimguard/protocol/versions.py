"""Protocol version checks (memberlist `verifyProtocol` and the alive-message Vsn sanity test).

`Vsn` is [PMin, PMax, PCur, DMin, DMax, DCur]. Features gate on a peer's PMax
(the capability checks below, used through `MemberRecord`) or on our own
`Config.protocol_version`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from swimguard.wire.messages import NodeState, PushNodeState

__all__ = [
    "answers_nacks",
    "answers_tcp_ping",
    "reads_crc",
    "trusts_message_ports",
    "uses_encryption_v1",
    "verify_protocol",
    "vsn_is_sane",
]

_TCP_PING: Final = 3
_NACKS: Final = 4
_CRC: Final = 5
_MESSAGE_PORTS: Final = 2


def answers_tcp_ping(pmax: int) -> bool:
    """A peer of this PMax answers the TCP fallback ping (protocol 3)."""
    return pmax >= _TCP_PING


def answers_nacks(pmax: int) -> bool:
    """A peer of this PMax sends nacks for indirect pings (protocol 4)."""
    return pmax >= _NACKS


def reads_crc(pmax: int) -> bool:
    """A peer of this PMax accepts the CRC envelope (protocol 5)."""
    return pmax >= _CRC


def trusts_message_ports(protocol_version: int) -> bool:
    """Speaking this protocol, ports in alive and indirect-ping messages are used (2)."""
    return protocol_version >= _MESSAGE_PORTS


def uses_encryption_v1(protocol_version: int) -> bool:
    """Speaking this protocol, we encrypt with version 1 (no padding), else 0."""
    return protocol_version >= 2


def vsn_is_sane(vsn: bytes) -> bool:
    """An alive message's Vsn is usable: empty, or 6 bytes with 0 < PMin <= PMax.

    memberlist 0.2.2 drops PMin/PMax = 0 or PMin > PMax, and panics on 1-5 bytes;
    we drop those too.
    """
    if not vsn:
        return True
    return len(vsn) == 6 and vsn[0] != 0 and vsn[1] != 0 and vsn[0] <= vsn[1]


def vsns_agree(a: bytes, b: bytes) -> bool:
    """Two 6-byte Vsn values can sit in one cluster: each one's current protocol and
    delegate versions lie inside the other's ranges. A cluster whose members agree pairwise
    passes `verify_protocol` (every current version inside every range is the same as
    inside their intersection)."""
    return (
        b[0] <= a[2] <= b[1]
        and a[0] <= b[2] <= a[1]
        and b[3] <= a[5] <= b[4]
        and a[3] <= b[5] <= a[4]
    )


def verify_protocol(
    local: Iterable[tuple[bytes, bool]], remote: Sequence[PushNodeState]
) -> str | None:
    """None if a push/pull may be merged, else memberlist's error text.

    `local` yields (vsn, is_alive) for every member of our table. Ranges are the
    intersection over alive members (remote ones without Vsn are skipped); every
    member's PCur and DCur (remote without Vsn = 0) must lie inside them.
    """
    local = list(local)
    if _all_compatible(local, remote):
        return None
    # Something is off: find the first offender in memberlist's order for its message.
    max_pmin = max_dmin = 0
    min_pmax = min_dmax = 255
    for st in remote:
        if st.state != NodeState.ALIVE or not st.vsn:
            continue
        v = st.vsn
        if len(v) < 6:
            return f"Node '{st.name}' has a {len(v)}-byte Vsn"
        max_pmin, min_pmax = max(max_pmin, v[0]), min(min_pmax, v[1])
        max_dmin, min_dmax = max(max_dmin, v[3]), min(min_dmax, v[4])
    for v, alive in local:
        if alive:
            max_pmin, min_pmax = max(max_pmin, v[0]), min(min_pmax, v[1])
            max_dmin, min_dmax = max(max_dmin, v[3]), min(min_dmax, v[4])
    checks: list[tuple[str, int, int]] = [
        (st.name, st.vsn[2] if len(st.vsn) >= 6 else 0, st.vsn[5] if len(st.vsn) >= 6 else 0)
        for st in remote
    ]
    checks.extend(("local", v[2], v[5]) for v, _ in local)
    for name, pcur, dcur in checks:
        if not max_pmin <= pcur <= min_pmax:
            return (
                f"Node '{name}' protocol version ({pcur}) is incompatible: [{max_pmin}, {min_pmax}]"
            )
        if not max_dmin <= dcur <= min_dmax:
            return (
                f"Node '{name}' delegate protocol version ({dcur}) is incompatible: "
                f"[{max_dmin}, {min_dmax}]"
            )
    return None


def _all_compatible(local: list[tuple[bytes, bool]], remote: Sequence[PushNodeState]) -> bool:
    """The same test as `verify_protocol` over the distinct Vsn values only.

    A cluster has a handful of distinct Vsn values and push/pull carries every member,
    so this is the common case; False sends the caller to the ordered, exact check.
    """
    ranged = {st.vsn for st in remote if st.state == NodeState.ALIVE and st.vsn}
    if any(len(v) < 6 for v in ranged):
        return False
    ranged.update(v for v, alive in local if alive)
    checked = {st.vsn for st in remote}
    if any(len(v) < 6 for v in checked):
        return False  # a remote member without Vsn is checked at version 0
    checked.update(v for v, _ in local)
    if not ranged:
        return True  # the ranges stay [0, 255]: every byte is inside
    lo_p = max(v[0] for v in ranged)
    hi_p = min(v[1] for v in ranged)
    lo_d = max(v[3] for v in ranged)
    hi_d = min(v[4] for v in ranged)
    return all(lo_p <= v[2] <= hi_p and lo_d <= v[5] <= hi_d for v in checked)
