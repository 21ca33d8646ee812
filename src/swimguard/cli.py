"""Command line: `swimguard agent`, `swimguard keygen`, `swimguard sim`, and Serf's RPC
commands (`swimguard members|join|leave|event|tags|monitor|info`, in `swimguard.rpc.cli`).

`swimguard agent` runs one node and prints one JSON object per line on stdout
for every membership event, its own join included:

    {"ts": 1700000000.123, "event": "member-join", "name": "a",
     "addr": "127.0.0.1:7946", "incarnation": 1}

Logs go to stderr. SIGINT or SIGTERM makes the agent leave gracefully and
exit 0 (a second signal skips the wait); SIGHUP reloads the configuration files'
log level and event handlers, as Serf; SIGUSR1/SIGUSR2 are logged and ignored.

Every input mistake is one line on stderr naming the flag and the value, and
exit status 2; each runtime failure has its own status (`ExitCode`, listed in
the README's CLI section). Events are the agent's whole output: when stdout is
closed at start the agent refuses to start; when writing fails later (the disk
is full, the reader of the pipe went away) it says so once on stderr, leaves the
cluster gracefully and exits with `ExitCode.OUTPUT_FAILED`, so a supervisor can
restart it with working output instead of running a member nobody hears.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import dataclasses
import enum
import importlib.metadata
import json
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import NoReturn, TextIO

from swimguard.agent_config_file import ConfigFileError, load_config_files
from swimguard.agent_handlers import EventHandlerRunner, HandlerSpec, parse_handler_spec
from swimguard.aio import Agent, EventsLost
from swimguard.aio.agent import DEFAULT_PORT, seed_family_problem
from swimguard.aio.agent_config import AgentConfig
from swimguard.aio.gray_flags import add_arguments as add_gray_flags
from swimguard.aio.gray_flags import options_from as gray_fault_options
from swimguard.aio.sockets import format_address, is_ip, parse_address, resolve_host
from swimguard.config import Config
from swimguard.errors import JoinError, UsageError
from swimguard.protocol.events import (
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberSuspected,
    MemberUpdated,
    SelfFenced,
)
from swimguard.protocol.members import MemberState
from swimguard.protocol.outgoing import Address
from swimguard.rpc import DEFAULT_RPC_ADDR, AgentBackend, LogRing, RpcServer
from swimguard.rpc.cli import COMMANDS as SERF_RPC_COMMANDS
from swimguard.rpc.cli import OWN_COMMANDS as OWN_RPC_COMMANDS
from swimguard.serf import decode_tags, encode_tags
from swimguard.serf.coalesce import SERF_AGENT_COALESCE
from swimguard.serf.events import QueryReceived, UserEventReceived
from swimguard.serf.status import (
    DAY,
    MemberReaped,
    MemberStatusChanged,
    SerfStatus,
    StatusTimes,
)
from swimguard.wire.encryption import Keyring

__all__ = ["ExitCode", "event_line", "main"]

log = logging.getLogger("swimguard.cli")

EVENT_NAMES: dict[type, str] = {
    MemberJoined: "member-join",
    MemberLeft: "member-leave",
    MemberFailed: "member-failed",
    MemberUpdated: "member-update",
    MemberSuspected: "member-suspect",
}
"""JSON `event` value for each membership event type (Serf's names, plus suspect)."""

PROFILES = {"lan": Config.lan, "wan": Config.wan, "local": Config.local}

META_LIMIT = 512
"""memberlist's limit on node metadata (raw `--meta` or encoded `--tag`s)."""


class ExitCode(enum.IntEnum):
    """Exit status of `swimguard agent` (README's CLI section, docs/reference/cli.md)."""

    OK = 0
    """Left gracefully after SIGINT/SIGTERM (or `keygen`/`--version` done)."""
    JOIN_FAILED = 1
    """No `--join` seed answered (or a seed resolved to an unreachable address)."""
    USAGE = 2
    """A flag or its value is wrong; nothing was started."""
    CANNOT_START = 3
    """A `--bind`/`--advertise`/`--rpc-addr`/`--metrics-addr` address cannot resolve or bind."""
    OUTPUT_FAILED = 4
    """stdout is closed, full or a broken pipe: events cannot be written."""
    NAME_CONFLICT = 5
    """Another member holds our name and Serf's vote went to it: we stopped, without leaving."""
    SELF_FENCED = 75
    """`--self-fence-after`: our health stayed at its maximum that long; we left gracefully.
    75 is sysexits' EX_TEMPFAIL: a temporary failure, restart and try again."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``swimguard agent: error: ...`` and status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message} (see --help)\n")


_SERF_STATUS = {
    MemberState.ALIVE: "alive",
    MemberState.SUSPECT: "alive",  # suspicion is invisible to Serf
    MemberState.DEAD: "failed",
    MemberState.LEFT: "left",
}


def event_line(event: object, ts: float) -> str | None:
    """The JSON line for a membership, user or (application) query event; None for others.

    Member lines keep their first five keys and add Serf's `tags` and `status`.
    """
    if isinstance(event, MemberReaped | MemberStatusChanged):
        return _serf_status_line(event, ts)
    if isinstance(event, UserEventReceived):
        return json.dumps({
            "ts": ts, "event": "user", "name": event.name, "payload": _b64(event.payload),
            "ltime": event.ltime, "coalesce": event.coalesce,
        })
    if isinstance(event, QueryReceived):
        query = event.query
        if query.name.startswith("_serf_"):
            return None  # Serf's own (ping, keys, conflict): never shown to users
        return json.dumps({
            "ts": ts, "event": "query", "name": query.name, "payload": _b64(query.payload),
            "ltime": query.ltime,
        })
    kind = EVENT_NAMES.get(type(event))
    if kind is None:
        return None
    member = event.member  # type: ignore[attr-defined]
    return json.dumps(
        {
            "ts": ts,
            "event": kind,
            "name": member.name,
            "addr": format_address(member.addr),
            "incarnation": member.incarnation,
            "tags": decode_tags(member.meta),
            "status": _SERF_STATUS[member.state],
        }
    )


def _serf_status_line(event: MemberReaped | MemberStatusChanged, ts: float) -> str | None:
    if isinstance(event, MemberStatusChanged):
        if event.member.status is not SerfStatus.LEFT:
            return None  # alive -> leaving: serf has no event for it either
        kind = "member-leave"
    else:
        kind = "member-reap"
    member = event.member
    return json.dumps(
        {
            "ts": ts,
            "event": kind,
            "name": member.name,
            "addr": format_address(member.addr),
            "incarnation": None,
            "tags": dict(member.tags),
            "status": member.status.value,
        }
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _build_parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The top-level parser and the `agent` subcommand's (whose errors name it)."""
    parser = _Parser(
        prog="swimguard", description="SWIM + Lifeguard membership, memberlist-compatible."
    )
    parser.add_argument("--version", action="version", version=f"swimguard {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    agent = sub.add_parser("agent", help="run one cluster member; events as JSON lines on stdout")
    agent.add_argument("--name", required=True, help="unique member name")
    agent.add_argument(
        "--bind",
        required=True,
        help=f"HOST[:PORT] for UDP and TCP (port {DEFAULT_PORT} if omitted, 0 = any free one;"
        " IPv6 in brackets: [::1]:7946)",
    )
    agent.add_argument(
        "--advertise", help="HOST[:PORT] peers should use (default: the bind; port: the bound one)"
    )
    agent.add_argument(
        "--join",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help=f"seed (repeatable; port {DEFAULT_PORT} if omitted)",
    )
    agent.add_argument("--profile", choices=sorted(PROFILES), default="lan")
    agent.add_argument("--encrypt", metavar="BASE64KEY", help="AES key (16, 24 or 32 bytes)")
    agent.add_argument("--label", default="", help="cluster label (memberlist >= 0.3 peers)")
    agent.add_argument(
        "--meta", default="", help=f"raw node metadata (text, at most {META_LIMIT} bytes)"
    )
    agent.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="K=V",
        help="Serf tag (repeatable; not with --no-serf); tags replace --meta as the metadata",
    )
    agent.add_argument(
        "--no-serf", action="store_true", help="plain memberlist: no Serf intents or state"
    )
    agent.add_argument(
        "--metrics-addr",
        type=_metrics_addr,
        metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (port 0: any free one)",
    )
    agent.add_argument(
        "--self-fence-after",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="leave and exit 75 once our health score stayed at its maximum this long"
        " (0 = never, the default)",
    )
    agent.add_argument(
        "--leave-timeout",
        type=_seconds,
        default=5.0,
        help="seconds to wait for the leave broadcast (>= 0)",
    )
    _add_persist_flags(agent)
    add_gray_flags(agent)
    agent.add_argument(
        "--rpc-addr",
        default=DEFAULT_RPC_ADDR,
        metavar="HOST:PORT",
        help=f"Serf agent RPC address for the serf CLI and Serf clients (default"
        f" {DEFAULT_RPC_ADDR}, as serf; \"\" disables it)",
    )
    agent.add_argument(
        "--rpc-auth", default="", metavar="TOKEN", help="token RPC clients must send (auth)"
    )
    # Event handler scripts (Serf's -event-handler), run outside the protocol's loop.
    agent.add_argument(
        "--event-handler",
        action="append",
        default=[],
        metavar="[FILTER=]SCRIPT",
        help="run `sh -c SCRIPT` for each event FILTER passes (Serf's syntax; repeatable)",
    )
    agent.add_argument(
        "--event-handler-timeout",
        type=_seconds,
        default=30.0,
        help="seconds a handler script may run before its process group is killed",
    )
    # Serf's JSON configuration (`agent_config_file`); flags win; SIGHUP re-reads it.
    agent.add_argument("--config-file", action="append", default=[], metavar="FILE",
                       help="Serf JSON configuration file (repeatable)")
    agent.add_argument("--config-dir", action="append", default=[], metavar="DIR",
                       help="directory of Serf JSON configuration files (*.json, repeatable)")
    agent.add_argument(
        "--dead-node-reclaim-time",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="a dead member's name may be taken by a new address after this long"
        " (0 = never, as in serf: a member restarted at a new address is refused until"
        " the cluster forgets the old one, and its join fails saying so)",
    )
    agent.add_argument(
        "--reconnect-timeout",
        type=_seconds,
        default=DAY,
        metavar="SECONDS",
        help="keep failed members listed (and retried) this long (serf: 24 h)",
    )
    agent.add_argument(
        "--tombstone-timeout",
        type=_seconds,
        default=DAY,
        metavar="SECONDS",
        help="keep left members listed this long (serf: 24 h)",
    )
    agent.add_argument(
        "--coalesce",
        action="store_true",
        help="hold member and user events as serf's agent does (3 s, or 1 s of quiet;"
        " latest per member, newest per user event name); default: print each at once",
    )
    agent.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
    )

    agent.epilog = (
        "exit status: 0 left after SIGINT/SIGTERM, 1 join failed, 2 usage error,"
        " 3 cannot bind/resolve an address (--bind, --rpc-addr...), 4 stdout closed/full/broken,"
        " 5 lost a name conflict (another member holds --name),"
        " 75 fenced itself (--self-fence-after)"
    )
    sub.add_parser("keygen", help="print a new base64 encryption key (32 bytes)")
    sub.add_parser("sim", help="simulator commands (see `swimguard sim --help`)", add_help=False)
    sub.add_parser("explain", help="why a member is in its state, from an agent's RPC",
                   add_help=False)
    for command in SERF_RPC_COMMANDS:
        sub.add_parser(
            command, help=f"serf {command} through an agent's RPC (-rpc-addr)", add_help=False
        )
    return parser, agent


