"""Start and drive real HashiCorp Serf agents (and swimguard agent processes) on 127.0.0.1.

Shared by the interop tests (tests/interop) and the interop benchmark. Every process is
started by us, remembered by its PID and stopped by that PID (SIGTERM, then SIGKILL);
`Cluster.close()` stops everything it started, whatever state the test left it in.

Serf side:
* `serf agent -node N -bind 127.0.0.1:P -rpc-addr 127.0.0.1:R -event-handler H`, where H
  appends `<unix time> <event> <member line>` to a per-agent file;
* its log (stdout) is read by a thread that timestamps each line on arrival, so
  `EventMemberFailed` etc. can be timed to the millisecond;
* `SerfRPC`: a small client of the agent RPC protocol (new-spec msgpack) for `members`,
  `tags`, `event`, `leave`; `members_cli()` runs the `serf members` command itself.

swimguard side: `python -m swimguard agent --name --bind ...` whose JSON-lines stdout
(`{"ts","event","name","addr","incarnation"}`) is collected the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgpack

SERF = shutil.which("serf")
HANDLER = """#!/bin/sh
# serf event handler: one line per member (or one for a user event), timestamped.
ts=$(date +%s.%N)
if [ "$SERF_EVENT" = "user" ]; then
  echo "$ts user $SERF_USER_EVENT" >> "$1"
  # serf writes the payload to our stdin concurrently (invoke.go streamPayload); exiting
  # unread would make it log "[ERR] Error writing payload: broken pipe", so drain it.
  cat > /dev/null
else
  while read -r line; do echo "$ts $SERF_EVENT $line" >> "$1"; done
fi
"""


def free_port() -> int:
    """A port currently free for both TCP and UDP on 127.0.0.1 (memberlist needs both)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def wait_for(
    predicate: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll `predicate` until it returns something truthy; raise TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what or predicate}")
        time.sleep(interval)


class LineLog:
    """Lines of a child's stdout, each stamped with `time.time()` on arrival (reader thread)."""

    def __init__(self, stream: Any, echo_path: Path | None = None) -> None:
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._echo = echo_path.open("a", encoding="utf-8") if echo_path else None
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream: Any) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            now = time.time()
            with self._lock:
                self.lines.append((now, line))
            if self._echo:
                self._echo.write(f"{now:.3f} {line}\n")
                self._echo.flush()
        stream.close()

    def snapshot(self) -> list[tuple[float, str]]:
        """A copy of the lines so far."""
        with self._lock:
            return list(self.lines)

    def find(self, needle: str, since: float = 0.0) -> float | None:
        """Arrival time of the first line at/after `since` containing `needle`."""
        for ts, line in self.snapshot():
            if ts >= since and needle in line:
                return ts
        return None

    def join(self, timeout: float = 2.0) -> None:
        """Wait for EOF (after the process exited) and close the echo file."""
        self._thread.join(timeout)
        if self._echo:
            self._echo.close()
            self._echo = None


class Proc:
    """A child process we started; stopped by its own PID only."""

    def __init__(
        self, name: str, argv: Sequence[str], workdir: Path, env: Mapping[str, str]
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.stderr_path = workdir / f"{name}.stderr"
        with self.stderr_path.open("wb") as err:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=dict(env),
                start_new_session=True,  # a test's Ctrl-C does not reach it; we stop it ourselves
            )
        self.pid = self.popen.pid
        self.log = LineLog(self.popen.stdout, workdir / f"{name}.log")

    @property
    def alive(self) -> bool:
        """Still running (not exited, not reaped)."""
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        """Send `sig` to our child by PID (no-op once it has exited)."""
        if self.alive:
            os.kill(self.pid, sig)

    def kill9(self) -> float:
        """SIGKILL it; returns the kill time (time.time())."""
        t = time.time()
        self.signal(signal.SIGKILL)
        self.popen.wait(5)
        return t

    def stop(self, timeout: float = 5.0) -> None:
        """SIGCONT (in case it is paused), SIGTERM, then SIGKILL if it lingers."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        self.log.join()

    def stderr_text(self) -> str:
        """What the process wrote to stderr."""
        return self.stderr_path.read_text("utf-8", "replace")


# --- Serf RPC -----------------------------------------------------------------------------


class SerfRPC:
    """Minimal blocking client for the serf agent RPC (IPC version 1, new-spec msgpack)."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.unpacker = msgpack.Unpacker(raw=False)
        self.seq = 0
        self.call("handshake", {"Version": 1})

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()

    def __enter__(self) -> SerfRPC:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self) -> Any:
        while True:
            for obj in self.unpacker:
                return obj
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("serf RPC connection closed")
            self.unpacker.feed(chunk)

    def call(self, command: str, body: Mapping[str, Any] | None = None, reply: bool = False) -> Any:
        """Send one command; return its response body if `reply`. Raises RuntimeError on Error."""
        self.seq += 1
        out = msgpack.packb({"Command": command, "Seq": self.seq}, use_bin_type=True)
        if body is not None:
            out += msgpack.packb(dict(body), use_bin_type=True)
        self.sock.sendall(out)
        header = self._read()
        result = self._read() if reply else None
        if header.get("Error"):
            raise RuntimeError(f"serf RPC {command}: {header['Error']}")
        return result

    def members(self) -> list[dict[str, Any]]:
        """All members with Name, Addr, Port, Status (str), Tags, Delegate*/Protocol*."""
        return list(self.call("members", reply=True)["Members"])

    def statuses(self) -> dict[str, str]:
        """name -> status ("alive", "failed", "left", "leaving")."""
        return {m["Name"]: m["Status"] for m in self.members()}

    def set_tags(self, tags: Mapping[str, str], delete: Iterable[str] = ()) -> None:
        """Change this agent's tags."""
        self.call("tags", {"Tags": dict(tags), "DeleteTags": list(delete)})

    def user_event(self, name: str, payload: bytes, coalesce: bool = False) -> None:
        """Fire a Serf user event."""
        self.call("event", {"Name": name, "Payload": payload, "Coalesce": coalesce})

    def stats(self) -> dict[str, Any]:
        """Agent stats sections."""
        return dict(self.call("stats", reply=True))


