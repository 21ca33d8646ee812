"""Serf tags carried in memberlist's node `Meta`.

Serf protocol >= 3 writes `0xFF` + an old-spec msgpack `map[string]string`.
Anything else (empty Meta, or a first byte other than 0xFF) is Serf protocol 2's
bare role name, which Serf reads as `{"role": <meta>}`: a pure memberlist node
with empty metadata therefore shows up in `serf members` as `role=`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import msgpack

__all__ = ["MAX_META", "TAG_MAGIC", "decode_tags", "encode_tags"]

TAG_MAGIC: Final = 0xFF
# memberlist's MetaMaxSize, including the magic byte.
MAX_META: Final = 512


def encode_tags(tags: Mapping[str, str]) -> bytes:
    """Meta bytes for `tags` as Serf writes them (keys sorted here; Go's order is random).

    Raises ValueError if the result exceeds memberlist's 512-byte Meta limit
    (Serf's `SetTags` refuses such tags too) or a key/value is not a str.
    """
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError("Serf tags must map str to str")
    body = {k.encode(): tags[k].encode() for k in sorted(tags)}
    meta = bytes((TAG_MAGIC,)) + msgpack.packb(body, use_bin_type=False)
    if len(meta) > MAX_META:
        raise ValueError(f"encoded tags take {len(meta)} bytes, more than {MAX_META}")
    return meta


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def decode_tags(meta: bytes | None) -> dict[str, str]:
    """Tags from a member's Meta, following Serf's `decodeTags`. Never raises.

    Like Go, a malformed map yields what could be read (here: nothing, or the
    entries of a well-formed map whose trailing bytes are garbage); entries whose
    key or value is not a string are skipped.
    """
    if not meta or meta[0] != TAG_MAGIC:
        return {"role": _text(meta or b"")}
    unpacker = msgpack.Unpacker(raw=True, strict_map_key=False, max_buffer_size=len(meta) + 1)
    unpacker.feed(meta[1:])
    try:
        raw = unpacker.unpack()
    except (msgpack.OutOfData, ValueError, TypeError):
        return {}
    if not isinstance(raw, dict):
        return {}
    tags: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(key, bytes | str) and isinstance(value, bytes | str):
            k = _text(key) if isinstance(key, bytes) else key
            tags[k] = _text(value) if isinstance(value, bytes) else value
    return tags
