"""LZW compression as memberlist uses it (Go `compress/lzw`, LSB order, literal width 8).

Codes start 9 bits wide: 0-255 are literals, 256 = clear, 257 = end, 258.. are
dictionary entries; width grows when the next code to assign reaches
``1 << width`` (no early change) up to 12 bits. Go's writer emits a clear code
first, and a clear whenever code 4095 would be assigned. This port reproduces
Go's output byte for byte, and its reader enforces a bound on the decompressed
size so a small packet cannot expand into a memory bomb. A `DecompressionBudget`
shares one bound between every compress layer of a packet and is charged with
what each stream produced whether it decoded or failed, so a packet of many
bombs costs at most one budget of work.
"""

from __future__ import annotations

import itertools
from typing import Final

from swimguard.wire.errors import BodyError, CompressionError, TooLargeError
from swimguard.wire.messages import Compress, MessageType, body_from_map, encode_body, unpack

__all__ = [
    "LZW_ALGO",
    "DecompressionBudget",
    "compress_message",
    "compress_message_if_shorter",
    "decompress_map",
    "decompress_message",
    "lzw_compress",
    "lzw_decompress",
]

LZW_ALGO: Final = 0
_CLEAR: Final = 256
_EOF: Final = 257
_MAX_CODE: Final = 4095
_MAX_WIDTH: Final = 12
_LITERALS: Final = tuple(bytes((i,)) for i in range(256))


class DecompressionBudget:
    """How many bytes the compress layers of one packet may still produce, together.

    Every LZW stream decoded against the budget is charged with the bytes it
    produced, also when it then fails (invalid code, missing end code). A
    stream that would go past the budget stops before producing the byte that
    would not fit and exhausts the budget, so every later stream of the same
    packet fails at its first output byte: the work per packet stays within one
    budget whatever its parts do. `produced` is the work actually done.
    """

    __slots__ = ("_exhausted", "limit", "produced")

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError(f"decompression budget must be >= 0, got {limit}")
        self.limit = limit
        self.produced = 0
        self._exhausted = False

    @property
    def remaining(self) -> int:
        """Bytes the next stream may still produce (0 once a stream overran)."""
        return 0 if self._exhausted else self.limit - self.produced

    def charge(self, produced: int, *, overran: bool = False) -> None:
        """Count `produced` bytes of output; `overran`: a stream hit the bound (exhausts it)."""
        self.produced += produced
        if overran:
            self._exhausted = True


def lzw_compress(data: bytes) -> bytes:
    """Compress `data` exactly like Go's ``lzw.NewWriter(w, lzw.LSB, 8)``."""
    out = bytearray()
    # Go's Write sends a clear first; for empty input Close sends it instead.
    acc = _CLEAR  # pending bits, LSB first
    nbits = 9
    if data:
        # Emitting is inlined (this loop runs once per input byte): after each
        # emitted code the next code to assign (`hi`) grows; the width grows
        # when `hi` reaches 1 << width, and at 4095 Go emits a clear and resets.
        table: dict[int, int] = {}
        width = 9
        hi = _EOF + 1  # code the next table entry gets
        overflow = 1 << 9
        code = data[0]
        for literal in data[1:]:
            key = (code << 8) | literal
            found = table.get(key)
            if found is not None:
                code = found
                continue
            acc |= code << nbits
            nbits += width
            while nbits >= 8:
                out.append(acc & 0xFF)
                acc >>= 8
                nbits -= 8
            code = literal
            if hi == overflow:
                width += 1
                overflow <<= 1
            if hi == _MAX_CODE:
                acc |= _CLEAR << nbits
                nbits += width
                width, hi, overflow = 9, _EOF + 1, 1 << 9
                table.clear()
            else:
                table[key] = hi
                hi += 1
        acc |= code << nbits
        nbits += width
        if hi == overflow:
            width += 1
        if hi == _MAX_CODE:
            acc |= _CLEAR << nbits
            nbits += width
            width = 9
    else:
        width = 9
    acc |= _EOF << nbits
    nbits += width
    while nbits > 0:
        out.append(acc & 0xFF)
        acc >>= 8
        nbits -= 8
    return bytes(out)