# --- agents -------------------------------------------------------------------------------


@dataclasses.dataclass
class SerfAgent:
    """A running `serf agent`."""

    name: str
    port: int
    rpc_port: int
    proc: Proc
    events_path: Path

    @property
    def addr(self) -> str:
        """host:port of its memberlist listener."""
        return f"127.0.0.1:{self.port}"

    def rpc(self) -> SerfRPC:
        """A new RPC connection (use as a context manager)."""
        return SerfRPC(self.rpc_port)

    def statuses(self) -> dict[str, str]:
        """name -> status as the agent's RPC `members` reports it."""
        with self.rpc() as rpc:
            return rpc.statuses()

    def user_event(self, name: str, payload: bytes, coalesce: bool = False) -> None:
        """Fire a user event through this agent's RPC."""
        with self.rpc() as rpc:
            rpc.user_event(name, payload, coalesce)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Set/replace tags through RPC."""
        with self.rpc() as rpc:
            rpc.set_tags(tags)

    def leave(self) -> None:
        """Ask the agent to leave gracefully (it exits afterwards)."""
        with self.rpc() as rpc:
            rpc.call("leave")

    def members_cli(self) -> list[dict[str, Any]]:
        """`serf members -format json` parsed (the Go command-line client itself)."""
        assert SERF is not None
        out = subprocess.run(
            [SERF, "members", f"-rpc-addr=127.0.0.1:{self.rpc_port}", "-format=json"],
            capture_output=True,
            timeout=10,
            check=True,
        ).stdout
        return list(json.loads(out)["members"])

    def handler_events(self) -> list[tuple[float, str, str]]:
        """(unix time, event, rest of line) written by the event handler so far."""
        if not self.events_path.exists():
            return []
        out = []
        for line in self.events_path.read_text("utf-8", "replace").splitlines():
            ts, event, rest = [*line.split(" ", 2), "", ""][:3]
            with contextlib.suppress(ValueError):
                out.append((float(ts), event, rest))
        return out


@dataclasses.dataclass
class SwimAgent:
    """A running `python -m swimguard agent` process and the events it printed."""

    name: str
    port: int
    proc: Proc

    @property
    def addr(self) -> str:
        """host:port of its listener."""
        return f"127.0.0.1:{self.port}"

    def events(self) -> list[dict[str, Any]]:
        """Parsed JSON-lines events so far (each with our arrival time as `_t`)."""
        out = []
        for ts, line in self.proc.log.snapshot():
            with contextlib.suppress(ValueError):
                obj = json.loads(line)
                if isinstance(obj, dict):
                    obj["_t"] = ts
                    out.append(obj)
        return out

    def view(self) -> dict[str, str]:
        """name -> last event seen about it (e.g. member-join, member-failed, member-leave)."""
        state: dict[str, str] = {}
        for ev in self.events():
            name = ev.get("name")
            if isinstance(name, str) and isinstance(ev.get("event"), str):
                state[name] = ev["event"]
        return state


class Cluster:
    """Owns every agent a test or benchmark starts; `close()` stops them all by PID."""

    def __init__(self, workdir: Path | None = None, keep: bool = False) -> None:
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="swimguard-interop-")
        self.workdir = workdir or Path(self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.keep = keep
        self.procs: list[Proc] = []
        self.serf: dict[str, SerfAgent] = {}
        self.swim: dict[str, SwimAgent] = {}
        self.handler = self.workdir / "serf-event-handler.sh"
        self.handler.write_text(HANDLER)
        self.handler.chmod(0o755)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close_processes(self) -> None:
        """Stop every process we started (by PID); their logs stay in the work directory."""
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                proc.stop()

    def close(self) -> None:
        """Stop every process we started (by PID) and remove the work directory."""
        self.close_processes()
        if self._tmp is not None and not self.keep:
            self._tmp.cleanup()

    def _unique(self, label: str) -> str:
        """A log-file label not used yet (a restarted agent keeps its name)."""
        taken = {p.name for p in self.procs}
        n, out = 1, label
        while out in taken:
            n += 1
            out = f"{label}.{n}"
        return out

    def logs(self, tail: int = 40) -> str:
        """The last lines of every agent's log, for assertion messages."""
        parts = []
        for proc in self.procs:
            lines = [line for _, line in proc.log.snapshot()[-tail:]]
            parts.append(f"--- {proc.name} (pid {proc.pid}) ---\n" + "\n".join(lines))
            err = proc.stderr_text().strip()
            if err:
                parts.append(f"--- {proc.name} stderr ---\n{err[-3000:]}")
        return "\n".join(parts)

    def start_serf(
        self,
        name: str,
        join: Sequence[str] = (),
        *,
        profile: str = "local",
        encrypt: str | None = None,
        tags: Mapping[str, str] | None = None,
        compression: bool = True,
        log_level: str = "debug",
        extra: Sequence[str] = (),
        port: int | None = None,
    ) -> SerfAgent:
        """Start `serf agent` (on `port` if given, e.g. a restart); returns once its RPC answers."""
        if SERF is None:
            raise RuntimeError("serf is not installed (apt-get install serf)")
        port, rpc_port = port or free_port(), free_port()
        events = self.workdir / f"{name}.events"
        argv = [
            SERF,
            "agent",
            f"-node={name}",
            f"-bind=127.0.0.1:{port}",
            f"-rpc-addr=127.0.0.1:{rpc_port}",
            f"-profile={profile}",
            f"-log-level={log_level}",
            f"-event-handler={self.handler} {events}",
        ]
        argv += [f"-join={j}" for j in join]
        if encrypt:
            argv.append(f"-encrypt={encrypt}")
        for k, v in (tags or {}).items():
            argv.append(f"-tag={k}={v}")
        if not compression:
            argv.append("-disable-compression")
        argv += list(extra)
        proc = Proc(self._unique(f"serf-{name}"), argv, self.workdir, os.environ)
        self.procs.append(proc)
        agent = SerfAgent(name, port, rpc_port, proc, events)
        self.serf[name] = agent

        def rpc_up() -> bool:
            if not proc.alive:
                raise RuntimeError(
                    f"serf agent {name} exited:\n{proc.stderr_text()}\n{self.logs()}"
                )
            try:
                with agent.rpc():
                    return True
            except OSError:
                return False

        wait_for(rpc_up, 10, 0.05, f"serf {name} RPC")
        return agent

    def start_swim(
        self,
        name: str,
        join: Sequence[str] = (),
        *,
        profile: str = "local",
        encrypt: str | None = None,
        tags: Mapping[str, str] | None = None,
        extra: Sequence[str] = (),
        log_level: str = "info",
        port: int | None = None,
    ) -> SwimAgent:
        """Start `python -m swimguard agent` (on `port` if given); returns after its first event."""
        port = port or free_port()
        argv = [
            sys.executable,
            "-m",
            "swimguard",
            "agent",
            "--name",
            name,
            "--bind",
            f"127.0.0.1:{port}",
            "--profile",
            profile,
            "--log-level",
            log_level,
        ]
        if "--rpc-addr" not in extra:
            # Several agents share this host: none may take Serf's default RPC port 7373.
            argv += ["--rpc-addr", ""]
        for j in join:
            argv += ["--join", j]
        if encrypt:
            argv += ["--encrypt", encrypt]
        for k, v in (tags or {}).items():
            argv += ["--tag", f"{k}={v}"]
        argv += list(extra)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = Proc(self._unique(f"swim-{name}"), argv, self.workdir, env)
        self.procs.append(proc)
        agent = SwimAgent(name, port, proc)
        self.swim[name] = agent

        def started() -> bool:
            if not proc.alive:
                raise RuntimeError(f"swimguard agent {name} exited:\n{proc.stderr_text()}")
            return bool(agent.events())

        wait_for(started, 15, 0.05, f"swimguard {name} first event")
        return agent

    def serf_views(self) -> dict[str, dict[str, str]]:
        """Every running serf agent's name -> status map."""
        return {n: a.statuses() for n, a in self.serf.items() if a.proc.alive}

    def serf_all_alive(self, names: Iterable[str]) -> bool:
        """True when every running serf agent holds each of `names` as alive.

        A test must wait for this before it kills or removes a member and then asks a
        serf agent about it: memberlist ignores suspect/dead news about a member it has
        never heard of (`suspectNode`/`deadNode` return for unknown names), so an agent
        that missed the member's alive gossip can never report it failed or left.
        """
        wanted = set(names)
        return all(
            all(view.get(n) == "alive" for n in wanted) for view in self.serf_views().values()
        )

    def swim_views(self) -> dict[str, dict[str, str]]:
        """Every running swimguard agent's name -> last event map."""
        return {n: a.view() for n, a in self.swim.items() if a.proc.alive}


def serf_key(seed: int = 1) -> str:
    """A deterministic 32-byte AES key in serf's base64 form (as `serf keygen` makes)."""
    import base64
    import random

    return base64.b64encode(random.Random(seed).randbytes(32)).decode()
