"""stdout as the agent's event stream: refused when closed, one report when writing fails."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from typing import TextIO

from swimguard.cli.exit_codes import ExitCode

__all__ = ["EventOutput", "discard_stdout", "stdout_usable"]

log = logging.getLogger("swimguard.cli")  # the name users and the hostile suite know


class EventOutput:
    """Writes event lines to stdout and remembers the first failure to do so."""

    def __init__(self, out: TextIO, failed: asyncio.Event) -> None:
        self._out = out
        self._failed = failed
        self.error: OSError | None = None

    def end(self) -> None:
        """Stop the agent's run (it has nothing more to say)."""
        self._failed.set()

    def write(self, line: str) -> bool:
        """Write and flush one line; on failure report it once and return False."""
        if self.error is not None:
            return False
        try:
            self._out.write(line + "\n")
            self._out.flush()
        except OSError as exc:  # ENOSPC, EPIPE, EIO...
            self.error = exc
            reason = exc.strerror or type(exc).__name__
            log.error(
                "cannot write events to stdout (%s): leaving the cluster, exit status %d",
                reason,
                ExitCode.OUTPUT_FAILED,
            )
            discard_stdout()
            self._failed.set()
            return False
        return True


def stdout_usable() -> bool:
    """False when fd 1 was closed before we started (`swimguard agent >&-`)."""
    if sys.stdout is None:  # what Python makes of a closed fd 1
        return False
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):
        return True  # not a descriptor (an embedding's stream): the writes will tell
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def discard_stdout() -> None:
    # What is still buffered would fail again when Python flushes stdout at exit
    # ("Exception ignored ... BrokenPipeError", status 120): point fd 1 at
    # /dev/null so that last flush succeeds, quietly.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