def lzw_decompress(data: bytes, max_size: int | DecompressionBudget) -> bytes:
    """Decompress a Go LZW (LSB, literal width 8) stream of at most `max_size` bytes.

    `max_size` is a byte count or a `DecompressionBudget` shared with other
    streams (charged with this stream's output on every path, failures included).
    Raises `CompressionError` for an invalid code or a stream without an end
    code, and `TooLargeError` as soon as the output would exceed the bound
    (before producing the bytes that do not fit). Bytes after the end code are
    ignored, as in Go. The table holds at most one entry per output byte, so
    memory stays within a small multiple of the bound.
    """
    if isinstance(max_size, DecompressionBudget):
        budget = max_size
    else:
        budget = DecompressionBudget(max_size)
    reader = LzwReader(data, budget.remaining)
    overran = False
    try:
        return reader.take()
    except TooLargeError:
        overran = True
        raise
    finally:
        budget.charge(reader.produced, overran=overran)


class LzwReader:
    """A Go LZW stream (LSB, literal width 8) decompressed as much at a time as asked.

    `lzw_decompress` takes it all at once; a stream decoder takes it a slice per call,
    since a 20 MiB compress message may expand to 40 MiB, most of a second of Python that
    must not run in one loop turn. No output is kept here: each `take` returns its part.
    """

    __slots__ = (
        "_acc", "_data", "_hi", "_max_size", "_nbits", "_overflow", "_pos", "_previous",
        "_table", "_width", "exhausted", "produced",
    )

    def __init__(self, data: bytes, max_size: int) -> None:
        self._data = data
        self._max_size = max_size
        self._table: list[bytes | None] = [*_LITERALS, None, None] + [None] * (
            _MAX_CODE + 1 - 258
        )
        self._acc = 0
        self._nbits = 0
        self._pos = 0
        self._width = 9
        self._hi = _EOF  # the next code to define
        self._overflow = 1 << 9
        self._previous: bytes | None = None  # expansion of the previous code; None after a clear
        self.produced = 0
        """Output bytes so far, also those of a `take` that raised."""
        self.exhausted = False
        """The end code was read."""

    @property
    def footprint(self) -> int:
        """Memory held: the input, plus a table of at most 4,096 entries (each one byte
        longer than an earlier one), counted as the output produced, which bounds it."""
        return len(self._data) + min(self.produced, 4096 * 64)

    def take(self, at_least: int | None = None) -> bytes:
        """About `at_least` more output bytes (one code may add up to 4 KiB), or all the
        rest when None; b"" once exhausted."""
        if self.exhausted:
            return b""
        data, size, table = self._data, len(self._data), self._table
        acc, nbits, pos = self._acc, self._nbits, self._pos
        width, hi, overflow, previous = self._width, self._hi, self._overflow, self._previous
        mask = (1 << width) - 1
        out = bytearray()
        limit = self._max_size - self.produced
        want = limit + 1 if at_least is None else at_least
        try:
            while len(out) < want:
                while nbits < width:
                    if pos >= size:
                        raise CompressionError("compress: LZW stream ends without an end code")
                    acc |= data[pos] << nbits
                    pos += 1
                    nbits += 8
                code = acc & mask
                acc >>= width
                nbits -= width
                if code < _CLEAR:
                    entry: bytes | None = _LITERALS[code]
                elif code == _CLEAR:
                    width, hi, overflow, previous = 9, _EOF, 1 << 9, None
                    mask = (1 << width) - 1
                    continue
                elif code == _EOF:
                    self.exhausted = True
                    self._table = []
                    break
                elif code < hi:
                    entry = table[code]
                elif code == hi:
                    # The code being defined right now: previous expansion + its first byte
                    # (with the table full, Go reuses the entry already stored there).
                    entry = table[code] if previous is None else previous + previous[:1]
                else:
                    entry = None
                if entry is None:
                    raise CompressionError(f"compress: invalid LZW code {code}")
                if len(out) + len(entry) > limit:
                    raise TooLargeError(
                        f"compress: decompressed size exceeds {self._max_size} bytes"
                    )
                out += entry
                if previous is not None:
                    table[hi] = previous + entry[:1]
                previous = entry
                hi += 1
                if hi >= overflow:
                    if width == _MAX_WIDTH:
                        # Table full: Go stops adding entries until the next clear code.
                        previous = None
                        hi -= 1
                    else:
                        width += 1
                        mask = (1 << width) - 1
                        overflow <<= 1
        finally:
            self.produced += len(out)
        self._acc, self._nbits, self._pos = acc, nbits, pos
        self._width, self._hi, self._overflow, self._previous = width, hi, overflow, previous
        return bytes(out)


