"""Command line: `swimguard agent`, `swimguard keygen`, `swimguard sim`.

`swimguard agent` runs one node and prints one JSON object per line on stdout
for every membership event, its own join included:

    {"ts": 1700000000.123, "event": "member-join", "name": "a",
     "addr": "127.0.0.1:7946", "incarnation": 1}

Logs go to stderr. SIGINT or SIGTERM makes the agent leave gracefully and
exit 0 (a second signal skips the wait).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from swimguard.aio import Agent, EventsLost
from swimguard.aio.agent import DEFAULT_PORT
from swimguard.aio.sockets import format_address, parse_address
from swimguard.config import Config
from swimguard.errors import JoinError
from swimguard.protocol.events import (
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberSuspected,
    MemberUpdated,
)
from swimguard.wire.encryption import Keyring

__all__ = ["event_line", "main"]

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


def event_line(event: object, ts: float) -> str | None:
    """The JSON line for a membership event, or None for other events."""
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
        }
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swimguard", description="SWIM + Lifeguard membership, memberlist-compatible."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    agent = sub.add_parser("agent", help="run one cluster member; events as JSON lines on stdout")
    agent.add_argument("--name", required=True, help="unique member name")
    agent.add_argument("--bind", required=True, help="HOST:PORT for UDP and TCP (port 0 = any)")
    agent.add_argument("--advertise", help="HOST:PORT peers should use (default: the bind)")
    agent.add_argument(
        "--join", action="append", default=[], metavar="HOST:PORT", help="seed (repeatable)"
    )
    agent.add_argument("--profile", choices=sorted(PROFILES), default="lan")
    agent.add_argument("--encrypt", metavar="BASE64KEY", help="AES key (16, 24 or 32 bytes)")
    agent.add_argument("--label", default="", help="cluster label (memberlist >= 0.3 peers)")
    agent.add_argument("--meta", default="", help="raw node metadata (text)")
    agent.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="K=V",
        help="Serf tag (repeatable); tags replace --meta as the metadata",
    )
    agent.add_argument(
        "--no-serf", action="store_true", help="plain memberlist: no Serf intents or state"
    )
    agent.add_argument(
        "--leave-timeout", type=float, default=5.0, help="seconds to wait for the leave broadcast"
    )
    agent.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
    )

    sub.add_parser("keygen", help="print a new base64 encryption key (32 bytes)")
    sub.add_parser("sim", help="simulator commands (see `swimguard sim --help`)", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `swimguard` command; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "sim":
        from swimguard.sim.runner import (
            main as sim_main,
        )

        return sim_main(args_list[1:])
    parser = _build_parser()
    args = parser.parse_args(args_list)
    if args.command == "keygen":
        print(base64.b64encode(os.urandom(32)).decode())
        return 0
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        agent = _agent_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    return asyncio.run(_run_agent(agent, args.join, args.leave_timeout))


def _agent_from_args(args: argparse.Namespace) -> Agent:
    keyring = None
    if args.encrypt:
        try:
            key = base64.b64decode(args.encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("--encrypt: not valid base64") from None
        if len(key) not in (16, 24, 32):
            raise ValueError(f"--encrypt: key must be 16, 24 or 32 bytes, got {len(key)}")
        keyring = Keyring([key])
    tags: dict[str, str] | None = None
    if args.tag:
        tags = {}
        for item in args.tag:
            k, sep, v = item.partition("=")
            if not sep or not k:
                raise ValueError(f"--tag: expected K=V, got {item!r}")
            tags[k] = v
        if args.meta:
            log.warning("--meta is ignored because --tag sets the metadata")
    bind = parse_address(args.bind, default_port=DEFAULT_PORT)
    advertise = parse_address(args.advertise, default_port=0) if args.advertise else None
    for seed in args.join:
        parse_address(seed, default_port=DEFAULT_PORT)
    return Agent(
        args.name,
        bind=bind,
        advertise=advertise,
        config=PROFILES[args.profile](),
        keyring=keyring,
        label=args.label,
        meta=args.meta.encode(),
        tags=tags,
        serf_compat=not args.no_serf,
    )


async def _print_events(agent: Agent, out: TextIO) -> None:
    async for event in agent.events():
        if isinstance(event, EventsLost):
            log.warning("%d events lost (consumer too slow)", event.count)
            continue
        line = event_line(event, time.time())
        if line is not None:
            out.write(line + "\n")
            out.flush()


async def _run_agent(agent: Agent, seeds: Sequence[str], leave_timeout: float) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
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
    status = 0
    try:
        async with agent:
            printer = asyncio.create_task(_print_events(agent, sys.stdout))
            log.info("%s: bound to %s", agent.name, format_address(agent.bound_address))
            try:
                if seeds:
                    joined = await agent.join(list(seeds))
                    log.info("joined %d of %d seeds", joined, len(seeds))
            except JoinError as exc:
                log.error("join failed: %s", exc)
                status = 1
            if status == 0:
                await stop.wait()
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
            await agent.close()
            with contextlib.suppress(asyncio.CancelledError, BrokenPipeError):
                await printer
            if drops:
                log.info("dropped input by reason: %s", drops)
    except BrokenPipeError:
        status = 0
    except OSError as exc:  # bind failures: address in use, not local, ...
        log.error("cannot start: %s", exc)
        status = 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return status
