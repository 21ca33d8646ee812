"""Ack payloads (serf-wire.md §7) and the coordinate cache: golden bytes and hostile input."""

from __future__ import annotations

import json
import math
import random
import struct
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swimguard.serf.coordinate import (
    ABSURD_SECONDS,
    Coordinate,
    CoordinateRejected,
    check_coordinate,
)
from swimguard.serf.coordinate_exchange import (
    GONE_RETENTION,
    AckPayloadProblem,
    CoordinateExchange,
    coordinate_map,
    decode_ack_payload,
    encode_ack_payload,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "data"
CAPTURE = VECTORS / "memberlist-plain-captured.json"


def captured_serf_ack_payload() -> bytes:
    """The payload of an ack a lone Debian serf 0.9.4 agent sent (its origin coordinate)."""
    data = json.loads(CAPTURE.read_text())
    for packet in data["udp"]:
        if packet["name"] == "ack_with_serf_coordinate_payload":
            hex_payload: str = packet["decoded"]["body"]["Payload"]
            return bytes.fromhex(hex_payload.removeprefix("hex:"))
    raise AssertionError("capture lost its ack")


def raw_payload(body: object, version: int = 1) -> bytes:
    return bytes((version,)) + msgpack.packb(body, use_bin_type=False)


def good_map(**over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "Adjustment": 0.0,
        "Error": 0.5,
        "Height": 1e-5,
        "Vec": [0.001] + [0.0] * 7,
    }
    body.update(over)
    return body


def test_our_origin_payload_is_serfs_bytes() -> None:
    payload = encode_ack_payload(Coordinate.origin())
    assert payload == captured_serf_ack_payload()
    assert len(payload) == 130


def test_coordinate_map_is_serfs_key_order() -> None:
    """The same map serves RPC `get-coordinate` (serf-rpc.md §1.10 shows its key order)."""
    body = coordinate_map(Coordinate.origin())
    assert list(body) == ["Adjustment", "Error", "Height", "Vec"]
    assert body["Vec"] == [0.0] * 8
    assert msgpack.unpackb(captured_serf_ack_payload()[1:]) == body


def test_serfs_payload_decodes() -> None:
    assert decode_ack_payload(captured_serf_ack_payload()) == Coordinate.origin()


def test_round_trip_of_a_moved_coordinate() -> None:
    c = Coordinate(vec=tuple(i * 1e-4 for i in range(8)), error=0.3, adjustment=-2e-5, height=3e-5)
    payload = encode_ack_payload(c)
    assert len(payload) == 130
    assert decode_ack_payload(payload) == c


def test_decoder_reads_like_serfs() -> None:
    # Integers for floats, unknown keys skipped, trailing bytes ignored, float32 accepted.
    body = good_map(Error=1, Extra="x")
    assert decode_ack_payload(raw_payload(body) + b"\xc0junk") == Coordinate(
        vec=(0.001,) + (0.0,) * 7, error=1.0, adjustment=0.0, height=1e-5
    )
    f32 = b"\x01\x81\xa5Error\xca" + struct.pack(">f", 0.5)
    assert decode_ack_payload(f32) == Coordinate(vec=(), error=0.5, adjustment=0.0, height=0.0)
    # Missing fields are zero; a nil body is an empty coordinate (refused later on dimension).
    assert decode_ack_payload(raw_payload(None)) == Coordinate((), 0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"\x02" + encode_ack_payload(Coordinate.origin())[1:], AckPayloadProblem.BAD_VERSION),
        (b"\x00", AckPayloadProblem.BAD_VERSION),
        (b"\x01", AckPayloadProblem.UNDECODABLE),
        (encode_ack_payload(Coordinate.origin())[:60], AckPayloadProblem.UNDECODABLE),
        (b"\x01\xc1", AckPayloadProblem.UNDECODABLE),
        (raw_payload([1.0, 2.0]), AckPayloadProblem.UNDECODABLE),
        (raw_payload(good_map(Vec="abc")), AckPayloadProblem.UNDECODABLE),
        (raw_payload(good_map(Vec=[True] * 8)), AckPayloadProblem.UNDECODABLE),
        (raw_payload(good_map(Error=True)), AckPayloadProblem.UNDECODABLE),
        (raw_payload(good_map(Height=b"x")), AckPayloadProblem.UNDECODABLE),
        (raw_payload(good_map(Vec=[[0.0]] * 8)), AckPayloadProblem.UNDECODABLE),
        (raw_payload({1: 2.0}), AckPayloadProblem.UNDECODABLE),
        (raw_payload(good_map(Vec=[0.0] * 100_000)), AckPayloadProblem.UNDECODABLE),
        (b"\x01\x84" + b"\xdd\xff\xff\xff\xff" * 4, AckPayloadProblem.UNDECODABLE),
        (b"\x01" + b"\x91" * 5000, AckPayloadProblem.UNDECODABLE),  # too long
        (b"\x01" + b"\x91" * 2000, AckPayloadProblem.UNDECODABLE),
        (raw_payload(msgpack.ExtType(1, b"x")), AckPayloadProblem.UNDECODABLE),
    ],
)
def test_undecodable_payloads(payload: bytes, problem: AckPayloadProblem) -> None:
    assert decode_ack_payload(payload) is problem


