"""The `agent` flags turned into an `Agent` (and its bind address); a bad value: ValueError."""

from __future__ import annotations

import argparse
import base64
import binascii
import dataclasses
import logging
from collections.abc import Sequence

from swimguard.agent_handlers import HandlerSpec, parse_handler_spec
from swimguard.aio import Agent
from swimguard.aio.agent import DEFAULT_PORT, seed_family_problem
from swimguard.aio.agent_config import AgentConfig
from swimguard.aio.gray_flags import options_from as gray_fault_options
from swimguard.aio.sockets import format_address, is_ip
from swimguard.cli.addresses import address_arg, resolve
from swimguard.cli.agent_flags import META_LIMIT, PROFILES
from swimguard.protocol.outgoing import Address
from swimguard.serf import encode_tags
from swimguard.serf.coalesce import SERF_AGENT_COALESCE
from swimguard.serf.status import StatusTimes
from swimguard.wire.encryption import Keyring

__all__ = ["agent_from_args", "handler_specs"]

# The logger keeps the name of the module it came from: log lines (the hostile suite's
# drop accounting, `serf monitor` users) say `swimguard.cli`.
log = logging.getLogger("swimguard.cli")


def agent_from_args(args: argparse.Namespace) -> tuple[Agent, Address]:
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
    bind_addr = address_arg("--bind", args.bind, DEFAULT_PORT)
    advertise_addr = (
        address_arg("--advertise", args.advertise, 0) if args.advertise else None
    )
    seeds = [address_arg("--join", seed, DEFAULT_PORT) for seed in args.join]
    # Resolve here, so that a failure names the flag it came from.
    bind = resolve("--bind", args.bind, bind_addr)
    advertise = resolve("--advertise", args.advertise, advertise_addr) if advertise_addr else None
    metrics: Address | None = getattr(args, "metrics_addr", None)
    if metrics is not None and not is_ip(metrics[0]):  # before anything starts, like --bind
        args.metrics_addr = resolve("--metrics-addr", format_address(metrics), metrics)
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
        options=dataclasses.replace(_persist_options(args), gray_fault=gray_fault_options(args)),
    )
    return agent, bind


def _name_arg(name: str) -> str:
    if not name:
        raise ValueError("--name '': must not be empty")
    try:
        name.encode()
    except UnicodeEncodeError:  # undecodable bytes in argv arrive as lone surrogates
        raise ValueError(f"--name {name!r}: not valid UTF-8") from None
    return name


def _persist_options(args: argparse.Namespace) -> AgentConfig:
    """The `AgentConfig` the persistence and Serf status flags ask for (bad: exit 2)."""
    if args.snapshot is not None and args.no_serf:
        raise ValueError("--snapshot: snapshots are Serf's; drop --no-serf")
    if args.rejoin and args.snapshot is None:
        raise ValueError("--rejoin needs --snapshot")
    if args.retry_max < 0:
        raise ValueError(f"--retry-max: must be >= 0, got {args.retry_max}")
    for seed in args.retry_join:
        address_arg("--retry-join", seed, DEFAULT_PORT)
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


def handler_specs(texts: Sequence[str]) -> list[HandlerSpec]:
    try:
        return [parse_handler_spec(text) for text in texts]
    except ValueError as exc:
        raise ValueError(f"--event-handler {exc}") from None
