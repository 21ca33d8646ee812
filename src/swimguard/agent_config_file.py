"""`swimguard agent --config-file/--config-dir`: Serf's JSON agent configuration.

Files use Serf's key names for the options swimguard has. Files are read in order
(`--config-file`s, then each `--config-dir`'s `*.json` in lexical order, as Serf reads
a directory); a later file's value replaces an earlier one's, except that lists
(`event_handlers`, `start_join`, `retry_join`) are appended and `tags` are merged.
The result is a set of defaults for the command line's flags: a flag given on the
command line wins, as in Serf. Every problem is a `ConfigFileError` naming the file
and the key; nothing is guessed.
"""

from __future__ import annotations

import enum
import json
import pathlib
import re
from collections.abc import Mapping, Sequence

__all__ = ["SERF_KEYS", "ConfigFileError", "load_config_files", "parse_go_duration"]

_MAX_FILE_BYTES = 1 << 20  # an agent configuration is small; a huge file is a mistake


class ConfigFileError(ValueError):
    """A configuration file cannot be used; the message names the file (and key)."""


class _Kind(enum.Enum):
    STR = enum.auto()
    BOOL = enum.auto()
    INT = enum.auto()
    STR_LIST = enum.auto()
    TAGS = enum.auto()
    DURATION = enum.auto()
    LOG_LEVEL = enum.auto()


SERF_KEYS: Mapping[str, tuple[str, _Kind]] = {
    "node_name": ("name", _Kind.STR),
    "bind": ("bind", _Kind.STR),
    "advertise": ("advertise", _Kind.STR),
    "encrypt_key": ("encrypt", _Kind.STR),
    "profile": ("profile", _Kind.STR),
    "tags": ("tag", _Kind.TAGS),
    "event_handlers": ("event_handler", _Kind.STR_LIST),
    "start_join": ("join", _Kind.STR_LIST),
    "rpc_addr": ("rpc_addr", _Kind.STR),
    "rpc_auth": ("rpc_auth", _Kind.STR),
    "log_level": ("log_level", _Kind.LOG_LEVEL),
    "snapshot_path": ("snapshot", _Kind.STR),
    "rejoin_after_leave": ("rejoin", _Kind.BOOL),
    "retry_join": ("retry_join", _Kind.STR_LIST),
    "retry_interval": ("retry_interval", _Kind.DURATION),
    "retry_max_attempts": ("retry_max", _Kind.INT),
    "keyring_file": ("keyring_file", _Kind.STR),
}
"""Serf's configuration key -> (the agent flag's argparse dest, its type)."""

# Serf's levels (hashicorp/logutils) and Python's spellings of them.
_LOG_LEVELS = {
    "TRACE": "DEBUG", "DEBUG": "DEBUG", "INFO": "INFO", "WARN": "WARNING",
    "WARNING": "WARNING", "ERR": "ERROR", "ERROR": "ERROR", "CRITICAL": "CRITICAL",
}

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration (`30s`, `1m30s`, `500ms`); ValueError if it is not one."""
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            raise ValueError(f"{text!r} is not a duration such as 30s, 1m30s or 500ms")
        total += float(match[1]) * _UNIT_SECONDS[match[2]]
        pos = match.end()
    if pos == 0:
        raise ValueError("an empty duration")
    return total


def _convert(kind: _Kind, value: object) -> object:
    """The flag value for a JSON value, or ValueError saying what was expected."""
    if kind is _Kind.STR:
        if not isinstance(value, str):
            raise ValueError("expected a string")
        return value
    if kind is _Kind.BOOL:
        if not isinstance(value, bool):
            raise ValueError("expected true or false")
        return value
    if kind is _Kind.INT:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("expected a whole number >= 0")
        return value
    if kind is _Kind.STR_LIST:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("expected a list of strings")
        return list(value)
    if kind is _Kind.TAGS:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ValueError("expected an object of strings")
        for name in value:
            if not name or "=" in name:  # they travel as `--tag K=V`
                raise ValueError(f"tag name {name!r}: must be non-empty, without '='")
        return dict(value)
    if kind is _Kind.DURATION:
        if not isinstance(value, str):
            raise ValueError("expected a duration string such as \"30s\"")
        return parse_go_duration(value)
    assert kind is _Kind.LOG_LEVEL
    if not isinstance(value, str) or value.upper() not in _LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(sorted(_LOG_LEVELS)).lower()}")
    return _LOG_LEVELS[value.upper()]


def _read(path: pathlib.Path) -> dict[str, object]:
    try:
        with path.open("rb") as f:
            raw = f.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > _MAX_FILE_BYTES:
        raise ConfigFileError(f"{path}: larger than {_MAX_FILE_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ConfigFileError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path}: expected a JSON object of Serf agent settings")
    return data


def _files(config_files: Sequence[str], config_dirs: Sequence[str]) -> list[pathlib.Path]:
    paths = [pathlib.Path(p) for p in config_files]
    for d in config_dirs:
        directory = pathlib.Path(d)
        try:
            entries = sorted(p for p in directory.iterdir() if p.suffix == ".json")
        except OSError as exc:
            raise ConfigFileError(f"{directory}: cannot list: {exc.strerror or exc}") from None
        paths.extend(p for p in entries if not p.is_dir())
    return paths


def load_config_files(
    config_files: Sequence[str], config_dirs: Sequence[str] = ()
) -> dict[str, object]:
    """argparse defaults (flag dest -> value) from the files, merged in order."""
    merged: dict[str, object] = {}
    for path in _files(config_files, config_dirs):
        for key, value in _read(path).items():
            known = SERF_KEYS.get(key)
            if known is None:
                raise ConfigFileError(
                    f"{path}: unknown key {key!r} (swimguard reads {', '.join(sorted(SERF_KEYS))})"
                )
            dest, kind = known
            try:
                converted = _convert(kind, value)
            except ValueError as exc:
                raise ConfigFileError(f"{path}: {key}: {exc}") from None
            old = merged.get(dest)
            if kind is _Kind.STR_LIST and isinstance(old, list):
                assert isinstance(converted, list)
                converted = old + converted
            elif kind is _Kind.TAGS and isinstance(old, dict):
                assert isinstance(converted, dict)
                converted = {**old, **converted}
            merged[dest] = converted
    tags = merged.get("tag")
    if isinstance(tags, dict):  # as `--tag K=V` items; command-line tags come after and win
        merged["tag"] = [f"{k}={v}" for k, v in tags.items()]
    return merged
