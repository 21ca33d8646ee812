"""Serf's internal queries: conflict answers and votes, key commands and their tally."""

from __future__ import annotations

import base64

import msgpack
import pytest
from serf_harness import SerfNode

from swimguard.serf import (
    NameConflictResolved,
    QueryReceived,
    SerfDirect,
    SerfLayer,
    decode_message,
    encode_message,
)
from swimguard.serf.internal_queries import (
    ConflictVote,
    KeyOp,
    KeyTally,
    answer_key_query,
    key_request,
    key_response_payload,
)
from swimguard.serf.messages import (
    ConflictMember,
    Query,
    QueryResponse,
    SerfDecodeError,
    SerfMemberStatus,
    decode_conflict_response,
    encode_conflict_response,
)
from swimguard.wire.encryption import Keyring
from swimguard.wire.messages import Alive
from swimguard.wire.packet import encode_message as encode_wire

ORIGIN = ("127.0.0.1", 7001)
K1, K2, K3 = bytes(16), bytes(range(16)), bytes(range(1, 17))


def test_conflict_member_round_trips_and_nil_is_none() -> None:
    member = ConflictMember("py", bytes([127, 0, 0, 1]), 7946, {"role": "web"},
                            SerfMemberStatus.ALIVE, (1, 5, 2), (2, 5, 4))
    data = encode_conflict_response(member)
    assert data[0] == 6
    body = msgpack.unpackb(data[1:], raw=True)
    assert list(body) == sorted(body)  # Go's sorted field order
    assert decode_conflict_response(data) == member
    assert encode_conflict_response(None) == b"\x06\xc0"
    assert decode_conflict_response(b"\x06\xc0") is None
    with pytest.raises(SerfDecodeError):
        decode_conflict_response(b"\x08\xc0")
    with pytest.raises(SerfDecodeError):
        decode_conflict_response(b"\x06\x81\xa4Port\xa1x")


def test_conflict_vote_needs_a_majority() -> None:
    ours = ConflictMember("py", bytes([127, 0, 0, 1]), 7000)
    theirs = ConflictMember("py", bytes([127, 0, 0, 2]), 7000)
    vote = ConflictVote(bytes([127, 0, 0, 1]), 7000)
    vote.add(encode_conflict_response(ours))
    vote.add(encode_conflict_response(theirs))
    assert not vote.won  # 1 of 2: majority is 2
    vote.add(encode_conflict_response(ours))
    vote.add(b"garbage")  # logged and not counted by Serf
    assert (vote.matching, vote.responses, vote.invalid, vote.won) == (2, 3, 1, True)
    empty = ConflictVote(bytes(4), 1)
    assert not empty.won  # nobody answered: 0 >= 1 fails, as in Serf


def conflict_query(name: str, *, qid: int = 9) -> Query:
    return Query(1, qid, "_serf_conflict", bytes([127, 0, 0, 1]), 7001, "x", name.encode())


def test_layer_answers_conflict_with_its_view_but_never_about_itself() -> None:
    layer = SerfLayer("a")
    known = ConflictMember("py", bytes([127, 0, 0, 9]), 7946, status=SerfMemberStatus.ALIVE)
    layer.member_view = {"py": known}.get
    assert layer.handle_user_message(encode_message(conflict_query("py")), now=0.0) == []
    out = [o for o in layer.take_outgoing() if isinstance(o, SerfDirect)]
    response = decode_message(out[0].data)
    assert isinstance(response, QueryResponse)
    assert response.payload is not None
    assert decode_conflict_response(response.payload) == known
    layer.handle_user_message(encode_message(conflict_query("a", qid=10)), now=0.0)
    assert [o for o in layer.take_outgoing() if isinstance(o, SerfDirect)] == []
    layer.handle_user_message(encode_message(conflict_query("ghost", qid=11)), now=0.0)
    (nil,) = [o for o in layer.take_outgoing() if isinstance(o, SerfDirect)]
    got = decode_message(nil.data)
    assert isinstance(got, QueryResponse)
    assert got.payload == b"\x06\xc0"


def test_key_commands_use_memberlists_texts() -> None:
    ring = Keyring([K1])
    assert answer_key_query(KeyOp.INSTALL, key_request(b"short"), ring).message == (
        "key size must be 16, 24 or 32 bytes"
    )
    assert answer_key_query(KeyOp.USE, key_request(K2), ring).message == (
        "Requested key is not in the keyring"
    )
    assert answer_key_query(KeyOp.REMOVE, key_request(K1), ring).message == (
        "Removing the primary key is not allowed"
    )
    assert answer_key_query(KeyOp.INSTALL, key_request(K2), ring).result
    assert answer_key_query(KeyOp.USE, key_request(K2), ring).result
    assert answer_key_query(KeyOp.REMOVE, key_request(K1), ring).result
    listed = answer_key_query(KeyOp.LIST, key_request(b""), ring)
    assert listed.keys == [base64.b64encode(K2).decode()]
    assert listed.primary == base64.b64encode(K2).decode()
    none = answer_key_query(KeyOp.INSTALL, key_request(K3), None)
    assert (none.result, none.message) == (False, "No keyring to modify (encryption not enabled)")


