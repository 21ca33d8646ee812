"""`swimguard members -watch`: the live table against real agents (stdout not a TTY: one
table per refresh), Ctrl-C, and the parts that read untrusted replies."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import signal
import subprocess
import sys
import threading
from typing import Any

import pytest
from rich.console import Console
from rpc_support import AgentProcess, run

from swimguard.rpc.client import Client, MemberInfo
from swimguard.rpc.watch import MemberView, WatchRow, coordinate_from_wire, render

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def pair() -> Any:
    a = AgentProcess("wa", "--tag", "role=web")
    b = AgentProcess("wb")
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


async def _joined_with_coordinates(a: AgentProcess, b: AgentProcess) -> None:
    # Readiness polling (not a timing assertion): b alive, and a has b's coordinate.
    async with Client("127.0.0.1", a.rpc_port) as client:
        assert await client.join([b.addr]) == 1
        for _ in range(1200):
            alive = [m.name for m in await client.members() if m.status == "alive"]
            coord = await client.request("get-coordinate", {"Node": "wb"})
            if "wb" in alive and coord.get("Ok") is True:
                return
            await asyncio.sleep(0.05)
    raise AssertionError("wb never alive with a coordinate")


def _watch(a: AgentProcess, *extra: str) -> list[str]:
    return [sys.executable, "-m", "swimguard", "members", "-watch",
            "-rpc-addr", f"127.0.0.1:{a.rpc_port}", *extra]


def _row(table: str, name: str) -> list[str]:
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if cells and cells[0] == name:
            return cells
    raise AssertionError(f"no row for {name!r} in\n{table}")


def test_two_refreshes_show_every_member_with_health_and_rtt(pair: Any) -> None:
    a, b = pair
    run(lambda: _joined_with_coordinates(a, b))
    result = subprocess.run(_watch(a, "-count", "2", "-interval", "0.1"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    tables = result.stdout.split("members seen by wa")
    assert len(tables) == 3  # before the first title, then one per refresh
    for table in tables[1:]:
        us = _row(table, "wa (us)")
        assert us[1] == "alive"
        score, _, most = us[2].partition("/")
        assert score.isdigit()
        assert int(most) >= 1
        assert us[3] == "-"  # no RTT to ourselves
        assert us[4] == "role=web"
        peer = _row(table, "wb")
        assert peer[1] == "alive"
        assert peer[2] == "ok"
        assert peer[3].endswith(" ms")
        assert float(peer[3].removesuffix(" ms")) >= 0
        assert peer[5].endswith("ago") or peer[5] == "since start"


def test_filters_apply_to_the_watch(pair: Any) -> None:
    a, b = pair
    run(lambda: _joined_with_coordinates(a, b))
    result = subprocess.run(_watch(a, "-count", "1", "-name", "wb"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert _row(result.stdout, "wb")[1] == "alive"
    assert "wa (us)" not in result.stdout


def test_ctrl_c_exits_0_without_a_traceback(pair: Any) -> None:
    a, _ = pair
    proc = subprocess.Popen(_watch(a, "-interval", "0.1"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the first table is out: the loop is running
            if "wa (us)" in line:
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "Traceback" not in err


def test_a_bad_interval_is_a_usage_error() -> None:
    result = subprocess.run([sys.executable, "-m", "swimguard", "members", "-watch",
                             "-interval", "0"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "-interval" in result.stderr


@pytest.mark.parametrize("raw", [
    None, [], {"Vec": None}, {"Vec": []}, {"Vec": [1.0], "Error": "x", "Adjustment": 0,
                                           "Height": 0},
    {"Vec": [float("nan")], "Error": 0, "Adjustment": 0, "Height": 0},
    {"Vec": [True], "Error": 0, "Adjustment": 0, "Height": 0},
    {"Vec": [0.0] * 65, "Error": 0, "Adjustment": 0, "Height": 0},
])
def test_unusable_coordinates_are_none(raw: object) -> None:
    assert coordinate_from_wire(raw) is None


def test_a_coordinate_reads_back() -> None:
    coord = coordinate_from_wire({"Vec": [0.001, 0], "Error": 1.5, "Adjustment": 0.0,
                                  "Height": 1e-5})
    assert coord is not None
    assert coord.vec == (0.001, 0.0)
    assert (coord.error, coord.adjustment, coord.height) == (1.5, 0.0, 1e-5)


def test_agent_strings_are_text_not_markup() -> None:
    console = Console(width=200, force_terminal=False, record=True)
    row = WatchRow("[bold]x[/bold]", "alive", "ok", "-", "a=[red]b", "-")
    console.print(render("me", [row]))
    out = console.export_text()
    assert "[bold]x[/bold]" in out
    assert "a=[red]b" in out


class _SerfLikeClient:
    """A serf agent as the view sees it: Go's runtime in stats, coordinates unknown."""

    def __init__(self) -> None:
        self.members: list[MemberInfo] = []
        self.explained: list[str] = []

    async def stats(self) -> dict[str, dict[str, str]]:
        return {"agent": {"name": "s"}, "runtime": {"version": "go1.19.8"}}

    async def request(self, command: str, body: dict[str, Any]) -> dict[str, Any]:
        assert command == "get-coordinate"
        return {"Ok": False, "Coord": {}}

    async def explain(self, name: str) -> dict[str, Any]:
        self.explained.append(name)
        raise AssertionError("explain sent to a serf agent")


