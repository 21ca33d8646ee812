"""LZW (Go compress/lzw, LSB, literal width 8): structure, round trips, bounds, bombs."""

from __future__ import annotations

import gc
import random

import pytest
from wire_helpers import pack_codes

from swimguard.wire import (
    AckResp,
    CompressionError,
    StreamDecoder,
    TooLargeError,
    UserStream,
    decode_packet,
    encode_stream_message,
    frame_stream,
    make_compound,
)
from swimguard.wire.compression import (
    DecompressionBudget,
    _compress_message_size,
    compress_message,
    compress_message_if_shorter,
    decompress_message,
    lzw_compress,
    lzw_decompress,
)
from swimguard.wire.errors import DecodeError
from swimguard.wire.messages import Compress, MessageType, Ping, encode_body
from swimguard.wire.packet import DEFAULT_MAX_DECOMPRESSED, encode_message


def read_codes(data: bytes) -> list[int]:
    """Unpack the code sequence of a stream produced by `lzw_compress`."""
    codes = []
    acc = nbits = pos = 0
    width, hi, overflow = 9, 257, 512
    while True:
        while nbits < width:
            acc |= data[pos] << nbits
            pos += 1
            nbits += 8
        code = acc & ((1 << width) - 1)
        acc >>= width
        nbits -= width
        codes.append(code)
        if code == 257:
            assert pos == len(data), "no bytes after the end code"
            return codes
        if code == 256:
            width, hi, overflow = 9, 257, 512
        else:
            hi += 1
            if hi == overflow:
                width += 1
                overflow <<= 1


def zero_bomb(epochs: int) -> bytes:
    """A valid stream of runs of zeros: each code one byte longer than the last."""
    codes = [256]
    for _ in range(epochs):
        codes += [0, *range(258, 4095), 256]
    return pack_codes([*codes, 0, 257])


def test_empty_input_is_clear_then_end() -> None:
    assert lzw_compress(b"") == bytes.fromhex("000302")
    assert read_codes(lzw_compress(b"")) == [256, 257]
    assert lzw_decompress(lzw_compress(b""), 0) == b""


def expand(codes: list[int]) -> bytes:
    """Textbook LZW expansion of a code list (independent of the module under test)."""
    out = bytearray()
    table: dict[int, bytes] = {}
    previous = b""
    for code in codes:
        if code == 256:
            table, previous = {}, b""
            continue
        if code == 257:
            break
        entry = bytes((code,)) if code < 256 else table.get(code, previous + previous[:1])
        if previous:
            table[258 + len(table)] = previous + entry[:1]
        out += entry
        previous = entry
    return bytes(out)


def test_writer_starts_with_clear_and_grows_width_without_early_change() -> None:
    rng = random.Random(1)
    data = bytes(rng.randrange(4) for _ in range(5000))
    codes = read_codes(lzw_compress(data))
    assert codes[0] == 256
    assert codes[-1] == 257
    assert max(codes) > 1023  # 9, 10 and 11-bit codes were all used
    assert expand(codes) == data


def test_writer_clears_when_the_table_fills() -> None:
    data = random.Random(2).randbytes(20_000)  # incompressible: one new entry per byte
    codes = read_codes(lzw_compress(data))
    clears = [i for i, c in enumerate(codes) if c == 256]
    assert clears[0] == 0
    assert len(clears) >= 4
    # Between clears exactly 4095 - 258 codes get table entries assigned.
    assert clears[1] - clears[0] - 1 == 4095 - 257
    assert max(codes) <= 4094
    assert expand(codes) == data
    assert lzw_decompress(lzw_compress(data), len(data)) == data


