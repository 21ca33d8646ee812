"""`swimguard members`' blocking path prints what the general RPC command prints, exactly.

`swimguard.cli.members_command` answers the plain listing without asyncio and hands every
other case to `swimguard.rpc.cli`. Both run here on the same flags against real agents
(one of them asks for an RPC token) and must agree on stdout, stderr and the exit status;
the cases marked `fast` must also be answered by the blocking path itself.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence

import pytest
from bench.serf_harness import free_port

from swimguard import cli
from swimguard.cli.members_command import run_members
from swimguard.rpc import cli as rpc_cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _agent(name: str, rpc: str, *extra: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "swimguard", "agent", "--name", name, "--bind", "127.0.0.1:0",
         "--profile", "local", "--leave-timeout", "0", "--rpc-addr", rpc, "--log-level",
         "WARNING", *extra],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    assert "member-join" in proc.stdout.readline()  # its own join: it is serving
    return proc


@pytest.fixture(scope="module")
def agents() -> Iterator[tuple[str, str]]:
    """(RPC address of `guarded`, which wants the token "sesame"; of `open`, joined to it)."""
    guarded_rpc, open_rpc = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    port = free_port()
    guarded = _agent("guarded", guarded_rpc, "--rpc-auth", "sesame", "--tag", "role=db",
                     "--bind", f"127.0.0.1:{port}")
    try:
        opened = _agent("open", open_rpc, "--tag", "role=web", "--tag", "dc=east",
                        "--join", f"127.0.0.1:{port}")
        try:
            assert opened.stdout is not None
            while "guarded" not in opened.stdout.readline():  # it lists both members now
                pass
            yield guarded_rpc, open_rpc
        finally:
            opened.kill()
            opened.communicate()
    finally:
        guarded.kill()
        guarded.communicate()


def _outcome(
    entry: Callable[[Sequence[str]], int | None], argv: Sequence[str],
    capsys: pytest.CaptureFixture[str],
) -> tuple[object, str, str]:
    try:
        status: object = entry(argv)
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


CASES: list[tuple[list[str], bool]] = [
    ([], True),  # the address from SERF_RPC_ADDR
    (["-format=json"], True),
    (["--format", "json", "-detailed"], True),
    (["-detailed"], True),
    (["-status=alive", "-name", "o.*"], True),
    (["-tag", "role=web", "-tag", "dc=e.*"], True),
    (["-role", "db"], True),
    (["-name", "nobody"], True),
    (["-format=json", "-name", "nobody"], True),
    (["-tag", "role"], False),  # not K=V
    (["-status=("], False),  # the agent refuses the expression
    (["-format", "yaml"], False),
    (["-detailed=yes"], False),
    (["-name"], False),
    (["extra"], False),
    (["-h"], False),
    (["-rpc-addr", "127.0.0.1:notaport"], False),
]


@pytest.mark.parametrize(("flags", "fast"), CASES, ids=lambda v: " ".join(v) if isinstance(
    v, list) else str(v))
def test_members_prints_what_the_general_command_prints(
    agents: tuple[str, str], flags: list[str], fast: bool,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SERF_RPC_ADDR", agents[1])
    ours = _outcome(cli.main, ["members", *flags], capsys)
    general = _outcome(rpc_cli.main, ["members", *flags], capsys)
    assert ours == general
    if fast:
        assert _outcome(run_members, flags, capsys) == ours
        assert general[1].strip() or "nobody" in flags  # it did list members
    else:
        assert _outcome(run_members, flags, capsys) == (None, "", "")


@pytest.mark.parametrize(("token", "fast"), [("sesame", True), ("wrong", False), ("", False)])
def test_the_rpc_token_is_sent_and_a_refusal_is_the_general_commands(
    agents: tuple[str, str], token: str, fast: bool, capsys: pytest.CaptureFixture[str],
) -> None:
    flags = ["-rpc-addr", agents[0], f"-rpc-auth={token}"]
    ours = _outcome(cli.main, ["members", *flags], capsys)
    assert ours == _outcome(rpc_cli.main, ["members", *flags], capsys)
    assert (ours[0] == 0) is fast
    if fast:
        assert "guarded" in ours[1]
        assert "open" in ours[1]
    assert (_outcome(run_members, flags, capsys)[0] is None) is not fast


def test_an_agent_that_is_down_is_reported_by_the_general_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    flags = ["-rpc-addr", f"127.0.0.1:{free_port()}"]
    ours = _outcome(cli.main, ["members", *flags], capsys)
    assert ours == _outcome(rpc_cli.main, ["members", *flags], capsys)
    assert ours[0] == 1
    assert "Error connecting to Serf agent" in ours[1]
