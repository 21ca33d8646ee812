"""TCP stream messages: push/pull, reliable user messages, fallback ping/ack, err.

One logical request per connection. Framing, outermost first::

    [0xF4 len label]  then one of
      plain:      type | body
      compressed: 0x09 | msgpack compress{Algo: 0, Buf: LZW(type | body)}
      encrypted:  0x0A | L:u32be | L bytes of [vsn][nonce][ciphertext||tag]
                  (additional data: the 5 header bytes + label; plaintext is
                  the plain or compressed form)

`StreamDecoder` is incremental (h11-style): feed it bytes as they arrive and it
returns the message once complete. Its cost is bounded by what the peer actually
sent, not by what a header claims: member states are decoded as they arrive (a
state lacking the keys every memberlist peer sends fails at once), and a caller
may cap the work of one `feed` call (`max_work`) and resume later, so a 20 MiB
message never blocks an event loop in one piece.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Final

import msgpack

from swimguard.wire.compression import LZW_ALGO, LzwReader, compress_message
from swimguard.wire.encryption import Keyring, encrypted_length
from swimguard.wire.errors import (
    BodyError,
    CompressionError,
    DecodeError,
    DecryptError,
    LabelError,
    TooLargeError,
    TruncatedError,
    UnknownTypeError,
)
from swimguard.wire.label import LABEL_TYPE, MAX_LABEL_LEN, add_label
from swimguard.wire.messages import (
    MAX_ARRAY_LEN,
    MAX_MAP_LEN,
    AckResp,
    Compress,
    ErrResp,
    MessageType,
    Ping,
    PushNodeState,
    PushPullHeader,
    UserMsgHeader,
    body_from_map,
    encode_body,
)
from swimguard.wire.state_memo import (
    SHARED_MEMO,
    StateMemo,
    decode_state,
    encode_row,
    encode_state,
    state_from_map,
)

__all__ = [
    "DEFAULT_MAX_STREAM_BYTES",
    "MIN_STATE_LEN",
    "PushPull",
    "StreamDecoder",
    "StreamMessage",
    "UserStream",
    "encode_push_pull",
    "encode_stream_message",
    "frame_stream",
]

# memberlist's maxPushStateBytes: bound on an encrypted frame and on remote state.
DEFAULT_MAX_STREAM_BYTES: Final = 20 * 1024 * 1024
_ENCRYPT: Final = int(MessageType.ENCRYPT)
_COMPRESS: Final = int(MessageType.COMPRESS)
_FRAME_HEADER_LEN: Final = 5
_INITIAL_BUFFER: Final = 4096
_UNBOUNDED: Final = -1
_PUSH_PULL_TYPE: Final = bytes((MessageType.PUSH_PULL,))
MIN_STATE_LEN: Final = 32
"""Fewer bytes than any state with those keys can take (the keys alone are 31). A
header announcing more states than `max_bytes` could hold is refused at once."""
# Python memory of one decoded PushNodeState beyond its wire bytes (the object, its
# str/bytes headers), measured with tracemalloc (tests/wire/test_wire_stream_budget.py).
STATE_OVERHEAD: Final = 240


@dataclasses.dataclass(frozen=True, slots=True)
class PushPull:
    """A push/pull exchange: header, every known member, and the delegate's state."""

    header: PushPullHeader
    states: tuple[PushNodeState, ...]
    user_state: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class UserStream:
    """A reliable (TCP) user message: opaque delegate bytes."""

    data: bytes


StreamMessage = PushPull | Ping | AckResp | UserStream | ErrResp


def encode_stream_message(msg: StreamMessage, *, memo: StateMemo | None = SHARED_MEMO) -> bytes:
    """Type byte + body (+ node states + raw user bytes) of a stream message.

    A push/pull's member states are encoded through `memo` (None: each one anew);
    the bytes are the same either way. `ValueError` if a PushPull header's counts
    disagree with its contents.
    """
    if isinstance(msg, PushPull):
        header = msg.header
        if header.nodes != len(msg.states) or header.user_state_len != len(msg.user_state):
            raise ValueError("push/pull header counts do not match its states and user state")
        if memo is None:
            states = b"".join(map(encode_state, msg.states))
        else:
            states = memo.encode(msg.states)
        return b"".join((_PUSH_PULL_TYPE, encode_body(header), states, msg.user_state))
    if isinstance(msg, UserStream):
        head = encode_body(UserMsgHeader(user_msg_len=len(msg.data)))
        return bytes((MessageType.USER,)) + head + msg.data
    if isinstance(msg, Ping):
        return bytes((MessageType.PING,)) + encode_body(msg)
    if isinstance(msg, AckResp):
        return bytes((MessageType.ACK,)) + encode_body(msg)
    if isinstance(msg, ErrResp):
        return bytes((MessageType.ERR,)) + encode_body(msg)
    raise TypeError(f"not a stream message: {type(msg).__name__}")