@pytest.mark.parametrize("seed", range(6))
def test_round_trip(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.choice([1, 2, 3, 255, 256, 511, 512, 4096, 30_000])
    alphabet = rng.choice([b"a", b"ab", bytes(range(16)), bytes(range(256))])
    data = bytes(rng.choice(alphabet) for _ in range(size))
    assert lzw_decompress(lzw_compress(data), size) == data


def test_bomb_is_cut_at_the_bound() -> None:
    bomb = zero_bomb(10)  # about 55 KB expanding to about 74 MB
    assert len(bomb) < 60_000
    # 0, then codes 258..4094 expanding to 2..3838 zeros, then a final 0.
    assert lzw_decompress(zero_bomb(1), 10**8) == bytes(1 + sum(range(2, 3839)) + 1)
    with pytest.raises(TooLargeError):
        lzw_decompress(bomb, 1 << 20)


def test_packet_bomb_is_too_large() -> None:
    packet = b"\x09" + encode_body(Compress(buf=zero_bomb(10)))
    assert len(packet) < 65_536
    with pytest.raises(TooLargeError) as info:
        decode_packet(packet)
    assert info.value.reason == "too_large"


def test_packet_budget_is_shared_by_every_compress_layer() -> None:
    part = compress_message(b"\x08" + bytes(600_000))
    assert decode_packet(part)[0].data == bytes(600_000)  # type: ignore[union-attr]
    with pytest.raises(TooLargeError):
        decode_packet(make_compound([part, part]))  # 1.2 MB in total > 1 MiB
    nested = compress_message(compress_message(b"\x08" + bytes(600_000)))
    assert len(decode_packet(nested)) == 1
    assert decode_packet(make_compound([part, part]), max_decompressed=2 << 20)


def test_stream_bomb_is_too_large() -> None:
    framed = b"\x09" + encode_body(Compress(buf=zero_bomb(10)))
    with pytest.raises(TooLargeError):
        StreamDecoder(max_bytes=1 << 20).feed(framed)
    honest = frame_stream(
        encode_stream_message(UserStream(bytes(100_000))), compress=True, keyring=None
    )
    assert StreamDecoder(max_bytes=1 << 20).feed(honest) == UserStream(bytes(100_000))


@pytest.mark.parametrize(
    "codes",
    [
        [256, 65],  # no end code
        [256, 300, 257],  # code beyond the table
        [256, 65, 300, 257],
        [],
    ],
)
def test_invalid_streams(codes: list[int]) -> None:
    with pytest.raises(CompressionError):
        lzw_decompress(pack_codes(codes), 1000)


def test_stream_without_leading_clear_and_trailing_garbage() -> None:
    # Go's reader needs no leading clear and ignores bytes after the end code.
    assert lzw_decompress(pack_codes([65, 66, 258, 257]) + b"junk", 100) == b"ABAB"


def test_table_full_without_clear_keeps_decoding() -> None:
    # A foreign writer may fill the table and go on without a clear: Go then
    # stops adding entries; the output stays correct for literals and old codes.
    codes = [256, *([65] * 3838), 65, 66, 258, 257]
    out = lzw_decompress(pack_codes(codes), 10_000)
    assert out.endswith(b"AB" + b"AA")


def small_bomb(output: int) -> bytes:
    """A compress message of about 2 KB whose stream expands to at least `output` zeros."""
    codes, total, code = [256, 0], 1, 258
    while total < output:
        total += code - 256  # code 258 + k expands to k + 2 zeros
        codes.append(code)
        code += 1
    return bytes((MessageType.COMPRESS,)) + encode_body(Compress(buf=pack_codes([*codes, 257])))


def test_a_packet_of_many_bombs_costs_at_most_one_budget() -> None:
    # Issue 10: a failing part used to leave the budget untouched, so each of the
    # 31 bombs of one datagram decompressed its own full MiB.
    bomb = small_bomb(DEFAULT_MAX_DECOMPRESSED + 1)
    assert len(bomb) < 2100
    ping = encode_message(AckResp(seq_no=7))
    packet = make_compound([bomb] * 15 + [ping] + [bomb] * 15)
    assert len(packet) < 65_507  # one datagram
    budget = DecompressionBudget(DEFAULT_MAX_DECOMPRESSED)
    errors: list[DecodeError] = []
    assert decode_packet(packet, errors=errors, budget=budget) == [AckResp(seq_no=7)]
    assert [e.reason for e in errors] == ["too_large"] * 30
    assert budget.produced <= DEFAULT_MAX_DECOMPRESSED
    assert budget.remaining == 0


def test_a_failing_stream_is_charged_with_what_it_produced() -> None:
    # 600,000 zeros and then no end code: invalid, but the work was done.
    unterminated = b"\x09" + encode_body(Compress(buf=lzw_compress(bytes(600_000))[:-2]))
    budget = DecompressionBudget(1 << 20)
    with pytest.raises(CompressionError):
        decompress_message(unterminated[1:], budget)
    spent = budget.produced
    assert 500_000 < spent <= 600_000
    assert budget.remaining == (1 << 20) - spent
    # The next layer of the same packet gets only what is left.
    errors: list[DecodeError] = []
    budget = DecompressionBudget(1 << 20)
    decode_packet(make_compound([unterminated, unterminated]), errors=errors, budget=budget)
    assert [e.reason for e in errors] == ["compress", "too_large"]
    assert budget.produced <= 1 << 20


def test_a_bomb_stops_before_the_bytes_that_do_not_fit() -> None:
    budget = DecompressionBudget(1000)
    with pytest.raises(TooLargeError):
        lzw_decompress(zero_bomb(10), budget)
    assert budget.produced <= 1000
    assert budget.remaining == 0
    with pytest.raises(TooLargeError):  # an exhausted budget admits no further output
        lzw_decompress(lzw_compress(b"x"), budget)
    assert budget.produced <= 1000
    assert lzw_decompress(lzw_compress(b""), budget) == b""  # producing nothing is fine
    exact = DecompressionBudget(4)
    assert lzw_decompress(lzw_compress(b"abcd"), exact) == b"abcd"
    assert exact.remaining == 0


def test_decode_packet_charges_its_default_budget_for_failed_parts() -> None:
    # Without a budget of the caller's, the default one (1 MiB) is shared just the same:
    # after one bomb, even a tiny honest compressed part no longer fits.
    honest = compress_message(encode_message(AckResp(seq_no=1)))
    errors: list[DecodeError] = []
    packet = make_compound([small_bomb(DEFAULT_MAX_DECOMPRESSED + 1), honest])
    assert decode_packet(packet, errors=errors) == []
    assert [e.reason for e in errors] == ["too_large", "too_large"]
    assert decode_packet(make_compound([honest, honest]), errors=[]) == [AckResp(seq_no=1)] * 2


def test_failed_parts_are_freed_at_once_without_the_cycle_collector() -> None:
    # Issue 10: each error kept in `errors` held its traceback, whose frames held the
    # `errors` list: a cycle keeping a failed bomb's MiB alive until a gen-2 collection.
    # A flood of such packets left the agent at hundreds of MiB.
    packet = make_compound([
        b"\x09" + encode_body(Compress(buf=lzw_compress(bytes(5000))[:-2])),  # no end code
        b"\x02\xc1",  # a body msgpack refuses
        b"\x63",  # unknown type
        compress_message(b"\x07\x05"),  # a truncated compound inside a compress layer
        small_bomb(DEFAULT_MAX_DECOMPRESSED + 1),
    ])
    gc.collect()
    gc.disable()
    try:
        errors: list[DecodeError] = []
        assert decode_packet(packet, errors=errors) == []
        assert len(errors) == 5
        assert all(e.__traceback__ is None and e.__context__ is None for e in errors)
        reasons = [e.reason for e in errors]
        del errors
        assert gc.collect() == 0  # nothing was left for the cycle collector
    finally:
        gc.enable()
    assert reasons == ["compress", "body", "unknown_type", "compound", "too_large"]


def _kept(message: bytes) -> bytes | None:
    compressed = compress_message(message)
    return compressed if len(compressed) < len(message) else None


@pytest.mark.parametrize("seed", range(4))
def test_compress_if_shorter_decides_exactly_as_compressing_and_comparing(seed: int) -> None:
    # Short inputs take the phrase-count shortcut; the boundary (200 bytes), inputs either
    # side of where LZW starts to pay, and long inputs compare with the real thing.
    rng = random.Random(seed)
    kept = dropped = 0
    for _ in range(1500):
        size = rng.choice([rng.randint(1, 40), rng.randint(1, 260), 199, 200, 201])
        alphabet = rng.choice([1, 2, 3, 5, 8, 16, 64, 256])
        message = bytes(rng.randrange(alphabet) for _ in range(size))
        expected = _kept(message)
        assert compress_message_if_shorter(message) == expected
        kept += expected is not None
        dropped += expected is None
    assert kept > 100  # both answers were exercised
    assert dropped > 100


def test_compress_if_shorter_on_pings_and_acks() -> None:
    ping = encode_message(Ping(seq_no=321, node="n4", source_addr=b"\x7f\x00\x00\x01",
                               source_port=31000, source_node="n1"))
    ack = encode_message(AckResp(seq_no=321, payload=b"\x01" + bytes(range(129))))
    for message in (ping, ack, ping * 3):
        assert compress_message_if_shorter(message) == _kept(message)
    assert compress_message_if_shorter(ping) is None  # too short to gain, like most UDP


def test_compress_message_size_formula() -> None:
    for size in (0, 1, 31, 32, 33, 200, 255, 256, 300):
        assert _compress_message_size(size) == 1 + len(encode_body(Compress(buf=bytes(size))))