def test_key_tally_reports_like_serf_keys() -> None:
    tally = KeyTally(3)
    tally.add("a", key_response_payload(["k1", "k2"], "", "k1", True))
    tally.add("b", key_response_payload(None, "Removing the primary key is not allowed", "", False))
    assert not tally.complete
    tally.add("c", b"\x05junk")
    assert tally.complete
    result = tally.result()
    assert result.error == "2/3 nodes reported failure"
    assert result.messages == {
        "b": "Removing the primary key is not allowed",
        "c": "Invalid key query response type: [5 106 117 110 107]",
    }
    assert result.keys == {"k1": 1, "k2": 1}
    partial = KeyTally(2)
    partial.add("a", key_response_payload(None, "", "", True))
    assert partial.result().error == "1/2 nodes reported success"
    done = KeyTally(1)
    done.add("a", key_response_payload(None, "", "", True))
    assert done.result().ok


def alive_claim(name: str, host: bytes, port: int) -> bytes:
    return encode_wire(Alive(5, name, host, port, b"", bytes((1, 5, 2, 2, 5, 5))))


def test_serf_node_votes_on_a_conflict_about_its_name() -> None:
    node = SerfNode("a")
    node.datagram(alive_claim("a", bytes([127, 0, 0, 2]), 7000), now=1.0)
    # the vote is our own internal query: not an application event
    assert not any(isinstance(e, QueryReceived) for e in node.events)
    deadline = node.sn.next_deadline()
    assert deadline is not None
    node.timeout(now=1.0 + 3.2)
    (resolved,) = [e for e in node.events if isinstance(e, NameConflictResolved)]
    # alone, nobody else answers: 0 of 0 is not a majority, as in Serf
    assert resolved == NameConflictResolved("a", 0, 0, False)


def test_hostile_payloads_never_raise_out_of_the_tallies_and_answers() -> None:
    import random

    rng = random.Random(12)
    samples = [
        b"", b"\x06", b"\x08", b"\x07", b"\x06\x91", b"\x08\x81\xa4Keys\x92\x01\xc0",
        b"\x08\x82\xa7Message\x05\xa6Result\xc3", b"\x06\x81\xa4Tags\x81\x01\x02",
        b"\x07\x81\xa3Key\x05", b"\x07" + b"\x91" * 5000,
    ]
    for _ in range(3000):
        head = rng.choice(b"\x06\x07\x08")
        samples.append(bytes([head]) + rng.randbytes(rng.randrange(0, 40)))
    ring = Keyring([K1])
    for data in samples:
        vote = ConflictVote(bytes(4), 1)
        vote.add(data)
        assert vote.responses + vote.invalid == 1
        tally = KeyTally(1)
        tally.add("x", data)
        assert tally.num_resp == 1
        for op in KeyOp:
            answer_key_query(op, data, ring)
        assert ring.keys  # never emptied


def test_serf_node_answers_conflict_queries_from_its_member_table() -> None:
    from swimguard.protocol.outgoing import Datagram
    from swimguard.wire.packet import UserData, decode_packet

    node = SerfNode("me")
    node.datagram(encode_wire(Alive(3, "py", bytes([127, 0, 0, 9]), 7946,
                                    b"\xff\x81\xa4role\xa3web", bytes((1, 5, 2, 2, 5, 4)))),
                  now=0.0)
    node.out.clear()
    query = Query(1, 9, "_serf_conflict", bytes([127, 0, 0, 1]), 7001, "x", b"py")
    node.datagram(b"\x08" + encode_message(query), now=0.1)
    answers = [
        m.data
        for o in node.out
        if isinstance(o, Datagram) and o.to == ORIGIN
        for m in decode_packet(o.data)
        if isinstance(m, UserData)
    ]
    (raw,) = answers
    response = decode_message(raw)
    assert isinstance(response, QueryResponse)
    assert response.payload is not None
    assert decode_conflict_response(response.payload) == ConflictMember(
        "py", bytes([127, 0, 0, 9]), 7946, {"role": "web"}, SerfMemberStatus.ALIVE,
        (1, 5, 2), (2, 5, 4),
    )


def test_list_keys_answer_is_truncated_to_fit_like_serf() -> None:
    ring = Keyring([bytes([i]) * 32 for i in range(1, 61)])
    layer = SerfLayer("a", keyring=ring)
    query = Query(1, 3, "_serf_list-keys", bytes([127, 0, 0, 1]), 7001, "x", key_request(b""))
    layer.handle_user_message(encode_message(query), now=0.0)
    (out,) = [o for o in layer.take_outgoing() if isinstance(o, SerfDirect)]
    assert len(out.data) <= 1024
    response = decode_message(out.data)
    assert isinstance(response, QueryResponse)
    assert response.payload is not None
    body = msgpack.unpackb(response.payload[1:], raw=False)
    shown = len(body["Keys"])
    assert 0 < shown < 60
    assert body["Message"] == f"truncated key list response, showing first {shown} of 60 keys"
    assert body["Result"] is True
    tally = KeyTally(1)
    tally.add("a", response.payload)
    assert tally.result().messages == {"a": body["Message"]}  # reported, not an error
    assert tally.result().ok
