"""SerfLayer: intents, clocks, dedup, push/pull state, robustness."""

from __future__ import annotations

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from swimguard.serf import (
    Join,
    JoinIntentReceived,
    KeyringChanged,
    Leave,
    LeaveIntentReceived,
    PushPull,
    Query,
    QueryReceived,
    QueryResponse,
    Relay,
    SerfBroadcast,
    SerfDirect,
    SerfLayer,
    UserEvent,
    UserEventEntry,
    UserEventReceived,
    UserEvents,
    decode_message,
    encode_message,
)


def test_join_intent_uses_member_clock_then_witnesses_it() -> None:
    layer = SerfLayer("py")
    assert decode_message(layer.join_intent()) == Join(1, "py")
    assert layer.member_clock.time() == 2
    assert layer.status_ltime("py") == 1


def test_leave_intent_uses_current_time_then_increments() -> None:
    layer = SerfLayer("py")
    layer.join_intent()
    assert decode_message(layer.leave_intent()) == Leave(2, "py", False)
    assert layer.member_clock.time() == 3
    assert layer.leaving


def test_intents_accepted_once_and_regossiped() -> None:
    layer = SerfLayer("py")
    msg = encode_message(Join(5, "b"))
    assert layer.handle_user_message(msg) == [JoinIntentReceived("b", 5)]
    assert layer.take_outgoing() == [SerfBroadcast(msg)]
    assert layer.member_clock.time() == 6
    assert layer.handle_user_message(msg) == []  # not newer
    assert layer.take_outgoing() == []
    leave = encode_message(Leave(7, "b"))
    assert layer.handle_user_message(leave) == [LeaveIntentReceived("b", 7, False)]
    assert layer.take_outgoing() == [SerfBroadcast(leave)]
    assert layer.handle_user_message(encode_message(Join(6, "b"))) == []  # older than the leave


def test_old_leave_about_us_is_refuted_with_a_join_intent() -> None:
    layer = SerfLayer("py")
    layer.join_intent()
    assert layer.handle_user_message(encode_message(Leave(9, "py"))) == []
    out = layer.take_outgoing()
    assert len(out) == 1
    assert isinstance(out[0], SerfBroadcast)
    refute = decode_message(out[0].data)
    assert isinstance(refute, Join)
    assert refute.node == "py"
    assert refute.ltime >= 10


def test_leave_about_us_while_leaving_is_not_refuted() -> None:
    layer = SerfLayer("py")
    layer.leave_intent()
    assert layer.handle_user_message(encode_message(Leave(9, "py"))) != []
    assert all(not isinstance(decode_message(o.data), Join) for o in layer.take_outgoing())


def test_user_events_dedup_by_ltime_name_payload() -> None:
    layer = SerfLayer("py")
    ev = encode_message(UserEvent(3, "deploy", b"v1", True))
    assert layer.handle_user_message(ev) == [UserEventReceived("deploy", b"v1", 3, True)]
    assert layer.handle_user_message(ev) == []
    other = encode_message(UserEvent(3, "deploy", b"v2"))
    assert len(layer.handle_user_message(other)) == 1
    assert layer.event_clock.time() == 4
    assert len(layer.take_outgoing()) == 2


def test_too_old_events_dropped_and_counted() -> None:
    layer = SerfLayer("py")
    layer.event_clock.witness(2000)
    assert layer.handle_user_message(encode_message(UserEvent(5, "x"))) == []
    assert layer.drops["event_too_old"] == 1


def test_query_dedup_ack_and_regossip() -> None:
    layer = SerfLayer("py")
    q = Query(
        ltime=4,
        id=77,
        name="whoami",
        addr=bytes([127, 0, 0, 1]),
        port=7946,
        source_node="a",
        flags=1,
    )
    raw = encode_message(q)
    assert layer.handle_user_message(raw) == [QueryReceived(q)]
    out = layer.take_outgoing()
    assert SerfBroadcast(raw) in out
    acks = [o for o in out if isinstance(o, SerfDirect)]
    assert acks == [SerfDirect(("127.0.0.1", 7946), encode_message(QueryResponse(4, 77, "py", 1)))]
    assert layer.handle_user_message(raw) == []
    assert layer.query_clock.time() == 5


