"""`make demo`: five agents as real processes on 127.0.0.1, a crash and a leave.

Run as `python -m swimguard.demo`. It starts five `swimguard agent` processes
(LAN profile: memberlist's defaults, what a user runs), shows the membership
table each of them reports, SIGKILLs one and prints how long every survivor
took to declare it failed, then makes another leave gracefully (SIGTERM) and
shows it as left. Every child is stopped on the way out, whatever happens; the
whole run takes well under a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import IO, Final

__all__ = ["main"]

N: Final = 5
PHASE_TIMEOUT: Final = 20.0
# LAN rather than local: local's RetransmitMult of 2 lets a gossiped update miss a
# member of a five-node cluster now and then (it then waits for push/pull), and
# failure detection takes about as long either way (~5-6 s here).
PROFILE: Final = "lan"
SYMBOL: Final = {"alive": "alive", "suspect": "SUSPECT", "failed": "FAILED", "left": "left"}
STATE_OF_EVENT: Final = {
    "member-join": "alive",
    "member-update": "alive",
    "member-suspect": "suspect",
    "member-failed": "failed",
    "member-leave": "left",
}


class Child:
    """One agent process and what it has reported."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        self.name = name
        self.proc = proc
        self.addr = ""
        self.view: dict[str, str] = {}
        self.seen_at: dict[tuple[str, str], float] = {}  # (event, member) -> unix ts
        self.reader: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.proc.returncode is None


