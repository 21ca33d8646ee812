"""StreamDecoder costs: memory follows the bytes sent, bad states fail at once, capped work."""

from __future__ import annotations

import tracemalloc

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swimguard.wire import stream as stream_module
from swimguard.wire.compression import LzwReader, lzw_compress, lzw_decompress
from swimguard.wire.encryption import Keyring
from swimguard.wire.errors import (
    BodyError,
    CompressionError,
    DecodeError,
    TooLargeError,
    UnknownTypeError,
)
from swimguard.wire.messages import (
    Compress,
    MessageType,
    PushNodeState,
    PushPullHeader,
    UserMsgHeader,
    encode_body,
)
from swimguard.wire.stream import (
    MIN_STATE_LEN,
    STATE_OVERHEAD,
    PushPull,
    StreamDecoder,
    encode_stream_message,
    frame_stream,
)

VSN = b"\x01\x05\x02\x02\x05\x05"


def member(i: int) -> PushNodeState:
    return PushNodeState(
        name=f"node-{i:06d}", addr=bytes((10, 0, i >> 8 & 255, i & 255)), port=7946,
        incarnation=i, state=0, meta=b"", vsn=VSN,
    )


def push_pull(n: int, user: bytes = b"") -> PushPull:
    header = PushPullHeader(nodes=n, user_state_len=len(user), join=False)
    return PushPull(header, tuple(member(i) for i in range(n)), user)


def header_bytes(nodes: int) -> bytes:
    return bytes((MessageType.PUSH_PULL,)) + encode_body(
        PushPullHeader(nodes=nodes, user_state_len=0, join=False)
    )


