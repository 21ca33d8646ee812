"""Helpers for the RPC tests: a fake backend, a raw client and the captured serf bytes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import msgpack
from bench.serf_harness import free_port

from swimguard.rpc import BackendError, LogRing, RpcLimits, RpcMember, RpcServer, SerfStatus
from swimguard.rpc.backend import KeyResult, QueryItemKind

DATA = Path(__file__).parent / "data"
VSN = bytes((1, 5, 2, 2, 5, 5))


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(body())  # type: ignore[arg-type]


def captured(file: str, conn: str) -> list[dict[str, Any]]:
    """The captured steps of one connection of a serf capture (cap1.json, cap2a.json)."""
    steps = json.loads((DATA / file).read_text())
    return [s for s in steps if s.get("conn") == conn]


def session() -> list[dict[str, Any]]:
    return json.loads((DATA / "serf-rpc-session.json").read_text())["exchanges"]


def member(name: str, port: int, status: SerfStatus = SerfStatus.ALIVE,
           tags: Mapping[str, str] | None = None) -> RpcMember:
    return RpcMember(name, "127.0.0.1", port, status, dict(tags or {}), VSN)


class FakeBackend:
    """An agent that records what the server asked of it."""

    def __init__(self, members: Sequence[RpcMember] = ()) -> None:
        self.name = "a"
        self.tags: dict[str, str] = {}
        self.member_list = list(members)
        self.events: list[tuple[str, bytes, bool]] = []
        self.joins: list[list[str]] = []
        self.ltime = 1
        self.left = False
        self.join_result: int | str = 1
        self.responses: list[tuple[object, bytes]] = []
        self.forced: list[tuple[str, bool]] = []
        self.queries: list[tuple[str, bytes, dict[str, Any]]] = []
        self.query_items: list[tuple[QueryItemKind, str, bytes | None]] = []
        self.key_commands: list[tuple[str, str]] = []
        self.coordinates: dict[str, Mapping[str, object]] = {}
        self.key_result = KeyResult({}, {}, 1, 1, 0, "")

    def members(self) -> list[RpcMember]:
        return list(self.member_list)

    async def join(self, addresses: Sequence[str], *, replay: bool) -> int:
        self.joins.append(list(addresses))
        if isinstance(self.join_result, str):
            raise BackendError(self.join_result)
        return self.join_result

    async def leave(self) -> None:
        self.left = True

    def user_event(self, name: str, payload: bytes, *, coalesce: bool) -> int:
        if len(name) + len(payload) > 512:
            raise BackendError("user event exceeds configured limit of 512 bytes before encoding")
        self.events.append((name, payload, coalesce))
        self.ltime += 1
        return self.ltime - 1

    async def set_tags(self, tags: Mapping[str, str]) -> None:
        self.tags = dict(tags)

    def stats(self) -> dict[str, dict[str, str]]:
        return {"agent": {"name": self.name}, "tags": dict(self.tags)}

    def query(self, name: str, payload: bytes, **params: Any) -> AsyncIterator[Any]:
        if name.startswith("_serf_"):
            raise BackendError("Queries cannot contain the '_serf_' prefix")
        self.queries.append((name, payload, params))

        async def items() -> AsyncIterator[Any]:
            for item in self.query_items:
                yield item

        return items()

    async def key_command(self, command: Any, key: str) -> KeyResult:
        self.key_commands.append((str(command), key))
        return self.key_result

    def coordinate(self, node: str) -> Mapping[str, object] | None:
        return self.coordinates.get(node)

    def force_leave(self, node: str, *, prune: bool) -> None:
        self.forced.append((node, prune))

    def respond(self, query: object, payload: bytes) -> None:
        if len(payload) > 1000:
            raise BackendError(
                "failed to respond to key query: response exceeds limit of 1024 bytes"
            )
        self.responses.append((query, payload))


class RawClient:
    """Bytes in, msgpack objects out, on one connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.unpacker = msgpack.Unpacker(raw=False)

    @classmethod
    async def connect(cls, address: tuple[str, int]) -> RawClient:
        reader, writer = await asyncio.open_connection(*address)
        return cls(reader, writer)

    async def send(self, *objects: object) -> None:
        for obj in objects:
            self.writer.write(msgpack.packb(obj, use_bin_type=True))
        await self.writer.drain()

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read(self, count: int = 1) -> list[Any]:
        out: list[Any] = []
        while len(out) < count:
            for obj in self.unpacker:
                out.append(obj)
                if len(out) == count:
                    break
            if len(out) == count:
                break
            data = await self.reader.read(65536)
            if not data:
                raise EOFError(f"closed after {out!r}")
            self.unpacker.feed(data)
        return out

    async def closed(self) -> bool:
        """True once the server hung up with nothing more to say (waits for it)."""
        data = await self.reader.read(65536)
        return data == b""

    async def call(
        self, command: str, seq: int, body: object = None, replies: int = 1
    ) -> list[Any]:
        if body is None:
            await self.send({"Command": command, "Seq": seq})
        else:
            await self.send({"Command": command, "Seq": seq}, body)
        return await self.read(replies)

    async def handshake(self, seq: int = 0) -> None:
        assert await self.call("handshake", seq, {"Version": 1}) == [{"Error": "", "Seq": seq}]

    async def aclose(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


async def serve(backend: Any, *, auth_key: str = "", log_ring: LogRing | None = None,
                limits: RpcLimits | None = None) -> RpcServer:
    server = RpcServer(backend, auth_key=auth_key, log_ring=log_ring, limits=limits)
    await server.start("127.0.0.1", 0)
    return server


class AgentProcess:
    """`python -m swimguard agent` with its RPC on a free port; stopped by its own PID."""

    def __init__(
        self,
        name: str,
        *extra: str,
        rpc: bool = True,
        stdout: int | IO[bytes] = subprocess.DEVNULL,
        stderr: int | IO[bytes] = subprocess.PIPE,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.rpc_port = free_port() if rpc else 0
        rpc_addr = f"127.0.0.1:{self.rpc_port}" if rpc else ""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "swimguard", "agent", "--name", name,
             "--bind", f"127.0.0.1:{self.port}", "--profile", "local",
             "--rpc-addr", rpc_addr, *extra],
            stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
        )
        if rpc:
            self._wait_rpc()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _wait_rpc(self) -> None:
        # Readiness, not a timing assertion: poll until the port accepts or the agent died.
        for _ in range(600):
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent {self.name} exited: {self.stderr()}")
            with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.rpc_port), timeout=1
            ):
                return
            time.sleep(0.05)
        raise RuntimeError(f"agent {self.name}: RPC never came up")

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read().decode(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def eventually(predicate: Callable[[], Any], what: str, tries: int = 400) -> Any:
    """Poll `predicate` (every 50 ms) until truthy; fails with `what` if it never is."""
    for _ in range(tries):
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")