def encode_push_pull(
    header: PushPullHeader,
    rows: Sequence[tuple[object, ...]],
    user_state: bytes,
    *,
    memo: StateMemo | None = SHARED_MEMO,
) -> bytes:
    """`encode_stream_message` of a push/pull whose member states are given as rows
    (`state_memo.STATE_ROW` order), for a sender that holds the values elsewhere.

    `ValueError` if the header's counts disagree with the rows and user state.
    """
    if header.nodes != len(rows) or header.user_state_len != len(user_state):
        raise ValueError("push/pull header counts do not match its states and user state")
    states = b"".join(map(encode_row, rows)) if memo is None else memo.encode_rows(rows)
    return b"".join((_PUSH_PULL_TYPE, encode_body(header), states, user_state))


def frame_stream(
    payload: bytes,
    *,
    compress: bool,
    keyring: Keyring | None,
    encryption_version: int = 1,
    label: bytes = b"",
) -> bytes:
    """Wrap an encoded stream message for the wire.

    Compresses whenever `compress` is set (memberlist does so on streams even
    when it grows the payload), then encrypts into a 0x0A frame whose 5 header
    bytes (and the label) are authenticated, then prefixes the label header.
    """
    if not payload:
        raise ValueError("refusing to send an empty message")
    if compress:
        payload = compress_message(payload)
    if keyring is not None:
        size = encrypted_length(encryption_version, len(payload))
        header = bytes((_ENCRYPT,)) + size.to_bytes(4, "big")
        payload = header + keyring.encrypt(payload, header + label, encryption_version)
    return add_label(payload, label)


