"""The timer table and the protocol-version checks (memberlist TestVerifyProtocol)."""

from __future__ import annotations

import pytest

from swimguard.protocol.deadlines import Deadlines
from swimguard.protocol.versions import verify_protocol, vsn_is_sane
from swimguard.wire.messages import PushNodeState


def test_deadlines_order_replace_cancel() -> None:
    d = Deadlines()
    assert d.next_deadline() is None
    d.set(("a",), 5.0)
    d.set(("b",), 3.0)
    d.set(("c",), 4.0)
    d.set(("b",), 6.0)  # replaces
    d.cancel(("c",))
    assert d.next_deadline() == 5.0
    assert d.pop_due(now=4.9) is None
    assert d.pop_due(now=10.0) == ("a",)
    assert d.pop_due(now=10.0) == ("b",)
    assert d.pop_due(now=10.0) is None
    assert len(d) == 0


def test_deadlines_heap_stays_bounded_under_rearming() -> None:
    d = Deadlines()
    for i in range(10_000):
        d.set(("k",), float(i))
    assert d.next_deadline() == 9999.0
    assert len(d._heap) < 100  # the bound is on storage (stale heap entries), not on outputs


def _state(name: str, vsn: tuple[int, ...]) -> PushNodeState:
    return PushNodeState(name=name, addr=b"\x7f\x00\x00\x01", port=1, incarnation=1, state=0,
                         vsn=bytes(vsn))


VERIFY_CASES = [
    ([(0, 0, 0)], [(0, 0, 0)], True),
    ([(0, 0, 0)], [(0, 1, 0)], True),
    ([(0, 0, 0)], [(1, 1, 1)], False),
    ([(0, 1, 0), (0, 2, 1)], [(1, 3, 1)], False),
    ([(0, 3, 2), (0, 2, 0)], [(0, 2, 1), (0, 5, 0)], True),
]


def _check(a: list[tuple[int, ...]], b: list[tuple[int, ...]]) -> bool:
    local = [(bytes(v), True) for v in a]
    remote = [_state(f"node {i}", v) for i, v in enumerate(b)]
    return verify_protocol(local, remote) is None


@pytest.mark.parametrize(("a", "b", "expected"), VERIFY_CASES)
def test_verify_protocol_table(a: list[tuple[int, int, int]], b: list[tuple[int, int, int]],
                               expected: bool) -> None:
    core = lambda rows: [(*r, 0, 0, 0) for r in rows]  # noqa: E731
    app = lambda rows: [(0, 0, 0, *r) for r in rows]  # noqa: E731
    assert _check(core(a), core(b)) is expected
    assert _check(core(b), core(a)) is expected
    assert _check(app(a), app(b)) is expected
    assert _check(app(b), app(a)) is expected


def test_serf_rejects_zero_delegate_versions() -> None:
    serf = [(bytes((1, 5, 2, 2, 5, 5)), True)]
    bad = [_state("py", (1, 5, 2, 0, 0, 0))]
    err = verify_protocol(serf, bad)
    assert err is not None
    assert "delegate protocol version (0) is incompatible: [2, 0]" in err
    assert verify_protocol(serf, [_state("py", (1, 5, 2, 2, 5, 5))]) is None


def test_remote_without_vsn_fails() -> None:
    serf = [(bytes((1, 5, 2, 2, 5, 5)), True)]
    st = PushNodeState(name="x", addr=b"\x7f\x00\x00\x01", port=1, incarnation=1, state=0)
    assert verify_protocol(serf, [st]) is not None


@pytest.mark.parametrize(
    ("vsn", "ok"),
    [(b"", True), (bytes((1, 5, 2, 2, 5, 5)), True), (bytes((0, 5, 2, 2, 5, 5)), False),
     (bytes((1, 0, 2, 2, 5, 5)), False), (bytes((5, 1, 2, 2, 5, 5)), False),
     (bytes((1, 5, 2)), False)],
)
def test_vsn_sanity(vsn: bytes, ok: bool) -> None:
    assert vsn_is_sane(vsn) is ok