def test_query_filters() -> None:
    layer = SerfLayer("py", tags={"role": "web"})
    node_filter = b"\x00" + msgpack.packb([b"other"])
    tag_ok = b"\x01" + msgpack.packb({b"Expr": b"^we", b"Tag": b"role"})
    tag_bad = b"\x01" + msgpack.packb({b"Expr": b"db", b"Tag": b"role"})
    evil = b"\x01" + msgpack.packb({b"Expr": b"(a+)+$", b"Tag": b"role"})
    base = {"name": "q", "addr": bytes(4), "port": 1}
    assert (
        layer.handle_user_message(encode_message(Query(1, 1, filters=(node_filter,), **base))) == []
    )
    got = layer.handle_user_message(encode_message(Query(1, 2, filters=(tag_ok,), **base)))
    assert len(got) == 1
    assert layer.handle_user_message(encode_message(Query(1, 3, filters=(tag_bad,), **base))) == []
    # RE2 evaluates what Python's `re` could not bound: no match here, and no drop
    assert layer.handle_user_message(encode_message(Query(1, 4, filters=(evil,), **base))) == []
    assert layer.drops["query_filter_unsupported"] == 0
    bad = b"\x01" + msgpack.packb({b"Expr": b"(", b"Tag": b"role"})
    assert layer.handle_user_message(encode_message(Query(1, 6, filters=(bad,), **base))) == []
    assert layer.drops["query_filter_bad_regexp"] == 1
    # no-broadcast flag: not re-gossiped
    layer.take_outgoing()
    layer.handle_user_message(encode_message(Query(1, 5, flags=2, **base)))
    assert layer.take_outgoing() == []


def test_relay_forwards_only_query_responses() -> None:
    layer = SerfLayer("py")
    inner = encode_message(QueryResponse(1, 2, "b", 1))
    relay = Relay(bytes([127, 0, 0, 1]), 7000, "a", inner)
    assert layer.handle_user_message(encode_message(relay)) == []
    assert layer.take_outgoing() == [SerfDirect(("127.0.0.1", 7000), inner)]
    bad = Relay(bytes([127, 0, 0, 1]), 7000, "a", encode_message(Join(1, "x")))
    layer.handle_user_message(encode_message(bad))
    assert layer.take_outgoing() == []
    assert layer.drops["relay_type"] == 1


def test_local_state_has_512_slot_ring_and_clocks() -> None:
    layer = SerfLayer("py")
    layer.join_intent()
    layer.handle_user_message(encode_message(UserEvent(3, "deploy", b"v1")))
    layer.note_member("gone", "left")
    state = layer.local_state(join=True)
    assert state[:1] == b"\x02"
    pp = decode_message(state)
    assert isinstance(pp, PushPull)
    assert len(pp.events) == 512
    assert pp.events[3] is not None
    assert pp.events[3].events[0].name == "deploy"
    assert sum(slot is not None for slot in pp.events) == 1
    assert (pp.ltime, pp.event_ltime, pp.query_ltime) == (2, 4, 1)
    assert pp.status_ltimes == {"py": 1, "gone": 0}
    assert pp.left_members == ("gone",)
    assert state.startswith(b"\x02\x86\xaaEventLTime")


def test_merge_witnesses_clocks_applies_intents_and_replays_events() -> None:
    a, b = SerfLayer("a"), SerfLayer("b")
    a.member_clock.witness(40)
    a.event_clock.witness(9)
    a.handle_user_message(encode_message(UserEvent(8, "deploy", b"x")))
    a.handle_user_message(encode_message(Leave(30, "c")))
    a.note_member("c", "left")
    b.merge_remote_state(a.local_state(False), join=False)
    assert b.member_clock.time() == 41  # witness(LTime - 1)
    assert b.event_clock.time() == 10
    assert b.status_ltime("c") == 31  # leave applied at StatusLTimes + 1
    assert b.take_events() == [UserEventReceived("deploy", b"x", 8, False)]
    assert b.take_outgoing() == []  # merges are not re-gossiped


def test_merge_of_empty_state_is_a_noop_and_garbage_is_counted() -> None:
    layer = SerfLayer("py")
    layer.merge_remote_state(b"", join=True)
    layer.merge_remote_state(b"\x01\x80", join=True)
    layer.merge_remote_state(b"\x02\xc1", join=True)
    assert layer.drops == {"state_type": 1, "state_malformed": 1}


