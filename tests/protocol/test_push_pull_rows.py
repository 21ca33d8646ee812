"""What a node sends in push/pull (`local_state_bytes`, member rows straight from the
table) is exactly the encoding of its `local_state` message."""

from __future__ import annotations

import pytest
from node_helpers import add_members, alive, dead, feed, make_node, suspect

from swimguard.wire.state_memo import StateMemo
from swimguard.wire.stream import StreamDecoder, encode_stream_message


class Hook:
    def __init__(self) -> None:
        self.calls: list[bool] = []

    def local_state(self, join: bool) -> bytes:
        self.calls.append(join)
        return b"user state " + bytes([join])

    def merge_remote_state(self, data: bytes, join: bool) -> None:
        pass


@pytest.mark.parametrize("join", [False, True])
@pytest.mark.parametrize("with_hook", [False, True])
def test_local_state_bytes_encode_local_state(join: bool, with_hook: bool) -> None:
    hook = Hook()
    node = make_node(hooks=hook if with_hook else None)
    add_members(node, "b", "c", "d", "e")
    feed(node, alive("b", 2, meta=b"\xffrole"), suspect("c", 1), dead("d", 1, frm="d"), now=1.0)
    pp = node._streams.local_state(join)
    sent = node._streams.local_state_bytes(join)
    assert sent == encode_stream_message(pp, memo=None)
    assert sent == encode_stream_message(pp, memo=StateMemo())
    assert StreamDecoder(memo=None).feed(sent) == pp
    assert {s.state for s in pp.states} == {0, 1, 3}  # alive, suspect, left all present
    assert hook.calls == ([join, join] if with_hook else [])
