"""The 20 commands of Serf's agent RPC (and our `explain`), what each request carries and
the exact error texts."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

from swimguard.rpc.codec import FieldType

__all__ = ["BODIES", "IPC_VERSION", "Command", "RpcError"]

IPC_VERSION: Final = 1


class Command(enum.StrEnum):
    """A command name as spelled on the wire."""

    HANDSHAKE = "handshake"
    AUTH = "auth"
    EVENT = "event"
    FORCE_LEAVE = "force-leave"
    JOIN = "join"
    MEMBERS = "members"
    MEMBERS_FILTERED = "members-filtered"
    TAGS = "tags"
    STREAM = "stream"
    MONITOR = "monitor"
    STOP = "stop"
    LEAVE = "leave"
    QUERY = "query"
    RESPOND = "respond"
    INSTALL_KEY = "install-key"
    USE_KEY = "use-key"
    REMOVE_KEY = "remove-key"
    LIST_KEYS = "list-keys"
    STATS = "stats"
    GET_COORDINATE = "get-coordinate"
    EXPLAIN = "explain"
    """Ours, not Serf's: why a member is in its state (`swimguard.rpc.explain_cmd`)."""


_S, _B, _BOOL = FieldType.STR, FieldType.BYTES, FieldType.BOOL
_MAP, _LIST = FieldType.STR_MAP, FieldType.STR_LIST

BODIES: Final[Mapping[Command, Mapping[str, FieldType]]] = {
    Command.HANDSHAKE: {"Version": FieldType.INT},
    Command.AUTH: {"AuthKey": _S},
    Command.EVENT: {"Name": _S, "Payload": _B, "Coalesce": _BOOL},
    Command.FORCE_LEAVE: {"Node": _S, "Prune": _BOOL},
    Command.JOIN: {"Existing": _LIST, "Replay": _BOOL},
    Command.MEMBERS_FILTERED: {"Tags": _MAP, "Status": _S, "Name": _S},
    Command.TAGS: {"Tags": _MAP, "DeleteTags": _LIST},
    Command.STREAM: {"Type": _S},
    Command.MONITOR: {"LogLevel": _S},
    Command.STOP: {"Stop": FieldType.UINT},
    Command.QUERY: {
        "FilterNodes": _LIST,
        "FilterTags": _MAP,
        "RequestAck": _BOOL,
        "RelayFactor": FieldType.UINT,
        "Timeout": FieldType.UINT,
        "Name": _S,
        "Payload": _B,
    },
    Command.RESPOND: {"ID": FieldType.UINT, "Payload": _B},
    Command.INSTALL_KEY: {"Key": _S},
    Command.USE_KEY: {"Key": _S},
    Command.REMOVE_KEY: {"Key": _S},
    Command.GET_COORDINATE: {"Node": _S},
    Command.EXPLAIN: {"Name": _S},
}
"""Each command that takes a body, with its fields; the others are a header alone."""


class RpcError(enum.StrEnum):
    """Serf's error strings that clients compare against, spelled exactly."""

    HANDSHAKE_REQUIRED = "Handshake required"
    UNSUPPORTED_VERSION = "Unsupported IPC version"
    DUPLICATE_HANDSHAKE = "Handshake already performed"
    AUTH_REQUIRED = "Authentication required"
    INVALID_AUTH = "Invalid authentication token"
    UNSUPPORTED_COMMAND = "Unsupported command"
    INVALID_FILTER = "Invalid event filter"
    STREAM_EXISTS = "Stream with given sequence exists"
    MONITOR_EXISTS = "Monitor already exists"
    LEAVE_IN_PROGRESS = "Leave already in progress"
    NO_PENDING_QUERY = "No pending queries matching ID"
