"""`explain`: our RPC extension that tells why a member is in its state, and
`swimguard explain NAME`, its CLI.

Serf's RPC has no such command; a serf agent answers it `Unsupported command` (and hangs
up), and serf clients never send it, so adding it costs them nothing. The request body is
`{"Name": str}`; the reply body is `Explanation.to_dict()` as a msgpack map (an empty map
with an error text when the member is unknown), so any msgpack client can read it.

The text format is a short story for a human; times in the explanation are the agent's
clock, so the story says them relative to the explanation's `now` ("3.2 s ago").
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping
from typing import Any

from swimguard.rpc.client import Client, RpcClientError

__all__ = ["UNKNOWN_MEMBER", "explain_story", "run_explain", "speaks_explain", "stats_health"]

UNKNOWN_MEMBER = "Unknown member: {}"
"""The error text when the agent knows no member of that name."""


def _num(value: object) -> float | None:
    """A finite number from the reply, or None (the agent's reply is untrusted)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _ago(now: float, at: object) -> str:
    when = _num(at)
    if when is None:
        return "at an unknown time"
    delta = now - when
    if delta < 0:
        return f"in {-delta:.1f} s"
    return f"{delta:.1f} s ago"


def _secs(value: object) -> str:
    number = _num(value)
    return "?" if number is None else f"{number:.2f} s"


def _signed(value: object) -> str:
    return f"{value:+d}" if isinstance(value, int) and not isinstance(value, bool) else "?"


def _text(value: object) -> str:
    """Printable text only, so a hostile reply cannot drive the terminal."""
    return "".join(c if c.isprintable() else "?" for c in str(value))


def _maps(value: object) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _map(value: object) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def explain_story(data: Mapping[str, Any]) -> str:
    """The explanation `data` (`Explanation.to_dict()`) as readable lines; a field that is
    missing or of the wrong type reads `?`, never an exception."""
    lines = [_text(line) for line in _story(data)]
    return "\n".join(lines)


def _story(data: Mapping[str, Any]) -> list[str]:
    now = _num(data.get("now")) or 0.0
    name = data.get("name", "?")
    who = f"{name} (ourselves)" if data.get("is_self") is True else str(name)
    lines = [f"{who} is {data.get('state')} at incarnation {data.get('incarnation')}"]
    since = data.get("since")
    lines.append(
        f"  in this state since {_ago(now, since)}" if since is not None
        else "  in this state since we first heard of it"
    )
    if data.get("health_score") is not None:
        lines.append(f"  health score {data['health_score']} of at most {data.get('health_max')}")
        if data.get("at_max_since") is not None:
            lines.append(f"  at the maximum since {_ago(now, data['at_max_since'])}")
        if data.get("fence_at") is not None:
            lines.append(f"  fences itself {_ago(now, data['fence_at'])} if it stays there")
        for change in _maps(data.get("health_changes")):
            lines.append(
                f"    {_signed(change.get('delta'))} -> {change.get('score')}"
                f" ({change.get('cause')}) {_ago(now, change.get('at'))}"
            )
    suspicion = _map(data.get("suspicion"))
    if suspicion is not None:
        running = suspicion.get("ended") is None
        head = "suspected" if running else "was last suspected"
        lines.append(
            f"  {head} by {suspicion.get('accuser')} ({suspicion.get('source')})"
            f" {_ago(now, suspicion.get('started'))}"
        )
        confirmations = _maps(suspicion.get("confirmations"))
        lines.append(
            f"    {len(confirmations)} of {suspicion.get('wanted')} confirmations:"
            f" timeout {_secs(suspicion.get('timeout'))}"
            f" (between {_secs(suspicion.get('min_timeout'))}"
            f" and {_secs(suspicion.get('max_timeout'))})"
        )
        for confirmation in confirmations:
            lines.append(f"    confirmed by {confirmation.get('by')}"
                         f" {_ago(now, confirmation.get('at'))}")
        if running and suspicion.get("deadline") is not None:
            lines.append(f"    expires {_ago(now, suspicion['deadline'])}")
        elif not running:
            lines.append(f"    ended ({suspicion.get('ended')})"
                         f" {_ago(now, suspicion.get('ended_at'))}")
        if suspicion.get("why"):
            lines.append(f"    why: {suspicion['why']}")
    death = _map(data.get("death"))
    if death is not None:
        timeout = death.get("timeout")
        after = f" after a {_secs(timeout)} timeout" if timeout is not None else ""
        lines.append(
            f"  declared {death.get('state')} by {death.get('declared_by')}{after}"
            f" {_ago(now, death.get('at'))}"
        )
    for probe in _maps(data.get("probes")):
        result = "ok" if probe.get("ok") is True else "failed"
        rtt = _num(probe.get("rtt"))
        rtt_text = f", rtt {rtt * 1000:.1f} ms" if rtt is not None else ""
        lines.append(
            f"  last {probe.get('kind')} probe {result}{rtt_text} {_ago(now, probe.get('at'))}"
        )
    changes = _maps(data.get("changes"))
    if changes:
        lines.append("  recent changes:")
        for change in changes:
            lines.append(f"    {change.get('state')} at incarnation {change.get('incarnation')}"
                         f" {_ago(now, change.get('at'))}")
    return lines


async def run_explain(client: Client, args: argparse.Namespace) -> int:
    """`swimguard explain NAME`: print the agent's explanation of NAME."""
    try:
        data = await client.explain(args.name)
    except RpcClientError as exc:
        print(f"Error explaining {args.name}: {exc}")
        return 1
    if args.format == "json":
        try:
            text = json.dumps(data, indent=2, sort_keys=True, default=repr)
        except (TypeError, ValueError) as exc:  # keys of mixed types: not from our agent
            print(f"Error explaining {args.name}: the agent's reply is not JSON: {exc}")
            return 1
        print(text)
    else:
        print(explain_story(data))
    return 0


def speaks_explain(stats: Mapping[str, Mapping[str, str]]) -> bool:
    """Whether the agent that sent `stats` is ours, so it answers `explain`.

    A serf agent hangs up on a command it does not know, so clients ask first: ours says
    `runtime.version = pythonX.Y.Z` where serf says `goX.Y.Z`.
    """
    runtime = stats.get("runtime")
    version = runtime.get("version") if isinstance(runtime, Mapping) else None
    return isinstance(version, str) and version.startswith("python")


def stats_health(explanation: Mapping[str, Any] | None) -> dict[str, str]:
    """The `health` section `swimguard info` prints after Serf's sections, from our own
    explanation (every value a string, as in the sections of `stats`)."""
    if explanation is None:
        return {}
    now = _num(explanation.get("now")) or 0.0
    fence_at = _num(explanation.get("fence_at"))
    at_max = _num(explanation.get("at_max_since"))
    return {
        "score": str(explanation.get("health_score")),
        "max": str(explanation.get("health_max")),
        "at_max_for": f"{now - at_max:.3f}" if at_max is not None else "",
        "fence_in": f"{fence_at - now:.3f}" if fence_at is not None else "",
    }
