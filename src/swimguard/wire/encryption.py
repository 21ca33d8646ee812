"""AES-GCM encryption and the keyring, as memberlist does them.

Blob: ``vsn:u8 | nonce:12 | ciphertext||tag:16``. Version 0 PKCS#7-pads the
plaintext to a multiple of 16 before sealing (the receiver strips ``last byte``
pad bytes without checking them); version 1 does not pad. Keys are 16, 24 or 32
bytes. The primary key (first) encrypts; every key is tried to decrypt.
Nonces come from `os.urandom` unless the keyring is given another source (tests).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from swimguard.wire.errors import DecryptError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "KEY_SIZES",
    "NONCE_SIZE",
    "TAG_SIZE",
    "Keyring",
    "encrypted_length",
    "validate_key",
]

KEY_SIZES: Final = (16, 24, 32)
NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16
_BLOCK: Final = 16
_VERSIONS: Final = (0, 1)


def validate_key(key: bytes) -> None:
    """Raise `ValueError` unless `key` is 16, 24 or 32 bytes (AES-128/192/256)."""
    if len(key) not in KEY_SIZES:
        raise ValueError(f"key size must be 16, 24 or 32 bytes, got {len(key)}")


def encrypted_length(version: int, size: int) -> int:
    """Length of the blob that encrypting `size` plaintext bytes produces."""
    if version not in _VERSIONS:
        raise ValueError(f"unsupported encryption version {version}")
    padding = _BLOCK - size % _BLOCK if version == 0 else 0
    return 1 + NONCE_SIZE + size + padding + TAG_SIZE


class Keyring:
    """Ordered AES keys; ``keys[0]`` is the primary key.

    Mirrors memberlist's rules: adding an installed key is a no-op, `use_key`
    makes an installed key primary, the primary cannot be removed, removing an
    unknown key is a no-op.
    """

    def __init__(
        self,
        keys: Sequence[bytes],
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        """Install `keys` (at least one; the first becomes primary).

        `random_bytes(n)` supplies nonces; only tests pass something else.
        """
        if not keys:
            raise ValueError("a keyring needs at least one key")
        self._keys: list[bytes] = []
        self._ciphers: dict[bytes, AESGCM] = {}
        self._random_bytes = random_bytes
        for key in keys:
            self.add_key(key)

    @property
    def primary(self) -> bytes:
        """The key used to encrypt."""
        return self._keys[0]

    @property
    def keys(self) -> tuple[bytes, ...]:
        """All installed keys, primary first."""
        return tuple(self._keys)

    def add_key(self, key: bytes) -> None:
        """Install `key` after the existing ones (no-op if already installed)."""
        key = bytes(key)
        validate_key(key)
        if key in self._ciphers:
            return
        # Imported here: `cryptography` costs ~7 MiB of RSS, paid only with a key.
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._keys.append(key)
        self._ciphers[key] = AESGCM(key)

    def use_key(self, key: bytes) -> None:
        """Make the installed `key` primary; `ValueError` if it is not installed."""
        key = bytes(key)
        if key not in self._ciphers:
            raise ValueError("requested key is not in the keyring")
        self._keys.remove(key)
        self._keys.insert(0, key)

    def remove_key(self, key: bytes) -> None:
        """Uninstall `key`; `ValueError` for the primary key, no-op if absent."""
        key = bytes(key)
        if key == self._keys[0]:
            raise ValueError("removing the primary key is not allowed")
        if key in self._ciphers:
            self._keys.remove(key)
            del self._ciphers[key]

    def encrypt(self, plaintext: bytes, aad: bytes = b"", version: int = 1) -> bytes:
        """Seal `plaintext` with the primary key: ``vsn | nonce | ciphertext||tag``."""
        if version not in _VERSIONS:
            raise ValueError(f"unsupported encryption version {version}")
        nonce = self._random_bytes(NONCE_SIZE)
        if len(nonce) != NONCE_SIZE:
            raise ValueError("nonce source returned the wrong number of bytes")
        if version == 0:
            pad = _BLOCK - len(plaintext) % _BLOCK
            plaintext = plaintext + bytes((pad,)) * pad
        sealed = self._ciphers[self._keys[0]].encrypt(nonce, plaintext, aad or None)
        return bytes((version,)) + nonce + sealed

    def decrypt(self, blob: bytes, aad: bytes = b"") -> bytes:
        """Open `blob` with the first key that authenticates it.

        Raises `DecryptError` for an empty or short blob, an unknown version,
        or when no installed key opens it.
        """
        if not blob:
            raise DecryptError("decrypt: empty payload")
        version = blob[0]
        if version not in _VERSIONS:
            raise DecryptError(f"decrypt: unsupported encryption version {version}")
        if len(blob) < encrypted_length(version, 0):
            raise DecryptError(f"decrypt: payload too small ({len(blob)} bytes)")
        nonce = blob[1 : 1 + NONCE_SIZE]
        sealed = blob[1 + NONCE_SIZE :]
        from cryptography.exceptions import InvalidTag

        for key in self._keys:
            try:
                plain = self._ciphers[key].decrypt(nonce, sealed, aad or None)
            except InvalidTag:
                continue
            if version == 0:
                return _strip_pkcs7(plain)
            return plain
        raise DecryptError("decrypt: no installed key could decrypt the message")


def _strip_pkcs7(plain: bytes) -> bytes:
    # Go trusts the last byte without checking the pad; it panics when the pad
    # is longer than the plaintext, which we reject instead.
    if not plain or plain[-1] > len(plain):
        raise DecryptError("decrypt: invalid padding")
    return plain[: len(plain) - plain[-1]]
