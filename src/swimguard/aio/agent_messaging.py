"""The agent's messaging API: user messages to one member or to all, Serf user events.

Mixed into `Agent`. Each call validates what it is given before anything is queued
(a size over a limit, an unknown member name, a closed agent raise here, at the call
site), then hands the node one input. `send_reliable` also returns the outcome of its
stream exchange, which the node reports when the stream ends.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from swimguard.aio.agent_event import EventRouter
from swimguard.aio.driver import DrivenNode, Driver
from swimguard.aio.sockets import is_ip, parse_address
from swimguard.errors import UnknownMemberError, UsageError
from swimguard.protocol.outgoing import Address
from swimguard.serf.node import SerfNode

__all__ = ["MAX_BEST_EFFORT_BYTES", "AgentMessaging"]

MAX_BEST_EFFORT_BYTES = 65_000
"""Largest `send_best_effort` payload: one UDP datagram (65,507 bytes of IPv4 payload) less
room for memberlist's headers, a label and encryption. Above the path MTU (often 1,500
bytes) delivery also depends on IP fragmentation."""


class AgentMessaging:
    """`send_best_effort`, `send_reliable`, `broadcast` and `user_event` of `Agent`."""

    _serf_compat: bool
    _router: EventRouter

    if TYPE_CHECKING:

        def _running(self) -> tuple[DrivenNode, Driver]: ...

    def send_best_effort(self, to: str | Address, data: bytes) -> None:
        """Send a user message by UDP (memberlist's `SendBestEffort`): no outcome.

        `to` is a member name, an `(ip, port)` pair or `"ip:port"`. Raises
        `UnknownMemberError` for a name nobody has, `ValueError` above
        `MAX_BEST_EFFORT_BYTES`.
        """
        node, driver = self._running()
        addr, payload = self._address_of(node, to), bytes(data)
        if len(payload) > MAX_BEST_EFFORT_BYTES:
            raise ValueError(
                f"best-effort message of {len(payload)} bytes; the limit is"
                f" {MAX_BEST_EFFORT_BYTES} (one UDP datagram): use send_reliable"
            )
        driver.call(lambda now: node.send_best_effort(addr, payload, now=now))

    def send_reliable(self, to: str | Address, data: bytes) -> asyncio.Future[None]:
        """Send a user message over TCP (memberlist's `SendReliable`).

        `to` as for `send_best_effort`. The message is on its way when this returns;
        await the returned future to learn the outcome: None once the receiver has read
        it (it closes the stream), `DeliveryError` if the connection failed, broke or
        did not finish within `Config.tcp_timeout`, or the agent closed first. Not
        awaiting it is fine (fire and forget: a failure is still counted in
        `drops["reliable_failed"]`). `ValueError` at once above `Config.max_stream_bytes`.
        """
        node, driver = self._running()
        addr, payload = self._address_of(node, to), bytes(data)
        loop, router = asyncio.get_running_loop(), self._router
        # The waiter is registered before the driver drains the node's output: a
        # connection refused at once (no stream slot left) ends the call within it.
        return driver.call(
            lambda now: router.expect_reliable(loop, node.send_reliable(addr, payload, now=now))
        )

    def broadcast(self, data: bytes, key: str | None = None) -> None:
        """Gossip user bytes to every member, piggybacked; a `key` replaces older ones.

        `ValueError` for an empty message or one that cannot fit one UDP packet with its
        framing (`Config.udp_buffer_size`, 1,400 bytes, less headers, label, encryption).
        """
        node, driver = self._running()
        payload = bytes(data)
        driver.call(lambda now: node.broadcast(payload, now=now, key=key))

    def user_event(self, name: str, payload: bytes = b"", *, coalesce: bool = True) -> None:
        """Gossip a Serf user event (seen by `serf monitor` / event handlers).

        Uses the Serf layer's event clock, so Serf agents deduplicate it the way
        they do their own. Needs `serf_compat`; `ValueError` above Serf's 512 bytes.
        """
        if not self._serf_compat:
            raise UsageError("user_event() needs serf_compat=True")
        node, driver = self._running()
        assert isinstance(node, SerfNode)
        data = bytes(payload)
        # Validated first: a too-large event raises here, not inside the driver.
        node.serf.check_user_event(name, data)
        driver.call(lambda now: node.user_event(name, data, now=now, coalesce=coalesce))

    @staticmethod
    def _address_of(node: DrivenNode, to: str | Address) -> Address:
        """`to` as an `(ip, port)`: a known member's name first, else an address literal."""
        if isinstance(to, str):
            for member in node.members():
                if member.name == to:
                    return member.addr
            try:
                host, port = parse_address(to)
            except ValueError:
                raise UnknownMemberError(
                    f"no member named {to!r} (nor is it an ip:port address)"
                ) from None
        else:
            host, port = to
        if not is_ip(host):
            raise UnknownMemberError(
                f"no member named {to!r}, and {host!r} is not an IP address"
                " (host names are not resolved here)"
            )
        return host, port