def _add_persist_flags(agent: argparse.ArgumentParser) -> None:
    """Serf's snapshot, rejoin, retry-join and keyring-file flags (`aio.agent_persist`)."""
    agent.add_argument(
        "--snapshot",
        metavar="PATH",
        help="Serf snapshot file: members and clocks kept across restarts; at start the"
        " remembered members are rejoined and old user events/queries are not replayed",
    )
    agent.add_argument(
        "--rejoin",
        action="store_true",
        help="with --snapshot: rejoin the remembered members even after a graceful leave",
    )
    agent.add_argument(
        "--retry-join",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="seed to join in the background, retried until it works (repeatable)",
    )
    agent.add_argument(
        "--retry-interval",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="seconds between --retry-join attempts (default 30)",
    )
    agent.add_argument(
        "--retry-max",
        type=int,
        default=0,
        metavar="N",
        help="retries of --retry-join before exiting with status 1 (default 0: forever)",
    )
    agent.add_argument(
        "--keyring-file",
        metavar="PATH",
        help="Serf keyring file (JSON list of base64 keys, primary first): read at start"
        " (created from --encrypt if missing), rewritten on every key install/use/remove",
    )


def _persist_options(args: argparse.Namespace) -> AgentConfig:
    """The `AgentConfig` the persistence and Serf status flags ask for (bad: exit 2)."""
    if args.snapshot is not None and args.no_serf:
        raise ValueError("--snapshot: snapshots are Serf's; drop --no-serf")
    if args.rejoin and args.snapshot is None:
        raise ValueError("--rejoin needs --snapshot")
    if args.retry_max < 0:
        raise ValueError(f"--retry-max: must be >= 0, got {args.retry_max}")
    for seed in args.retry_join:
        _address_arg("--retry-join", seed, DEFAULT_PORT)
    return AgentConfig(
        snapshot_path=args.snapshot,
        rejoin_after_leave=args.rejoin,
        keyring_file=args.keyring_file,
        serf_status_times=StatusTimes(
            reconnect_timeout=args.reconnect_timeout,
            tombstone_timeout=args.tombstone_timeout,
        ),
        serf_coalesce=SERF_AGENT_COALESCE if args.coalesce else None,
    )


