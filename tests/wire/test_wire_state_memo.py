"""The push/pull state memo changes nothing but speed.

A reference codec here is the push/pull path as it was before the memo (one
`encode_body` per state; one `unpack` per state, checked, then `body_from_map`).
Random and hostile push/pulls must encode to the same bytes and decode to the
same message, or fail with the same reason, with no memo, a fresh one, a warm
one and a tiny one, whole or fed in pieces.
"""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swimguard.wire import stream as stream_module
from swimguard.wire.errors import BodyError, DecodeError, TooLargeError
from swimguard.wire.messages import (
    MessageType,
    PushNodeState,
    PushPullHeader,
    body_from_map,
    encode_body,
)
from swimguard.wire.state_memo import (
    STATE_KEYS,
    StateMemo,
    decode_state,
    encode_state,
)
from swimguard.wire.stream import (
    MIN_STATE_LEN,
    PushPull,
    StreamDecoder,
    _unpacker,
    encode_stream_message,
)

VSN = bytes((1, 5, 2, 2, 5, 5))
MAX_BYTES = 1 << 16
Outcome = PushPull | str | None  # the message, a DecodeError reason, or "incomplete"


def reference_encode(msg: PushPull) -> bytes:
    states = b"".join(encode_body(state) for state in msg.states)
    return bytes((MessageType.PUSH_PULL,)) + encode_body(msg.header) + states + msg.user_state


def reference_decode(data: bytes, max_bytes: int = MAX_BYTES) -> Outcome:
    """Push/pull decoding before the memo, for a whole plain message."""
    assert data[0] == MessageType.PUSH_PULL
    unpacker = _unpacker(max_bytes)
    try:
        unpacker.feed(data[1:])
    except msgpack.BufferFull:
        return TooLargeError.reason
    try:
        header = body_from_map(PushPullHeader, unpacker.unpack())
        for value in (header.nodes, header.user_state_len):
            if value < 0:
                return BodyError.reason
            if value > max_bytes:
                return TooLargeError.reason
        if header.nodes * MIN_STATE_LEN > max_bytes:
            return TooLargeError.reason
        states = []
        for _ in range(header.nodes):
            raw = unpacker.unpack()
            if type(raw) is not dict or not raw.keys() >= STATE_KEYS:
                return BodyError.reason
            states.append(body_from_map(PushNodeState, raw))
        user = unpacker.read_bytes(header.user_state_len)
    except msgpack.OutOfData:
        return None
    except DecodeError as exc:
        return exc.reason
    except (msgpack.UnpackException, ValueError, TypeError):
        return BodyError.reason
    if len(user) < header.user_state_len:
        return None
    return PushPull(header, tuple(states), user)


def decode_with(data: bytes, memo: StateMemo | None, chunk: int | None = None) -> Outcome:
    decoder = StreamDecoder(max_bytes=MAX_BYTES, memo=memo)
    pieces = [data] if chunk is None else [data[i : i + chunk] for i in range(0, len(data), chunk)]
    try:
        for piece in pieces:
            message = decoder.feed(piece)
            if message is not None:
                assert isinstance(message, PushPull)
                return message
    except DecodeError as exc:
        return exc.reason
    return None


# Names: ASCII, other UTF-8, and Go strings that are not UTF-8 (kept with surrogates).
names = st.text(max_size=40) | st.binary(max_size=40).map(
    lambda b: b.decode("utf-8", "surrogateescape")
)
blobs = st.binary(max_size=40) | st.sampled_from([bytes(4), bytes(16), bytes(300), b""])
states_st = st.builds(
    PushNodeState,
    names,
    blobs,
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF_FFFF),
    st.integers(-(1 << 63), (1 << 63) - 1) | st.integers(0, 3),
    st.none() | blobs,
    st.sampled_from([VSN, b"", bytes(6)]),
)
push_pulls = st.builds(
    lambda states, user, join: PushPull(
        PushPullHeader(len(states), len(user), join), tuple(states), user
    ),
    st.lists(states_st, max_size=8),
    st.binary(max_size=30),
    st.booleans(),
)
SETTINGS = settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(push_pulls, st.integers(1, 64))
def test_random_push_pulls_encode_and_decode_as_before(msg: PushPull, chunk: int) -> None:
    expected = reference_encode(msg)
    warm = StateMemo()
    tiny = StateMemo(capacity=2, max_entry_bytes=40)
    small = StateMemo(max_bytes=100)
    for memo in (None, StateMemo(), warm, warm, tiny, tiny, small, small):
        assert encode_stream_message(msg, memo=memo) == expected
    assert reference_decode(expected) == msg
    for memo in (None, StateMemo(), warm, warm, tiny, tiny, small, small):
        assert decode_with(expected, memo) == msg
        assert decode_with(expected, memo, chunk) == msg


