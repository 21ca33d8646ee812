"""AES-GCM versions 0/1 with every key size, the keyring rules, labels as additional data."""

from __future__ import annotations

import itertools

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from swimguard.wire import (
    DecryptError,
    Keyring,
    LabelError,
    NackResp,
    Ping,
    StreamDecoder,
    decode_packet,
    encode_message,
    encode_packet,
    encode_stream_message,
    frame_stream,
)
from swimguard.wire.encryption import encrypted_length

KEYS = {size: bytes(range(size)) for size in (16, 24, 32)}
OTHER = {size: bytes(range(100, 100 + size)) for size in (16, 24, 32)}
PING = Ping(seq_no=42, node="n")


@pytest.mark.parametrize(("size", "version"), list(itertools.product((16, 24, 32), (0, 1))))
@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 1000])
def test_encrypt_decrypt(size: int, version: int, length: int) -> None:
    keyring = Keyring([KEYS[size]])
    plaintext = bytes(range(256)) * 4
    plaintext = plaintext[:length]
    blob = keyring.encrypt(plaintext, b"aad", version)
    assert blob[0] == version
    assert len(blob) == encrypted_length(version, length)
    assert keyring.decrypt(blob, b"aad") == plaintext
    with pytest.raises(DecryptError):
        keyring.decrypt(blob, b"other aad")
    with pytest.raises(DecryptError):
        Keyring([OTHER[size]]).decrypt(blob, b"aad")


def test_overheads_match_memberlist() -> None:
    assert encrypted_length(1, 0) == 29
    assert encrypted_length(0, 0) == 45  # 16 bytes of padding for an empty plaintext
    assert encrypted_length(0, 16) == 1 + 12 + 32 + 16
    with pytest.raises(ValueError, match="version"):
        encrypted_length(2, 0)


def test_nonces_are_random_and_injectable() -> None:
    keyring = Keyring([KEYS[16]])
    assert keyring.encrypt(b"x")[1:13] != keyring.encrypt(b"x")[1:13]
    fixed = Keyring([KEYS[16]], random_bytes=lambda n: b"\x07" * n)
    assert fixed.encrypt(b"x") == fixed.encrypt(b"x")
    assert fixed.encrypt(b"x")[1:13] == b"\x07" * 12
    with pytest.raises(ValueError, match="nonce"):
        Keyring([KEYS[16]], random_bytes=lambda n: b"").encrypt(b"x")


def test_short_and_unknown_version_blobs() -> None:
    keyring = Keyring([KEYS[16]])
    for blob in (b"", b"\x01" + bytes(27), b"\x00" + bytes(44), b"\x02" + bytes(60)):
        with pytest.raises(DecryptError):
            keyring.decrypt(blob)


def test_version_0_bad_padding_is_rejected_not_a_crash() -> None:
    # A v0 plaintext whose PKCS#7 pad byte exceeds its length: Go panics, we raise.
    nonce = bytes(12)
    sealed = AESGCM(KEYS[16]).encrypt(nonce, bytes(15) + b"\xff", None)
    with pytest.raises(DecryptError, match="padding"):
        Keyring([KEYS[16]]).decrypt(b"\x00" + nonce + sealed)
    good = AESGCM(KEYS[16]).encrypt(nonce, b"abc" + b"\x0d" * 13, None)
    assert Keyring([KEYS[16]]).decrypt(b"\x00" + nonce + good) == b"abc"


def test_keyring_rules() -> None:
    a, b, c = KEYS[16], KEYS[24], KEYS[32]
    keyring = Keyring([a, b, a])
    assert keyring.keys == (a, b)
    assert keyring.primary == a
    keyring.add_key(b)  # installed already: no-op
    keyring.add_key(c)
    assert keyring.keys == (a, b, c)
    keyring.use_key(c)
    assert keyring.keys == (c, a, b)
    assert keyring.primary == c
    with pytest.raises(ValueError, match="primary"):
        keyring.remove_key(c)
    keyring.remove_key(b)
    keyring.remove_key(OTHER[16])  # not installed: no-op, as in memberlist
    assert keyring.keys == (c, a)
    with pytest.raises(ValueError, match="not in the keyring"):
        keyring.use_key(b)
    for bad in (b"", bytes(15), bytes(17), bytes(33)):
        with pytest.raises(ValueError, match="key size"):
            keyring.add_key(bad)
    with pytest.raises(ValueError, match="at least one"):
        Keyring([])


