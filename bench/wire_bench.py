"""Wire codec throughput: `python -m bench.wire_bench [--runs N] [--seconds S]`.

Encode and decode rates (operations per second, one thread, so one core) for a
ping, an ack carrying a Serf coordinate, an alive, a CRC'd compound of 8
gossip messages, that compound compressed and encrypted (AES-256-GCM v1), and
a plain push/pull stream message carrying 1,000 and 10,000 member states
(`encode_stream_message`, and one `StreamDecoder.feed` of the whole message).
Push/pull rows are measured twice: "seen before" with the process-wide state
memo warm, as in steady-state anti-entropy where nearly every member's state is
unchanged since the last exchange, and "all new" with an empty memo per
operation (a first contact: every state encoded or decoded, and remembered).
Each figure is the median of `--runs` timed runs of about `--seconds` each.
Runs are timed in process CPU time (`time.process_time`), i.e. per core even
when the machine is shared; `--wall` times them by the wall clock instead.
"""

from __future__ import annotations

import argparse
import functools
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence

from swimguard.wire import (
    AckResp,
    Alive,
    Dead,
    Keyring,
    Ping,
    PushNodeState,
    PushPull,
    PushPullHeader,
    StreamDecoder,
    Suspect,
    decode_packet,
    encode_message,
    encode_packet,
    encode_stream_message,
    make_compound,
)
from swimguard.wire.state_memo import SHARED_MEMO, StateMemo

VSN = bytes((1, 5, 2, 2, 5, 5))
ADDR = bytes((10, 0, 0, 1))
# A real Serf ack payload (coordinate), as captured from serf 0.9.4.
COORDINATE = bytes.fromhex(
    "0184aa41646a7573746d656e74cb0000000000000000a54572726f72cb3ff8000000000000a648656967"
    "6874cb3ee4f8b588e368f1a356656398cb0000000000000000cb0000000000000000cb00000000000000"
    "00cb0000000000000000cb0000000000000000cb0000000000000000cb0000000000000000cb00000000"
    "00000000"
)
KEYRING = Keyring([bytes(range(32))])


def _gossip() -> list[Alive | Suspect | Dead]:
    out: list[Alive | Suspect | Dead] = []
    for i in range(8):
        name = f"node-{i:04d}.dc1"
        if i % 4 == 3:
            out.append(Suspect(incarnation=i + 1, node=name, from_="node-0001.dc1"))
        elif i % 4 == 2:
            out.append(Dead(incarnation=i + 1, node=name, from_="node-0002.dc1"))
        else:
            meta = b"\xff\x82\xa4role\xa3web\xa2dc\xa3dc1"
            out.append(
                Alive(incarnation=i + 1, node=name, addr=ADDR, port=7946, meta=meta, vsn=VSN)
            )
    return out


PUSH_PULL_SIZES = (1_000, 10_000)
# Serf's tags as memberlist node meta: role, dc and the Serf protocol versions.
SERF_META = b"\x83\xa4role\xa3web\xa2dc\xa3dc1\xa2id\xa8node-042"


def push_pull(size: int) -> PushPull:
    """A push/pull as a Serf member of a `size`-member cluster sends it: Serf tags
    as meta, mostly alive members, some suspect, dead and left, a few without meta."""
    states = tuple(
        PushNodeState(
            name=f"node-{i:05d}.dc1",
            addr=bytes((10, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF)),
            port=7946,
            incarnation=1 + i % 7,
            state=(0, 0, 0, 0, 0, 0, 0, 1, 2, 3)[i % 10],
            meta=None if i % 50 == 49 else SERF_META,
            vsn=VSN,
        )
        for i in range(size)
    )
    header = PushPullHeader(nodes=size, user_state_len=24, join=False)
    return PushPull(header, states, b"\x02" + bytes(range(23)))


def _decode_stream(data: bytes, fresh: bool = False) -> object:
    message = StreamDecoder(memo=StateMemo() if fresh else SHARED_MEMO).feed(data)
    assert message is not None
    return message


def _encode_fresh(pp: PushPull) -> bytes:
    return encode_stream_message(pp, memo=StateMemo())


