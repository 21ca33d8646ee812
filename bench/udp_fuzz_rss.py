"""RSS of a live agent before and after a flood of mutated UDP packets (issue 10, finding 6).

    python -m bench.udp_fuzz_rss [--packets 100000] [--rate 5000] [--bombs 0.01] [--seed 1]

Starts `swimguard agent` (Serf on) as a child process on 127.0.0.1 and sends it
`--packets` datagrams built from the captured memberlist and Serf packets:
byte flips, truncations, insertions, splices and plain random bytes, plus a
share (`--bombs`) of compound packets of 1-31 LZW bombs (bench.lzw_attack). Prints
the agent's RSS at start, its peak, and 5 s after the flood, and whether the
agent still answers a ping.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from bench.lzw_attack import bomb_packet
from bench.procs import LOOPBACK, free_ports
from swimguard.wire import AckResp, Ping, decode_packet
from swimguard.wire.checksum import CRC_HEADER_LEN, CRC_TYPE, add_crc
from swimguard.wire.messages import MessageType, encode_body

ROOT = Path(__file__).resolve().parent.parent
SOURCES = (
    (ROOT / "tests" / "vectors" / "serf-captured.json", "vectors"),
    (ROOT / "tests" / "vectors" / "data" / "memberlist-plain-captured.json", "udp"),
)


def captured_packets() -> list[bytes]:
    """Unencrypted UDP datagrams from the captured vector files that exist here."""
    packets: list[bytes] = []
    for path, key in SOURCES:
        if not path.exists():
            continue
        for vector in json.loads(path.read_text())[key]:
            if vector.get("proto", "udp") != "udp" or vector.get("mode") == "encrypted":
                continue
            packets.append(bytes.fromhex(vector["hex"]))
    if not packets:
        raise SystemExit("no captured packets found")
    return packets


def mutate(rng: random.Random, seeds: Sequence[bytes]) -> bytes:
    """One hostile datagram; a mutated CRC-wrapped packet usually gets a valid CRC again."""
    seed = rng.choice(seeds)
    if seed[:1] == bytes((CRC_TYPE,)) and len(seed) > CRC_HEADER_LEN and rng.random() < 0.8:
        inner = _mutate_bytes(rng, seed[CRC_HEADER_LEN:], seeds)
        return add_crc(inner)
    return _mutate_bytes(rng, seed, seeds)


def _mutate_bytes(rng: random.Random, seed: bytes, seeds: Sequence[bytes]) -> bytes:
    data = bytearray(seed)
    kind = rng.randrange(5)
    if kind == 0:  # flip a few bytes
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 1:  # truncate
        del data[rng.randrange(1, len(data) + 1):]
    elif kind == 2:  # insert random bytes
        at = rng.randrange(len(data) + 1)
        data[at:at] = rng.randbytes(rng.randint(1, 32))
    elif kind == 3:  # splice two packets
        other = rng.choice(seeds)
        data = data[: rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1):]
    else:  # random bytes with a plausible type byte
        data = bytearray((rng.randrange(16),)) + rng.randbytes(rng.randint(0, 1400))
    return bytes(data) or b"\x00"


def ping_answered(target: tuple[str, int]) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        s.settimeout(2.0)
        s.sendto(bytes((MessageType.PING,)) + encode_body(Ping(seq_no=424242)), target)
        try:
            while True:
                for msg in decode_packet(s.recv(65536), errors=[]):
                    if isinstance(msg, AckResp) and msg.seq_no == 424242:
                        return True
        except TimeoutError:
            return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.udp_fuzz_rss", description=__doc__)
    parser.add_argument("--packets", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=5_000.0, help="packets per second")
    parser.add_argument("--bombs", type=float, default=0.01, help="share of LZW bomb packets")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    seeds = captured_packets()
    port = free_ports(1)[0]
    child = subprocess.Popen(
        [sys.executable, "-m", "swimguard", "agent", "--name", "victim",
         "--bind", f"{LOOPBACK}:{port}", "--log-level", "ERROR", "--rpc-addr", ""],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert child.stdout is not None
        child.stdout.readline()  # own member-join: up
        proc = psutil.Process(child.pid)
        time.sleep(1.0)
        start = peak = proc.memory_info().rss
        target = (LOOPBACK, port)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        began = time.monotonic()
        bombs = [bomb_packet(n) for n in (1, 2, 8, 31)]
        for i in range(args.packets):
            if rng.random() < args.bombs:
                sender.sendto(rng.choice(bombs), target)
            else:
                sender.sendto(mutate(rng, seeds), target)
            if i % 500 == 0:
                ahead = i / args.rate - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)
                if i % 5000 == 0:
                    peak = max(peak, proc.memory_info().rss)
        sent_for = time.monotonic() - began
        for _ in range(50):
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.1)
        after = proc.memory_info().rss
        mib = 1 << 20
        print(f"{args.packets} packets from {len(seeds)} captured ones in {sent_for:.1f}s")
        print(f"RSS start {start / mib:.1f} MiB, peak {peak / mib:.1f} MiB, "
              f"5 s after {after / mib:.1f} MiB; ping answered: {ping_answered(target)}")
        sender.close()
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