def compress_message(message: bytes) -> bytes:
    """A whole compress message: ``0x09`` + msgpack ``{Algo: 0, Buf: LZW(message)}``."""
    return bytes((MessageType.COMPRESS,)) + encode_body(Compress(buf=lzw_compress(message)))


_SHORT_INPUT: Final = 200
"""Inputs this short add fewer than 254 table entries: every code stays 9 bits wide and the
table never fills, so the compressed size follows from the number of LZW phrases alone."""


def _compress_message_size(lzw_size: int) -> int:
    # 0x09 + {Algo: 0, Buf: raw}: 12 bytes of map and keys, then the raw header (old-spec
    # msgpack: 1 byte below 32 bytes, 3 bytes below 64 KiB). A test checks it against
    # compress_message.
    return lzw_size + (13 if lzw_size < 32 else 15)


def _phrase_limit(size: int) -> int:
    """The most phrases (the last one excluded) a short input of `size` bytes may parse into
    and still compress to fewer than `size` bytes; -1 if none may."""
    phrases = (size * 8) // 9  # above the answer: the search only goes down
    while phrases >= 0 and _compress_message_size(-(-9 * (phrases + 3) // 8)) >= size:
        phrases -= 1
    return phrases


_PHRASE_LIMITS: Final = tuple(_phrase_limit(size) for size in range(_SHORT_INPUT + 1))


def compress_message_if_shorter(message: bytes) -> bytes | None:
    """`compress_message(message)` if it is shorter than `message`, else None.

    memberlist keeps a compressed packet only when it is shorter, and pings and acks never
    are: compressing them only to throw the result away was the largest single cost of an
    idle agent. For a short input the number of LZW phrases decides (see `_SHORT_INPUT`):
    a lower bound on it from the distinct byte pairs, else a parse that packs no bits and
    stops as soon as the phrases are too many. The answer is exactly that of compressing
    and comparing, at a fraction of the cost.
    """
    size = len(message)
    if 0 < size <= _SHORT_INPUT:
        limit = _PHRASE_LIMITS[size]
        # A pair of adjacent bytes never seen before cannot lie inside a phrase (every
        # phrase longer than one byte occurred earlier in the input), so each distinct pair
        # ends a phrase: on high-entropy input (an ack's coordinate) this settles it at once.
        if len(set(itertools.pairwise(message))) > limit:
            return None
        table: dict[int, int] = {}
        get = table.get
        hi = _EOF + 1
        phrases = 0
        code = message[0]
        for literal in message[1:]:
            key = (code << 8) | literal
            found = get(key)
            if found is not None:
                code = found
                continue
            phrases += 1
            if phrases > limit:
                return None
            table[key] = hi
            hi += 1
            code = literal
    compressed = compress_message(message)
    return compressed if len(compressed) < size else None


def decompress_message(body: bytes, max_size: int | DecompressionBudget) -> bytes:
    """Decompress a compress message body (the msgpack bytes after 0x09).

    Raises `CompressionError` (bad body, unknown algorithm, invalid stream) or
    `TooLargeError` (more than `max_size` bytes, a count or a shared budget).
    """
    try:
        raw = unpack(body)
    except BodyError as exc:
        raise CompressionError(f"compress: {exc}") from None
    return decompress_map(raw, max_size)


def decompress_map(raw: object, max_size: int | DecompressionBudget) -> bytes:
    """Like `decompress_message`, for a compress body already decoded from msgpack."""
    try:
        compress = body_from_map(Compress, raw)
    except BodyError as exc:
        raise CompressionError(f"compress: {exc}") from None
    if compress.algo != LZW_ALGO:
        raise CompressionError(f"compress: unknown algorithm {compress.algo}")
    return lzw_decompress(compress.buf, max_size)