def _start_retry_join(
    agent: Agent, args: argparse.Namespace, stop: asyncio.Event
) -> asyncio.Task[int] | None:
    """`--retry-join` in the background; giving up (after `--retry-max`) stops the agent."""
    if not args.retry_join:
        return None
    task = asyncio.create_task(
        agent.retry_join(args.retry_join, interval=args.retry_interval, max_attempts=args.retry_max)
    )

    def gave_up(done: asyncio.Task[int]) -> None:
        if not done.cancelled() and done.exception() is not None:
            stop.set()  # wakes the main task, which exits with status 1

    task.add_done_callback(gave_up)
    return task


def _retry_join_failed(task: asyncio.Task[int] | None) -> bool:
    if task is None:
        return False
    if not task.done():
        task.cancel()
        return False
    return not task.cancelled() and task.exception() is not None


def _version() -> str:
    try:
        return importlib.metadata.version("swimguard")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        from swimguard import __version__

        return __version__


def _metrics_addr(text: str) -> Address:
    """An argparse type: HOST:PORT for the metrics endpoint (the port is required)."""
    try:
        return _address_arg("--metrics-addr", text, None)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--metrics-addr ")) from None


async def _serve_metrics(
    agent: Agent, args: argparse.Namespace, closing: contextlib.AsyncExitStack
) -> None:
    """Start `--metrics-addr`'s server, if asked, closed by `closing`; `_CannotStart` names
    the flag."""
    wanted: Address | None = args.metrics_addr  # resolved by _agent_from_args
    if wanted is None:
        return
    try:
        server = await agent.serve_metrics(wanted)
    except OSError as exc:
        raise _CannotStart(f"--metrics-addr: {exc.strerror or exc}") from None
    closing.push_async_callback(server.close)
    assert server.address is not None
    log.info("metrics at http://%s/metrics", format_address(server.address))


