"""memberlist-compatible codec: bytes <-> typed messages. Pure: no IO, no clock.

See docs/architecture.md ("wire API") for the contract. Every decoder raises
only `DecodeError` subclasses, whose `reason` labels the drop counters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Each public name and the module that defines it: imported on first use (PEP 562), so
# that importing one submodule does not load the whole package.
_EXPORTS: dict[str, str] = {
    "make_compound": "swimguard.wire.compound",
    "Keyring": "swimguard.wire.encryption",
    "BodyError": "swimguard.wire.errors",
    "ChecksumError": "swimguard.wire.errors",
    "CompoundError": "swimguard.wire.errors",
    "CompressionError": "swimguard.wire.errors",
    "DecodeError": "swimguard.wire.errors",
    "DecryptError": "swimguard.wire.errors",
    "LabelError": "swimguard.wire.errors",
    "TooLargeError": "swimguard.wire.errors",
    "TruncatedError": "swimguard.wire.errors",
    "UnknownTypeError": "swimguard.wire.errors",
    "inspect_packet": "swimguard.wire.layers",
    "inspect_stream": "swimguard.wire.layers",
    "AckResp": "swimguard.wire.messages",
    "Alive": "swimguard.wire.messages",
    "Compress": "swimguard.wire.messages",
    "Dead": "swimguard.wire.messages",
    "ErrResp": "swimguard.wire.messages",
    "IndirectPingReq": "swimguard.wire.messages",
    "MessageType": "swimguard.wire.messages",
    "NackResp": "swimguard.wire.messages",
    "NodeState": "swimguard.wire.messages",
    "Ping": "swimguard.wire.messages",
    "PushNodeState": "swimguard.wire.messages",
    "PushPullHeader": "swimguard.wire.messages",
    "Suspect": "swimguard.wire.messages",
    "UserMsgHeader": "swimguard.wire.messages",
    "decode_body": "swimguard.wire.messages",
    "encode_body": "swimguard.wire.messages",
    "Message": "swimguard.wire.packet",
    "UserData": "swimguard.wire.packet",
    "decode_message": "swimguard.wire.packet",
    "decode_packet": "swimguard.wire.packet",
    "encode_message": "swimguard.wire.packet",
    "encode_packet": "swimguard.wire.packet",
    "PushPull": "swimguard.wire.stream",
    "StreamDecoder": "swimguard.wire.stream",
    "StreamMessage": "swimguard.wire.stream",
    "UserStream": "swimguard.wire.stream",
    "encode_stream_message": "swimguard.wire.stream",
    "frame_stream": "swimguard.wire.stream",
}

if TYPE_CHECKING:
    from swimguard.wire.compound import make_compound as make_compound
    from swimguard.wire.encryption import Keyring as Keyring
    from swimguard.wire.errors import BodyError as BodyError
    from swimguard.wire.errors import ChecksumError as ChecksumError
    from swimguard.wire.errors import CompoundError as CompoundError
    from swimguard.wire.errors import CompressionError as CompressionError
    from swimguard.wire.errors import DecodeError as DecodeError
    from swimguard.wire.errors import DecryptError as DecryptError
    from swimguard.wire.errors import LabelError as LabelError
    from swimguard.wire.errors import TooLargeError as TooLargeError
    from swimguard.wire.errors import TruncatedError as TruncatedError
    from swimguard.wire.errors import UnknownTypeError as UnknownTypeError
    from swimguard.wire.layers import inspect_packet as inspect_packet
    from swimguard.wire.layers import inspect_stream as inspect_stream
    from swimguard.wire.messages import AckResp as AckResp
    from swimguard.wire.messages import Alive as Alive
    from swimguard.wire.messages import Compress as Compress
    from swimguard.wire.messages import Dead as Dead
    from swimguard.wire.messages import ErrResp as ErrResp
    from swimguard.wire.messages import IndirectPingReq as IndirectPingReq
    from swimguard.wire.messages import MessageType as MessageType
    from swimguard.wire.messages import NackResp as NackResp
    from swimguard.wire.messages import NodeState as NodeState
    from swimguard.wire.messages import Ping as Ping
    from swimguard.wire.messages import PushNodeState as PushNodeState
    from swimguard.wire.messages import PushPullHeader as PushPullHeader
    from swimguard.wire.messages import Suspect as Suspect
    from swimguard.wire.messages import UserMsgHeader as UserMsgHeader
    from swimguard.wire.messages import decode_body as decode_body
    from swimguard.wire.messages import encode_body as encode_body
    from swimguard.wire.packet import Message as Message
    from swimguard.wire.packet import UserData as UserData
    from swimguard.wire.packet import decode_message as decode_message
    from swimguard.wire.packet import decode_packet as decode_packet
    from swimguard.wire.packet import encode_message as encode_message
    from swimguard.wire.packet import encode_packet as encode_packet
    from swimguard.wire.stream import PushPull as PushPull
    from swimguard.wire.stream import StreamDecoder as StreamDecoder
    from swimguard.wire.stream import StreamMessage as StreamMessage
    from swimguard.wire.stream import UserStream as UserStream
    from swimguard.wire.stream import encode_stream_message as encode_stream_message
    from swimguard.wire.stream import frame_stream as frame_stream

__all__ = [
    "AckResp",
    "Alive",
    "BodyError",
    "ChecksumError",
    "CompoundError",
    "Compress",
    "CompressionError",
    "Dead",
    "DecodeError",
    "DecryptError",
    "ErrResp",
    "IndirectPingReq",
    "Keyring",
    "LabelError",
    "Message",
    "MessageType",
    "NackResp",
    "NodeState",
    "Ping",
    "PushNodeState",
    "PushPull",
    "PushPullHeader",
    "StreamDecoder",
    "StreamMessage",
    "Suspect",
    "TooLargeError",
    "TruncatedError",
    "UnknownTypeError",
    "UserData",
    "UserMsgHeader",
    "UserStream",
    "decode_body",
    "decode_message",
    "decode_packet",
    "encode_body",
    "encode_message",
    "encode_packet",
    "encode_stream_message",
    "frame_stream",
    "inspect_packet",
    "inspect_stream",
    "make_compound",
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