def exchange(**kw: int) -> CoordinateExchange:
    return CoordinateExchange("me", rng=random.Random(7), **kw)


def test_a_sample_moves_us_and_caches_the_peer() -> None:
    ex = exchange()
    first_ack = ex.ack_payload()
    assert decode_ack_payload(first_ack) == ex.own == ex.coordinate("me")
    peer_payload = raw_payload(good_map())
    ex.ping_completed("peer", 0.002, peer_payload)
    assert ex.coordinate("peer") == decode_ack_payload(peer_payload)
    assert ex.own != Coordinate.origin()
    assert ex.coordinate("me") == ex.own
    # Our next ack carries the moved coordinate.
    assert decode_ack_payload(ex.ack_payload()) == ex.own
    assert ex.ack_payload() != first_ack
    assert ex.updates == 1
    assert ex.drops == {}
    assert len(ex) == 1
    # Serf's adjustment-ms sample: how far that update moved us, in ms.
    assert ex.adjustment_ms.count == 1
    assert ex.adjustment_ms.sum == pytest.approx(
        Coordinate.origin().distance_to(ex.own) * 1000.0)
    assert ex.adjustment_ms.sum > 0.0
    assert ex.rejected == 0
    assert ex.zero_rtt == 0


def test_empty_payload_is_ignored_silently() -> None:
    ex = exchange()
    ex.ping_completed("plain-memberlist", 0.001, b"")
    assert ex.own == Coordinate.origin()
    assert ex.coordinate("plain-memberlist") is None
    assert ex.drops == {}


@pytest.mark.parametrize(
    ("payload", "rtt", "reason"),
    [
        (raw_payload(good_map(Vec=[math.nan] * 8)), 0.001, CoordinateRejected.NOT_FINITE),
        (raw_payload(good_map(Error=math.inf)), 0.001, CoordinateRejected.NOT_FINITE),
        (raw_payload(good_map(Vec=[0.0] * 3)), 0.001, CoordinateRejected.WRONG_DIMENSION),
        (raw_payload(good_map(Vec=[0.0] * 9)), 0.001, CoordinateRejected.WRONG_DIMENSION),
        (raw_payload(good_map(Height=ABSURD_SECONDS * 10)), 0.001, CoordinateRejected.ABSURD),
        (raw_payload(good_map(Vec=[1e300] * 8)), 0.001, CoordinateRejected.ABSURD),
        (raw_payload(good_map(Error=-1.0)), 0.001, CoordinateRejected.ABSURD),
        (raw_payload(good_map()), 11.0, CoordinateRejected.RTT_OUT_OF_RANGE),
        (raw_payload(good_map()), -0.5, CoordinateRejected.RTT_OUT_OF_RANGE),
        (b"\x07", 0.001, AckPayloadProblem.BAD_VERSION),
        (b"\x01\xc1", 0.001, AckPayloadProblem.UNDECODABLE),
    ],
)
def test_bad_input_is_counted_and_never_stored(
    payload: bytes, rtt: float, reason: CoordinateRejected | AckPayloadProblem
) -> None:
    ex = exchange()
    ex.ping_completed("good", 0.003, raw_payload(good_map()))
    before, before_ack = ex.own, ex.ack_payload()
    ex.ping_completed("bad", rtt, payload)
    ex.ping_completed("good", rtt, payload)
    assert ex.drops == {reason.value: 2}
    assert ex.coordinate("bad") is None
    assert ex.coordinate("good") == decode_ack_payload(raw_payload(good_map()))
    assert ex.own == before
    assert ex.ack_payload() == before_ack
    assert ex.client.tracked == 1  # no latency samples for "bad"
    # Serf counts refused samples in `coordinate.rejected`; payloads it cannot decode are
    # not samples and only logged there (here: drops).
    assert ex.rejected == (2 if isinstance(reason, CoordinateRejected) else 0)
    assert ex.adjustment_ms.count == 1  # only the good sample moved us


def test_a_zero_rtt_sample_is_used_and_counted() -> None:
    ex = exchange()
    ex.ping_completed("peer", 0.0, raw_payload(good_map()))
    assert ex.zero_rtt == 1
    assert ex.updates == 1
    assert ex.rejected == 0


