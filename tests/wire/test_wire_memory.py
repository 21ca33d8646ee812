"""Hostile inputs cannot make the decoders allocate much more than they were given."""

from __future__ import annotations

import contextlib
import tracemalloc
from collections.abc import Callable

import msgpack
import pytest
from wire_helpers import pack_codes

from swimguard.wire import DecodeError, PushPullHeader, StreamDecoder, decode_packet
from swimguard.wire.messages import Compress, UserMsgHeader, encode_body

# Fixed allowances on top of 64 bytes per input byte: msgpack nesting (1024
# levels of the largest containers msgpack_body allows, ~4 MB transient); an
# LZW bomb (twice the 1 MiB decompression bound: output plus table); else small.
NESTING = 8 << 20
LZW = 2 << 20
SMALL = 256 << 10


def zero_bomb_lzw(epochs: int) -> bytes:
    """LZW codes for long runs of zeros (see test_wire_lzw), packed LSB-first."""
    codes = [256]
    for _ in range(epochs):
        codes += [0, *range(258, 4095), 256]
    return pack_codes([*codes, 0, 257])


def feed_stream(data: bytes) -> None:
    decoder = StreamDecoder()
    decoder.feed(data)
    decoder.eof()


CASES: list[tuple[str, bytes, Callable[[bytes], object], int]] = [
    ("nested arrays", b"\x00" + b"\xdc\x02\x00" * 1100, decode_packet, NESTING),
    ("nested maps", b"\x00" + b"\xde\x00\x40\xa1k" * 1100, decode_packet, NESTING),
    ("huge declared string", b"\x00\x81\xa1k\xdb\x7f\xff\xff\xff", decode_packet, SMALL),
    ("compound of huge parts", b"\x07\xff" + b"\xff\xff" * 255, decode_packet, SMALL),
    (
        "packet lzw bomb",
        b"\x09" + encode_body(Compress(buf=zero_bomb_lzw(10))),
        decode_packet,
        SMALL + LZW,
    ),
    ("declared user state", b"\x06" + encode_body(PushPullHeader(0, 20 << 20)), feed_stream, SMALL),
    ("declared user message", b"\x08" + encode_body(UserMsgHeader(20 << 20)), feed_stream, SMALL),
    ("declared nodes", b"\x06" + encode_body(PushPullHeader(1 << 20, 0)), feed_stream, SMALL),
    ("declared frame", b"\x0a\x01\x3f\xff\xff", feed_stream, SMALL),
    (
        "stream msgpack nesting",
        b"\x06" + msgpack.packb({"Nodes": 1}) + b"\xdc\x02\x00" * 1100,
        feed_stream,
        NESTING,
    ),
]


def test_a_stream_decoder_starts_small() -> None:
    # 128 concurrent push/pulls must not pin 128 x 1 MiB of msgpack buffers.
    tracemalloc.start()
    try:
        decoders = [StreamDecoder() for _ in range(32)]
        for decoder in decoders:
            decoder.feed(b"\x06\x80")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * 64 * 1024


@pytest.mark.parametrize(("name", "data", "decode", "allowance"), CASES, ids=[c[0] for c in CASES])
def test_peak_allocation_is_bounded(
    name: str, data: bytes, decode: Callable[[bytes], object], allowance: int
) -> None:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with contextlib.suppress(DecodeError):
            decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < allowance + 64 * len(data), f"{name}: peak {peak:,} bytes"