def test_a_header_announcing_more_states_than_fit_is_refused_at_the_header() -> None:
    # issue 10: Nodes = 20,971,520 (under the old cap) then 1-byte states cost 1.4 GB.
    decoder = StreamDecoder()
    with pytest.raises(TooLargeError):
        decoder.feed(header_bytes(20_971_520))
    assert decoder.done
    # The largest count that could fit is accepted and costs nothing up front.
    ok = StreamDecoder()
    assert ok.feed(header_bytes(ok_count := (20 * 1024 * 1024) // MIN_STATE_LEN)) is None
    assert ok_count > 0
    assert ok.footprint < 1024


@pytest.mark.parametrize("bad", [b"\x80", b"\x01", b"\xc0", msgpack.packb({b"Name": b"x"})])
def test_an_entry_that_is_not_a_member_state_fails_on_the_first_one(bad: bytes) -> None:
    decoder = StreamDecoder()
    with pytest.raises(BodyError):
        decoder.feed(header_bytes(100_000) + bad * 1000)
    assert decoder.done
    assert decoder.footprint == 0


def test_memory_grows_with_the_states_sent_not_with_the_header() -> None:
    wire = encode_stream_message(push_pull(4000))
    # The header says 600,000 states; only 4,000 arrive.
    lie = header_bytes(600_000) + wire[len(header_bytes(4000)) :]
    sent_small = lie[: len(lie) // 8]
    tracemalloc.start()
    try:
        # Without the state memo: this measures what one stream holds (the memo's
        # own bound is tested in test_wire_state_memo.py).
        small = StreamDecoder(memo=None)
        base = tracemalloc.get_traced_memory()[0]
        small.feed(sent_small)
        held_small = tracemalloc.get_traced_memory()[0] - base
        large = StreamDecoder(memo=None)
        base = tracemalloc.get_traced_memory()[0]
        large.feed(lie)
        held_large = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert not small.done
    assert not large.done
    # Eight times the bytes, about eight times the memory (not 600,000 states' worth).
    assert 4 * held_small < held_large < 16 * held_small
    per_byte = held_large / len(lie)
    assert per_byte < 8  # ~75-byte states at ~300 bytes of objects each
    # footprint (what the core budgets) tracks the real memory within a factor of two.
    assert held_large / 2 < large.footprint < held_large * 2


def test_work_per_call_is_capped_and_resumes_to_the_same_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded: list[int] = []
    real = stream_module.decode_state

    def counting(entry: bytes) -> PushNodeState:
        decoded.append(1)
        return real(entry)

    monkeypatch.setattr(stream_module, "decode_state", counting)
    msg = push_pull(2000, user=b"u" * 5000)
    wire = encode_stream_message(msg)
    decoder = StreamDecoder(memo=None)  # every state decoded, none remembered
    work = 4096
    per_call: list[int] = []
    result = decoder.feed(wire, max_work=work)
    per_call.append(len(decoded))
    while result is None:
        assert decoder.pending
        before = len(decoded)
        result = decoder.feed(b"", max_work=work)
        per_call.append(len(decoded) - before)
    assert result == msg
    assert not decoder.pending
    assert len(per_call) >= len(wire) // work
    assert max(per_call) <= work // MIN_STATE_LEN + 1


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("encrypt", [False, True])
def test_decrypted_and_decompressed_messages_are_parsed_in_slices(
    compress: bool, encrypt: bool
) -> None:
    keyring = Keyring([bytes(range(32))]) if encrypt else None
    msg = push_pull(1500)
    wire = frame_stream(encode_stream_message(msg), compress=compress, keyring=keyring)
    decoder = StreamDecoder(keyring=keyring)
    calls = 0
    result = None
    for start in range(0, len(wire), 65536):  # arrives in socket-sized reads
        result = decoder.feed(wire[start : start + 65536], max_work=2048)
        calls += 1
        while result is None and decoder.pending:
            result = decoder.feed(b"", max_work=2048)
            calls += 1
    assert result == msg
    assert calls >= len(encode_stream_message(msg)) // 2048


def test_bytes_after_the_message_are_ignored_in_slices_too() -> None:
    msg = push_pull(10)
    decoder = StreamDecoder()
    result = decoder.feed(encode_stream_message(msg) + b"\xff" * 10_000, max_work=100)
    while result is None:
        result = decoder.feed(b"", max_work=100)
    assert result == msg
    assert not decoder.pending
    assert decoder.footprint == 0


def test_state_overhead_constant_matches_measured_memory() -> None:
    n = 3000
    wire = encode_stream_message(push_pull(n))
    tracemalloc.start()
    try:
        decoder = StreamDecoder(memo=None)  # decoded states, not shared memo entries
        decoder.feed(wire[: len(wire) - 1])  # everything but the end: states held
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    per_state = held / n - len(wire) / n
    assert STATE_OVERHEAD / 2 < per_state < STATE_OVERHEAD * 2
    assert decoder.footprint >= len(wire) - 1


def test_max_work_zero_only_buffers_and_negative_is_refused() -> None:
    decoder = StreamDecoder()
    assert decoder.feed(b"\x80" * 100, max_work=0) is None  # not parsed: no error yet
    assert decoder.pending
    assert decoder.footprint == 100
    with pytest.raises(ValueError):
        decoder.feed(b"", max_work=-1)
    with pytest.raises(UnknownTypeError):
        decoder.feed(b"", max_work=1)


# -- compressed streams: decompressed a slice at a time ------------------------------------

lzw_inputs = st.binary(max_size=3000) | st.builds(
    lambda unit, n: unit * n, st.binary(min_size=1, max_size=8), st.integers(1, 2000)
)


@settings(max_examples=150, derandomize=True, deadline=None)
@given(lzw_inputs, st.integers(1, 700))
def test_sliced_reader_matches_lzw_decompress(data: bytes, budget: int) -> None:
    packed = lzw_compress(data)
    inflater = LzwReader(packed, 1 << 20)
    out = bytearray()
    while not inflater.exhausted:
        chunk = inflater.take(budget)
        assert len(chunk) <= budget + 4096
        out += chunk
    assert bytes(out) == lzw_decompress(packed, 1 << 20) == data


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.binary(max_size=400), st.integers(1, 64), st.integers(0, 3000))
def test_sliced_reader_fails_like_lzw_decompress(junk: bytes, budget: int, limit: int) -> None:
    expected: object
    try:
        expected = lzw_decompress(junk, limit)
    except DecodeError as exc:
        expected = type(exc)
    inflater = LzwReader(junk, limit)
    got: object
    try:
        out = bytearray()
        while not inflater.exhausted:
            out += inflater.take(budget)
        got = bytes(out)
    except DecodeError as exc:
        got = type(exc)
    assert got == expected


def compress_frame(inner: bytes) -> bytes:
    return bytes((MessageType.COMPRESS,)) + encode_body(Compress(buf=lzw_compress(inner)))


def test_a_compression_bomb_is_inflated_a_slice_per_call_and_refused_at_the_bound() -> None:
    # A valid 400 KiB user message, then zeros up to 4 MiB: parsed, then refused at the
    # decompressed bound while the rest of the LZW stream is drained.
    head = bytes((MessageType.USER,)) + encode_body(UserMsgHeader(user_msg_len=400 * 1024))
    bomb = compress_frame(head + b"\0" * (4 * 1024 * 1024))
    assert len(bomb) < 64 * 1024
    decoder = StreamDecoder(max_bytes=256 * 1024)  # decompressed bound: 512 KiB
    calls = 0
    with pytest.raises(TooLargeError):
        calls = drain(decoder, bomb, 8192)
    assert decoder.done
    assert calls == 0  # not returned normally
    counted: list[int] = []
    decoder = StreamDecoder(max_bytes=256 * 1024)
    with pytest.raises(TooLargeError):
        drain(decoder, bomb, 8192, counted)
    assert len(counted) >= (512 * 1024) // (8192 + 4096)


def drain(decoder: StreamDecoder, data: bytes, work: int, calls: list[int] | None = None) -> int:
    """Feed `data`, then resume while pending; the number of calls."""
    count = 1
    if calls is not None:
        calls.append(1)
    decoder.feed(data, max_work=work)
    while decoder.pending:
        count += 1
        if calls is not None:
            calls.append(1)
        decoder.feed(b"", max_work=work)
    return count


def test_a_compressed_message_without_its_end_code_is_refused_like_go() -> None:
    packed = lzw_compress(encode_stream_message(push_pull(3)))
    cut = bytes((MessageType.COMPRESS,)) + encode_body(Compress(buf=packed[:-2]))
    with pytest.raises(CompressionError):
        StreamDecoder().feed(cut)
    with pytest.raises(CompressionError):
        drain(StreamDecoder(), cut, 64)
