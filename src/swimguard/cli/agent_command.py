"""`swimguard agent` (and `keygen`): the flags to an `Agent`, its RPC server, handler scripts
and metrics, its lifecycle and signals, and the exit status (`ExitCode`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence

from swimguard.agent_config_file import ConfigFileError
from swimguard.agent_handlers import EventHandlerRunner
from swimguard.aio import Agent, EventsLost
from swimguard.aio.sockets import format_address
from swimguard.cli.addresses import CannotStart, rpc_addr_arg
from swimguard.cli.agent_flags import parse_args
from swimguard.cli.agent_options import agent_from_args, handler_specs
from swimguard.cli.event_lines import event_line
from swimguard.cli.event_output import EventOutput, stdout_usable
from swimguard.cli.exit_codes import ExitCode
from swimguard.cli.keygen import keygen
from swimguard.errors import JoinError, UsageError
from swimguard.protocol.events import SelfFenced
from swimguard.protocol.outgoing import Address
from swimguard.rpc import AgentBackend, LogRing, RpcServer
from swimguard.serf import decode_tags

__all__ = ["run"]

log = logging.getLogger("swimguard.cli")  # the name users and the hostile suite know


def run(argv: Sequence[str]) -> int:
    """`swimguard agent ...` or `swimguard keygen` (or a usage error); the exit status."""
    args_list = list(argv)
    try:
        args, agent_parser = parse_args(args_list)
    except ConfigFileError as exc:
        print(f"swimguard agent: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    if args.command == "keygen":
        return keygen()
    if not stdout_usable():
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
        agent, bind = agent_from_args(args)
        rpc_addr = rpc_addr_arg(args.rpc_addr)
        if rpc_addr is None and args.rpc_auth:
            # The token itself is a secret: named, never echoed.
            raise ValueError("--rpc-auth: there is no RPC to protect (--rpc-addr is empty)")
        args.handler_specs = handler_specs(args.event_handler)
    except ValueError as exc:
        agent_parser.error(str(exc))
    except CannotStart as exc:
        log.error("cannot start: %s", exc)
        return ExitCode.CANNOT_START
    log_ring = LogRing()  # `serf monitor` replays what was logged since here
    logging.getLogger().addHandler(log_ring)
    setup = _RpcSetup(rpc_addr, log_ring)
    try:
        return asyncio.run(_run_agent(agent, bind, args, agent_parser, setup))
    finally:
        logging.getLogger().removeHandler(log_ring)


@dataclasses.dataclass(frozen=True, slots=True)
class _RpcSetup:
    address: Address | None
    log_ring: LogRing


async def _fan_out_events(
    agent: Agent,
    output: EventOutput,
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
    output = EventOutput(sys.stdout, stop)
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
        except CannotStart as exc:
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


async def _serve_metrics(
    agent: Agent, args: argparse.Namespace, closing: contextlib.AsyncExitStack
) -> None:
    """Start `--metrics-addr`'s server, if asked, closed by `closing`; `CannotStart` names
    the flag."""
    wanted: Address | None = args.metrics_addr  # resolved by agent_from_args
    if wanted is None:
        return
    try:
        server = await agent.serve_metrics(wanted)
    except OSError as exc:
        raise CannotStart(f"--metrics-addr: {exc.strerror or exc}") from None
    closing.push_async_callback(server.close)
    assert server.address is not None
    log.info("metrics at http://%s/metrics", format_address(server.address))


def _reload(args: argparse.Namespace, handlers: EventHandlerRunner) -> None:
    """SIGHUP, as Serf: re-read the configuration files; apply the log level and the event
    handlers (what Serf reloads), keep everything else; a bad file changes nothing."""
    try:
        new, _ = parse_args(args.argv, reloading=True)
        specs = handler_specs(new.event_handler)
    except (ValueError, SystemExit) as exc:
        log.error("SIGHUP: configuration not reloaded (kept the current one): %s", exc)
        return
    log.info(  # before the new level applies: the old one chose to hear it
        "SIGHUP: reloaded the configuration: log level %s, %d event handlers",
        new.log_level, len(specs),
    )
    logging.getLogger().setLevel(new.log_level)
    handlers.replace(specs)