@given(st.binary(max_size=300), st.booleans())
def test_never_raises_on_garbage(data: bytes, join: bool) -> None:
    layer = SerfLayer("py")
    layer.handle_user_message(data)
    layer.merge_remote_state(data, join)
    layer.merge_remote_state(b"\x02" + data, join)
    layer.handle_user_message(b"\x04" + data)


def test_status_table_is_bounded_and_keeps_self() -> None:
    from swimguard.serf import layer as layer_mod

    layer = SerfLayer("py")
    for i in range(layer_mod.MAX_NAMES + 10):
        layer.handle_user_message(encode_message(Join(i + 1, f"n{i}")))
    assert layer.status_ltime("py") == 0
    assert layer.status_ltime("n0") is None
    layer.take_outgoing()


def test_hostile_push_pull_with_a_huge_event_slot_is_bounded() -> None:
    from swimguard.serf import UserEventEntry, UserEvents
    from swimguard.serf import layer as layer_mod

    entries = tuple(UserEventEntry(f"e{i}", b"") for i in range(5000))
    state = encode_message(PushPull(ltime=1, events=(UserEvents(3, entries),)))
    layer = SerfLayer("py")
    layer.merge_remote_state(state, join=False)
    assert len(layer.take_events()) == layer_mod.MAX_PER_SLOT
    assert layer.drops["event_slot_full"] == 5000 - layer_mod.MAX_PER_SLOT
    pp = decode_message(layer.local_state(False))
    assert isinstance(pp, PushPull)
    slot = pp.events[3]
    assert slot is not None
    assert len(slot.events) == layer_mod.MAX_PER_SLOT


def test_query_ids_per_slot_are_bounded() -> None:
    from swimguard.serf import layer as layer_mod

    layer = SerfLayer("py")
    for qid in range(layer_mod.MAX_PER_SLOT + 5):
        layer.handle_user_message(encode_message(Query(2, qid, "q", bytes(4), 1)))
    assert layer.drops["query_slot_full"] == 5


def _key_query(name: str, key: bytes, qid: int = 9) -> bytes:
    payload = b"\x07" + msgpack.packb({b"Key": key}, use_bin_type=False)
    return encode_message(Query(3, qid, name, bytes([127, 0, 0, 1]), 7000, "a", payload, flags=1))


def _key_reply(layer: SerfLayer) -> dict[bytes, object]:
    out = layer.take_outgoing()
    direct = [o for o in out if isinstance(o, SerfDirect)]
    assert len(direct) == 2  # the ack, then the response
    resp = decode_message(direct[1].data)
    assert isinstance(resp, QueryResponse)
    assert resp.flags == 0
    assert resp.payload is not None
    assert resp.payload[0] == 8  # keyResponse
    body = msgpack.unpackb(resp.payload[1:], raw=True)
    assert list(body) == [b"Keys", b"Message", b"PrimaryKey", b"Result"]
    return body  # type: ignore[no-any-return]


def test_serf_key_commands_act_on_the_shared_keyring() -> None:
    import base64

    from swimguard.wire.encryption import Keyring

    k1, k2 = bytes(range(32)), bytes(range(1, 33))
    ring = Keyring([k1])
    layer = SerfLayer("py", keyring=ring)
    # a change is reported (a keyring file is rewritten on it); a refusal is not
    changed = layer.handle_user_message(_key_query("_serf_install-key", k2, 1))
    assert changed == [KeyringChanged((k1, k2))]
    assert _key_reply(layer)[b"Result"] is True
    assert ring.keys == (k1, k2)
    changed = layer.handle_user_message(_key_query("_serf_use-key", k2, 2))
    assert changed == [KeyringChanged((k2, k1))]
    assert _key_reply(layer)[b"Result"] is True
    assert ring.primary == k2
    assert layer.handle_user_message(_key_query("_serf_remove-key", k2, 3)) == []
    body = _key_reply(layer)
    assert body[b"Result"] is False
    assert b"primary" in body[b"Message"]  # type: ignore[operator]
    assert layer.handle_user_message(_key_query("_serf_list-keys", b"", 4)) == []
    body = _key_reply(layer)
    assert body[b"Result"] is True
    assert body[b"Keys"] == [base64.b64encode(k).decode().encode() for k in (k2, k1)]
    assert body[b"PrimaryKey"] == base64.b64encode(k2)
    layer.handle_user_message(_key_query("_serf_install-key", b"short", 5))
    assert _key_reply(layer)[b"Result"] is False


