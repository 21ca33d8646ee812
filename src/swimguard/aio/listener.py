"""The TCP accept loop: our own, not `asyncio.Server`.

CPython 3.11's `Server.close()` races its own accept path: a connection the loop
accepted just before the close gets its transport built a turn later, the transport's
`Server._attach()` asserts because the server is closed, and the half-built transport
leaks its socket (a ResourceWarning at garbage collection). Here every accepted socket is
handed to `loop.connect_accepted_socket` (no server attached), and `close()` waits for
those hand-overs, so no socket outlives the agent.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

Admit = Callable[[socket.socket, Callable[[socket.socket], None]], None]
"""Takes an accepted socket and hands it over later (`aio.gray_fault`'s delay queue)."""

log = logging.getLogger("swimguard.agent")

ACCEPT_RETRY_DELAY = 1.0
"""Back-off after accept() fails (e.g. out of file descriptors), as asyncio's server does."""
HANDOVER_TIMEOUT = 1.0
"""How long close() waits for connections accepted before it was called."""


class Listener:
    """Accepts connections on a listening socket and hands them to `protocol_factory`."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        count_drop: Callable[[str], None],
        admit: Admit | None = None,
    ) -> None:
        self._loop = loop
        self._admit = admit
        self._sock = sock
        self._factory = protocol_factory
        self._count_drop = count_drop
        self._handovers: dict[asyncio.Task[None], socket.socket] = {}
        self._retry: asyncio.TimerHandle | None = None
        self._open = True
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), self._accept_ready)

    def _accept_ready(self) -> None:
        # Accept and hand over in one callback: an accepted socket is never left in a
        # future that a cancellation could drop.
        while self._open:
            try:
                conn, _addr = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors: back off
                self._count_drop("tcp_accept_error")
                log.warning("accept failed: %s; retrying in %.1f s", exc, ACCEPT_RETRY_DELAY)
                self._loop.remove_reader(self._sock.fileno())
                self._retry = self._loop.call_later(ACCEPT_RETRY_DELAY, self._resume)
                return
            if self._admit is None:
                self._start_hand_over(conn)
            else:
                self._admit(conn, self._start_hand_over)

    def _start_hand_over(self, conn: socket.socket) -> None:
        if not self._open:  # admitted after close(): nobody will serve it
            conn.close()
            return
        task = self._loop.create_task(self._hand_over(conn))
        self._handovers[task] = conn
        task.add_done_callback(self._handovers.pop)

    def _resume(self) -> None:
        self._retry = None
        if self._open:
            self._loop.add_reader(self._sock.fileno(), self._accept_ready)

    async def _hand_over(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, sock=conn)
        except OSError as exc:  # reset before we got to it
            conn.close()
            log.debug("accepted connection lost before hand-over: %s", exc)

    async def close(self) -> None:
        """Stop accepting, close the listening socket, finish or drop pending hand-overs."""
        if not self._open:
            return
        self._open = False
        if self._retry is not None:
            self._retry.cancel()
        else:
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        pending = dict(self._handovers)
        if not pending:
            return
        _done, late = await asyncio.wait(pending, timeout=HANDOVER_TIMEOUT)
        for stuck in late:
            stuck.cancel()
        if late:
            await asyncio.wait(late)
        for stuck in late:
            # Cancelled before asyncio built a transport around it: the socket is still ours.
            if stuck.cancelled() and pending[stuck].fileno() != -1:
                pending[stuck].close()
