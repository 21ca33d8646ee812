"""Queries both ways in the pure Serf layer: originate, collect, respond once, relays."""

from __future__ import annotations

import msgpack
import pytest
from serf_harness import HERE, SerfNode

from swimguard.serf import (
    QueryAckReceived,
    QueryEnd,
    QueryFinished,
    QueryParams,
    QueryReceived,
    QueryRespondError,
    QueryResponseReceived,
    Relay,
    SerfBroadcast,
    SerfDirect,
    SerfLayer,
    decode_message,
    encode_message,
)
from swimguard.serf.messages import Query, QueryResponse
from swimguard.serf.query import default_query_timeout, encode_filters

A_ADDR = ("127.0.0.1", 7001)


def originate(layer: SerfLayer, params: QueryParams, *, now: float = 0.0,
              name: str = "q", payload: bytes = b"hi", timeout: float = 2.0) -> tuple[int, bytes]:
    handle = layer.originate(name, payload, params, addr=A_ADDR, timeout=timeout, now=now)
    raw = next(o.data for o in layer.take_outgoing() if isinstance(o, SerfBroadcast))
    return handle, raw


def received(layer: SerfLayer, raw: bytes, now: float) -> Query:
    events = layer.handle_user_message(raw, now=now)
    assert len(events) == 1
    assert isinstance(events[0], QueryReceived)
    return events[0].query


def test_default_timeout_is_log10_of_live_members() -> None:
    assert default_query_timeout(0.2, 1) == pytest.approx(3.2)
    assert default_query_timeout(0.2, 9) == pytest.approx(3.2)
    assert default_query_timeout(0.2, 10) == pytest.approx(6.4)
    assert default_query_timeout(0.2, 99) == pytest.approx(6.4)
    assert default_query_timeout(0.2, 100) == pytest.approx(9.6)


def test_filters_encode_like_serf() -> None:
    assert encode_filters([], {}) is None
    node, tag = encode_filters(["b", "c"], {"role": "^w"}) or ()
    assert node[0] == 0
    assert msgpack.unpackb(node[1:], raw=True) == [b"b", b"c"]
    assert tag[0] == 1
    assert msgpack.unpackb(tag[1:], raw=True) == {b"Expr": b"^w", b"Tag": b"role"}


def test_originate_broadcasts_acks_itself_and_advances_the_clock() -> None:
    a = SerfLayer("a")
    handle = a.originate("q", b"hi", QueryParams(request_ack=True), addr=A_ADDR,
                         timeout=2.0, now=10.0)
    out = a.take_outgoing()
    raw = next(o.data for o in out if isinstance(o, SerfBroadcast))
    query = decode_message(raw)
    assert isinstance(query, Query)
    assert (query.ltime, query.name, query.payload, query.source_node) == (handle, "q", b"hi", "a")
    assert query.reply_to == A_ADDR
    assert query.timeout_ns == 2_000_000_000
    assert query.flags == 1
    ack = SerfDirect(A_ADDR, encode_message(QueryResponse(handle, query.id, "a", 1)))
    assert ack in out
    # we are a recipient of our own query (no filters)
    assert [type(e) for e in a.take_events()] == [QueryReceived]
    second, _raw = originate(a, QueryParams(), now=10.0)
    assert second == handle + 1


def test_acks_and_responses_are_collected_once_per_member_until_the_deadline() -> None:
    a, b = SerfLayer("a"), SerfLayer("b")
    handle, raw = originate(a, QueryParams(request_ack=True), now=0.0, timeout=2.0)
    query = received(b, raw, now=0.5)
    ack = next(o for o in b.take_outgoing() if isinstance(o, SerfDirect))
    response = b.respond(query, b"pong", now=0.6)
    assert response.to == A_ADDR
    assert response.relay_factor == 0
    assert a.handle_user_message(ack.data, now=0.7) == [QueryAckReceived(handle, "b")]
    got = a.handle_user_message(response.data, now=0.8)
    assert got == [QueryResponseReceived(handle, "b", b"pong")]
    assert a.handle_user_message(response.data, now=0.9) == []  # a relayed duplicate
    assert a.handle_user_message(ack.data, now=0.9) == []
    assert a.next_deadline() == pytest.approx(2.0)
    assert a.expire(now=1.9) == []
    assert a.expire(now=2.0) == [QueryFinished(handle, QueryEnd.DEADLINE)]
    assert a.next_deadline() is None
    # after the end the query is unknown: dropped and counted
    assert a.handle_user_message(response.data, now=2.1) == []
    assert a.originated.drops["query_response_unknown"] == 1