def _seconds(text: str) -> float:
    """An argparse type: a finite, non-negative number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `swimguard` command; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "sim":
        from swimguard.sim.runner import (
            main as sim_main,
        )

        return sim_main(args_list[1:])
    if args_list and args_list[0] in (*SERF_RPC_COMMANDS, *OWN_RPC_COMMANDS):
        from swimguard.rpc.cli import main as rpc_main

        return rpc_main(args_list)
    try:
        args, agent_parser = _parse_args(args_list)
    except ConfigFileError as exc:
        print(f"swimguard agent: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    if args.command == "keygen":
        return _keygen()
    if not _stdout_usable():
        print(
            "swimguard agent: error: stdout is closed, so events cannot be written"
            " (redirect it to /dev/null to discard them)",
            file=sys.stderr,
        )
        return ExitCode.OUTPUT_FAILED
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from swimguard.allocator import return_large_buffers_to_the_system

    return_large_buffers_to_the_system()
    try:
        agent, bind = _agent_from_args(args)
        rpc_addr = _rpc_addr_arg(args.rpc_addr)
        if rpc_addr is None and args.rpc_auth:
            # The token itself is a secret: named, never echoed.
            raise ValueError("--rpc-auth: there is no RPC to protect (--rpc-addr is empty)")
        args.handler_specs = _handler_specs(args.event_handler)
    except ValueError as exc:
        agent_parser.error(str(exc))
    except _CannotStart as exc:
        log.error("cannot start: %s", exc)
        return ExitCode.CANNOT_START
    log_ring = LogRing()  # `serf monitor` replays what was logged since here
    logging.getLogger().addHandler(log_ring)
    setup = _RpcSetup(rpc_addr, log_ring)
    try:
        return asyncio.run(_run_agent(agent, bind, args, agent_parser, setup))
    finally:
        logging.getLogger().removeHandler(log_ring)


def _parse_args(
    argv: Sequence[str], *, reloading: bool = False
) -> tuple[argparse.Namespace, argparse.ArgumentParser]:
    """The command line over the defaults its `--config-file/--config-dir` set (flags win).

    `reloading` (SIGHUP): name and bind stay what they were, so the files need not say them.
    """
    parser, agent_parser = _build_parser()
    if argv and argv[0] == "agent":
        pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
        pre.add_argument("--config-file", action="append", default=[])
        pre.add_argument("--config-dir", action="append", default=[])
        wanted, _ = pre.parse_known_args(argv[1:])
        defaults = load_config_files(wanted.config_file, wanted.config_dir)
        agent_parser.set_defaults(**defaults)
        for action in agent_parser._actions:  # argparse has no public way to relax required
            if action.dest in defaults or reloading:
                action.required = False
    args = parser.parse_args(argv)
    args.argv = list(argv)
    return args, agent_parser


def _reload(args: argparse.Namespace, handlers: EventHandlerRunner) -> None:
    """SIGHUP, as Serf: re-read the configuration files; apply the log level and the event
    handlers (what Serf reloads), keep everything else; a bad file changes nothing."""
    try:
        new, _ = _parse_args(args.argv, reloading=True)
        specs = _handler_specs(new.event_handler)
    except (ValueError, SystemExit) as exc:
        log.error("SIGHUP: configuration not reloaded (kept the current one): %s", exc)
        return
    log.info(  # before the new level applies: the old one chose to hear it
        "SIGHUP: reloaded the configuration: log level %s, %d event handlers",
        new.log_level, len(specs),
    )
    logging.getLogger().setLevel(new.log_level)
    handlers.replace(specs)


def _handler_specs(texts: Sequence[str]) -> list[HandlerSpec]:
    try:
        return [parse_handler_spec(text) for text in texts]
    except ValueError as exc:
        raise ValueError(f"--event-handler {exc}") from None


def _keygen() -> int:
    """Print a new key; a key that cannot be written must not look like success."""
    key = base64.b64encode(os.urandom(32)).decode()
    try:
        if sys.stdout is None:
            raise OSError("stdout is closed")
        sys.stdout.write(key + "\n")
        sys.stdout.flush()
    except OSError as exc:
        print(f"swimguard keygen: error: cannot write the key to stdout: {exc.strerror or exc}",
              file=sys.stderr)
        _discard_stdout()
        return ExitCode.OUTPUT_FAILED
    return ExitCode.OK


def _discard_stdout() -> None:
    # What is still buffered would fail again when Python flushes stdout at exit
    # ("Exception ignored ... BrokenPipeError", status 120): point fd 1 at
    # /dev/null so that last flush succeeds, quietly.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _rpc_addr_arg(text: str) -> Address | None:
    """`--rpc-addr`: None when empty (no RPC), else the address (port 7373 if omitted)."""
    if not text.strip():
        return None
    host, port = _address_arg("--rpc-addr", text, 7373)
    if not is_ip(host):
        host = _resolve("--rpc-addr", text, (host, port))[0]
    return host, port


@dataclasses.dataclass(frozen=True, slots=True)
class _RpcSetup:
    address: Address | None
    log_ring: LogRing


class _CannotStart(Exception):
    """A runtime failure before the agent runs (an address that does not resolve)."""


def _stdout_usable() -> bool:
    """False when fd 1 was closed before we started (`swimguard agent >&-`)."""
    if sys.stdout is None:  # what Python makes of a closed fd 1
        return False
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):
        return True  # not a descriptor (an embedding's stream): the writes will tell
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _address_arg(flag: str, text: str, default_port: int | None) -> Address:
    """Parse a HOST[:PORT] flag value (`default_port` None: the port is required);
    ValueError names the flag and the value."""
    stripped = text.strip()
    if stripped.count(":") > 1 and not stripped.startswith("["):
        # "::1:0" is a valid IPv6 address *and* looks like host ::1 port 0: refuse to guess.
        whole = f"[{stripped}]:{'PORT' if default_port is None else default_port}"
        head, _, last = stripped.rpartition(":")
        raise ValueError(
            f"{flag} {text!r}: write an IPv6 address in brackets: {whole}, or [{head}]:{last}"
            " if the last part is the port"
        )
    try:
        host, port = parse_address(stripped, default_port=default_port)
    except ValueError as exc:
        raise ValueError(f"{flag} {text!r}: {exc}") from None
    if ":" in host and not is_ip(host):
        raise ValueError(f"{flag} {text!r}: {host!r} is not an IPv6 address")
    return host, port


def _resolve(flag: str, text: str, addr: Address) -> Address:
    """`addr` with its host as an IP literal; `_CannotStart` names the flag if it fails."""
    host, port = addr
    try:
        return resolve_host(host), port
    except OSError as exc:
        detail = exc.strerror or str(exc)
        raise _CannotStart(f"{flag} {text}: cannot resolve {host!r}: {detail}") from None


def _name_arg(name: str) -> str:
    if not name:
        raise ValueError("--name '': must not be empty")
    try:
        name.encode()
    except UnicodeEncodeError:  # undecodable bytes in argv arrive as lone surrogates
        raise ValueError(f"--name {name!r}: not valid UTF-8") from None
    return name


def _agent_from_args(args: argparse.Namespace) -> tuple[Agent, Address]:
    """The agent the flags describe, and the address it will bind (resolved)."""
    keyring = None
    if args.encrypt:
        try:
            key = base64.b64decode(args.encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("--encrypt: not valid base64") from None
        if len(key) not in (16, 24, 32):
            raise ValueError(f"--encrypt: key must be 16, 24 or 32 bytes, got {len(key)}")
        keyring = Keyring([key])
    name = _name_arg(args.name)
    for flag, text in (("--label", args.label), ("--meta", args.meta)):
        try:
            text.encode()
        except UnicodeEncodeError:
            raise ValueError(f"{flag} {text!r}: not valid UTF-8") from None
    if len(args.label.encode()) > 255:
        raise ValueError(f"--label: {len(args.label.encode())} bytes; the limit is 255")
    meta = args.meta.encode()
    if len(meta) > META_LIMIT:
        raise ValueError(f"--meta: {len(meta)} bytes; the limit is {META_LIMIT}")
    tags: dict[str, str] | None = None
    if args.tag:
        if args.no_serf:
            raise ValueError(
                f"--tag {args.tag[0]!r}: tags are Serf's; drop --no-serf, or use --meta"
            )
        tags = {}
        for item in args.tag:
            k, sep, v = item.partition("=")
            if not sep or not k:
                raise ValueError(f"--tag {item!r}: expected K=V")
            try:
                item.encode()
            except UnicodeEncodeError:
                raise ValueError(f"--tag {item!r}: not valid UTF-8") from None
            tags[k] = v
        try:
            encode_tags(tags)
        except ValueError as exc:
            raise ValueError(f"--tag: {exc}") from None
        if args.meta:
            log.warning("--meta is ignored because --tag sets the metadata")
    bind_addr = _address_arg("--bind", args.bind, DEFAULT_PORT)
    advertise_addr = (
        _address_arg("--advertise", args.advertise, 0) if args.advertise else None
    )
    seeds = [_address_arg("--join", seed, DEFAULT_PORT) for seed in args.join]
    # Resolve here, so that a failure names the flag it came from.
    bind = _resolve("--bind", args.bind, bind_addr)
    advertise = _resolve("--advertise", args.advertise, advertise_addr) if advertise_addr else None
    metrics: Address | None = getattr(args, "metrics_addr", None)
    if metrics is not None and not is_ip(metrics[0]):  # before anything starts, like --bind
        args.metrics_addr = _resolve("--metrics-addr", format_address(metrics), metrics)
    for text, (host, _) in zip(args.join, seeds, strict=True):
        # Seed names are resolved by join(), which prefers a reachable address.
        problem = seed_family_problem(bind[0], host) if is_ip(host) else None
        if problem is not None:
            raise ValueError(f"--join {text}: {problem}")
    agent = Agent(
        name,
        bind=bind,
        advertise=advertise,
        config=PROFILES[args.profile](
            self_fence_after=args.self_fence_after,
            dead_node_reclaim_time=args.dead_node_reclaim_time,
        ),
        keyring=keyring,
        label=args.label,
        meta=meta,
        tags=tags,
        serf_compat=not args.no_serf,
        options=dataclasses.replace(
            _persist_options(args), gray_fault=gray_fault_options(args)
        ),
    )
    return agent, bind


class _EventOutput:
    """Writes event lines to stdout and remembers the first failure to do so."""

    def __init__(self, out: TextIO, failed: asyncio.Event) -> None:
        self._out = out
        self._failed = failed
        self.error: OSError | None = None

    def end(self) -> None:
        """Stop the agent's run (it has nothing more to say)."""
        self._failed.set()

    def write(self, line: str) -> bool:
        """Write and flush one line; on failure report it once and return False."""
        if self.error is not None:
            return False
        try:
            self._out.write(line + "\n")
            self._out.flush()
        except OSError as exc:  # ENOSPC, EPIPE, EIO...
            self.error = exc
            reason = exc.strerror or type(exc).__name__
            log.error(
                "cannot write events to stdout (%s): leaving the cluster, exit status %d",
                reason,
                ExitCode.OUTPUT_FAILED,
            )
            _discard_stdout()
            self._failed.set()
            return False
        return True


