"""Hostile TCP streams against one live agent (issue 10 #2 and #4): `python -m bench.stream_attack`.

A victim agent (Config.lan(): tcp_timeout 10 s) runs in a child process on 127.0.0.1; this
process attacks it and measures, per scenario:

* `header-lie`: a push/pull header announcing 20,971,520 states, then 1-byte "states" sent
  as fast as the victim reads, until it closes the connection (at most 40 s);
* `valid-states`: the same with 600,000 announced (they could fit in 20 MiB) and real
  ~55-byte member states;
* `user-20mib`: 32 connections each sending a reliable user message of 20 MiB;
* `compress-bomb`: 4 connections each sending a ~80 KB compressed stream that expands to
  a 20 MiB user message plus 19 MiB of padding (just under the 40 MiB bound);
* `slowloris`: 128 idle connections from one address (127.0.0.2 when it can be bound),
  then a new agent joins through the victim and the victim pushes/pulls with it.

Figures: victim RSS peak (VmHWM, reset before each scenario) and after, UDP pings answered
(a memberlist ping every 100 ms, lost = no ack within 500 ms), the victim's worst loop
block (a 5 ms ticker inside it), connection lifetime, and join success through the victim.
Not part of `make bench` (it takes about a minute and over 1 GB against unbounded code).
Run against other code with `PYTHONPATH=/path/to/src:. python -m bench.stream_attack`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine, Sequence
from typing import Any

from swimguard.aio import Agent
from swimguard.config import Config
from swimguard.errors import JoinError
from swimguard.wire.compression import lzw_compress
from swimguard.wire.messages import (
    AckResp,
    Compress,
    MessageType,
    Ping,
    PushNodeState,
    PushPullHeader,
    UserMsgHeader,
    encode_body,
)
from swimguard.wire.packet import decode_packet, encode_message

ATTACKER_IP = "127.0.0.2"
MIB = 1024 * 1024
SCENARIOS = ("header-lie", "valid-states", "user-20mib", "compress-bomb", "slowloris")


# -- the victim (child process) ------------------------------------------------------------


async def _victim() -> None:
    worst = 0.0

    async def ticker() -> None:
        nonlocal worst
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(0.005)
            worst = max(worst, loop.time() - start - 0.005)

    async with Agent("victim", bind="127.0.0.1:0", config=Config.lan(), serf_compat=False) as a:
        tick = asyncio.create_task(ticker())

        async def consume() -> None:
            # An application reading its events: delivered user messages are not kept
            # (unread, up to AgentConfig.event_buffer of them would be).
            async for _event in a.events():
                pass

        events = asyncio.create_task(consume())
        print(json.dumps({"port": a.bound_address[1]}), flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            command = line.decode().split()
            reply: dict[str, Any] = {}
            if command[0] == "report":
                reply = {"worst_block": worst, "drops": a.drops, "open": a.open_connections}
                worst = 0.0
            elif command[0] == "join":
                try:
                    reply = {"joined": await a.join([(command[1], int(command[2]))], timeout=15)}
                except JoinError as exc:
                    reply = {"joined": 0, "error": str(exc)}
            print(json.dumps(reply), flush=True)
        tick.cancel()
        events.cancel()


# -- the attacker ----------------------------------------------------------------------------


class Victim:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.stream_attack", "--victim"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(json.loads(self.proc.stdout.readline())["port"])

    def ask(self, *words: object) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(" ".join(map(str, words)) + "\n")
        self.proc.stdin.flush()
        reply: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return reply

    async def ask_async(self, *words: object) -> dict[str, Any]:
        return await asyncio.get_running_loop().run_in_executor(None, self.ask, *words)

    def memory(self) -> tuple[float, float]:
        """(peak, current) RSS in MB."""
        fields = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields[key] = value
        return int(fields["VmHWM"].split()[0]) / 1024, int(fields["VmRSS"].split()[0]) / 1024

    def reset_peak(self) -> None:
        with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
            f.write("5")

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Pinger:
    """memberlist pings to the victim every 100 ms; counts those not acked within 500 ms."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.target = ("127.0.0.1", port)
        self.sent: dict[int, float] = {}
        self.acked = 0
        self.lost = 0
        self.seq = 0

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        me = self.sock.getsockname()
        loop.add_reader(self.sock.fileno(), self._read)
        try:
            while not stop.is_set():
                self.seq += 1
                ping = Ping(self.seq, "victim", bytes(4), "pinger", me[1])
                self.sock.sendto(encode_message(ping), self.target)
                self.sent[self.seq] = loop.time()
                self._expire(loop.time())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.1)
            await asyncio.sleep(0.5)
            self._expire(float("inf"))
        finally:
            loop.remove_reader(self.sock.fileno())

    def _read(self) -> None:
        now = asyncio.get_running_loop().time()
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            for msg in decode_packet(data):
                if isinstance(msg, AckResp) and msg.seq_no in self.sent:
                    if now - self.sent.pop(msg.seq_no) <= 0.5:
                        self.acked += 1
                    else:
                        self.lost += 1

    def _expire(self, now: float) -> None:
        for seq, at in list(self.sent.items()):
            if now - at > 0.5:
                del self.sent[seq]
                self.lost += 1


def _source() -> str:
    try:
        with socket.socket() as s:
            s.bind((ATTACKER_IP, 0))
    except OSError:
        return "127.0.0.1"
    return ATTACKER_IP


def _valid_states(count: int) -> bytes:
    return b"".join(
        encode_body(PushNodeState(f"x{i}", b"", 0, 0, 0, None, b"")) for i in range(count)
    )


