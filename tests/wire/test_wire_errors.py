"""Malformed input raises the documented DecodeError subclass with a stable reason."""

from __future__ import annotations

import msgpack
import pytest

from swimguard.wire import (
    AckResp,
    Alive,
    BodyError,
    DecodeError,
    Keyring,
    NackResp,
    Ping,
    PushPull,
    PushPullHeader,
    StreamDecoder,
    TruncatedError,
    UserStream,
    decode_packet,
    encode_message,
    encode_stream_message,
    frame_stream,
    make_compound,
)
from swimguard.wire.checksum import add_crc
from swimguard.wire.messages import Compress, encode_body
from swimguard.wire.packet import MAX_NESTING

NACK = encode_message(NackResp(seq_no=1))


def body(mapping: dict[str, object], kind: int = 0) -> bytes:
    return bytes((kind,)) + msgpack.packb(mapping, use_bin_type=False)


def reason(data: bytes, **options: object) -> str:
    with pytest.raises(DecodeError) as info:
        decode_packet(data, **options)  # type: ignore[arg-type]
    return info.value.reason


def nested_compound(depth: int) -> bytes:
    data = NACK
    for _ in range(depth):
        data = make_compound([data])
    return data


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "truncated"),
        (b"\x63", "unknown_type"),
        (b"\x0d" + encode_body(Compress(buf=b"")), "unknown_type"),  # errResp: streams only
        (b"\x0a\x00", "unknown_type"),  # encryptMsg is never a UDP type
        (add_crc(b"\x0c" + add_crc(NACK)[1:]), "unknown_type"),  # CRC only at the top
        (b"\x0c\x00\x00\x00\x00" + NACK, "crc"),
        (add_crc(NACK)[:-1] + b"\x02", "crc"),
        (b"\x00\xc1", "body"),
        (b"\x00", "body"),
        (b"\x00\x91\x01", "body"),  # an array, not a map
        (NACK + b"\x00", "body"),  # trailing bytes after the body
        (body({"SeqNo": -1}), "body"),
        (body({"SeqNo": 2**32}), "body"),
        (body({"SeqNo": 1, "SourcePort": 65536}), "body"),
        (body({"SeqNo": 1, "Node": 5}), "body"),
        (body({"SeqNo": "1"}), "body"),
        (body({"SeqNo": 1.0}), "body"),
        (body({"Nack": 2}, 1), "body"),
        (body({"Addr": [1, 300]}, 4), "body"),
        (b"\x00" + b"\x91" * 5000 + b"\xc0", "body"),  # deep nesting
        (b"\x00\xdf\xff\xff\xff\xff", "body"),  # map of 4 billion entries
        (b"\x00\xdd\xff\xff\xff\xff", "body"),  # array of 4 billion entries
        (b"\x00\x81\xa1k\xdb\xff\xff\xff\xff", "body"),  # 4 GB string
        (b"\x07", "compound"),
        (b"\x07\x02\x00", "compound"),
        (make_compound([NACK, NACK])[:-1], "compound"),
        (nested_compound(MAX_NESTING + 1), "compound"),
        (make_compound([b""]), "truncated"),
        (b"\x09" + encode_body(Compress(buf=b"", algo=1)), "compress"),
        (b"\x09\xc1", "compress"),
        (b"\x09" + msgpack.packb({"Algo": 0, "Buf": 7}), "compress"),
        (b"\x09" + encode_body(Compress(buf=b"\x00\x01")), "compress"),
        (b"\xf4", "label"),
        (b"\xf4\x00" + NACK, "label"),
        (b"\xf4\x05abc", "label"),
        (b"\xf4\x03abc" + NACK, "label"),  # labelled packet, we have none
    ],
)
def test_packet_reasons(data: bytes, expected: str) -> None:
    assert reason(data) == expected


def test_packet_nesting_limit_is_inclusive() -> None:
    assert decode_packet(nested_compound(MAX_NESTING)) == [NackResp(seq_no=1)]


def test_label_and_encryption_reasons() -> None:
    keyring = Keyring([bytes(16)])
    assert reason(NACK, label=b"x") == "label"
    assert reason(NACK, keyring=keyring) == "decrypt"
    assert reason(b"", keyring=keyring) == "decrypt"
    assert reason(b"\x01" + bytes(40), keyring=keyring) == "decrypt"


def test_signed_and_unsigned_integers_are_accepted() -> None:
    # go-msgpack v2 (memberlist >= 0.5.1) writes signed forms; every family must decode.
    for encoded in (b"\x05", b"\xcc\x05", b"\xcd\x00\x05", b"\xd0\x05", b"\xd1\x00\x05"):
        for wide in (b"\xd2\x00\x00\x00\x05", b"\xd3" + (5).to_bytes(8, "big"), encoded):
            data = b"\x00\x82\xa5SeqNo" + wide + b"\xaaSourcePort" + encoded
            assert decode_packet(data) == [Ping(seq_no=5, source_port=5)]


