"""Each command imports only what its configuration uses (issue 17: RSS and CLI latency).

The modules are those in `sys.modules` when the real processes exit (a running agent, and a
`members` call against it), written to stderr by an `atexit` hook: late imports count too.
"""

from __future__ import annotations

import ast
import importlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.serf_harness import free_port

import swimguard

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

# `python -m swimguard ...`, and at exit one line naming every module it had imported.
_REPORT = (
    "import atexit, runpy, sys; "
    "atexit.register(lambda: sys.stderr.write('MODULES ' + ' '.join(sorted(sys.modules)) + '\\n'));"
    " runpy.run_module('swimguard', run_name='__main__', alter_sys=True)"
)
SWIMGUARD = [sys.executable, "-c", _REPORT]

# Never needed by a default agent (no key, no --metrics-addr, no -watch): the plotting
# and simulation stack, the live table, the encryption and metrics libraries, and
# importlib.metadata (zipfile, email, csv: only `--version` reads the version).
NOT_NEEDED = ("swimguard.sim", "rich", "cryptography", "prometheus_client", "numpy",
              "matplotlib", "importlib.metadata", "zipfile")
NOT_FOR_THE_AGENT = (*NOT_NEEDED, "swimguard.rpc.watch", "swimguard.rpc.cli")
# `members` talks to an agent; it is not one.
NOT_FOR_MEMBERS = (*NOT_NEEDED, "swimguard.aio", "swimguard.protocol",
                   "swimguard.serf.layer", "swimguard.rpc.server", "swimguard.rpc.agent_backend",
                   "swimguard.agent_handlers", "re2", "hmac",
                   # The plain listing does not even need the general RPC client.
                   "asyncio", "argparse", "swimguard.rpc.client", "swimguard.rpc.cli",
                   "typing", "re", "unicodedata")


def imported(stderr: str) -> set[str]:
    """The modules the process had imported when it exited (its `MODULES` line)."""
    reports = [line for line in stderr.splitlines() if line.startswith("MODULES ")]
    assert len(reports) == 1, stderr
    return set(reports[0].split()[1:])


def loaded(modules: set[str], prefixes: tuple[str, ...]) -> set[str]:
    return {m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)}


class RunningAgent:
    def __init__(self, *extra: str) -> None:
        self.rpc = f"127.0.0.1:{free_port()}"
        self.proc = subprocess.Popen(
            [*SWIMGUARD, "agent", "--name", "lean", "--bind", "127.0.0.1:0", "--profile", "local",
             "--leave-timeout", "0", "--rpc-addr", self.rpc, *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        # Its own member-join line: by then it has started, bound and served its RPC.
        assert "member-join" in self.proc.stdout.readline()

    def stop(self) -> set[str]:
        """SIGTERM; the modules it imported over its whole life."""
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, err
        return imported(err)


@pytest.fixture
def agent() -> Iterator[RunningAgent]:
    running = RunningAgent()
    yield running
    if running.proc.poll() is None:
        running.proc.kill()
        running.proc.communicate()


def test_a_default_agent_and_members_import_only_what_they_use(agent: RunningAgent) -> None:
    members = subprocess.run([*SWIMGUARD, "members", f"-rpc-addr={agent.rpc}"],
                             capture_output=True, text=True, timeout=30, check=True)
    assert "lean" in members.stdout  # it did talk to the agent
    ours = imported(members.stderr)
    assert "swimguard.cli.members_command" in ours  # the detection works
    assert loaded(ours, NOT_FOR_MEMBERS) == set()
    modules = agent.stop()
    assert "swimguard.aio.agent" in modules
    assert loaded(modules, NOT_FOR_THE_AGENT) == set()


def test_a_key_loads_the_encryption_library() -> None:
    # The other side of the rule: what a configuration asks for is there.
    running = RunningAgent("--encrypt", "A" * 43 + "=")
    try:
        modules = running.stop()
    finally:
        if running.proc.poll() is None:
            running.proc.kill()
    assert loaded(modules, ("cryptography",))
    assert loaded(modules, ("rich", "prometheus_client", "swimguard.sim")) == set()


def _lazy_packages() -> list[Path]:
    root = Path(swimguard.__file__).parent
    return [path for path in [root / "__init__.py", *sorted(root.glob("*/__init__.py"))]
            if "_EXPORTS" in path.read_text(encoding="utf-8")]


@pytest.mark.parametrize("path", _lazy_packages(), ids=lambda p: p.parent.name)
def test_lazy_exports_match_what_type_checkers_see(path: Path) -> None:
    # A package's `_EXPORTS` (what runs) and its TYPE_CHECKING imports (what mypy and
    # readers see) must name the same objects, and every exported name must resolve.
    tree = ast.parse(path.read_text(encoding="utf-8"))
    checked: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom)
                assert stmt.module
                if not stmt.module.startswith("swimguard."):
                    continue  # typing's names for annotations
                for alias in stmt.names:
                    checked[alias.asname or alias.name] = stmt.module
    package_name = "swimguard" if path.parent.name == "swimguard" else (
        f"swimguard.{path.parent.name}")
    package = importlib.import_module(package_name)
    exports: dict[str, str] = package._EXPORTS
    assert exports == checked
    for name, module in exports.items():
        assert getattr(package, name) is getattr(importlib.import_module(module), name)
        assert name in package.__all__