def test_refusal_reasons_are_distinct_counters() -> None:
    names = [r.value for r in CoordinateRejected] + [p.value for p in AckPayloadProblem]
    assert len(set(names)) == len(names)


def test_cache_is_bounded_and_forgets_the_least_recently_heard() -> None:
    ex = exchange(max_entries=3)
    for name in ("a", "b", "c"):
        ex.ping_completed(name, 0.002, raw_payload(good_map()))
    ex.ping_completed("a", 0.002, raw_payload(good_map()))  # "a" heard again
    ex.ping_completed("d", 0.002, raw_payload(good_map()))
    assert len(ex) == 3
    assert ex.coordinate("b") is None
    assert all(ex.coordinate(n) is not None for n in ("a", "c", "d"))
    assert ex.client.tracked == 3  # "b"'s latency samples went with it


def test_forget_drops_cache_and_samples() -> None:
    ex = exchange()
    ex.ping_completed("a", 0.002, raw_payload(good_map()))
    ex.forget("a")
    assert ex.coordinate("a") is None
    assert len(ex) == 0
    assert ex.client.tracked == 0


def test_our_own_name_never_becomes_a_sample() -> None:
    ex = exchange()
    ex.ping_completed("me", 0.002, raw_payload(good_map()))
    assert ex.own == Coordinate.origin()
    assert len(ex) == 0


def test_two_exchanges_estimate_each_other() -> None:
    """Two members acking each other: each one's estimate approaches the true RTT."""
    a = CoordinateExchange("a", rng=random.Random(1))
    b = CoordinateExchange("b", rng=random.Random(2))
    for _ in range(200):
        a.ping_completed("b", 0.004, b.ack_payload())
        b.ping_completed("a", 0.004, a.ack_payload())
    for est in (a.own.distance_to(b.own), b.own.distance_to(a.own)):
        assert est == pytest.approx(0.004, rel=0.05)
    assert a.coordinate("b") is not None
    assert b.coordinate("a") is not None


# -- fuzzing: whatever arrives, nothing raises and nothing unusable is kept -----------------

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(1 << 63), max_value=(1 << 64) - 1),
    st.none(),
    st.booleans(),
    st.binary(max_size=4),
)
bodies = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "Adjustment": numbers,
            "Error": numbers,
            "Height": numbers,
            "Vec": st.one_of(st.lists(numbers, max_size=10), numbers),
            "Other": numbers,
        },
    ),
    st.lists(numbers, max_size=3),
    numbers,
)


def payloads() -> st.SearchStrategy[bytes]:
    structured = bodies.map(lambda b: b"\x01" + msgpack.packb(b, use_bin_type=False))
    versioned = st.binary(max_size=200).map(b"\x01".__add__)
    return st.one_of(structured, st.binary(max_size=200), versioned)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(payloads(), st.floats()), min_size=1, max_size=8))
def test_fuzzed_payloads_never_raise_nor_poison(samples: list[tuple[bytes, float]]) -> None:
    ex = exchange()
    for i, (payload, rtt) in enumerate(samples):
        ex.ping_completed(f"n{i % 3}", rtt, payload)
        assert ex.own.is_finite()
        assert decode_ack_payload(ex.ack_payload()) == ex.own
        for j in range(3):
            cached = ex.coordinate(f"n{j}")
            assert cached is None or check_coordinate(cached) is None
    assert ex.updates + sum(ex.drops.values()) == sum(1 for p, _ in samples if p)


def test_a_departed_member_is_forgotten_after_serfs_reap_time() -> None:
    ex = exchange()
    for name in ("a", "b", "c"):
        ex.ping_completed(name, 0.002, raw_payload(good_map()))
    ex.note_member("a", alive=False, now=100.0)
    ex.note_member("b", alive=False, now=200.0)
    ex.note_member("b", alive=True, now=300.0)  # it came back: kept
    ex.note_member("c", alive=True, now=GONE_RETENTION + 99.0)
    assert ex.coordinate("a") is not None  # still within the retention (like Serf)
    ex.note_member("c", alive=True, now=GONE_RETENTION + 100.0)
    assert ex.coordinate("a") is None
    assert ex.client.tracked == 2
    assert ex.coordinate("b") is not None
    ex.note_member("unknown", alive=False, now=GONE_RETENTION + 200.0)  # nothing to keep
    assert len(ex) == 2


def test_departures_are_bounded_by_the_cache() -> None:
    ex = exchange(max_entries=2)
    ex.ping_completed("a", 0.002, raw_payload(good_map()))
    ex.note_member("a", alive=False, now=0.0)
    for name in ("b", "c"):
        ex.ping_completed(name, 0.002, raw_payload(good_map()))  # evicts "a"
    assert ex.coordinate("a") is None
    assert ex._gone == {}
