"""verify_protocol's distinct-Vsn shortcut agrees with memberlist's member-by-member check."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from swimguard.protocol.versions import verify_protocol
from swimguard.wire.messages import PushNodeState


def _reference(local: list[tuple[bytes, bool]], remote: list[PushNodeState]) -> str | None:
    """memberlist `verifyProtocol`, written plainly (the pre-shortcut implementation)."""
    max_pmin = max_dmin = 0
    min_pmax = min_dmax = 255
    for s in remote:
        if s.state != 0 or not s.vsn:
            continue
        if len(s.vsn) < 6:
            return f"Node '{s.name}' has a {len(s.vsn)}-byte Vsn"
        max_pmin, min_pmax = max(max_pmin, s.vsn[0]), min(min_pmax, s.vsn[1])
        max_dmin, min_dmax = max(max_dmin, s.vsn[3]), min(min_dmax, s.vsn[4])
    for v, alive in local:
        if alive:
            max_pmin, min_pmax = max(max_pmin, v[0]), min(min_pmax, v[1])
            max_dmin, min_dmax = max(max_dmin, v[3]), min(min_dmax, v[4])
    rows = [
        (s.name, s.vsn[2] if len(s.vsn) >= 6 else 0, s.vsn[5] if len(s.vsn) >= 6 else 0)
        for s in remote
    ]
    rows += [("local", v[2], v[5]) for v, _ in local]
    for name, pcur, dcur in rows:
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


_VSN6 = st.lists(st.integers(0, 3), min_size=6, max_size=6).map(bytes)
_LOCAL_VSN = st.one_of(_VSN6, st.just(bytes((1, 5, 2, 2, 5, 5))))
_REMOTE_VSN = st.one_of(_LOCAL_VSN, st.sampled_from([b"", b"\x01\x02\x03"]))


@settings(max_examples=400, deadline=None)
@given(
    local=st.lists(st.tuples(_LOCAL_VSN, st.booleans()), max_size=6),
    remote=st.lists(st.tuples(_REMOTE_VSN, st.integers(0, 3)), max_size=6),
)
def test_same_verdict_and_message(
    local: list[tuple[bytes, bool]], remote: list[tuple[bytes, int]]
) -> None:
    states = [
        PushNodeState(name=f"n{i}", addr=bytes(4), port=1, incarnation=1, state=s, vsn=v)
        for i, (v, s) in enumerate(remote)
    ]
    assert verify_protocol(local, states) == _reference(local, states)