def test_key_rotation_between_two_nodes() -> None:
    """The memberlist rotation: install everywhere, switch primary, then remove the old key."""
    old, new = KEYS[32], OTHER[32]
    sender, receiver = Keyring([old]), Keyring([old])
    packet = encode_message(NackResp(seq_no=1))

    def delivered() -> bool:
        try:
            decode_packet(encode_packet(packet, keyring=sender), keyring=receiver)
        except DecryptError:
            return False
        return True

    receiver.add_key(new)
    sender.add_key(new)
    assert delivered()
    sender.use_key(new)  # sender now encrypts with the new key; receiver still has both
    assert delivered()
    receiver.use_key(new)
    receiver.remove_key(old)
    assert delivered()
    sender.use_key(old)  # a straggler still on the old key is now cut off
    assert not delivered()


def test_verify_incoming_false_accepts_plaintext_packets() -> None:
    keyring = Keyring([KEYS[16]])
    plain = encode_message(PING)
    with pytest.raises(DecryptError):
        decode_packet(plain, keyring=keyring)
    assert decode_packet(plain, keyring=keyring, verify_incoming=False) == [PING]
    sealed = encode_packet(plain, keyring=keyring)
    assert decode_packet(sealed, keyring=keyring, verify_incoming=False) == [PING]


def test_packet_label_is_additional_data() -> None:
    keyring = Keyring([KEYS[16]])
    plain = encode_message(PING)
    sealed = encode_packet(plain, keyring=keyring, label=b"east")
    assert sealed[:6] == b"\xf4\x04east"
    assert decode_packet(sealed, keyring=keyring, label=b"east") == [PING]
    # Same blob under a forged label header: the label is authenticated.
    forged = b"\xf4\x04west" + sealed[6:]
    with pytest.raises(DecryptError):
        decode_packet(forged, keyring=keyring, label=b"west")
    with pytest.raises(LabelError):
        decode_packet(sealed, keyring=keyring, label=b"west")
    with pytest.raises(LabelError):
        decode_packet(sealed, keyring=keyring)  # we have no label, the packet has one
    with pytest.raises(LabelError):
        decode_packet(encode_packet(plain, keyring=keyring), keyring=keyring, label=b"east")
    # Empty label = no header and no additional data: memberlist 0.2.2 compatible.
    assert encode_packet(plain, label=b"") == plain


def test_stream_frame_header_and_label_are_authenticated() -> None:
    keyring = Keyring([KEYS[24]])
    payload = encode_stream_message(PING)
    framed = frame_stream(payload, compress=False, keyring=keyring, label=b"east")
    assert framed[:6] == b"\xf4\x04east"
    frame = framed[6:]
    assert frame[0] == 0x0A
    assert int.from_bytes(frame[1:5], "big") == len(frame) - 5
    assert keyring.decrypt(frame[5:], frame[:5] + b"east") == payload
    with pytest.raises(DecryptError):
        keyring.decrypt(frame[5:], frame[:5])
    assert StreamDecoder(keyring=keyring, label=b"east").feed(framed) == PING
    with pytest.raises(DecryptError):
        StreamDecoder(keyring=keyring, label=b"west").feed(b"\xf4\x04west" + frame)


def test_stream_encryption_requirements() -> None:
    keyring = Keyring([KEYS[16]])
    plain = frame_stream(encode_stream_message(PING), compress=False, keyring=None)
    sealed = frame_stream(encode_stream_message(PING), compress=True, keyring=keyring)
    with pytest.raises(DecryptError, match="not encrypted"):
        StreamDecoder(keyring=keyring).feed(plain)
    assert StreamDecoder(keyring=keyring, verify_incoming=False).feed(plain) == PING
    assert StreamDecoder(keyring=keyring, verify_incoming=False).feed(sealed) == PING
    with pytest.raises(DecryptError, match="no keyring"):
        StreamDecoder().feed(sealed)
    with pytest.raises(DecryptError):
        StreamDecoder(keyring=Keyring([OTHER[16]])).feed(sealed)
