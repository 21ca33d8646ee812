"""Serf compatibility: tags in Meta, Serf messages, and the Serf layer (pure, no IO).

A swimguard node that joins a Serf cluster should publish its metadata with
`encode_tags`, gossip `SerfLayer.join_intent()` after joining and
`SerfLayer.leave_intent()` before leaving (Serf shows a member as "left" rather
than "failed" only after its leave intent), feed memberlist user messages to
`handle_user_message`, and use `local_state`/`merge_remote_state` as push/pull
user state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Each public name and the module that defines it: imported on first use (PEP 562), so
# that importing one submodule does not load the whole package.
_EXPORTS: dict[str, str] = {
    "LamportClock": "swimguard.serf.clock",
    "JoinIntentReceived": "swimguard.serf.events",
    "KeyringChanged": "swimguard.serf.events",
    "LeaveIntentReceived": "swimguard.serf.events",
    "NameConflictResolved": "swimguard.serf.events",
    "QueryAckReceived": "swimguard.serf.events",
    "QueryEnd": "swimguard.serf.events",
    "QueryFinished": "swimguard.serf.events",
    "QueryReceived": "swimguard.serf.events",
    "QueryResponseReceived": "swimguard.serf.events",
    "SerfBroadcast": "swimguard.serf.events",
    "SerfDirect": "swimguard.serf.events",
    "SerfEvent": "swimguard.serf.events",
    "SerfOutgoing": "swimguard.serf.events",
    "UserEventReceived": "swimguard.serf.events",
    "SerfLayer": "swimguard.serf.layer",
    "Join": "swimguard.serf.messages",
    "Leave": "swimguard.serf.messages",
    "PushPull": "swimguard.serf.messages",
    "Query": "swimguard.serf.messages",
    "QueryResponse": "swimguard.serf.messages",
    "Relay": "swimguard.serf.messages",
    "SerfDecodeError": "swimguard.serf.messages",
    "SerfMessage": "swimguard.serf.messages",
    "SerfMessageType": "swimguard.serf.messages",
    "UserEvent": "swimguard.serf.messages",
    "UserEventEntry": "swimguard.serf.messages",
    "UserEvents": "swimguard.serf.messages",
    "decode_message": "swimguard.serf.messages",
    "encode_message": "swimguard.serf.messages",
    "QueryParams": "swimguard.serf.query",
    "QueryRespondError": "swimguard.serf.query",
    "decode_tags": "swimguard.serf.tags",
    "encode_tags": "swimguard.serf.tags",
}

if TYPE_CHECKING:
    from swimguard.serf.clock import LamportClock as LamportClock
    from swimguard.serf.events import JoinIntentReceived as JoinIntentReceived
    from swimguard.serf.events import KeyringChanged as KeyringChanged
    from swimguard.serf.events import LeaveIntentReceived as LeaveIntentReceived
    from swimguard.serf.events import NameConflictResolved as NameConflictResolved
    from swimguard.serf.events import QueryAckReceived as QueryAckReceived
    from swimguard.serf.events import QueryEnd as QueryEnd
    from swimguard.serf.events import QueryFinished as QueryFinished
    from swimguard.serf.events import QueryReceived as QueryReceived
    from swimguard.serf.events import QueryResponseReceived as QueryResponseReceived
    from swimguard.serf.events import SerfBroadcast as SerfBroadcast
    from swimguard.serf.events import SerfDirect as SerfDirect
    from swimguard.serf.events import SerfEvent as SerfEvent
    from swimguard.serf.events import SerfOutgoing as SerfOutgoing
    from swimguard.serf.events import UserEventReceived as UserEventReceived
    from swimguard.serf.layer import SerfLayer as SerfLayer
    from swimguard.serf.messages import Join as Join
    from swimguard.serf.messages import Leave as Leave
    from swimguard.serf.messages import PushPull as PushPull
    from swimguard.serf.messages import Query as Query
    from swimguard.serf.messages import QueryResponse as QueryResponse
    from swimguard.serf.messages import Relay as Relay
    from swimguard.serf.messages import SerfDecodeError as SerfDecodeError
    from swimguard.serf.messages import SerfMessage as SerfMessage
    from swimguard.serf.messages import SerfMessageType as SerfMessageType
    from swimguard.serf.messages import UserEvent as UserEvent
    from swimguard.serf.messages import UserEventEntry as UserEventEntry
    from swimguard.serf.messages import UserEvents as UserEvents
    from swimguard.serf.messages import decode_message as decode_message
    from swimguard.serf.messages import encode_message as encode_message
    from swimguard.serf.query import QueryParams as QueryParams
    from swimguard.serf.query import QueryRespondError as QueryRespondError
    from swimguard.serf.tags import decode_tags as decode_tags
    from swimguard.serf.tags import encode_tags as encode_tags

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


def __getattr__(name: str) -> Any:
    import importlib  # on first use: `swimguard members` never needs it

    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain global lookup
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
