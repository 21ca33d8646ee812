"""`swimguard agent` as real processes on 127.0.0.1: join, crash, leave, output format."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

KEYS = {"ts", "event", "name", "addr", "incarnation", "tags", "status"}
EVENTS = {"member-join", "member-leave", "member-failed", "member-update", "member-suspect"}


class AgentProcess:
    """One `python -m swimguard agent` child; its JSON lines are collected by a thread."""

    def __init__(self, name: str, *extra: str) -> None:
        self.name = name
        self.lines: list[dict[str, object]] = []
        self.raw: list[str] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "swimguard", "agent", "--name", name,
             "--bind", "127.0.0.1:0", "--profile", "local", "--log-level", "WARNING",
             "--rpc-addr", "", *extra],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.raw.append(line)
                self.lines.append(json.loads(line))

    def events(self) -> list[dict[str, object]]:
        with self._lock:
            return list(self.lines)

    def saw(self, event: str, name: str) -> bool:
        return any(e["event"] == event and e["name"] == name for e in self.events())

    def when(self, event: str, name: str) -> float | None:
        for e in self.events():
            if e["event"] == event and e["name"] == name:
                ts = e["ts"]
                assert isinstance(ts, float)
                return ts
        return None

    def state_of(self, name: str) -> str | None:
        state = None
        for e in self.events():
            if e["name"] == name:
                state = str(e["event"])
        return state

    @property
    def addr(self) -> str:
        own = [e for e in self.events() if e["name"] == self.name and e["event"] == "member-join"]
        return str(own[0]["addr"]) if own else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def wait_until(predicate: Callable[[], bool], limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(0.05)


@pytest.fixture
def spawn() -> Iterator[Callable[..., AgentProcess]]:
    children: list[AgentProcess] = []

    def start(name: str, *extra: str) -> AgentProcess:
        child = AgentProcess(name, *extra)
        children.append(child)
        return child

    yield start
    for child in children:
        child.stop()


def test_five_agents_converge_detect_a_kill_and_see_a_leave(
    spawn: Callable[..., AgentProcess],
) -> None:
    # LAN profile, as a user runs it (local's RetransmitMult 2 can miss a member at n=5).
    lan = ("--profile", "lan")
    first = spawn("n1", *lan)
    wait_until(lambda: bool(first.addr), 15, "n1 started")
    agents = [first] + [spawn(f"n{i}", *lan, "--join", first.addr) for i in range(2, 6)]
    names = {a.name for a in agents}
    wait_until(
        lambda: all(all(a.state_of(n) == "member-join" for n in names) for a in agents),
        30,  # gossip normally; at worst the first push/pull
        "5 agents converged",
    )

    # Output format: one JSON object per line with exactly these keys; own join first.
    for a in agents:
        events = a.events()
        assert events[0]["event"] == "member-join"
        assert events[0]["name"] == a.name
        for e in events:
            assert set(e) == KEYS
            assert e["event"] in EVENTS
            assert isinstance(e["ts"], float)
            assert isinstance(e["incarnation"], int)
            assert str(e["addr"]).startswith("127.0.0.1:")

    victim, survivors = agents[4], agents[:4]
    killed_at = time.time()
    victim.proc.send_signal(signal.SIGKILL)
    wait_until(
        lambda: all(a.saw("member-failed", victim.name) for a in survivors),
        25,
        "every survivor reports the SIGKILLed agent failed",
    )
    for a in survivors:
        when = a.when("member-failed", victim.name)
        assert when is not None
        assert when - killed_at < 25

    leaver, observers = survivors[3], survivors[:3]
    leaver.proc.send_signal(signal.SIGTERM)
    assert leaver.proc.wait(15) == 0
    wait_until(
        lambda: all(a.saw("member-leave", leaver.name) for a in observers),
        15,
        "every observer reports the SIGTERMed agent as left",
    )
    time.sleep(0.5)
    for a in observers:
        assert not a.saw("member-failed", leaver.name)
    # SIGINT also leaves gracefully with status 0.
    observers[2].proc.send_signal(signal.SIGINT)
    assert observers[2].proc.wait(15) == 0
    wait_until(lambda: observers[0].saw("member-leave", observers[2].name), 15, "SIGINT leave")


def test_encrypted_agents_join_and_a_wrong_key_cannot(spawn: Callable[..., AgentProcess]) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    wrong = base64.b64encode(os.urandom(32)).decode()
    first = spawn("e1", "--encrypt", key, "--tag", "role=db")
    wait_until(lambda: bool(first.addr), 15, "e1 started")
    second = spawn("e2", "--encrypt", key, "--join", first.addr)
    wait_until(lambda: first.saw("member-join", "e2"), 15, "e2 joined e1")
    intruder = spawn("e3", "--encrypt", wrong, "--join", first.addr)
    assert intruder.proc.wait(15) == 1  # no seed answered
    assert intruder.proc.stderr is not None
    assert "join failed" in intruder.proc.stderr.read()
    assert not first.saw("member-join", "e3")
    assert second.proc.poll() is None


def test_ipv6_agents(spawn: Callable[..., AgentProcess]) -> None:
    first = spawn("v1", "--bind", "[::1]:0")
    wait_until(lambda: bool(first.addr), 15, "v1 started")
    assert first.addr.startswith("[::1]:")
    spawn("v2", "--bind", "[::1]:0", "--join", first.addr)
    wait_until(lambda: first.saw("member-join", "v2"), 15, "v2 joined over IPv6")


def test_join_failure_exits_1(spawn: Callable[..., AgentProcess]) -> None:
    lonely = spawn("l1", "--join", "127.0.0.1:1")
    assert lonely.proc.wait(15) == 1


def test_duplicate_name_newcomer_exits_5_and_the_original_stays(
    spawn: Callable[..., AgentProcess],
) -> None:
    a = spawn("d1")
    wait_until(lambda: bool(a.addr), 15, "d1 up")
    b = spawn("d2", "--join", a.addr)
    wait_until(lambda: a.saw("member-join", "d2"), 15, "d2 joined")
    dup = spawn("d1", "--join", b.addr)
    assert dup.proc.wait(30) == 5
    assert dup.proc.stderr is not None
    err = dup.proc.stderr.read()
    assert "ERROR" in err
    assert "minority in name conflict resolution" in err, err
    assert a.proc.poll() is None  # the original keeps running


def test_keygen_prints_a_32_byte_base64_key() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "swimguard", "keygen"], capture_output=True, text=True, check=True
    ).stdout
    assert len(base64.b64decode(out.strip(), validate=True)) == 32


@pytest.mark.parametrize(
    "bad",
    [
        ["--encrypt", "not base64!"],
        ["--encrypt", base64.b64encode(b"short").decode()],
        ["--tag", "novalue"],
        ["--profile", "moon"],
    ],
)
def test_bad_arguments_exit_2(bad: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "swimguard", "agent", "--name", "x", "--bind", "127.0.0.1:0",
         "--rpc-addr", "", *bad],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stdout == ""


def test_bind_failure_exits_3_with_a_message() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "swimguard", "agent", "--name", "x", "--bind", "192.0.2.1:7946",
         "--rpc-addr", ""],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 3  # ExitCode.CANNOT_START (was 1, shared with join failures)
    assert "cannot start" in result.stderr
    assert "Traceback" not in result.stderr
