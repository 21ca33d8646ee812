"""Hook wrappers expose the application's hooks as Python 3.12's isinstance sees them."""

from __future__ import annotations

import inspect

from swimguard.protocol import hooks
from swimguard.protocol.hooks import HOOK_METHODS, MessageHook, MetaHook, forward_hooks

PROTOCOLS = [getattr(hooks, n) for n in hooks.__all__ if n.endswith("Hook")]


def test_the_method_list_covers_every_hook_protocol() -> None:
    declared = {n for p in PROTOCOLS for n in vars(p) if not n.startswith("_")}
    assert declared == set(HOOK_METHODS)


class _App:
    def __init__(self) -> None:
        self.got: list[bytes] = []

    def notify_message(self, data: bytes) -> None:
        self.got.append(data)


class _Wrapper:
    def node_meta(self, limit: int) -> bytes:
        return b"ours"


def test_forwarded_hooks_are_found_statically_and_called_on_the_application() -> None:
    app, wrapper = _App(), _Wrapper()
    forward_hooks(wrapper, app)
    # What isinstance does with runtime-checkable protocols from Python 3.12 on.
    inspect.getattr_static(wrapper, "notify_message")
    assert isinstance(wrapper, MessageHook)
    assert isinstance(wrapper, MetaHook)
    wrapper.notify_message(b"x")  # type: ignore[attr-defined]
    assert app.got == [b"x"]
    assert wrapper.node_meta(10) == b"ours"  # the wrapper's own method stays
    assert not hasattr(wrapper, "notify_alive")