def test_response_after_the_deadline_is_late_even_before_the_timer() -> None:
    a, b = SerfLayer("a"), SerfLayer("b")
    _handle, raw = originate(a, QueryParams(), timeout=0.5)
    late = b.respond(received(b, raw, 0.1), b"x", now=0.2)
    assert a.handle_user_message(late.data, now=0.6) == []
    assert a.drops["query_response_late"] == 1  # the layer's counters: the agent's drops


def test_response_with_a_foreign_id_is_not_ours() -> None:
    a = SerfLayer("a")
    handle, raw = originate(a, QueryParams())
    query = decode_message(raw)
    assert isinstance(query, Query)
    forged = encode_message(QueryResponse(handle, (query.id + 1) & 0x7FFFFFFF, "x", 0, b"!"))
    assert a.handle_user_message(forged, now=0.1) == []
    assert a.originated.drops["query_response_unknown"] == 1


def test_node_filter_names_the_expected_responders() -> None:
    a, b, c = SerfLayer("a"), SerfLayer("b"), SerfLayer("c")
    handle, raw = originate(a, QueryParams(filter_nodes=("b", "c")))
    assert a.take_events() == []  # a is not named: no self-delivery
    rb = b.respond(received(b, raw, 0.1), b"1", now=0.1)
    rc = c.respond(received(c, raw, 0.1), b"2", now=0.1)
    assert a.handle_user_message(rb.data, now=0.2) == [QueryResponseReceived(handle, "b", b"1")]
    assert a.handle_user_message(rc.data, now=0.3) == [
        QueryResponseReceived(handle, "c", b"2"),
        QueryFinished(handle, QueryEnd.ALL_ANSWERED),
    ]
    assert a.next_deadline() is None


def test_expected_count_ends_the_query_early() -> None:
    a, b = SerfLayer("a"), SerfLayer("b")
    handle, raw = originate(a, QueryParams(expected=2))
    own = next(e for e in a.take_events() if isinstance(e, QueryReceived))
    mine = a.respond(own.query, b"me", now=0.1)
    assert [type(e) for e in a.handle_user_message(mine.data, now=0.1)] == [QueryResponseReceived]
    theirs = b.respond(received(b, raw, 0.1), b"b", now=0.1)
    events = a.handle_user_message(theirs.data, now=0.2)
    assert events[-1] == QueryFinished(handle, QueryEnd.ALL_ANSWERED)


def test_respond_once_before_the_deadline_within_the_size_limit() -> None:
    a, b = SerfLayer("a"), SerfLayer("b")
    _handle, raw = originate(a, QueryParams(), timeout=1.0)
    query = received(b, raw, now=5.0)
    with pytest.raises(QueryRespondError, match=r"^failed to respond to key query: "
                       r"response exceeds limit of 1024 bytes$"):
        b.respond(query, bytes(1100), now=5.1)
    with pytest.raises(QueryRespondError, match=r"response is past the deadline$"):
        b.respond(query, b"late", now=6.01)
    b.respond(query, b"ok", now=6.0)
    with pytest.raises(QueryRespondError, match=r"response already sent$"):
        b.respond(query, b"again", now=6.0)


def test_responses_and_acks_carry_relays_when_asked() -> None:
    a, b, relayer = SerfLayer("a"), SerfLayer("b"), SerfLayer("r")
    _handle, raw = originate(a, QueryParams(relay_factor=2, request_ack=True))
    query = received(b, raw, now=0.0)
    ack = next(o for o in b.take_outgoing() if isinstance(o, SerfDirect))
    assert ack.relay_factor == 2
    out = b.respond(query, b"pong", now=0.1)
    assert out.relay_factor == 2
    relay = decode_message(out.relay)
    assert isinstance(relay, Relay)
    assert (relay.dest_ip, relay.dest_port, relay.dest_name) == (bytes([127, 0, 0, 1]), 7001, "a")
    assert relay.inner == out.data
    # the relaying member forwards the inner response to the originator
    assert relayer.handle_user_message(out.relay, now=0.2) == []
    assert relayer.take_outgoing() == [SerfDirect(A_ADDR, out.data)]