async def _header_lie(port: int, *, valid: bool = False) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = time.monotonic()
    head = bytes((MessageType.PUSH_PULL,)) + encode_body(
        PushPullHeader(nodes=600_000 if valid else 20_971_520, user_state_len=0, join=False)
    )
    writer.write(head)
    # An empty map is the smallest msgpack "state"; valid ones are ~55 bytes each.
    chunk = _valid_states(4700) if valid else b"\x80" * (256 * 1024)
    sent = len(head)
    try:
        while time.monotonic() - start < 40 and not reader.at_eof():
            writer.write(chunk)
            sent += len(chunk)
            await writer.drain()
    except ConnectionError:
        pass
    with contextlib.suppress(ConnectionError, TimeoutError):
        await asyncio.wait_for(reader.read(), max(0.1, 40 - (time.monotonic() - start)))
    lifetime = time.monotonic() - start
    writer.close()
    return {"lifetime_s": round(lifetime, 2), "sent_mb": round(sent / MIB, 1)}


async def _user_messages(port: int, count: int = 32, size: int = 20 * MIB) -> dict[str, Any]:
    body = bytes((MessageType.USER,)) + encode_body(UserMsgHeader(user_msg_len=size))
    payload = b"u" * MIB

    async def one() -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        try:
            writer.write(body)
            for _ in range(size // MIB):
                writer.write(payload)
                await writer.drain()
            await asyncio.wait_for(reader.read(), 30)
            return True
        except (ConnectionError, TimeoutError):
            return False
        finally:
            writer.close()

    start = time.monotonic()
    results = await asyncio.gather(*(one() for _ in range(count)))
    return {"delivered": sum(results), "of": count, "seconds": round(time.monotonic() - start, 1)}


async def _compress_bombs(port: int, count: int = 4) -> dict[str, Any]:
    inner = bytes((MessageType.USER,)) + encode_body(UserMsgHeader(user_msg_len=20 * MIB))
    bomb = bytes((MessageType.COMPRESS,)) + encode_body(
        Compress(buf=lzw_compress(inner + bytes(39 * MIB)))
    )

    async def one() -> bool:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(bomb)
            await writer.drain()
            await asyncio.wait_for(reader.read(), 60)
            return True
        except (ConnectionError, TimeoutError):
            return False
        finally:
            writer.close()

    start = time.monotonic()
    results = await asyncio.gather(*(one() for _ in range(count)))
    return {
        "bomb_kb": len(bomb) // 1024,
        "closed_by_victim": sum(results),
        "seconds": round(time.monotonic() - start, 1),
    }


async def _slowloris(victim: Victim, source: str) -> dict[str, Any]:
    idle: list[asyncio.StreamWriter] = []
    for _ in range(128):
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", victim.port, local_addr=(source, 0))
        except OSError:
            break
        idle.append(w)
    await asyncio.sleep(0.5)
    config = Config.lan()
    async with Agent("newcomer", bind="127.0.0.1:0", config=config, serf_compat=False) as b:
        try:
            joined_in = await b.join([("127.0.0.1", victim.port)], timeout=15)
        except JoinError:
            joined_in = 0
        out = await victim.ask_async("join", *b.bound_address)
    for w in idle:
        w.close()
    return {
        "idle_connections": len(idle),
        "source": source,
        "join_through_victim": joined_in == 1,
        "victim_push_pull_out": out.get("joined") == 1,
    }


async def _scenario(
    victim: Victim, name: str, attack: Coroutine[Any, Any, dict[str, Any]]
) -> dict[str, Any]:
    victim.reset_peak()
    await victim.ask_async("report")  # resets the worst block
    pinger = Pinger(victim.port)
    stop = asyncio.Event()
    ping_task = asyncio.create_task(pinger.run(stop))
    result = await attack
    stop.set()
    await ping_task
    await asyncio.sleep(1.0)
    peak, after = victim.memory()
    report = await victim.ask_async("report")
    result.update(
        scenario=name,
        rss_peak_mb=round(peak, 1),
        rss_after_mb=round(after, 1),
        pings_lost=f"{pinger.lost}/{pinger.lost + pinger.acked}",
        loop_blocked_max_s=round(report["worst_block"], 3),
    )
    return result


async def _attack(scenarios: Sequence[str]) -> None:
    import swimguard

    print(f"code: {os.path.dirname(swimguard.__file__)}", flush=True)
    victim = Victim()
    try:
        _peak, start_rss = victim.memory()
        print(json.dumps({"rss_start_mb": round(start_rss, 1)}), flush=True)
        for name in scenarios:
            if name == "header-lie":
                attack = _header_lie(victim.port)
            elif name == "valid-states":
                attack = _header_lie(victim.port, valid=True)
            elif name == "user-20mib":
                attack = _user_messages(victim.port)
            elif name == "compress-bomb":
                attack = _compress_bombs(victim.port)
            else:
                attack = _slowloris(victim, _source())
            print(json.dumps(await _scenario(victim, name, attack)), flush=True)
        # Afterwards: a new member can still join through the attacked agent.
        async with Agent("late", bind="127.0.0.1:0", config=Config.lan(), serf_compat=False) as c:
            try:
                ok = await c.join([("127.0.0.1", victim.port)], timeout=15) == 1
            except JoinError:
                ok = False
        final = await victim.ask_async("report")
        stream_drops = {
            k: v
            for k, v in final["drops"].items()
            if k.startswith("tcp_") or k.startswith("stream") or k in ("body", "too_large")
        }
        print(json.dumps({"join_after_attack": ok, "drops": stream_drops}), flush=True)
    finally:
        victim.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the attack (or, with --victim, be the victim)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--victim", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "scenarios", nargs="*", help=f"some of {', '.join(SCENARIOS)} (default: all)"
    )
    args = parser.parse_args(argv)
    if args.victim:
        asyncio.run(_victim())
        return 0
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    asyncio.run(_attack(args.scenarios or SCENARIOS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