class _MessageReader:
    """Incremental parser of one plain stream message (after its type byte).

    With a state memo, a member state after a memo hit is not unpacked: the
    unpacker only skips over it (no objects built) and its exact bytes are looked
    up; the memo knows most of them from earlier push/pulls (see `_read_states`).
    Skipping checks no container limits, so an entry still incomplete when the
    input runs out is also fed to a limit-checking unpacker (`_check_partial`): a
    hostile header fails as soon as it arrives, exactly as if it had been unpacked.
    """

    def __init__(self, kind: int, max_bytes: int, memo: StateMemo | None) -> None:
        if kind not in _STREAM_TYPES:
            raise UnknownTypeError(f"message type {kind} not supported on a stream")
        self._kind = kind
        self._max_bytes = max_bytes
        self._unpacker = _unpacker(max_bytes)
        self._header: PushPullHeader | None = None
        self._states: list[PushNodeState] = []
        self._want = -1  # raw bytes still expected; -1 until the header is read
        self._raw = bytearray()
        self._fed = 0
        self._memo = memo
        self._states_done = kind != MessageType.PUSH_PULL
        # With a memo: the input from stream offset `_parts_base` on, while member
        # states may follow (the entry being read, and within one feed those after
        # it). Kept as received and joined only when an entry completes, so a large
        # entry arriving in many reads is copied once, not once per read.
        self._keep = not self._states_done and memo is not None
        self._parts: list[bytes] = []
        self._parts_base = 0
        self._parts_len = 0
        self._entry_start = 0  # stream offset of the next member state
        self._checker: msgpack.Unpacker | None = None  # limits of an incomplete entry
        self._checker_at = -1  # ... the entry's offset
        self._checked = 0  # ... and how many of its bytes it has
        self._skipping = True  # see _read_states

    @property
    def footprint(self) -> int:
        """Approximate bytes held: every byte fed (unparsed, or kept inside decoded
        states and raw user bytes) plus the object overhead of each decoded state,
        plus the copies of an incomplete member state."""
        extra = 2 * self._parts_len
        return self._fed + len(self._states) * STATE_OVERHEAD + extra

    def feed(self, data: bytes) -> StreamMessage | None:
        self._fed += len(data)
        try:
            self._unpacker.feed(data)
        except msgpack.BufferFull:
            raise TooLargeError(f"stream message exceeds {self._max_bytes} bytes") from None
        if self._keep and data:
            self._parts.append(bytes(data))
            self._parts_len += len(data)
        try:
            return self._step()
        except msgpack.OutOfData:
            return None
        except (msgpack.UnpackException, ValueError, TypeError) as exc:
            raise BodyError(f"stream: bad msgpack: {exc}") from None
        finally:
            self._trim()

    def _trim(self) -> None:
        """Drop kept input before the next entry (once per feed, not per state)."""
        cut = self._entry_start - self._parts_base
        if not self._keep or cut <= 0:
            return
        parts = self._parts
        while parts and cut >= len(parts[0]):
            cut -= len(parts[0])
            self._parts_base += len(parts[0])
            self._parts_len -= len(parts[0])
            del parts[0]
        if cut and parts:  # a part holding the end of the last entry read
            parts[0] = parts[0][cut:]
            self._parts_base += cut
            self._parts_len -= cut

    def _kept(self) -> bytes:
        """The kept input as one bytes object (joined once; it stays joined)."""
        parts = self._parts
        if len(parts) > 1:
            parts[:] = [b"".join(parts)]
        return parts[0] if parts else b""

    def _kept_from(self, offset: int) -> bytes:
        """Kept input from stream `offset` on, walking back from the newest read (the
        limit checker asks for the reads since its last call: a few, however many an
        open entry has taken so far)."""
        need = self._parts_base + self._parts_len - offset
        out = []
        for part in reversed(self._parts):
            if need <= 0:
                break
            out.append(part if len(part) <= need else part[len(part) - need :])
            need -= len(part)
        out.reverse()
        return b"".join(out)

    def _step(self) -> StreamMessage | None:
        unpacker = self._unpacker
        kind = self._kind
        if kind == MessageType.PING:
            return body_from_map(Ping, unpacker.unpack())
        if kind == MessageType.ACK:
            return body_from_map(AckResp, unpacker.unpack())
        if kind == MessageType.ERR:
            return body_from_map(ErrResp, unpacker.unpack())
        if self._want < 0:
            if kind == MessageType.USER:
                self._want = self._check_len(
                    body_from_map(UserMsgHeader, unpacker.unpack()).user_msg_len
                )
            else:
                header = body_from_map(PushPullHeader, unpacker.unpack())
                # Nothing is allocated for the announced count; states are kept as
                # they arrive, and a count no stream of max_bytes could carry is a lie.
                if self._check_len(header.nodes) * MIN_STATE_LEN > self._max_bytes:
                    raise TooLargeError(
                        f"stream: {header.nodes} member states cannot fit in {self._max_bytes}"
                    )
                self._want = self._check_len(header.user_state_len)
                self._header = header
                self._entry_start = unpacker.tell()
        if self._header is not None and not self._states_done:
            self._read_states()
            # Every state is in: the rest is raw user bytes.
            self._states_done = True
            self._keep = False
            self._parts = []
            self._parts_len = 0
            self._checker = None
        while self._want > len(self._raw):
            chunk = unpacker.read_bytes(self._want - len(self._raw))
            if not chunk:
                return None
            self._raw += chunk
        if self._header is None:
            return UserStream(bytes(self._raw))
        return PushPull(self._header, tuple(self._states), bytes(self._raw))

    def _read_states(self) -> None:
        """Read member states until the announced count (`OutOfData` when input runs out).

        Each entry is checked as it completes (a stream of tiny non-states fails on
        the first one, not after costing memory until the announced count). With a
        memo, an entry after a hit is only skipped over and looked up by its bytes;
        an entry after a miss is unpacked at once (a cold push/pull costs little
        more than without the memo) and remembered.
        """
        assert self._header is not None
        states = self._states
        nodes = self._header.nodes
        unpacker = self._unpacker
        unpack = unpacker.unpack
        memo = self._memo
        if memo is None:
            while len(states) < nodes:
                states.append(self._checked_state(unpack(), len(states)))
            return
        skip = unpacker.skip
        tell = unpacker.tell
        tail = b""  # the kept input, joined when the first entry completes
        base = self._parts_base
        end_of_tail = base
        start = self._entry_start
        skipping = self._skipping
        lookup = memo.lookup
        remember = memo.remember
        decode = decode_state
        from_map = state_from_map
        try:
            while len(states) < nodes:
                if skipping:
                    skip()
                    end = tell()
                    if end > end_of_tail:
                        tail = self._kept()
                        end_of_tail = base + len(tail)
                    entry = tail[start - base : end - base]
                    state = lookup(entry)
                    if state is None:
                        state = decode(entry)
                        remember(entry, state)
                        skipping = False
                else:
                    raw = unpack()
                    end = tell()
                    if end > end_of_tail:
                        tail = self._kept()
                        end_of_tail = base + len(tail)
                    entry = tail[start - base : end - base]
                    state = lookup(entry)
                    if state is None:
                        state = from_map(raw)
                        remember(entry, state)
                    else:
                        skipping = True
                states.append(state)
                start = end
        except msgpack.OutOfData:
            if skipping:
                self._check_partial(start)
            raise
        except BodyError as exc:
            raise BodyError(f"stream: push/pull entry {len(states)}: {exc}") from None
        finally:
            self._entry_start = start
            self._skipping = skipping

    @staticmethod
    def _checked_state(raw: object, index: int) -> PushNodeState:
        try:
            return state_from_map(raw)
        except BodyError as exc:
            raise BodyError(f"stream: push/pull entry {index}: {exc}") from None

    def _check_partial(self, at: int) -> None:
        """Apply the unpacker's limits to the incomplete entry at offset `at`.

        Incremental: a later call for the same entry feeds only its new bytes, so a
        large entry arriving in many reads costs its length once, not per read.
        """
        if self._checker is None or self._checker_at != at:
            self._checker = _unpacker(self._max_bytes)
            self._checker_at = at
            self._checked = 0
        checker = self._checker
        new = self._kept_from(at + self._checked)
        checker.feed(new)
        self._checked += len(new)
        try:
            checker.unpack()
        except msgpack.OutOfData:
            return
        # A whole object where skipping found none: cannot happen; fail safe.
        raise BodyError("stream: push/pull entry disagrees with itself")

    def _check_len(self, value: int) -> int:
        if value < 0:
            raise BodyError(f"stream: negative length {value}")
        if value > self._max_bytes:
            raise TooLargeError(f"stream: declared length {value} exceeds {self._max_bytes}")
        return value


