"""Property tests: any bytes in, only DecodeError subclasses out (never a crash or hang).

The default run uses a short profile; the `slow` tests run well over 100,000
examples in total (CI runs them too).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire_helpers import load

from swimguard.wire import (
    AckResp,
    Alive,
    Dead,
    DecodeError,
    IndirectPingReq,
    Keyring,
    Ping,
    PushNodeState,
    PushPull,
    PushPullHeader,
    StreamDecoder,
    Suspect,
    UserData,
    UserStream,
    decode_packet,
    encode_message,
    encode_packet,
    encode_stream_message,
    frame_stream,
    make_compound,
)
from swimguard.wire.compression import lzw_compress, lzw_decompress
from swimguard.wire.layers import inspect_packet, inspect_stream

KEYRING = Keyring([bytes(range(16)), bytes(range(32))])
LABEL = b"fuzz"
VSN = bytes((1, 5, 2, 2, 5, 5))


def _packet_seeds() -> list[bytes]:
    """Valid plaintext packets covering every message type and layer."""
    seeds = [bytes.fromhex(v["hex"]) for v in load("memberlist-plain-captured.json")["udp"]]
    seeds += [
        bytes.fromhex(v["plaintext_hex"]) for v in load("memberlist-encrypted-captured.json")["udp"]
    ]
    seeds += [
        bytes.fromhex(v["hex"])
        for v in load("memberlist-go-encoder-vectors.json")["vectors"]
        if v["hex"][:2] in ("00", "01", "02", "03", "04", "05", "07", "09", "0b", "0c")
    ]
    messages = [
        encode_message(m)
        for m in (
            Ping(seq_no=1, node="b", source_addr=b"\x7f\x00\x00\x01", source_port=1),
            IndirectPingReq(seq_no=2, target=bytes(16), port=3, nack=True),
            AckResp(seq_no=3, payload=b"\x01\x02"),
            Suspect(incarnation=4, node="n", from_="m"),
            Alive(incarnation=5, node="a", addr=bytes(4), port=6, meta=b"m", vsn=VSN),
            Dead(incarnation=6, node="n", from_="n"),
            UserData(b"\x01user"),
        )
    ]
    compound = make_compound(messages)
    seeds += messages
    seeds += [
        compound,
        encode_packet(make_compound([compound] * 3), compress=True, crc=True),
        make_compound([encode_packet(compound * 1, compress=True), messages[0]]),
    ]
    return seeds


def _stream_seeds() -> list[bytes]:
    """Valid plaintext stream payloads (plain and compressed) of every stream type."""
    states = tuple(
        PushNodeState(name=f"n{i}", addr=bytes(4), port=i, incarnation=i, state=i % 4, vsn=VSN)
        for i in range(3)
    )
    payloads = [
        encode_stream_message(m)
        for m in (
            PushPull(PushPullHeader(nodes=3, user_state_len=4, join=True), states, b"user"),
            UserStream(b"reliable"),
            Ping(seq_no=1, node="x"),
            AckResp(seq_no=1),
        )
    ]
    payloads += [bytes.fromhex(v["hex"]) for v in load("memberlist-plain-captured.json")["tcp"]]
    return payloads + [frame_stream(p, compress=True, keyring=None) for p in payloads]


PACKET_SEEDS = _packet_seeds()
STREAM_SEEDS = _stream_seeds()
PACKET_TYPES = bytes((*range(14), 0xF4))
SPECIAL = bytes((0, 1, 0x7F, 0x80, 0xC0, 0xC1, 0xDA, 0xDB, 0xDE, 0xDF, 0xFF))


def mutate(seeds: list[bytes], program: bytes) -> bytes:
    """Apply a mutation program to a seed: a byte string that Hypothesis draws and shrinks.

    ``program[0]`` picks the seed; every following 3 bytes are (operation,
    position as a fraction of the length, value). One draw per example keeps
    Hypothesis's per-example overhead low enough for the 100k-example suite.
    """
    data = bytearray(seeds[program[0] % len(seeds)] if program else seeds[0])
    for i in range(1, len(program) - 2, 3):
        op, where, value = program[i], program[i + 1], program[i + 2]
        pos = where * len(data) // 256
        op %= 7
        if op == 0 and data:
            data[pos] ^= 1 << (value % 8)
        elif op == 1 and data:
            data[pos] = SPECIAL[value % len(SPECIAL)]
        elif op == 2:
            data[pos:pos] = bytes((value,)) * (1 + value % 3)
        elif op == 3:
            del data[pos : pos + 1 + value % 8]
        elif op == 4:
            del data[pos:]
        elif op == 5:
            other = seeds[value % len(seeds)]
            data[pos:] = other[where * len(other) // 256 :]
        elif op == 6 and data:
            data[pos] = value
    return bytes(data)


def random_packet(program: bytes) -> bytes:
    """Raw random bytes, or (top bit of the first byte) led by a real type byte."""
    if len(program) < 2:
        return program
    body = program[1:]
    if program[0] & 0x80:
        body = bytes((PACKET_TYPES[body[0] % len(PACKET_TYPES)],)) + body[1:]
    return body


def packet_must_not_crash(data: bytes, how: int) -> None:
    """Decode one way or another; anything but a DecodeError fails the test."""
    try:
        if how == 0:
            decode_packet(data)
        elif how == 1:
            decode_packet(data, errors=[], max_decompressed=1 << 16)
        elif how == 2:  # mutated plaintext, sealed with a key we hold, behind a label
            sealed = encode_packet(data or b"\x00", keyring=KEYRING, label=LABEL)
            decode_packet(sealed, keyring=KEYRING, label=LABEL)
        elif how == 3:  # the raw bytes as if they were ciphertext, with plaintext fallback
            decode_packet(data, keyring=KEYRING, verify_incoming=False)
        else:  # the layer-preserving inspector
            inspect_packet(data)
    except DecodeError as exc:
        REASONS.add(exc.reason)


def stream_must_not_crash(data: bytes, chunk: int, how: int) -> None:
    """Feed in chunks; anything but a DecodeError fails the test."""
    try:
        if how == 3:
            inspect_stream(data, keyring=KEYRING, max_bytes=1 << 16)
            return
        if how == 0:
            decoder = StreamDecoder(max_bytes=1 << 16)
        else:
            decoder = StreamDecoder(keyring=KEYRING, label=LABEL, max_bytes=1 << 16)
            data = frame_stream(data or b"\x00", compress=how == 2, keyring=KEYRING, label=LABEL)
        for i in range(0, len(data), chunk):
            if decoder.feed(data[i : i + chunk]) is not None:
                return
        decoder.eof()
    except DecodeError as exc:
        REASONS.add(exc.reason)


def lzw_must_not_crash(data: bytes) -> None:
    try:
        lzw_decompress(data, 1 << 16)
    except DecodeError as exc:
        LZW_REASONS.add(exc.reason)


def profile(examples: int) -> Callable[[Any], Any]:
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


COUNTS: dict[str, int] = {}
REASONS: set[str] = set()
LZW_REASONS: set[str] = set()
KNOWN_REASONS = {
    "body",
    "compound",
    "compress",
    "crc",
    "decrypt",
    "label",
    "too_large",
    "truncated",
    "unknown_type",
}


def run_packet_random(examples: int) -> None:
    @profile(examples)
    @given(st.binary(max_size=200))
    def check(program: bytes) -> None:
        COUNTS["packet_random"] += 1
        packet_must_not_crash(random_packet(program), program[0] % 5 if program else 0)

    check()


def run_packet_mutations(examples: int) -> None:
    @profile(examples)
    @given(st.binary(min_size=1, max_size=25))
    def check(program: bytes) -> None:
        COUNTS["packet_mutations"] += 1
        how = program[-1] % 5
        packet_must_not_crash(mutate(PACKET_SEEDS, program), how)

    check()


def run_stream(examples: int) -> None:
    @profile(examples)
    @given(st.binary(min_size=2, max_size=120))
    def check(program: bytes) -> None:
        COUNTS["stream"] += 1
        chunk, how = 1 + program[0] % 64, program[1] % 4
        # Half mutated valid streams, half raw bytes.
        data = mutate(STREAM_SEEDS, program[2:26]) if program[1] & 8 else program[2:]
        stream_must_not_crash(data, chunk, how)

    check()


def run_lzw(examples: int) -> None:
    @profile(examples)
    @given(st.binary(max_size=300))
    def check(program: bytes) -> None:
        COUNTS["lzw"] += 1
        if program and program[0] & 1:  # a valid stream, cut or mutated
            program = mutate([lzw_compress(program[1:])], program[:1] + program[1:13])
        lzw_must_not_crash(program)

    check()


RUNNERS = {
    "packet_random": run_packet_random,
    "packet_mutations": run_packet_mutations,
    "stream": run_stream,
    "lzw": run_lzw,
}
SHORT = {"packet_random": 600, "packet_mutations": 800, "stream": 500, "lzw": 300}
# >= 100,000 examples in total across the slow tests.
LONG = {"packet_random": 30_000, "packet_mutations": 34_000, "stream": 25_000, "lzw": 12_000}


@pytest.mark.parametrize("name", list(RUNNERS))
def test_fuzz_short(name: str) -> None:
    COUNTS[name] = 0
    RUNNERS[name](SHORT[name])
    assert COUNTS[name] >= SHORT[name]
    assert REASONS <= KNOWN_REASONS
    assert {"compress", "too_large"} >= LZW_REASONS


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RUNNERS))
def test_fuzz_long(name: str) -> None:
    COUNTS[name] = 0
    RUNNERS[name](LONG[name])
    assert COUNTS[name] >= LONG[name]
    assert REASONS <= KNOWN_REASONS
    assert {"compress", "too_large"} >= LZW_REASONS


def test_long_profile_totals_at_least_100k() -> None:
    assert sum(LONG.values()) >= 100_000


def test_seeds_are_valid() -> None:
    """The mutation seeds decode cleanly, so mutations start from deep inside the codec."""
    for seed in PACKET_SEEDS:
        assert decode_packet(seed)
    for seed in STREAM_SEEDS:
        assert StreamDecoder().feed(seed) is not None
