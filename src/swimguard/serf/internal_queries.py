"""Serf's internal queries (`_serf_*`): answering them, and tallying the ones we send.

Answers: `_serf_ping` needs only the automatic ack; `_serf_conflict` gets our view of
the contested name; the key queries act on the keyring and answer with memberlist's
message texts. Tallies (what we originate): `ConflictVote`, the name conflict vote of
Serf's `resolveNodeConflict`, and `KeyTally`, the `KeyManager`'s per-node summary that
`serf keys` prints. Pure: no IO, no clock.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
from collections.abc import Callable
from typing import Final

import msgpack

from swimguard.serf.messages import (
    ConflictMember,
    SerfDecodeError,
    SerfMessageType,
    decode_conflict_response,
    encode_conflict_response,
)
from swimguard.wire.encryption import Keyring, validate_key

__all__ = [
    "CONFLICT_QUERY",
    "PING_QUERY",
    "ConflictVote",
    "KeyOp",
    "KeyResponse",
    "KeyTally",
    "answer_conflict",
    "answer_key_query",
    "key_request",
    "key_response_payload",
]

PING_QUERY: Final = "_serf_ping"
CONFLICT_QUERY: Final = "_serf_conflict"


class KeyOp(enum.Enum):
    """The four key commands of `serf keys`; the query name is `_serf_` + value."""

    INSTALL = "install-key"
    USE = "use-key"
    REMOVE = "remove-key"
    LIST = "list-keys"

    @property
    def query_name(self) -> str:
        return "_serf_" + self.value


KEY_QUERY_NAMES: Final = {op.query_name: op for op in KeyOp}


def key_request(key: bytes) -> bytes:
    """The key query payload: 0x07 + `keyRequest{Key}` (empty for list-keys)."""
    return bytes((SerfMessageType.KEY_REQUEST,)) + msgpack.packb(
        {"Key": bytes(key)}, use_bin_type=False
    )


def key_response_payload(keys: list[str] | None, message: str, primary: str, result: bool) -> bytes:
    """0x08 + `nodeKeyResponse`, as a responder sends it."""
    body = {"Keys": keys, "Message": message, "PrimaryKey": primary, "Result": result}
    return bytes((SerfMessageType.KEY_RESPONSE,)) + msgpack.packb(body, use_bin_type=False)


@dataclasses.dataclass(frozen=True, slots=True)
class KeyAnswer:
    """What one node answers to a key query (before list truncation)."""

    keys: list[str] | None
    message: str
    primary: str
    result: bool


def answer_key_query(op: KeyOp, payload: bytes, ring: Keyring | None) -> KeyAnswer:
    """Apply a key command to `ring` (changed in place); memberlist's texts on refusal."""
    if ring is None:
        if op is KeyOp.LIST:
            return KeyAnswer(None, "Keyring is empty (encryption not enabled)", "", False)
        return KeyAnswer(None, "No keyring to modify (encryption not enabled)", "", False)
    if op is KeyOp.LIST:
        keys = [base64.b64encode(k).decode() for k in ring.keys]
        return KeyAnswer(keys, "", base64.b64encode(ring.primary).decode(), True)
    try:
        req = msgpack.unpackb(payload[1:], raw=True, strict_map_key=False)
    except (ValueError, TypeError) as exc:  # msgpack errors are ValueErrors
        return KeyAnswer(None, f"Failed to decode key request: {exc}", "", False)
    key = req.get(b"Key") if isinstance(req, dict) else None
    if not isinstance(key, bytes) or not payload or payload[0] != SerfMessageType.KEY_REQUEST:
        return KeyAnswer(None, "Failed to decode key request", "", False)
    if op is KeyOp.INSTALL:
        try:
            validate_key(key)
        except ValueError:
            return KeyAnswer(None, "key size must be 16, 24 or 32 bytes", "", False)
        ring.add_key(key)
    elif op is KeyOp.USE:
        if key not in ring.keys:
            return KeyAnswer(None, "Requested key is not in the keyring", "", False)
        ring.use_key(key)
    else:
        if key == ring.primary:
            return KeyAnswer(None, "Removing the primary key is not allowed", "", False)
        ring.remove_key(key)
    return KeyAnswer(None, "", "", True)