_STREAM_TYPES: Final = frozenset(
    int(t)
    for t in (
        MessageType.PING,
        MessageType.ACK,
        MessageType.PUSH_PULL,
        MessageType.USER,
        MessageType.ERR,
    )
)


class StreamDecoder:
    """Incremental decoder of the one request (or reply) a stream carries.

    Feed received bytes with `feed`; it returns None until the message is
    complete, then the message (also kept in `message`). Bytes after it are
    ignored (memberlist closes the connection after one message), as is any
    input after an error. Call `eof` when the peer closed, to learn whether
    the stream ended early. Raises `DecodeError` subclasses only.

    `max_bytes` bounds the encrypted frame length, the declared push/pull and
    user lengths and the plain message size; decompressed output is bounded by
    `max_decompressed` (default twice `max_bytes`, as newer memberlist does).

    Bounded work: `feed(data, max_work=n)` parses (or decompresses) at most about
    `n` bytes and keeps the rest; while `pending` is True, call `feed(b"",
    max_work=n)` again (on a later loop turn) before expecting the message
    (`max_work=0` only buffers). Decrypting a whole frame stays one step (AES-GCM
    over at most `max_bytes`). `footprint` estimates the memory the decoder holds,
    for a budget across streams. Member states are decoded through `memo` (None:
    each one anew), with the same result either way (see `state_memo`).
    """

    def __init__(
        self,
        *,
        keyring: Keyring | None = None,
        label: bytes = b"",
        verify_incoming: bool = True,
        max_bytes: int = DEFAULT_MAX_STREAM_BYTES,
        max_decompressed: int | None = None,
        memo: StateMemo | None = SHARED_MEMO,
    ) -> None:
        """Configure security and bounds; see the class docstring."""
        self._memo = memo
        self._keyring = keyring
        self._label = label
        self._verify_incoming = verify_incoming
        self._max_bytes = max_bytes
        self._max_decompressed = 2 * max_bytes if max_decompressed is None else max_decompressed
        self._inbox = bytearray()  # received, not parsed yet (bounded work per feed)
        self._buf = bytearray()  # label / type / encrypted frame being assembled
        self._stage = "label"
        self._reader: _MessageReader | None = None
        self._compressed: msgpack.Unpacker | None = None
        self._compressed_fed = 0
        # A decrypted or decompressed message, parsed a slice at a time.
        self._source: _Bytes | LzwReader | None = None
        self._whole_reader: _MessageReader | None = None
        self._whole_limit = max_bytes
        self._complete: StreamMessage | None = None  # parsed; the LZW stream is still ending
        self._received = 0
        self.message: StreamMessage | None = None

    @property
    def done(self) -> bool:
        """True once the message was returned (or decoding failed)."""
        return self._stage == "done"

    @property
    def pending(self) -> bool:
        """True while input is held that a `feed` with a work cap left unparsed."""
        return self._stage != "done" and (bool(self._inbox) or self._source is not None)

    @property
    def footprint(self) -> int:
        """Approximate bytes this decoder holds (input, frames, decoded states)."""
        if self._stage == "done":
            return 0
        size = len(self._inbox) + len(self._buf) + self._compressed_fed
        if self._reader is not None:
            size += self._reader.footprint
        if self._source is not None:
            size += self._source.footprint
        if self._whole_reader is not None:
            size += self._whole_reader.footprint
        return size

    def feed(self, data: bytes = b"", *, max_work: int | None = None) -> StreamMessage | None:
        """Add received bytes and parse at most `max_work` bytes (all if None, none if 0).

        Returns the message once complete, else None (see `pending`).
        """
        if self._stage == "done":
            return None
        if max_work is not None and max_work < 0:
            raise ValueError(f"max_work must be >= 0, got {max_work}")
        try:
            if data:
                self._received += len(data)
                if self._received > self._max_bytes + _FRAME_HEADER_LEN + 2 + MAX_LABEL_LEN:
                    raise TooLargeError(f"stream exceeds {self._max_bytes} bytes")
                self._inbox += data
            message = self._work(_UNBOUNDED if max_work is None else max_work)
        except DecodeError:
            self._finish()
            raise
        if message is not None:
            self.message = message
            self._finish()
        return message

    def eof(self) -> None:
        """The peer closed: `TruncatedError` unless a whole message was decoded."""
        if self.message is None:
            self._finish()
            raise TruncatedError(f"stream closed after {self._received} bytes, message incomplete")

    def _finish(self) -> None:
        self._stage = "done"
        self._inbox = bytearray()
        self._buf = bytearray()
        self._reader = None
        self._compressed = None
        self._compressed_fed = 0
        self._source = None
        self._whole_reader = None
        self._complete = None

    def _work(self, budget: int) -> StreamMessage | None:
        """Parse until the message is complete, the input runs out or `budget` is spent."""
        inbox = self._inbox
        while True:
            source = self._source
            if source is not None:
                chunk = source.take(None if budget == _UNBOUNDED else budget)
                if budget != _UNBOUNDED:
                    budget = max(0, budget - max(1, len(chunk)))
                if chunk and self._complete is None:
                    if self._whole_reader is None:
                        self._whole_reader = _MessageReader(chunk[0], self._whole_limit, self._memo)
                        chunk = chunk[1:]
                    message = self._whole_reader.feed(chunk)
                    if message is not None and source.exhausted:
                        return message
                    # Like Go, a compressed message counts only once its LZW stream
                    # ends properly: decompress (and discard) the rest first.
                    self._complete = message
                if source.exhausted and self._complete is not None:
                    return self._complete
                if source.exhausted:  # nothing more will come after a whole frame
                    if self._whole_reader is None:
                        raise TruncatedError("stream: empty message")
                    raise TruncatedError("stream: message truncated")
                if budget == 0:
                    return None
                continue
            if not inbox or budget == 0:
                return None
            if budget == _UNBOUNDED or budget >= len(inbox):
                chunk = bytes(inbox)
                inbox.clear()
            else:
                chunk = bytes(inbox[:budget])
                del inbox[:budget]
            if budget != _UNBOUNDED:
                budget -= len(chunk)
            message = self._advance(chunk)
            if message is not None:
                return message

    def _advance(self, data: bytes) -> StreamMessage | None:
        if self._reader is not None:
            return self._reader.feed(data)
        if self._compressed is not None:
            return self._feed_compressed(data)
        self._buf += data
        buf = self._buf
        if self._stage == "label":
            if not buf:
                return None
            found = b""
            if buf[0] == LABEL_TYPE:
                if len(buf) < 2 or len(buf) < 2 + buf[1]:
                    return None
                if buf[1] == 0:
                    raise LabelError("label: empty label in header")
                found = bytes(buf[2 : 2 + buf[1]])
                del buf[: 2 + buf[1]]
            if found != self._label:
                raise LabelError(f"label: got {found!r}, expected {self._label!r}")
            self._stage = "type"
        if self._stage == "type":
            if not buf:
                return None
            kind = buf[0]
            if kind == _ENCRYPT:
                if self._keyring is None:
                    raise DecryptError("stream is encrypted and no keyring is configured")
                self._stage = "frame"
            else:
                if self._keyring is not None and self._verify_incoming:
                    raise DecryptError("encryption is configured but the stream is not encrypted")
                rest = bytes(buf[1:])
                buf.clear()
                if kind == _COMPRESS:
                    self._compressed = _unpacker(self._max_bytes)
                    return self._feed_compressed(rest)
                self._reader = _MessageReader(kind, self._max_bytes, self._memo)
                return self._reader.feed(rest)
        # stage "frame"
        if len(buf) < _FRAME_HEADER_LEN:
            return None
        size = int.from_bytes(buf[1:_FRAME_HEADER_LEN], "big")
        if size > self._max_bytes:
            raise TooLargeError(f"encrypted frame of {size} bytes exceeds {self._max_bytes}")
        if len(buf) < _FRAME_HEADER_LEN + size:
            return None
        assert self._keyring is not None
        plain = self._keyring.decrypt(
            bytes(buf[_FRAME_HEADER_LEN : _FRAME_HEADER_LEN + size]),
            bytes(buf[:_FRAME_HEADER_LEN]) + self._label,
        )
        self._buf = bytearray()
        self._inbox.clear()  # bytes after the frame are ignored, like after any message
        self._start_whole(plain, allow_compress=True)
        return None

    def _feed_compressed(self, data: bytes) -> StreamMessage | None:
        assert self._compressed is not None
        self._compressed_fed += len(data)
        try:
            self._compressed.feed(data)
            raw = self._compressed.unpack()
        except msgpack.OutOfData:
            return None
        except msgpack.BufferFull:
            raise TooLargeError(f"compressed stream exceeds {self._max_bytes} bytes") from None
        except (msgpack.UnpackException, ValueError, TypeError) as exc:
            raise BodyError(f"stream: bad msgpack: {exc}") from None
        self._compressed = None
        self._compressed_fed = 0
        self._inbox.clear()
        self._start_inflating(raw)
        return None

    def _start_whole(self, data: bytes, *, allow_compress: bool) -> None:
        """A complete decrypted message: parse it in `_work`'s slices."""
        if not data:
            raise TruncatedError("stream: empty message")
        if data[0] == _COMPRESS and allow_compress:
            unpacker = _unpacker(len(data))
            try:
                unpacker.feed(data[1:])
                raw = unpacker.unpack()
            except msgpack.OutOfData:
                raise TruncatedError("stream: compress message truncated") from None
            except (msgpack.UnpackException, ValueError, TypeError) as exc:
                raise BodyError(f"stream: bad msgpack: {exc}") from None
            self._start_inflating(raw)
            return
        self._whole_limit = max(self._max_bytes, len(data))
        self._source = _Bytes(data)

    def _start_inflating(self, raw: object) -> None:
        """A complete compress message: decompress (and parse) it in `_work`'s slices."""
        try:
            compress = body_from_map(Compress, raw)
        except BodyError as exc:
            raise CompressionError(f"compress: {exc}") from None
        if compress.algo != LZW_ALGO:
            raise CompressionError(f"compress: unknown algorithm {compress.algo}")
        self._whole_limit = max(self._max_bytes, self._max_decompressed)
        self._source = LzwReader(compress.buf, self._max_decompressed)


class _Bytes:
    """A decrypted message handed out a slice at a time."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def exhausted(self) -> bool:
        return self._pos >= len(self._data)

    @property
    def footprint(self) -> int:
        return len(self._data)

    def take(self, at_least: int | None = None) -> bytes:
        """The next `at_least` bytes (all the rest when None), as `LzwReader.take`."""
        start = self._pos
        end = len(self._data) if at_least is None else min(len(self._data), start + at_least)
        self._pos = end
        return self._data[start:end]


def _unpacker(max_bytes: int) -> msgpack.Unpacker:
    """A streaming msgpack reader with swimguard's limits.

    `read_size` sets the initial buffer: msgpack would otherwise allocate
    1 MiB up front for every stream, even a 30-byte TCP ping. The buffer grows
    as data arrives, up to `max_bytes`.
    """
    return msgpack.Unpacker(
        raw=True,
        strict_map_key=False,
        max_buffer_size=max(max_bytes, 1),
        max_map_len=MAX_MAP_LEN,
        max_array_len=MAX_ARRAY_LEN,
        read_size=min(max(max_bytes, 1), _INITIAL_BUFFER),
    )
