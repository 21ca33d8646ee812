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

The package holds one concept per module: `agent_flags` (the parser), `agent_options`
(flags -> `Agent`), `addresses`, `agent_command` (lifecycle, signals, exit status),
`event_lines`, `event_output`, `keygen`, `exit_codes`, and `members_command` (the plain
`members` listing without asyncio). `main` only dispatches, and imports the module of the
subcommand it runs: `swimguard members` starts without the agent.
"""

from __future__ import annotations

import sys

from swimguard.cli.exit_codes import ExitCode

# `typing` (and the `re` it imports) is not loaded at run time: `swimguard members` starts
# without them. Type checkers take any `TYPE_CHECKING` as true (the idiom of PEP 781).
TYPE_CHECKING = False

__all__ = ["ExitCode", "event_line", "main"]

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from swimguard.cli.event_lines import event_line as event_line


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `swimguard` command; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "sim":
        from swimguard.sim.runner import main as sim_main

        return sim_main(args_list[1:])
    if args_list and args_list[0] == "members":
        from swimguard.cli.members_command import run_members

        status = run_members(args_list[1:])
        if status is not None:
            return status
    if args_list and args_list[0] not in ("agent", "keygen"):
        # Each side imports only its own: the RPC client commands never load the agent.
        from swimguard.rpc.cli import COMMANDS, OWN_COMMANDS

        if args_list[0] in (*COMMANDS, *OWN_COMMANDS):
            from swimguard.rpc.cli import main as rpc_main

            return rpc_main(args_list)
    from swimguard.cli.agent_command import run

    return run(args_list)


def __getattr__(name: str) -> Any:
    # `event_line` needs the protocol's and Serf's event types: imported on first use only.
    if name == "event_line":
        from swimguard.cli.event_lines import event_line

        return event_line
    raise AttributeError(f"module 'swimguard.cli' has no attribute {name!r}")
