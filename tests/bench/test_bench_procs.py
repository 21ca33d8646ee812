"""Smoke tests of bench.procs: ports, process groups, line reader, idle sampling."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest
from bench.procs import (
    Children,
    LineReader,
    free_ports,
    measure_idle,
    ratio,
    summary,
    wait_tcp_listening,
)


def test_free_ports_are_distinct_and_bindable_for_tcp_and_udp() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5
    for port in ports:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as s:
                s.bind(("127.0.0.1", port))


def test_free_ports_skips_a_port_taken_for_udp_only() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        taken = busy.getsockname()[1]
        assert taken not in free_ports(20, exclude=[taken])


def test_wait_tcp_listening() -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        assert wait_tcp_listening("127.0.0.1", srv.getsockname()[1], 2.0)
    port = free_ports(1)[0]
    assert not wait_tcp_listening("127.0.0.1", port, 0.2)


def test_children_kill_all_reaches_grandchildren() -> None:
    # The child forks a grandchild and prints its pid; killing the group must take both.
    code = (
        "import subprocess, sys, time;"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        "print(p.pid, flush=True); time.sleep(60)"
    )
    with Children() as kids:
        proc = kids.spawn([sys.executable, "-c", code])
        assert proc.stdout is not None
        grandchild = int(proc.stdout.readline())
        assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)
        assert psutil.pid_exists(grandchild)
    assert proc.poll() == -signal.SIGKILL
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    else:
        pytest.fail("grandchild survived kill_all")


def test_children_cleanup_on_exception() -> None:
    started: list[subprocess.Popen[bytes]] = []

    def run() -> None:
        with Children() as kids:
            started.append(kids.spawn([sys.executable, "-c", "import time; time.sleep(60)"]))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run()
    assert started[0].poll() == -signal.SIGKILL


def test_line_reader_splits_lines_across_reads_and_flushes_last_line() -> None:
    got: list[tuple[str, str]] = []
    done = threading.Event()

    def cb(key: str, line: str, ts: float) -> None:
        assert ts > 0
        got.append((key, line))
        if line == "tail":
            done.set()

    reader = LineReader(cb)
    try:
        with Children() as kids:
            code = (
                "import sys, time; w = sys.stdout.write;"
                "w('one\\ntw'); sys.stdout.flush(); time.sleep(0.1);"
                "w('o\\r\\ntail'); sys.stdout.flush()"
            )
            proc = kids.spawn([sys.executable, "-c", code], stdout=subprocess.PIPE)
            assert proc.stdout is not None
            reader.add("k", proc.stdout)
            assert done.wait(10)
    finally:
        reader.close()
    assert got == [("k", "one"), ("k", "two"), ("k", "tail")]


def test_measure_idle_sees_a_busy_and_an_idle_process() -> None:
    with Children() as kids:
        busy = kids.spawn([sys.executable, "-c", "while True: pass"], stdout=None)
        idle = kids.spawn([sys.executable, "-c", "import time; time.sleep(60)"], stdout=None)
        time.sleep(0.2)
        window = measure_idle([busy.pid, idle.pid], seconds=1.0, rss_every=0.3)
    by_pid = {s.pid: s for s in window.samples}
    assert by_pid[busy.pid].cpu_percent > 20
    assert by_pid[idle.pid].cpu_percent < 5
    assert len(by_pid[idle.pid].rss_samples) >= 2
    assert by_pid[idle.pid].rss_median > 1_000_000
    assert 0.9 <= window.seconds < 2.0
    assert window.lost_pids == []


def test_summary_and_ratio() -> None:
    assert summary([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    assert summary([])["median"] is None
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(None, 2.0) is None
    assert ratio(1.0, 0.0) is None
