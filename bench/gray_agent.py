"""One swimguard member for `bench.gray_bench`, speaking mlnode's stdout protocol.

`python -m bench.gray_agent --config default|swim|lifeguard --name N --bind H:P
[--join H:P] [--slow ...]`: a plain memberlist member (no Serf layer, like mlnode) with
the named protocol configuration and the agent's `--slow*` flags; it prints `READY <name>`
once joined and one `EVENT join|failed|leave|update|suspect <name>` line per membership
event, so the bench reads swimguard and Go memberlist the same way. The agent CLI offers
presets only (`--profile`); the configurations compared here are the simulator's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Sequence

from swimguard.aio import Agent, AgentConfig
from swimguard.aio.gray_flags import add_arguments, options_from
from swimguard.config import Config
from swimguard.protocol.events import (
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberSuspected,
    MemberUpdated,
)

CONFIGS: dict[str, Callable[[], Config]] = {
    "default": Config.lan,
    "swim": Config.swim,
    # The paper's Lifeguard as memberlist has it: none of swimguard's health extensions.
    "lifeguard": lambda: Config.lan(
        loop_lag_health=False, health_scaled_suspicion=False, slow_refresh_interval=0.0
    ),
}

_KINDS: dict[type, str] = {
    MemberJoined: "join",
    MemberFailed: "failed",
    MemberLeft: "leave",
    MemberUpdated: "update",
    MemberSuspected: "suspect",
}


_MEMBER_EVENTS = (MemberJoined, MemberFailed, MemberLeft, MemberUpdated, MemberSuspected)


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def _say(line: str) -> None:
    print(line, flush=True)


async def _run(args: argparse.Namespace) -> int:
    agent = Agent(
        args.name,
        bind=_address(args.bind),
        config=CONFIGS[args.config](),
        serf_compat=False,
        options=AgentConfig(gray_fault=options_from(args)),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await agent.start()
    try:
        events = agent.events()
        if args.join:
            await agent.join([_address(args.join)])
        _say(f"READY {args.name}")

        async def print_events() -> None:
            async for event in events:
                if isinstance(event, _MEMBER_EVENTS):
                    _say(f"EVENT {_KINDS[type(event)]} {event.member.name}")

        printer = asyncio.create_task(print_events())
        await stop.wait()
        printer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await printer
    finally:
        await agent.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gray_agent", description=__doc__)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="default")
    parser.add_argument("--name", required=True)
    parser.add_argument("--bind", required=True, metavar="HOST:PORT")
    parser.add_argument("--join", default="", metavar="HOST:PORT")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