def cases() -> list[tuple[str, Callable[[], object], Callable[[], object]]]:
    """(name, encode, decode) per benchmarked message."""
    ping = Ping(
        seq_no=123456,
        node="node-0042.dc1",
        source_addr=ADDR,
        source_node="node-0001.dc1",
        source_port=7946,
    )
    ack = AckResp(seq_no=123456, payload=COORDINATE)
    alive = _gossip()[0]
    gossip = _gossip()
    ping_bytes = encode_message(ping)
    ack_bytes = encode_message(ack)
    alive_bytes = encode_message(alive)

    def encode_compound() -> bytes:
        return encode_packet(make_compound([encode_message(m) for m in gossip]), crc=True)

    def encode_sealed() -> bytes:
        compound = make_compound([encode_message(m) for m in gossip])
        return encode_packet(compound, compress=True, crc=True, keyring=KEYRING)

    push_pulls = [(size, push_pull(size)) for size in PUSH_PULL_SIZES]
    for _size, pp in push_pulls:
        assert _decode_stream(encode_stream_message(pp)) == pp
    compound_bytes = encode_compound()
    sealed_bytes = encode_sealed()
    assert decode_packet(sealed_bytes, keyring=KEYRING) == gossip
    assert sealed_bytes[0] == 1  # encrypted ...
    assert KEYRING.decrypt(sealed_bytes)[5] == 9  # ... CRC'd and compressed
    out: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        ("ping", lambda: encode_message(ping), lambda: decode_packet(ping_bytes)),
        ("ack", lambda: encode_message(ack), lambda: decode_packet(ack_bytes)),
        ("alive", lambda: encode_message(alive), lambda: decode_packet(alive_bytes)),
        ("compound(8 gossip)+crc", encode_compound, lambda: decode_packet(compound_bytes)),
        (
            "compound+lzw+aes-gcm",
            encode_sealed,
            lambda: decode_packet(sealed_bytes, keyring=KEYRING),
        ),
    ]
    for size, pp in push_pulls:
        data = encode_stream_message(pp)
        out.append(
            (
                f"push/pull({size:,}) seen before",
                functools.partial(encode_stream_message, pp),
                functools.partial(_decode_stream, data),
            )
        )
        out.append(
            (
                f"push/pull({size:,}) all new",
                functools.partial(_encode_fresh, pp),
                functools.partial(_decode_stream, data, fresh=True),
            )
        )
    return out


def rate(
    func: Callable[[], object],
    runs: int,
    seconds: float,
    clock: Callable[[], float] = time.process_time,
) -> float:
    """Median operations per second over `runs` timed runs."""
    calls = 1
    while True:  # calibrate: enough calls to fill `seconds`
        start = clock()
        for _ in range(calls):
            func()
        elapsed = clock() - start
        if elapsed >= seconds / 4:
            break
        calls *= 2
    calls = max(1, int(calls * seconds / elapsed))
    rates = []
    for _ in range(runs):
        start = clock()
        for _ in range(calls):
            func()
        rates.append(calls / max(clock() - start, 1e-9))
    return statistics.median(rates)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the encode/decode table; returns 0."""
    parser = argparse.ArgumentParser(prog="python -m bench.wire_bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (median)")
    parser.add_argument("--seconds", type=float, default=0.3, help="length of one run")
    parser.add_argument("--wall", action="store_true", help="time by wall clock, not CPU time")
    parser.add_argument("--only", default="", help="run only the cases whose name contains this")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.seconds <= 0:
        parser.error("--runs must be >= 1 and --seconds > 0")
    clock = time.perf_counter if args.wall else time.process_time
    print(
        f"wire codec, {platform.python_implementation()} {platform.python_version()}, "
        f"one thread, median of {args.runs} runs of ~{args.seconds:g}s "
        f"({'wall clock' if args.wall else 'CPU time'})"
    )
    print(f"{'message':<28} {'encode ops/s':>14} {'decode ops/s':>14}")
    for name, encode, decode in cases():
        if args.only not in name:
            continue
        enc = rate(encode, args.runs, args.seconds, clock)
        dec = rate(decode, args.runs, args.seconds, clock)
        print(f"{name:<28} {enc:>14,.0f} {dec:>14,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
