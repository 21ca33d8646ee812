"""Unit tests of the RPC's parts: codec, event filters, log ring, member statuses."""

from __future__ import annotations

import logging

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swimguard.protocol.events import MemberFailed, MemberJoined, MemberLeft
from swimguard.protocol.members import Member, MemberState
from swimguard.rpc.coalesce import MemberEventCoalescer, UserEventCoalescer
from swimguard.rpc.codec import FieldType, FrameReader, ProtocolViolation, decode_body, pack
from swimguard.rpc.commands import BODIES
from swimguard.rpc.event_filter import EventKind, StreamRecord, parse_event_filter
from swimguard.rpc.log_ring import LogLevel, LogRing
from swimguard.rpc.members import MemberDirectory, SerfStatus
from swimguard.serf import LeaveIntentReceived, encode_tags


def test_pack_is_new_spec() -> None:
    assert pack({"Error": "", "Seq": 1}) == bytes.fromhex("82a54572726f72a0a353657101")
    assert pack({"Addr": b"\x7f\x00\x00\x01"}) == bytes.fromhex("81a441646472c4047f000001")


def test_decode_body_tolerates_what_serf_tolerates() -> None:
    schema = {"Name": FieldType.STR, "Payload": FieldType.BYTES, "Coalesce": FieldType.BOOL}
    assert decode_body({"Payload": "text", "Extra": 1}, schema) == {
        "Name": "", "Payload": b"text", "Coalesce": False,
    }
    assert decode_body({"Name": None}, schema)["Name"] == ""


@pytest.mark.parametrize(
    ("obj", "schema"),
    [
        ({"Name": b"bin"}, {"Name": FieldType.STR}),
        ({b"Stop": 1}, {"Stop": FieldType.UINT}),
        ({"Stop": -1}, {"Stop": FieldType.UINT}),
        ({"Version": "1"}, {"Version": FieldType.INT}),
        ({"Tags": {"a": 1}}, {"Tags": FieldType.STR_MAP}),
        ({"Existing": "a"}, {"Existing": FieldType.STR_LIST}),
        ([1], {"Stop": FieldType.UINT}),
    ],
)
def test_decode_body_refuses_what_serf_closes_on(obj: object, schema: dict[str, FieldType]) -> None:
    with pytest.raises(ProtocolViolation):
        decode_body(obj, schema)


def test_frame_reader_bounds_its_buffer() -> None:
    reader = FrameReader(max_object=64)
    reader.feed(pack({"a": 1}) + pack({"b": 2})[:3])
    assert list(reader.objects()) == [{"a": 1}]
    with pytest.raises(ProtocolViolation):
        reader.feed(b"\xc4\xff" + b"x" * 200)


def test_frame_reader_refuses_garbage() -> None:
    reader = FrameReader()
    reader.feed(b"\xc1")  # never used in msgpack
    with pytest.raises(ProtocolViolation):
        list(reader.objects())


@pytest.mark.parametrize(
    ("text", "kind", "name", "passes"),
    [
        ("", EventKind.USER, "x", True),
        ("*", EventKind.MEMBER_REAP, None, True),
        ("user:deploy", EventKind.USER, "deploy", True),
        ("user:deploy", EventKind.USER, "deploy2", False),
        ("member-join,query", EventKind.QUERY, "q", True),
        ("member-join,query", EventKind.MEMBER_LEAVE, None, False),
    ],
)
def test_event_filter(text: str, kind: EventKind, name: str | None, passes: bool) -> None:
    parsed = parse_event_filter(text)
    assert parsed is not None
    assert parsed.matches(kind, name) is passes


@pytest.mark.parametrize("text", ["user,bogus", "member-joins", "user,", "deploy:x"])
def test_event_filter_invalid(text: str) -> None:
    assert parse_event_filter(text) is None


def test_log_ring_replays_and_filters_levels() -> None:
    ring = LogRing(lines=3)
    logger = logging.getLogger("swimguard.test_ring")
    logger.propagate = False
    logger.addHandler(ring)
    logger.setLevel(logging.DEBUG)
    try:
        for i in range(5):
            logger.info("line %d", i)
        logger.debug("quiet")
        got: list[str] = []
        sub = ring.subscribe(LogLevel.INFO, got.append)
        assert [g.split("] ")[1] for g in got] == [
            "swimguard.test_ring: line 3", "swimguard.test_ring: line 4",
        ]
        logger.warning("careful\nnow")
        logger.debug("hidden")
        assert got[-1].endswith("[WARN] swimguard.test_ring: careful now")
        assert len(got) == 3
        ring.unsubscribe(sub)
        logger.error("after")
        assert len(got) == 3
    finally:
        logger.removeHandler(ring)


def _m(name: str, state: MemberState) -> Member:
    return Member(name, ("127.0.0.1", 7946), 1, state, encode_tags({"role": "web"}))


def test_member_directory_statuses() -> None:
    directory = MemberDirectory(retain=10.0, max_retained=2)
    assert directory.status(_m("a", MemberState.SUSPECT)) is SerfStatus.ALIVE
    directory.observe(LeaveIntentReceived("b", 3, False), now=0.0)
    assert directory.status(_m("b", MemberState.ALIVE)) is SerfStatus.LEAVING
    assert directory.status(_m("b", MemberState.DEAD)) is SerfStatus.LEFT
    assert directory.status(_m("c", MemberState.DEAD)) is SerfStatus.FAILED
    directory.observe(MemberFailed(_m("c", MemberState.DEAD)), now=1.0)
    directory.observe(MemberLeft(_m("d", MemberState.LEFT)), now=2.0)
    listed = directory.members([_m("a", MemberState.ALIVE)], now=3.0)
    assert [(m.name, m.status) for m in listed] == [
        ("a", SerfStatus.ALIVE), ("c", SerfStatus.FAILED), ("d", SerfStatus.LEFT),
    ]
    assert listed[0].tags == {"role": "web"}
    # Retention is bounded in time and number; a rejoin removes the departed record.
    assert [m.name for m in directory.members([], now=11.5)] == ["d"]
    directory.observe(MemberJoined(_m("d", MemberState.ALIVE)), now=12.0)
    assert directory.members([], now=12.0) == []
    for name in ("e", "f", "g"):
        directory.observe(MemberFailed(_m(name, MemberState.DEAD)), now=13.0)
    assert [m.name for m in directory.members([], now=13.0)] == ["f", "g"]


