"""Fault schedules and the small text format users write them in.

A scenario file is line oriented; ``#`` starts a comment. Settings (any order, each once):

    members 20                  # members are named m0 .. m19; m0 is everyone's join seed
    duration 120                # virtual seconds to run
    seed 7                      # default seed (the command line can override it)
    config lan suspicion_mult=5 lha_probe=false   # preset (lan|wan|local) + Config overrides
    link latency=uniform:0.0005,0.002 loss=0.01 duplicate=0.001   # default link model
    join_spread 2               # members join m0 over the first 2 s (default: 0.02 s each)

Timed faults, ``at SECONDS VERB ARGS``; MEMBERS is ``m3``, ``m0-m9``, ``m1,m4,m7`` or ``*``:

    at 10 crash MEMBERS         # kill without goodbye
    at 20 restart MEMBERS       # same name and address, fresh node, joins m0 (or m1 for m0)
    at 30 leave MEMBERS         # graceful leave
    at 15 slow MEMBERS exp:2    # slow member: inputs and timers late by a drawn delay
                                #   (DIST[,notimers][,nofifo]; see sim/distributions.py)
    at 45 fast MEMBERS          # end of the slowness
    at 40 partition MEMBERS / MEMBERS [/ MEMBERS ...]   # unlisted members share one side
    at 60 heal
    at 50 block MEMBERS MEMBERS     # one-way: first set can no longer reach the second
    at 55 unblock MEMBERS MEMBERS
    at 70 link loss=0.05        # change the default link model from then on
    at 80 meta MEMBERS TEXT     # update metadata (an alive update with a new incarnation)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from swimguard.config import Config
from swimguard.sim.cluster import SimCluster
from swimguard.sim.distributions import parse_distribution
from swimguard.sim.network import LinkModel
from swimguard.sim.slow import SlowSpec, parse_slow

__all__ = [
    "Fault",
    "ScenarioError",
    "ScenarioSpec",
    "parse_config",
    "parse_link",
    "parse_members",
    "parse_scenario",
]


class ScenarioError(ValueError):
    """A scenario file could not be parsed; the message names the line."""


def parse_members(text: str, count: int) -> list[str]:
    """Expand ``m3``, ``m0-m9``, ``m1,m4`` or ``*`` into member names (in order)."""
    if text == "*":
        return [f"m{i}" for i in range(count)]
    names: list[str] = []
    for part in text.split(","):
        lo_text, dash, hi_text = part.partition("-")
        try:
            lo = int(lo_text.removeprefix("m"))
            hi = int(hi_text.removeprefix("m")) if dash else lo
        except ValueError:
            raise ValueError(f"bad member reference {part!r} (use m3, m0-m9, m1,m4 or *)") from None
        if not lo_text.startswith("m") or (dash and not hi_text.startswith("m")):
            raise ValueError(f"bad member reference {part!r}: names are m0 .. m{count - 1}")
        if not 0 <= lo <= hi < count:
            raise ValueError(f"member reference {part!r} outside m0 .. m{count - 1}")
        names.extend(f"m{i}" for i in range(lo, hi + 1))
    return names


def _parse_value(field: dataclasses.Field[Any], default: object, text: str) -> object:
    if isinstance(default, bool):
        if text.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise ValueError(f"{field.name} takes true/false, got {text!r}")
        return text.lower() in ("true", "1", "yes", "on")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    raise ValueError(f"{field.name} cannot be set from a scenario file")


def parse_config(words: list[str]) -> Config:
    """``[lan|wan|local] key=value ...`` -> Config (validated by Config itself)."""
    preset = "lan"
    if words and "=" not in words[0]:
        preset = words.pop(0)
    presets: dict[str, Callable[..., Config]] = {
        "lan": Config.lan,
        "wan": Config.wan,
        "local": Config.local,
    }
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r} (lan, wan or local)")
    base = presets[preset]()
    fields = {f.name: f for f in dataclasses.fields(Config)}
    overrides: dict[str, Any] = {}
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or key not in fields:
            raise ValueError(f"unknown config setting {word!r}")
        overrides[key] = _parse_value(fields[key], getattr(base, key), value)
    return dataclasses.replace(base, **overrides)


def parse_link(words: list[str], base: LinkModel) -> LinkModel:
    """``latency=DIST loss=P duplicate=P`` (any subset) applied over `base`."""
    values: dict[str, Any] = {}
    for word in words:
        key, eq, value = word.partition("=")
        if key == "latency" and eq:
            values["latency"] = parse_distribution(value)
        elif key in ("loss", "duplicate") and eq:
            values[key] = float(value)
        else:
            raise ValueError(f"unknown link setting {word!r} (latency=, loss=, duplicate=)")
    return dataclasses.replace(base, **values)


@dataclasses.dataclass(frozen=True, slots=True)
class Fault:
    """One timed action of a schedule."""

    at: float
    verb: str
    args: tuple[str, ...]
    line: int = 0

    def apply(self, cluster: SimCluster, count: int) -> None:
        """Perform the action on `cluster` (whose members are m0 .. m{count-1})."""
        verb, args = self.verb, self.args
        if verb in ("crash", "restart", "leave", "fast"):
            for name in parse_members(args[0], count):
                if verb == "crash":
                    cluster.crash(name)
                elif verb == "restart":
                    if not cluster.member(name).up:
                        seed = "m1" if name == "m0" else "m0"
                        cluster.restart(name, [seed] if cluster.member(seed).up else [])
                elif verb == "leave":
                    cluster.leave(name)
                else:
                    cluster.set_slow(name, None)
        elif verb == "slow":
            spec: SlowSpec = parse_slow(args[1])
            for name in parse_members(args[0], count):
                cluster.set_slow(name, spec)
        elif verb == "partition":
            groups: list[list[int]] = [[]]
            for word in args:
                if word == "/":
                    groups.append([])
                else:
                    groups[-1].extend(cluster.member(n).index for n in parse_members(word, count))
            cluster.network.partition([g for g in groups if g])
        elif verb == "heal":
            cluster.network.heal()
        elif verb in ("block", "unblock"):
            for src in parse_members(args[0], count):
                for dst in parse_members(args[1], count):
                    a, b = cluster.member(src).index, cluster.member(dst).index
                    if verb == "block":
                        cluster.network.block(a, b)
                    else:
                        cluster.network.unblock(a, b)
        elif verb == "link":
            cluster.network.set_default(parse_link(list(args), cluster.network.default))
        elif verb == "meta":
            for name in parse_members(args[0], count):
                cluster.update_meta(name, " ".join(args[1:]).encode())
        else:  # pragma: no cover - parse_scenario rejects unknown verbs
            raise ValueError(f"unknown fault {verb!r}")

    def __str__(self) -> str:
        return f"at {self.at:g} {self.verb} {' '.join(self.args)}".rstrip()


_ARITY = {
    "crash": (1, 1),
    "restart": (1, 1),
    "leave": (1, 1),
    "fast": (1, 1),
    "slow": (2, 2),
    "partition": (3, 10_000),
    "heal": (0, 0),
    "block": (2, 2),
    "unblock": (2, 2),
    "link": (1, 3),
    "meta": (2, 10_000),
}


@dataclasses.dataclass(slots=True)
class ScenarioSpec:
    """A parsed scenario file."""

    members: int = 10
    duration: float = 60.0
    seed: int = 1
    config: Config = dataclasses.field(default_factory=Config.lan)
    link: LinkModel = dataclasses.field(default_factory=LinkModel)
    join_spread: float | None = None
    faults: list[Fault] = dataclasses.field(default_factory=list)


def parse_scenario(text: str) -> ScenarioSpec:
    """Parse a scenario file (format in the module docstring); raises ScenarioError."""
    spec = ScenarioSpec()
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        try:
            head = words[0]
            if head != "at":
                if head in seen:
                    raise ValueError(f"{head} already set on line {seen[head]}")
                seen[head] = lineno
            if head == "members":
                spec.members = int(words[1])
                if spec.members < 1:
                    raise ValueError("members must be >= 1")
            elif head == "duration":
                spec.duration = float(words[1])
            elif head == "seed":
                spec.seed = int(words[1])
            elif head == "join_spread":
                spec.join_spread = float(words[1])
            elif head == "config":
                spec.config = parse_config(words[1:])
            elif head == "link":
                spec.link = parse_link(words[1:], spec.link)
            elif head == "at":
                at = float(words[1])
                verb, args = words[2], tuple(words[3:])
                if verb not in _ARITY:
                    raise ValueError(f"unknown fault {verb!r}; known: {', '.join(_ARITY)}")
                lo, hi = _ARITY[verb]
                if not lo <= len(args) <= hi:
                    raise ValueError(f"{verb} takes {lo}..{hi} arguments, got {len(args)}")
                if at < 0:
                    raise ValueError("fault times must be >= 0")
                spec.faults.append(Fault(at, verb, args, lineno))
            else:
                raise ValueError(f"unknown setting {head!r}")
        except (ValueError, IndexError) as exc:
            raise ScenarioError(f"line {lineno}: {raw.strip()!r}: {exc}") from None
    for fault in spec.faults:  # member references can only be checked once `members` is known
        try:
            _check_refs(fault, spec.members)
        except ValueError as exc:
            raise ScenarioError(f"line {fault.line}: {fault}: {exc}") from None
    spec.faults.sort(key=lambda f: (f.at, f.line))
    return spec


def _check_refs(fault: Fault, count: int) -> None:
    if fault.verb in ("crash", "restart", "leave", "fast", "slow", "meta"):
        parse_members(fault.args[0], count)
    if fault.verb == "slow":
        parse_slow(fault.args[1])
    if fault.verb in ("block", "unblock"):
        parse_members(fault.args[0], count)
        parse_members(fault.args[1], count)
    if fault.verb == "partition":
        for word in fault.args:
            if word != "/":
                parse_members(word, count)
    if fault.verb == "link":
        parse_link(list(fault.args), LinkModel())