class Demo:
    """Runs the scenario; `children` are always cleaned up by `stop_all()`."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.children: list[Child] = []
        self.changed = asyncio.Event()
        self.tty = out.isatty()
        self._drawn_lines = 0

    # -- processes ----------------------------------------------------------

    async def spawn(self, name: str, seed: str | None) -> Child:
        cmd = [sys.executable, "-m", "swimguard", "agent", "--name", name,
               "--bind", "127.0.0.1:0", "--profile", PROFILE, "--log-level", "WARNING",
               "--rpc-addr", ""]
        if seed:
            cmd += ["--join", seed]
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,  # warnings and errors of the agents show up as they happen
            start_new_session=True,  # a Ctrl-C in the terminal reaches only us
        )
        child = Child(name, proc)
        self.children.append(child)
        child.reader = asyncio.create_task(self._read(child))
        return child

    async def _read(self, child: Child) -> None:
        assert child.proc.stdout is not None
        while line := await child.proc.stdout.readline():
            try:
                ev = json.loads(line)
                kind, member, ts = ev["event"], ev["name"], float(ev["ts"])
            except (ValueError, KeyError, TypeError):
                continue
            state = STATE_OF_EVENT.get(kind)
            if state is None:
                continue
            if member == child.name and kind == "member-join":
                child.addr = ev["addr"]
            child.view[member] = state
            child.seen_at.setdefault((kind, member), ts)
            self.changed.set()

    async def stop_all(self) -> None:
        for child in self.children:
            if child.running:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                await asyncio.wait_for(child.proc.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.kill()
                await child.proc.wait()
            if child.reader is not None:
                child.reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await child.reader

    # -- display --------------------------------------------------------------

    def table(self) -> list[str]:
        names = [c.name for c in self.children]
        width = max(8, *(len(n) for n in names)) + 1
        lines = ["seen by " + " " * 3 + "".join(n.ljust(width) for n in names)]
        for child in self.children:
            status = "" if child.running else " (exited)"
            row = "".join(SYMBOL.get(child.view.get(n, ""), "-").ljust(width) for n in names)
            lines.append(f"{child.name.ljust(10)} {row}{status}")
        return lines

    def show(self, title: str) -> None:
        lines = [title, *self.table()]
        if self.tty and self._drawn_lines:
            self.out.write(f"\x1b[{self._drawn_lines}F\x1b[J")
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()
        self._drawn_lines = len(lines) if self.tty else 0

    def say(self, text: str) -> None:
        self._drawn_lines = 0  # keep the last table on screen
        self.out.write(text + "\n")
        self.out.flush()

    async def wait_until(self, title: str, done: Callable[[], bool]) -> bool:
        """Redraw on every change until `done()`; False after PHASE_TIMEOUT."""
        deadline = time.monotonic() + PHASE_TIMEOUT
        if self.tty:
            self.show(title)
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 1.0))
            if self.tty:  # redraw in place; on a pipe only the final table is printed
                self.show(title)
        self.show(title)
        return True

    # -- scenario -----------------------------------------------------------------

    async def run(self) -> int:
        started = time.monotonic()
        self.say(f"Starting {N} swimguard agents on 127.0.0.1 ({PROFILE} profile)...")
        first = await self.spawn("node1", None)
        if not await self.wait_until("starting node1:", lambda: bool(first.addr)):
            self.say("node1 did not start")
            return 1
        for i in range(2, N + 1):
            await self.spawn(f"node{i}", first.addr)
        names = [c.name for c in self.children]

        def converged() -> bool:
            return all(
                all(c.view.get(n) == "alive" for n in names) for c in self.children
            )

        if not await self.wait_until("membership as each agent reports it:", converged):
            self.say("the cluster did not converge")
            return 1
        self.say(f"All {N} agents see each other ({time.monotonic() - started:.1f}s).\n")

        victim = self.children[-1]
        survivors = self.children[:-1]
        self.say(f"SIGKILL {victim.name} (pid {victim.proc.pid})")
        kill_ts = time.time()
        victim.proc.kill()
        ok = await self.wait_until(
            f"after the SIGKILL of {victim.name}:",
            lambda: all(("member-failed", victim.name) in c.seen_at for c in survivors),
        )
        self.say("")
        for c in survivors:
            ts = c.seen_at.get(("member-failed", victim.name))
            suspect_ts = c.seen_at.get(("member-suspect", victim.name))
            if ts is None:
                self.say(f"  {c.name}: did not declare {victim.name} failed")
            else:
                extra = f" (suspected after {suspect_ts - kill_ts:.2f}s)" if suspect_ts else ""
                self.say(f"  {c.name} declared {victim.name} failed after "
                         f"{ts - kill_ts:.2f}s{extra}")
        if not ok:
            return 1

        leaver = survivors[-1]
        observers = survivors[:-1]
        self.say(f"\nSIGTERM {leaver.name} (pid {leaver.proc.pid}): graceful leave")
        leave_ts = time.time()
        leaver.proc.send_signal(signal.SIGTERM)
        ok = await self.wait_until(
            f"after the SIGTERM of {leaver.name}:",
            lambda: all(("member-leave", leaver.name) in c.seen_at for c in observers),
        )
        code = await asyncio.wait_for(leaver.proc.wait(), PHASE_TIMEOUT)
        self.say("")
        for c in observers:
            ts = c.seen_at.get(("member-leave", leaver.name))
            wrong = ("member-failed", leaver.name) in c.seen_at
            if ts is not None:
                self.say(f"  {c.name} saw {leaver.name} leave after {ts - leave_ts:.2f}s"
                         + (" (but also reported it failed!)" if wrong else ""))
            else:
                self.say(f"  {c.name} did not see {leaver.name} leave")
        self.say(f"  {leaver.name} exited with status {code}")
        if not ok or code != 0:
            return 1
        self.say(f"\nDone in {time.monotonic() - started:.1f}s; stopping the others.")
        return 0


async def _main(out: IO[str]) -> int:
    demo = Demo(out)
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await asyncio.wait_for(demo.run(), 55)
    except TimeoutError:
        demo.say("demo timed out")
        return 1
    except asyncio.CancelledError:
        demo.say("interrupted")
        return 130
    finally:
        await demo.stop_all()


def main() -> int:
    """Run the demo; returns the exit status."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return asyncio.run(_main(sys.stdout))


if __name__ == "__main__":
    sys.exit(main())
