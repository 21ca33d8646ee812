"""Serf's keyring file (`-keyring-file`): a JSON list of base64 keys, the primary first.

Read at start; rewritten after every change made by a key query we answered (`serf keys
-install/-use/-remove` from anyone, our own `Agent.keys` included), so that a restarted
agent has the keys the cluster rotated to while it ran. Serf writes it in place with mode
0600; we write a temporary file in the same directory, fsync it and rename it over the
old one, so a crash never leaves a half-written keyring.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Sequence
from pathlib import Path

from swimguard.errors import UsageError

__all__ = ["encode_keyring", "read_keyring_file", "write_keyring_file"]

# A keyring of this many keys already is a mistake; the bound keeps a hostile file small.
_MAX_FILE_BYTES = 1024 * 1024


def read_keyring_file(path: Path) -> list[bytes] | None:
    """The keys in `path` (primary first), None if there is no such file.

    `UsageError` naming the file and the problem for anything else: not JSON, not a
    non-empty list of strings, a key that is not base64 or not 16, 24 or 32 bytes.
    """
    try:
        with path.open("rb") as fh:
            raw = fh.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"keyring file {path}: {exc.strerror or exc}") from None
    if len(raw) > _MAX_FILE_BYTES:
        raise UsageError(f"keyring file {path}: larger than {_MAX_FILE_BYTES} bytes")
    try:
        items = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"keyring file {path}: not JSON ({exc})") from None
    if not isinstance(items, list) or not items:
        raise UsageError(f"keyring file {path}: expected a non-empty JSON list of base64 keys")
    keys: list[bytes] = []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise UsageError(f"keyring file {path}: entry {i} is not a string")
        try:
            key = base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError):
            raise UsageError(f"keyring file {path}: entry {i} is not base64") from None
        if len(key) not in (16, 24, 32):
            raise UsageError(
                f"keyring file {path}: entry {i} is {len(key)} bytes; keys are 16, 24 or 32"
            )
        if key not in keys:
            keys.append(key)
    return keys


def encode_keyring(keys: Sequence[bytes]) -> bytes:
    """The file's content: Serf writes `json.MarshalIndent(keys, "", "  ")`."""
    return json.dumps([base64.b64encode(k).decode() for k in keys], indent=2).encode()


def write_keyring_file(path: Path, keys: Sequence[bytes]) -> None:
    """Replace `path` atomically with `keys` (mode 0600: key material); blocking."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(encode_keyring(keys))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
