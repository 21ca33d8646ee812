"""The gossip decode memo: a hit returns what decoding returns; bad input is never memoised."""

from __future__ import annotations

import msgpack
import pytest

from swimguard.wire import DecodeError, decode_packet, make_compound
from swimguard.wire import packet as packet_mod
from swimguard.wire.messages import Alive, Dead, Ping, Suspect
from swimguard.wire.packet import encode_message


def _alive(i: int) -> Alive:
    return Alive(incarnation=i, node=f"n{i}", addr=bytes((10, 0, 0, 1)), port=7946, vsn=bytes(6))


def test_repeated_gossip_decodes_to_equal_messages() -> None:
    parts = [encode_message(m) for m in (_alive(1), Suspect(3, "n1", "n2"), Dead(4, "n1", "n2"))]
    data = make_compound([*parts, encode_message(Ping(seq_no=9))])
    first = decode_packet(data)
    again = decode_packet(data)
    assert first == again == [_alive(1), Suspect(3, "n1", "n2"), Dead(4, "n1", "n2"), Ping(9)]
    assert decode_packet(parts[0]) == [_alive(1)]  # the bare-message path agrees


def test_malformed_gossip_is_rejected_every_time() -> None:
    bad = bytes((4,)) + b"\x81\xa4Node\x05"  # alive whose Node is an integer
    for _ in range(3):
        with pytest.raises(DecodeError):
            decode_packet(bad)
    assert bad not in packet_mod._gossip_cache
    good = encode_message(_alive(2))
    errors: list[DecodeError] = []
    assert decode_packet(make_compound([good, bad, good]), errors=errors) == [_alive(2)] * 2
    assert len(errors) == 1


def test_memo_is_bounded() -> None:
    for i in range(packet_mod.GOSSIP_CACHE_ENTRIES + 10):
        decode_packet(encode_message(_alive(i)))
    assert len(packet_mod._gossip_cache) <= packet_mod.GOSSIP_CACHE_ENTRIES
    big = Alive(incarnation=1, node="x" * packet_mod.GOSSIP_CACHE_MAX_LEN, addr=bytes(4), port=1)
    data = encode_message(big)
    assert decode_packet(data) == [big]
    assert data not in packet_mod._gossip_cache


def test_re_encoding_a_memoised_message_gives_its_bytes() -> None:
    data = encode_message(_alive(7))
    (msg,) = decode_packet(data)
    assert encode_message(msg) == data
    assert encode_message(_alive(7)) == data  # an equal message built elsewhere


def test_non_canonical_bytes_are_not_reused_for_encoding() -> None:
    # A map with an unknown extra key decodes fine, but encoding writes only the known ones.
    body = msgpack.packb(
        {
            "Addr": bytes(4),
            "Incarnation": 1,
            "Meta": None,
            "Node": "n",
            "Port": 1,
            "Vsn": b"",
            "Zz": 1,
        },
        use_bin_type=False,
    )
    data = bytes((4,)) + body
    (msg,) = decode_packet(data)
    assert msg == Alive(incarnation=1, node="n", addr=bytes(4), port=1, meta=None, vsn=b"")
    assert encode_message(msg) != data
    assert encode_message(msg) == encode_message(
        Alive(incarnation=1, node="n", addr=bytes(4), port=1)
    )