async def _fan_out_events(
    agent: Agent,
    output: _EventOutput,
    rpc: tuple[AgentBackend, RpcServer] | None,
    handlers: EventHandlerRunner,
) -> None:
    """The one consumer of `agent.events()`: JSON lines on stdout, the RPC's streams and
    the handler scripts (never waited for), both fed the same Serf records."""
    printing = True
    # Without RPC a backend of our own still turns events into Serf's records (statuses).
    backend = rpc[0] if rpc is not None else AgentBackend(agent)
    async for event in agent.events():
        fenced = isinstance(event, SelfFenced)
        if isinstance(event, EventsLost):
            log.warning("%d events lost (consumer too slow)", event.count)
            line = None
        else:
            line = event_line(event, time.time())
        record = backend.observe(event)
        if record is not None:
            if rpc is not None:
                rpc[1].publish(record)
            handlers.publish(record)
        del event  # a user message may be 20 MiB: not held while we wait for the next
        if printing and line is not None and not output.write(line):
            printing = False
            if rpc is None:
                return
        if fenced:
            output.end()  # the agent is leaving by itself: wake the main task
    if agent.lost_name_conflict:
        output.end()  # the agent stopped itself: wake the main task


async def _start_rpc(
    agent: Agent, args: argparse.Namespace, setup: _RpcSetup, on_leave: Callable[[], None]
) -> tuple[AgentBackend, RpcServer] | None:
    """The RPC server, listening (None if `--rpc-addr ""`); OSError names the address."""
    if setup.address is None:
        return None
    tags = dict(item.partition("=")[::2] for item in args.tag)
    backend = AgentBackend(
        agent, tags=tags, leave_timeout=args.leave_timeout, encrypted=bool(args.encrypt)
    )
    server = RpcServer(
        backend, auth_key=args.rpc_auth, log_ring=setup.log_ring, on_leave=on_leave
    )
    await server.start(*setup.address)
    log.info("RPC listening on %s", format_address(server.address))
    return backend, server


