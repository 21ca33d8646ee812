"""Serf compatibility: tags in Meta, Serf messages, and the Serf layer (pure, no IO).

A swimguard node that joins a Serf cluster should publish its metadata with
`encode_tags`, gossip `SerfLayer.join_intent()` after joining and
`SerfLayer.leave_intent()` before leaving (Serf shows a member as "left" rather
than "failed" only after its leave intent), feed memberlist user messages to
`handle_user_message`, and use `local_state`/`merge_remote_state` as push/pull
user state.
"""

from __future__ import annotations

from swimguard.serf.clock import LamportClock
from swimguard.serf.events import (
    JoinIntentReceived,
    KeyringChanged,
    LeaveIntentReceived,
    NameConflictResolved,
    QueryAckReceived,
    QueryEnd,
    QueryFinished,
    QueryReceived,
    QueryResponseReceived,
    SerfBroadcast,
    SerfDirect,
    SerfEvent,
    SerfOutgoing,
    UserEventReceived,
)
from swimguard.serf.layer import SerfLayer
from swimguard.serf.messages import (
    Join,
    Leave,
    PushPull,
    Query,
    QueryResponse,
    Relay,
    SerfDecodeError,
    SerfMessage,
    SerfMessageType,
    UserEvent,
    UserEventEntry,
    UserEvents,
    decode_message,
    encode_message,
)
from swimguard.serf.query import QueryParams, QueryRespondError
from swimguard.serf.tags import decode_tags, encode_tags

__all__ = [
    "Join",
    "JoinIntentReceived",
    "KeyringChanged",
    "LamportClock",
    "Leave",
    "LeaveIntentReceived",
    "NameConflictResolved",
    "PushPull",
    "Query",
    "QueryAckReceived",
    "QueryEnd",
    "QueryFinished",
    "QueryParams",
    "QueryReceived",
    "QueryRespondError",
    "QueryResponse",
    "QueryResponseReceived",
    "Relay",
    "SerfBroadcast",
    "SerfDecodeError",
    "SerfDirect",
    "SerfEvent",
    "SerfLayer",
    "SerfMessage",
    "SerfMessageType",
    "SerfOutgoing",
    "UserEvent",
    "UserEventEntry",
    "UserEventReceived",
    "UserEvents",
    "decode_message",
    "decode_tags",
    "encode_message",
    "encode_tags",
]