def test_key_commands_without_encryption_fail_like_serf() -> None:
    layer = SerfLayer("py")
    layer.handle_user_message(_key_query("_serf_list-keys", b""))
    body = _key_reply(layer)
    assert body[b"Result"] is False
    assert body[b"Keys"] is None
    assert body[b"Message"] == b"Keyring is empty (encryption not enabled)"


def test_internal_queries_are_not_reported_as_events() -> None:
    layer = SerfLayer("py")
    ping = Query(1, 1, "_serf_ping", bytes([127, 0, 0, 1]), 7000, "a", flags=1)
    assert layer.handle_user_message(encode_message(ping)) == []
    acks = [o for o in layer.take_outgoing() if isinstance(o, SerfDirect)]
    assert len(acks) == 1


def test_event_ring_bytes_are_bounded() -> None:
    from swimguard.serf import layer as layer_mod

    layer = SerfLayer("py")
    big = b"x" * 60000
    accepted = 0
    for ltime in range(1, 200):
        accepted += len(layer.handle_user_message(encode_message(UserEvent(ltime, "e", big))))
    assert accepted == layer_mod.MAX_EVENT_BYTES // (len(big) + 1)
    assert layer.drops["event_ring_full"] == 199 - accepted
    # a slot reused by a newer Lamport time frees its bytes
    layer.event_clock.witness(2000)
    assert layer.handle_user_message(encode_message(UserEvent(1 + 3 * 512, "e", big))) != []


def test_restored_clocks_drop_events_and_queries_seen_before_the_restart() -> None:
    layer = SerfLayer("py")
    layer.restore_clocks(8, 7, 19)
    assert (layer.member_clock.time(), layer.event_clock.time(), layer.query_clock.time()) == (
        9,
        8,
        20,
    )
    old = encode_message(UserEvent(7, "deploy", b"v1"))
    assert layer.handle_user_message(old) == []
    assert layer.drops["event_before_restart"] == 1
    assert layer.take_outgoing() == []  # not re-gossiped either
    new = encode_message(UserEvent(8, "deploy", b"v2"))
    assert layer.handle_user_message(new) == [UserEventReceived("deploy", b"v2", 8, False)]
    assert layer.last_event_ltime == 8
    old_query = Query(19, 1, "q", bytes([127, 0, 0, 1]), 7000, "a")
    assert layer.handle_user_message(encode_message(old_query)) == []
    assert layer.drops["query_before_restart"] == 1
    new_query = Query(20, 1, "q", bytes([127, 0, 0, 1]), 7000, "a")
    (received,) = layer.handle_user_message(encode_message(new_query), now=1.0)
    assert isinstance(received, QueryReceived)
    assert layer.last_query_ltime == 20
    # a push/pull replaying the old event does not deliver it either
    state = PushPull(
        ltime=1,
        status_ltimes={},
        left_members=(),
        event_ltime=8,
        events=(UserEvents(7, (UserEventEntry("deploy", b"v1"),)),),
        query_ltime=1,
    )
    layer.merge_remote_state(encode_message(state), join=True)
    assert layer.take_events() == []


_u64 = st.integers(0, (1 << 64) - 1)


@given(_u64, _u64, _u64, st.lists(st.tuples(_u64, st.text(max_size=8)), max_size=8))
def test_any_restored_clocks_keep_the_layer_encodable(
    member: int, event: int, query: int, events: list[tuple[int, str]]
) -> None:
    # the values come from a file: anything a clock line may hold, up to 2^64 - 1
    layer = SerfLayer("py")
    layer.restore_clocks(member, event, query)
    for ltime, name in events:
        layer.handle_user_message(encode_message(UserEvent(ltime, name, b"")))
    layer.user_event("mine", b"")
    decode_message(layer.local_state(False))
    assert layer.event_min_time == min(event + 1, (1 << 64) - 1)