def test_relayed_response_over_the_limit_is_refused_with_serfs_text() -> None:
    a, b = SerfLayer("a"), SerfLayer("b")
    _handle, raw = originate(a, QueryParams(relay_factor=1))
    query = received(b, raw, now=0.0)
    with pytest.raises(QueryRespondError, match=r"relayed response exceeds limit of 1024 bytes$"):
        b.respond(query, bytes(960), now=0.1)  # fits alone, not inside the relay header


def test_too_large_query_is_refused() -> None:
    a = SerfLayer("a")
    with pytest.raises(ValueError, match="query exceeds limit of 1024 bytes"):
        a.originate("q", bytes(1100), QueryParams(), addr=A_ADDR, timeout=1.0, now=0.0)
    assert len(a.originated) == 0


def test_bad_params_are_refused() -> None:
    with pytest.raises(ValueError):
        QueryParams(relay_factor=256)
    with pytest.raises(ValueError):
        QueryParams(timeout=0)
    with pytest.raises(ValueError):
        QueryParams(expected=0)


def test_serf_node_answers_its_own_query_without_the_socket_and_ends_at_the_deadline() -> None:
    node = SerfNode("a")
    handle = node.sn.query("q", b"hi", QueryParams(request_ack=True), now=1.0)
    node.pump()
    assert QueryAckReceived(handle, "a") in node.events
    own = next(e for e in node.events if isinstance(e, QueryReceived))
    node.sn.respond(own.query, b"mine", now=1.1)
    node.pump()
    assert QueryResponseReceived(handle, "a", b"mine") in node.events
    # default timeout: one live member -> 0.2 s x 16 x ceil(log10 2) = 3.2 s (LAN config)
    deadline = node.sn.next_deadline()
    assert deadline is not None
    assert deadline <= 1.0 + 3.2
    node.timeout(now=1.0 + 3.2)
    assert node.events[-1] == QueryFinished(handle, QueryEnd.DEADLINE)
    assert not any(getattr(o, "to", None) == HERE for o in node.out)


def test_forged_responders_beyond_the_cluster_size_are_dropped() -> None:
    a = SerfLayer("a")
    handle, raw = originate(a, QueryParams())
    query = decode_message(raw)
    assert isinstance(query, Query)
    got = []
    for i in range(100):
        forged = encode_message(QueryResponse(handle, query.id, f"x{i}", 0, b"!"))
        got += a.handle_user_message(forged, now=0.1)
    # one live member when sent (ourselves) plus slack: the rest is counted, not kept
    assert len(got) == 1 + 16
    assert a.originated.drops["query_responders_full"] == 100 - 17


def alive(name: str, last_octet: int, pmax: int) -> bytes:
    from swimguard.wire.messages import Alive
    from swimguard.wire.packet import encode_message as encode_wire

    vsn = bytes((1, pmax, 2, 2, 5, 5))
    return encode_wire(Alive(1, name, bytes([127, 0, 0, last_octet]), 7000, b"", vsn))


def test_serf_node_relays_answers_through_live_protocol_5_members() -> None:
    from swimguard.protocol.outgoing import Datagram

    node = SerfNode("me")
    node.datagram(alive("new1", 11, 5), now=0.0)
    node.datagram(alive("new2", 12, 5), now=0.0)
    node.datagram(alive("old", 13, 4), now=0.0)  # memberlist < 5 does not forward relays
    assert len(node.sn.members()) == 4
    query = Query(1, 5, "q", bytes([127, 0, 0, 99]), 7000, "origin", relay_factor=3,
                  timeout_ns=10**9)
    node.datagram(b"\x08" + encode_message(query), now=0.1)
    own = next(e for e in node.events if isinstance(e, QueryReceived))
    node.out.clear()
    node.sn.respond(own.query, b"answer", now=0.2)
    node.pump()
    sent_to = [o.to for o in node.out if isinstance(o, Datagram)]
    assert sent_to[0] == ("127.0.0.99", 7000)  # the answer itself, to the originator
    relays = set(sent_to[1:])
    # Serf's choice: random tries (3 per wanted relay) among live members other than us
    # that speak memberlist 5; never the old member, never ourselves, never twice
    assert relays
    assert relays <= {("127.0.0.11", 7000), ("127.0.0.12", 7000)}
    assert len(sent_to) == 1 + len(relays)