def test_nil_is_accepted_for_every_field() -> None:
    keys = ["Addr", "Incarnation", "Meta", "Node", "Port", "Vsn"]
    (msg,) = decode_packet(body(dict.fromkeys(keys), 4))
    assert msg == Alive(incarnation=0, node="", addr=b"", port=0, meta=None, vsn=b"")
    (ack,) = decode_packet(body({"SeqNo": None, "Payload": None}, 2))
    assert ack == AckResp(seq_no=0, payload=None)


def test_unknown_and_missing_keys() -> None:
    data = body({"SeqNo": 3, "Future": [1, {"x": 2}], "seqno": 9}, 11)
    assert decode_packet(data) == [NackResp(seq_no=3)]
    assert decode_packet(body({}, 11)) == [NackResp(seq_no=0)]


def test_non_utf8_names_survive_a_round_trip() -> None:
    data = b"\x05\x83\xa4From\xa1\xff\xabIncarnation\x01\xa4Node\xa2\xc3\x28"
    (msg,) = decode_packet(data)
    assert encode_message(msg) == data


def stream_reason(data: bytes, **options: object) -> str:
    decoder = StreamDecoder(**options)  # type: ignore[arg-type]

    def feed_then_close() -> None:
        decoder.feed(data)
        decoder.eof()

    with pytest.raises(DecodeError) as info:
        feed_then_close()
    assert decoder.done
    return info.value.reason


PP_HEADER = encode_body(PushPullHeader(nodes=1, user_state_len=0))


@pytest.mark.parametrize(
    ("data", "expected", "options"),
    [
        (b"", "truncated", {}),
        (b"\x06" + PP_HEADER, "truncated", {}),
        (encode_stream_message(UserStream(b"abc"))[:-1], "truncated", {}),
        (b"\x07\x00", "unknown_type", {}),
        (b"\x0b\x80", "unknown_type", {}),
        (b"\x09" + encode_body(Compress(buf=b"")), "compress", {}),
        (
            frame_stream(
                frame_stream(b"\x02\x80", compress=True, keyring=None), compress=True, keyring=None
            ),
            "unknown_type",  # compress inside compress: memberlist does not unwrap twice
            {},
        ),
        (b"\x06\xc1", "body", {}),
        (b"\x06" + encode_body(PushPullHeader(nodes=-1, user_state_len=0)), "body", {}),
        (b"\x06" + encode_body(PushPullHeader(nodes=0, user_state_len=-5)), "body", {}),
        (b"\x06" + encode_body(PushPullHeader(nodes=0, user_state_len=10**9)), "too_large", {}),
        (b"\x06" + encode_body(PushPullHeader(nodes=10**9, user_state_len=0)), "too_large", {}),
        (b"\x08" + msgpack.packb({"UserMsgLen": 2**40}), "too_large", {}),
        (b"\x08" + msgpack.packb({"UserMsgLen": 10}) + bytes(10), "too_large", {"max_bytes": 5}),
        (b"\x00" + msgpack.packb({"Node": "x" * 100}), "too_large", {"max_bytes": 50}),
        (b"\x0a\xff\xff\xff\xff", "too_large", {"keyring": Keyring([bytes(16)])}),
        (b"\x0a\x00\x00\x00\x03abc", "decrypt", {"keyring": Keyring([bytes(16)])}),
        (b"\x0a\x00\x00\x00\x03abc", "decrypt", {}),
        (b"\x00\x80", "decrypt", {"keyring": Keyring([bytes(16)])}),
        (b"\xf4\x01x\x00\x80", "label", {}),
        (b"\x00\x80", "label", {"label": b"x"}),
        (b"\xf4\x00", "label", {}),
        (b"\xf4\x05ab", "truncated", {}),
    ],
)
def test_stream_reasons(data: bytes, expected: str, options: dict[str, object]) -> None:
    assert stream_reason(data, **options) == expected


def test_stream_decrypted_content_errors() -> None:
    keyring = Keyring([bytes(16)])
    for plaintext, expected in [
        (b"\x06" + PP_HEADER, "truncated"),
        (b"\x09\x80", "compress"),
        (b"\x09", "truncated"),
        (b"\x0a\x00", "unknown_type"),
    ]:
        framed = frame_stream(plaintext, compress=False, keyring=keyring)
        assert stream_reason(framed, keyring=keyring) == expected


def test_stream_eof_and_errors_are_final() -> None:
    decoder = StreamDecoder()
    assert decoder.feed(b"\x06") is None
    with pytest.raises(TruncatedError):
        decoder.eof()
    assert decoder.feed(b"anything") is None
    bad = StreamDecoder()
    with pytest.raises(BodyError):
        bad.feed(b"\x02\xc1")
    assert bad.feed(b"\x02\x80") is None
    ok = StreamDecoder()
    msg = PushPull(PushPullHeader(nodes=0, user_state_len=0), (), b"")
    assert ok.feed(encode_stream_message(msg)) == msg
    assert ok.message == msg
