"""Cluster label header (memberlist >= 0.3.0): ``0xF4 | len:u8 | label``.

Prefixes packets and streams, never encrypted. An empty label means "no
header", which is what memberlist 0.2.2 speaks. The label must match exactly on
receipt; a node with a label rejects unlabelled input and vice versa.
"""

from __future__ import annotations

from typing import Final

from swimguard.wire.errors import LabelError

__all__ = [
    "LABEL_TYPE",
    "MAX_LABEL_LEN",
    "add_label",
    "check_label",
    "split_label",
    "validate_label",
]

LABEL_TYPE: Final = 244
MAX_LABEL_LEN: Final = 255


def validate_label(label: bytes) -> None:
    """Raise `ValueError` for a label that cannot be sent (longer than 255 bytes)."""
    if len(label) > MAX_LABEL_LEN:
        raise ValueError(f"label is {len(label)} bytes, at most {MAX_LABEL_LEN} allowed")


def add_label(payload: bytes, label: bytes) -> bytes:
    """Prefix `payload` with the label header (nothing for an empty label)."""
    if not label:
        return payload
    validate_label(label)
    return bytes((LABEL_TYPE, len(label))) + label + payload


def split_label(data: bytes) -> tuple[bytes, int]:
    """Return ``(label, header_length)`` of `data`; ``(b"", 0)`` when unlabelled.

    Raises `LabelError` for an empty or truncated header.
    """
    if not data or data[0] != LABEL_TYPE:
        return b"", 0
    if len(data) < 2:
        raise LabelError("label: header truncated")
    size = data[1]
    if size == 0:
        raise LabelError("label: empty label in header")
    end = 2 + size
    if len(data) < end:
        raise LabelError("label: header truncated")
    return data[2:end], end


def check_label(data: bytes, label: bytes) -> bytes:
    """Strip the label header from a packet, requiring it to equal `label`."""
    found, offset = split_label(data)
    if found != label:
        raise LabelError(f"label: got {found!r}, expected {label!r}")
    return data[offset:] if offset else data