_LOGGED_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)


async def _run_agent(
    agent: Agent,
    bind: Address,
    args: argparse.Namespace,
    usage: argparse.ArgumentParser,
    rpc_setup: _RpcSetup,
) -> int:
    seeds: Sequence[str] = args.join
    leave_timeout: float = args.leave_timeout
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    closing = contextlib.AsyncExitStack()  # what --metrics-addr started
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        stop.set()
        if signals > 1 and leaving is not None:
            leaving.cancel()  # second signal: stop waiting for the leave

    leaving: asyncio.Task[bool] | None = None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    handlers = EventHandlerRunner(
        args.handler_specs,
        self_info=lambda: (agent.name, decode_tags(agent.local_member.meta)),
        timeout=args.event_handler_timeout,
    )
    loop.add_signal_handler(signal.SIGHUP, _reload, args, handlers)
    for sig in _LOGGED_SIGNALS:  # their default action would end us without a word
        loop.add_signal_handler(sig, log.warning, "%s received: ignored", sig.name)
    status = ExitCode.OK
    output = _EventOutput(sys.stdout, stop)
    left_by_rpc = False

    def on_rpc_leave() -> None:
        # Serf's `leave` command: the graceful leave is done; shut down as Serf does.
        nonlocal left_by_rpc
        left_by_rpc = True
        stop.set()

    rpc: tuple[AgentBackend, RpcServer] | None = None
    try:
        try:
            await agent.start()
        except (ValueError, UsageError) as exc:  # the core refused a value (name, meta...)
            print(f"{usage.prog}: error: {exc} (see --help)", file=sys.stderr)
            return ExitCode.USAGE
        except OSError as exc:
            detail = exc.strerror or str(exc)
            wanted = format_address(bind)
            shown = args.bind if args.bind == wanted else f"{args.bind} ({wanted})"
            log.error("cannot start: --bind %s: %s", shown, detail)
            return ExitCode.CANNOT_START
        try:
            rpc = await _start_rpc(agent, args, rpc_setup, on_rpc_leave)
        except OSError as exc:
            log.error("cannot start: --rpc-addr %s: %s", args.rpc_addr, exc.strerror or exc)
            return ExitCode.CANNOT_START
        printer = asyncio.create_task(_fan_out_events(agent, output, rpc, handlers))
        log.info(
            "%s: bound to %s (UDP and TCP), advertising %s",
            agent.name,
            format_address(agent.bound_address),
            format_address(agent.advertise_address),
        )
        try:
            await _serve_metrics(agent, args, closing)
        except _CannotStart as exc:
            log.error("cannot start: %s", exc)
            return ExitCode.CANNOT_START
        try:
            if seeds:
                joined = await agent.join(list(seeds))
                log.info("joined %d of %d seeds", joined, len(seeds))
        except JoinError as exc:
            log.error("join failed: %s", exc)
            status = ExitCode.JOIN_FAILED
        retrying = _start_retry_join(agent, args, stop) if status == ExitCode.OK else None
        if status == ExitCode.OK:
            await stop.wait()
            if _retry_join_failed(retrying):
                status = ExitCode.JOIN_FAILED
            if agent.lost_name_conflict:  # no leave: the name is the other member's now
                status = ExitCode.NAME_CONFLICT
            elif agent.self_fenced and agent.fence_leave is not None:  # it leaves by itself
                status = ExitCode.SELF_FENCED
                await agent.fence_leave
        if status == ExitCode.OK and not left_by_rpc:
            log.info("leaving")
            leaving = asyncio.create_task(agent.leave(leave_timeout))
            try:
                if not await leaving:
                    log.warning("leave broadcast did not finish in %.1fs", leave_timeout)
            except asyncio.CancelledError:
                log.warning("leave interrupted")
            # Let the printer write what the leave produced, then stop it.
            await asyncio.sleep(0)
        drops = agent.drops
        if rpc is not None:
            await rpc[1].close()
            for reason, n in rpc[1].drops.items():
                drops[f"rpc_{reason}"] = n
        if handlers.dropped:
            drops["event_handler_queue_full"] = handlers.dropped
        await agent.close()
        with contextlib.suppress(asyncio.CancelledError):
            await printer
        # Always one machine-readable line (JSON, even when empty): supervisors and the
        # hostile-input suite account for every dropped input from it.
        log.info("dropped input by reason: %s", json.dumps(drops, sort_keys=True))
        if output.error is not None and status == ExitCode.OK:
            status = ExitCode.OUTPUT_FAILED
    finally:
        if rpc is not None:
            await rpc[1].close()
        await handlers.close()
        await agent.close()
        await closing.aclose()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, *_LOGGED_SIGNALS):
            loop.remove_signal_handler(sig)
    return status