HOSTILE = [
    b"\xc1",  # never used
    b"\x80",  # an empty map
    b"\xdd\xff\xff\xff\xff",  # a 4G array header
    b"\xdf\x00\x01\x00\x00",  # a 65,536-entry map header
    b"\xdc\x02\x01",  # an array one over the limit
    b"\x91" * 40,  # nested arrays
    b"\xdb\x00\x01\x00\x00",  # a 64 KiB raw header
    b"\xa4Name\xc3",
    b"\xa5State\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00",
    b"\xa4Port\xce\x00\x01\x00\x00",
    b"\xa4Addr\x93\x01\x02\x03",  # bytes as an array of ints (Go accepts it)
    b"\xa4Addr\x92\x01\x01\x00",  # ... not of bytes
    b"\x87",
    b"\xc7\x01\x05x",  # an ext
]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A valid push/pull and a copy with random cuts, flips and hostile splices."""
    msg = draw(push_pulls.filter(lambda m: bool(m.states)))
    data = bytearray(reference_encode(msg))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 3))
        at = draw(st.integers(1, len(data)))
        if kind == 0:
            data[at - 1] = draw(st.integers(0, 255))
        elif kind == 1:
            data[at:] = data[at + draw(st.integers(1, 20)) :]
        elif kind == 2:
            data[at:at] = draw(st.sampled_from(HOSTILE))
        else:
            del data[at:]
    if len(data) < 2:
        data = bytearray(b"\x06\x80")
    data[0] = MessageType.PUSH_PULL  # the type byte is the stream decoder's, not ours
    return reference_encode(msg), bytes(data)


@SETTINGS
@given(mutated(), st.integers(1, 64))
def test_hostile_push_pulls_fail_or_decode_as_before(pair: tuple[bytes, bytes], chunk: int) -> None:
    original, data = pair
    expected = reference_decode(data)
    warm = StateMemo()
    assert decode_with(original, warm) is not None  # its states are hits now
    tiny = StateMemo(capacity=2, max_entry_bytes=60)
    for memo in (None, StateMemo(), warm, tiny):
        assert decode_with(data, memo) == expected
        assert decode_with(data, memo, chunk) == expected


def state(i: int) -> PushNodeState:
    return PushNodeState(f"node-{i}", bytes((10, 0, 0, i & 255)), 7946, i, i % 4, None, VSN)


def message(states: list[PushNodeState], entry: bytes = b"") -> bytes:
    header = encode_body(PushPullHeader(len(states) + (1 if entry else 0), 0))
    body = b"".join(encode_state(s) for s in states)
    return bytes((MessageType.PUSH_PULL,)) + header + body + entry


def test_a_hostile_container_in_a_skipped_entry_fails_when_its_header_arrives() -> None:
    # After a hit the next entry is only skipped, which checks no limits: the
    # declared 4G array must still fail at once, not wait for 4G elements.
    memo = StateMemo()
    known = [state(i) for i in range(3)]
    assert decode_with(message(known), memo) is not None
    data = message(known, b"\x81\xa4Meta\xdd\xff\xff\xff\xff\x00\x00")
    decoder = StreamDecoder(memo=memo)
    with pytest.raises(BodyError, match="max_array_len"):
        decoder.feed(data)
    # Fed a byte at a time: the error comes with the header's last byte.
    decoder = StreamDecoder(memo=memo)
    fail_at = len(data) - 2
    for i in range(fail_at - 1):
        assert decoder.feed(data[i : i + 1]) is None
    with pytest.raises(BodyError):
        decoder.feed(data[fail_at - 1 : fail_at])


def test_a_warm_memo_hands_out_the_states_it_decoded() -> None:
    memo = StateMemo()
    data = message([state(i) for i in range(50)])
    first = decode_with(data, memo)
    second = decode_with(data, memo)
    assert isinstance(first, PushPull)
    assert isinstance(second, PushPull)
    assert first == second
    assert all(a is b for a, b in zip(first.states, second.states, strict=True))
    assert len(memo) == 50


@pytest.mark.parametrize(("capacity", "max_bytes"), [(100, 1 << 20), (10_000, 3000)])
def test_the_memo_is_bounded_per_direction(capacity: int, max_bytes: int) -> None:
    memo = StateMemo(capacity=capacity, max_bytes=max_bytes, max_entry_bytes=200)
    for start in range(0, 1000, 50):
        states = [state(i) for i in range(start, start + 50)]
        encode_stream_message(PushPull(PushPullHeader(50, 0), tuple(states), b""), memo=memo)
        decode_with(message(states), memo)
        assert len(memo) <= 2 * capacity
        assert memo.size <= 2 * max_bytes
        assert len(memo) > 0
    # A member whose state changes replaces its own encoding entry.
    memo.clear()
    memo.encode([state(1)])
    changed = PushNodeState("node-1", bytes(4), 1, 99, 0, None, VSN)
    assert memo.encode([changed]) == encode_body(changed)
    assert len(memo) == 1
    assert memo.size == len(encode_body(changed))
    big = PushNodeState("big", bytes(4), 1, 1, 0, bytes(300), VSN)
    memo.clear()
    assert memo.encode([big]) == encode_body(big)
    assert memo.decode(encode_body(big)) == big
    assert len(memo) == 0  # larger than max_entry_bytes: not kept
    with pytest.raises(ValueError):
        StateMemo(capacity=0)


def test_odd_field_types_are_still_encoded_like_encode_body() -> None:
    odd = PushNodeState("n", bytearray(b"\x01\x02\x03\x04"), 1, 1, 0, None, VSN)  # type: ignore[arg-type]
    # A name that cannot key the table (tests craft such values): no memo, same bytes.
    unhashable = PushNodeState(["x"], bytes(4), 1, 1, 0, None, VSN)  # type: ignore[arg-type]
    memo = StateMemo()
    assert memo.encode([state(1), odd]) == encode_body(state(1)) + encode_body(odd)
    assert memo.encode([unhashable]) == encode_body(unhashable)


@pytest.mark.parametrize(
    "data",
    [b"\x80", b"\x90", b"\xc1", msgpack.packb({b"Name": b"x"}), encode_body(state(1)) + b"\x00"],
)
def test_decode_state_refuses_what_is_not_exactly_one_state(data: bytes) -> None:
    with pytest.raises(BodyError):
        decode_state(data)
    assert decode_state(encode_body(state(1))) == state(1)


def test_a_large_entry_arriving_in_many_reads_decodes_once_complete() -> None:
    # The entry after a hit is skipped: its reads are kept as they come (and fed to
    # the limit checker once each) until it completes, then decoded.
    memo = StateMemo()
    known = [state(i) for i in range(3)]
    big = PushNodeState("big", bytes(4), 1, 1, 0, bytes(50_000), VSN)
    data = message([*known, big])
    expected = decode_with(data, None)
    assert isinstance(expected, PushPull)
    assert expected.states[-1] == big
    assert decode_with(message(known), memo) is not None
    decoder = StreamDecoder(max_bytes=MAX_BYTES, memo=memo)
    got = None
    for i in range(0, len(data), 1024):
        got = decoder.feed(data[i : i + 1024])
        if got is None:
            # What it holds: the input so far and a copy or two of the open entry.
            assert decoder.footprint <= 4 * (i + 1024) + 2048
    assert got == expected


def test_an_open_entry_trickling_in_is_checked_once_per_byte(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A peer may send one large state a few bytes per read: the limit checker must
    # see each byte once (not the whole open entry again per read).
    handed: list[int] = []
    real = stream_module._MessageReader._kept_from

    def counting(self: stream_module._MessageReader, offset: int) -> bytes:
        out = real(self, offset)
        handed.append(len(out))
        return out

    monkeypatch.setattr(stream_module._MessageReader, "_kept_from", counting)
    memo = StateMemo()
    known = [state(i) for i in range(3)]
    assert decode_with(message(known), memo) is not None
    big = PushNodeState("big", bytes(4), 1, 1, 0, bytes(20_000), VSN)
    data = message([*known, big])
    got = decode_with(data, memo, chunk=7)
    assert isinstance(got, PushPull)
    assert got.states[-1] == big
    assert len(handed) > 2000  # one check per read of the open entry
    assert sum(handed) <= len(data)
