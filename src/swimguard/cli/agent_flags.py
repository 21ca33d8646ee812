"""The `swimguard` argument parser: the `agent` flags, over Serf's configuration files."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import NoReturn

from swimguard.agent_config_file import load_config_files
from swimguard.aio.agent import DEFAULT_PORT
from swimguard.aio.gray_flags import add_arguments as add_gray_flags
from swimguard.cli.addresses import address_arg
from swimguard.cli.exit_codes import ExitCode
from swimguard.config import Config
from swimguard.protocol.outgoing import Address
from swimguard.rpc import DEFAULT_RPC_ADDR
from swimguard.serf.status import DAY

__all__ = ["META_LIMIT", "PROFILES", "build_parser", "parse_args"]

PROFILES = {"lan": Config.lan, "wan": Config.wan, "local": Config.local}

META_LIMIT = 512
"""memberlist's limit on node metadata (raw `--meta` or encoded `--tag`s)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``swimguard agent: error: ...`` and status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(
    rpc_commands: Sequence[str] | None = None,
) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The top-level parser and the `agent` subcommand's (whose errors name it).

    `rpc_commands`: the RPC subcommands to list (None: all of them, for `--help` and the
    usage errors that name every choice; `()` when the command is already known to be
    `agent` or `keygen`, so that the agent does not load the RPC client to list them).
    """
    if rpc_commands is None:
        from swimguard.rpc.cli import COMMANDS

        rpc_commands = COMMANDS
    parser = _Parser(
        prog="swimguard", description="SWIM + Lifeguard membership, memberlist-compatible."
    )
    parser.add_argument("--version", action=_VersionAction)
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
    for command in rpc_commands:
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


def parse_args(
    argv: Sequence[str], *, reloading: bool = False
) -> tuple[argparse.Namespace, argparse.ArgumentParser]:
    """The command line over the defaults its `--config-file/--config-dir` set (flags win).

    `reloading` (SIGHUP): name and bind stay what they were, so the files need not say them.
    """
    parser, agent_parser = build_parser(() if argv and argv[0] in ("agent", "keygen") else None)
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


class _VersionAction(argparse.Action):
    """`--version`: argparse's, but the version is looked up only when asked for (it needs
    importlib.metadata, which brings zipfile, email and csv into every agent otherwise)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS) -> None:
        super().__init__(option_strings, dest, default=argparse.SUPPRESS, nargs=0,
                         help="show program's version number and exit")

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
        values: object, option_string: str | None = None,
    ) -> None:
        print(f"swimguard {_version()}")
        parser.exit()


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("swimguard")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        from swimguard import __version__

        return __version__


def _metrics_addr(text: str) -> Address:
    """An argparse type: HOST:PORT for the metrics endpoint (the port is required)."""
    try:
        return address_arg("--metrics-addr", text, None)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--metrics-addr ")) from None


def _seconds(text: str) -> float:
    """An argparse type: a finite, non-negative number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value
