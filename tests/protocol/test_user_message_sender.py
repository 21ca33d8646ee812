"""`UserMessage.sender`: the address a user message came from (packet or stream peer)."""

from __future__ import annotations

from node_helpers import feed, make_node

from swimguard.protocol import UserMessage
from swimguard.wire.packet import UserData
from swimguard.wire.stream import UserStream, encode_stream_message, frame_stream


def test_user_messages_name_the_address_they_came_from() -> None:
    node = make_node()
    feed(node, UserData(b"udp"), sender=("10.0.0.7", 7001))
    sid = node.stream_accepted(("10.0.0.8", 40000), now=0.0)
    framed = frame_stream(encode_stream_message(UserStream(b"tcp")), compress=False, keyring=None)
    node.stream_data(sid, framed, now=0.0)
    events = [e for e in node.take_events() if isinstance(e, UserMessage)]
    assert [(e.data, e.sender) for e in events] == [
        (b"udp", ("10.0.0.7", 7001)),
        (b"tcp", ("10.0.0.8", 40000)),
    ]