def test_rpc_member_wire_form() -> None:
    directory = MemberDirectory()
    wire = directory.convert(_m("a", MemberState.ALIVE)).to_wire()
    assert list(wire) == sorted(wire)
    assert wire["Addr"] == b"\x7f\x00\x00\x01"
    assert msgpack.unpackb(pack(wire), raw=False)["Tags"] == {"role": "web"}


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
    | st.text(max_size=8) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=6) | st.binary(max_size=4) | st.integers(), inner,
                      max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(obj=_values)
def test_any_decoded_object_is_a_body_or_a_protocol_violation(obj: object) -> None:
    for schema in BODIES.values():
        try:
            body = decode_body(obj, schema)
        except ProtocolViolation:
            continue
        assert set(body) == set(schema)
        # What we accepted can be encoded again (it is echoed into records and replies).
        pack(body)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), cut=st.integers(0, 300))
def test_frame_reader_on_random_bytes_only_raises_protocol_violation(data: bytes, cut: int) -> None:
    reader = FrameReader(max_object=128)
    try:
        reader.feed(data[:cut])
        list(reader.objects())
        reader.feed(data[cut:])
        list(reader.objects())
    except ProtocolViolation:
        pass


def test_a_leave_intent_about_a_departed_failed_member_makes_it_left() -> None:
    directory = MemberDirectory()
    directory.observe(MemberFailed(_m("c", MemberState.DEAD)), now=0.0)
    directory.observe(LeaveIntentReceived("c", 9, False), now=1.0)
    assert [(m.name, m.status) for m in directory.members([], now=2.0)] == [
        ("c", SerfStatus.LEFT)
    ]
    directory.forget("c")
    assert directory.members([], now=2.0) == []


def _member_record(kind: EventKind, *names: str) -> StreamRecord:
    members = [{"Name": n, "Status": "alive"} for n in names]
    return StreamRecord(kind, None, {"Event": kind.value, "Members": members})


def test_member_events_coalesce_as_serf_agents_do() -> None:
    c = MemberEventCoalescer(period=3.0, quiescent=1.0)
    assert c.deadline() is None
    c.add(_member_record(EventKind.MEMBER_JOIN, "a"), now=0.0)
    c.add(_member_record(EventKind.MEMBER_JOIN, "b"), now=0.5)
    c.add(_member_record(EventKind.MEMBER_FAILED, "a"), now=0.8)  # a's latest wins
    assert c.deadline() == 1.8  # 1 s of quiet
    assert c.flush(now=1.7) == []
    records = c.flush(now=1.8)
    assert [(r.kind, [m["Name"] for m in r.body["Members"]]) for r in records] == [
        (EventKind.MEMBER_FAILED, ["a"]), (EventKind.MEMBER_JOIN, ["b"]),
    ]
    assert list(records[0].body) == ["Event", "Members"]
    assert c.deadline() is None
    # A steady trickle is flushed 3 s after its first event anyway.
    for i in range(10):
        c.add(_member_record(EventKind.MEMBER_UPDATE, "b"), now=10.0 + i * 0.5)
    assert c.deadline() == 13.0
    assert [r.kind for r in c.flush(now=13.0)] == [EventKind.MEMBER_UPDATE]
    # The same type again for a member is not repeated (updates excepted).
    c.add(_member_record(EventKind.MEMBER_JOIN, "b"), now=20.0)
    c.add(_member_record(EventKind.MEMBER_UPDATE, "a"), now=20.0)
    c.add(_member_record(EventKind.MEMBER_FAILED, "a"), now=20.0)
    assert [r.kind for r in c.flush(now=21.0)] == [EventKind.MEMBER_JOIN]
    c.add(_member_record(EventKind.MEMBER_JOIN, "b"), now=30.0)
    assert c.flush(now=31.0) == []


def _user(name: str, ltime: int, coalesce: bool = True, payload: bytes = b"") -> StreamRecord:
    body = {"Coalesce": coalesce, "Event": "user", "LTime": ltime, "Name": name,
            "Payload": payload}
    return StreamRecord(EventKind.USER, name, body)


def test_user_events_with_coalesce_keep_the_newest_ltime_per_name() -> None:
    c = UserEventCoalescer(period=3.0, quiescent=1.0)
    assert not c.add(_user("now", 1, coalesce=False), now=0.0)  # passes at once
    assert c.add(_user("deploy", 1), now=0.0)
    assert c.add(_user("deploy", 3, payload=b"a"), now=0.2)
    assert c.add(_user("deploy", 3, payload=b"b"), now=0.3)
    assert c.add(_user("deploy", 2), now=0.4)  # older than the one held: superseded
    assert c.add(_user("other", 7), now=0.5)
    assert c.deadline() == 1.5
    out = c.flush(now=1.5)
    assert [(r.name, r.body["LTime"], r.body["Payload"]) for r in out] == [
        ("deploy", 3, b"a"), ("deploy", 3, b"b"), ("other", 7, b""),
    ]
    assert c.deadline() is None