def answer_conflict(
    payload: bytes, our_name: str, lookup: Callable[[str], ConflictMember | None]
) -> bytes | None:
    """Our answer to `_serf_conflict` about the name in `payload`; None when it is ours
    (the contested members do not vote on themselves)."""
    name = payload.decode("utf-8", "surrogateescape")
    if name == our_name:
        return None
    return encode_conflict_response(lookup(name))


class ConflictVote:
    """Serf's vote on a name we share: do most members know it at our address?"""

    def __init__(self, addr: bytes, port: int) -> None:
        self._addr = addr
        self._port = port
        self.matching = 0
        self.responses = 0
        self.invalid = 0

    def add(self, payload: bytes) -> None:
        try:
            member = decode_conflict_response(payload)
        except SerfDecodeError:
            self.invalid += 1  # Serf logs these and leaves them out of the count
            return
        self.responses += 1
        if member is not None and member.addr == self._addr and member.port == self._port:
            self.matching += 1

    @property
    def won(self) -> bool:
        """Serf keeps running with at least a majority (responses // 2 + 1) behind it."""
        return self.matching >= self.responses // 2 + 1


@dataclasses.dataclass(frozen=True, slots=True)
class KeyResponse:
    """What `serf keys` reports: per-node messages, counts, the key tally and the error."""

    keys: dict[str, int]
    messages: dict[str, str]
    num_nodes: int
    num_resp: int
    num_err: int
    error: str

    @property
    def ok(self) -> bool:
        return not self.error


def _go_bytes(data: bytes) -> str:
    """How Go's %v prints a byte slice."""
    return "[" + " ".join(str(b) for b in data) + "]"


class KeyTally:
    """The `KeyManager`'s summary of the responses to one key query (Serf's texts)."""

    def __init__(self, num_nodes: int) -> None:
        self.num_nodes = num_nodes
        self.num_resp = 0
        self.num_err = 0
        self.messages: dict[str, str] = {}
        self.keys: dict[str, int] = {}

    def add(self, from_: str, payload: bytes) -> None:
        self.num_resp += 1
        if not payload or payload[0] != SerfMessageType.KEY_RESPONSE:
            self.messages[from_] = f"Invalid key query response type: {_go_bytes(payload)}"
            self.num_err += 1
            return
        try:
            body = msgpack.unpackb(payload[1:], raw=True, strict_map_key=False)
            if not isinstance(body, dict):
                raise ValueError("not a map")
        except (ValueError, TypeError):
            self.messages[from_] = f"Failed to decode key query response: {_go_bytes(payload)}"
            self.num_err += 1
            return
        result = body.get(b"Result") is True
        message = body.get(b"Message")
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else ""
        if not result:
            self.messages[from_] = text
            self.num_err += 1
        elif text:
            self.messages[from_] = text
        keys = body.get(b"Keys")
        for key in keys if isinstance(keys, list) else ():
            if isinstance(key, bytes):
                name = key.decode("utf-8", "replace")
                self.keys[name] = self.keys.get(name, 0) + 1

    @property
    def complete(self) -> bool:
        """Every member counted at the start has answered (Serf stops waiting then)."""
        return self.num_resp >= self.num_nodes

    def result(self) -> KeyResponse:
        error = ""
        if self.num_err:
            error = f"{self.num_err}/{self.num_nodes} nodes reported failure"
        elif self.num_resp != self.num_nodes:
            error = f"{self.num_resp}/{self.num_nodes} nodes reported success"
        return KeyResponse(
            dict(self.keys), dict(self.messages), self.num_nodes, self.num_resp, self.num_err,
            error,
        )
