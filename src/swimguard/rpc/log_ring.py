"""`monitor`'s log source: a logging handler keeping the last 512 lines in Serf's format.

Lines read like Go's `log.LstdFlags` output with Serf's level tags
(`2026/12/03 17:50:51 [INFO] swimguard.cli: message`), so `serf monitor` users see
what they are used to and the level filter works on the same names.
"""

from __future__ import annotations

import collections
import enum
import logging
import time
from collections.abc import Callable
from typing import Final

__all__ = ["LOG_RING_LINES", "LogLevel", "LogRing"]

LOG_RING_LINES: Final = 512
TRACE: Final = 5
"""Serf's TRACE is below Python's DEBUG; nothing in swimguard logs at it (yet)."""


class LogLevel(enum.IntEnum):
    """Serf's monitor levels, ordered; values are Python logging levels."""

    TRACE = TRACE
    DEBUG = logging.DEBUG
    INFO = logging.INFO
    WARN = logging.WARNING
    ERR = logging.ERROR

    @classmethod
    def of_record(cls, levelno: int) -> LogLevel:
        for level in (cls.ERR, cls.WARN, cls.INFO, cls.DEBUG):
            if levelno >= level:
                return level
        return cls.TRACE


Subscriber = Callable[[str], None]


class LogRing(logging.Handler):
    """Keeps the last `lines` formatted lines and hands new ones to subscribers.

    Subscribers are called from `emit`, on whatever thread logged: they must only queue
    (the RPC server's monitors put the line in a bounded per-connection queue).
    """

    def __init__(self, lines: int = LOG_RING_LINES) -> None:
        super().__init__(logging.NOTSET)
        self._ring: collections.deque[tuple[LogLevel, str]] = collections.deque(maxlen=lines)
        self._subscribers: dict[int, tuple[LogLevel, Subscriber]] = {}
        self._next_id = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = LogLevel.of_record(record.levelno)
            stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(record.created))
            message = record.getMessage().replace("\n", " ")
            line = f"{stamp} [{level.name}] {record.name}: {message}"
        except Exception:  # a bad format string in someone's log call must not break logging
            self.handleError(record)
            return
        self._ring.append((level, line))
        for minimum, deliver in list(self._subscribers.values()):
            if level >= minimum:
                deliver(line)

    def subscribe(self, minimum: LogLevel, deliver: Subscriber) -> int:
        """Replay the ring at or above `minimum` to `deliver`, then send new lines; an id."""
        for level, line in list(self._ring):
            if level >= minimum:
                deliver(line)
        self._next_id += 1
        self._subscribers[self._next_id] = (minimum, deliver)
        return self._next_id

    def unsubscribe(self, subscription: int) -> None:
        self._subscribers.pop(subscription, None)