def _info(name: str, status: str) -> MemberInfo:
    return MemberInfo(name, "127.0.0.1", 7946, status, {}, (1, 5, 2), (2, 5, 4))


def test_without_explain_the_last_change_is_when_the_view_saw_it() -> None:
    client = _SerfLikeClient()
    view = MemberView()

    async def members() -> list[MemberInfo]:
        return list(client.members)

    async def refresh(now: float) -> dict[str, WatchRow]:
        _, rows = await view.refresh(client, members, now=now)  # type: ignore[arg-type]
        return {row.member: row for row in rows}

    async def body() -> None:
        client.members = [_info("s", "alive"), _info("p", "alive")]
        first = await refresh(100.0)
        assert first["p"].last_change == "-"  # not seen change yet: unknown
        assert first["p"].health == "-"
        assert first["p"].rtt == "-"
        assert (await refresh(130.0))["p"].last_change == "30s ago"
        client.members = [_info("s", "alive"), _info("p", "failed")]
        assert (await refresh(140.0))["p"].last_change == "0s ago"
        assert (await refresh(260.0))["p"].last_change == "2m ago"
        client.members = [_info("s", "alive")]
        await refresh(270.0)  # p forgotten: if it comes back, its change is unknown again
        client.members = [_info("s", "alive"), _info("p", "alive")]
        assert (await refresh(280.0))["p"].last_change == "-"
        assert client.explained == []

    run(body)


def test_on_a_terminal_the_table_is_redrawn_live_and_ctrl_c_exits_0(pair: Any) -> None:
    a, _ = pair
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(_watch(a, "-interval", "0.1"), stdin=subprocess.DEVNULL,
                            stdout=terminal, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TERM": "xterm", "COLUMNS": "120"})
    os.close(terminal)
    output = bytearray()
    first_table = threading.Event()

    def drain() -> None:
        # Keep reading to the end: a full terminal buffer would block the redraws.
        with contextlib.suppress(OSError):  # EIO once the child has closed the terminal
            while chunk := os.read(controller, 65536):
                output.extend(chunk)
                if b"wa (us)" in output:
                    first_table.set()
        first_table.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        first_table.wait()
        assert b"wa (us)" in output, bytes(output)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        reader.join(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(controller)
    seen = bytes(output)
    assert proc.returncode == 0
    assert "Traceback" not in err
    assert b"\x1b[" in seen  # drawn with terminal control sequences, not printed plain
