"""Process-wide allocator tuning for the long-running agent (`swimguard agent`).

A peer may legally send a stream message of up to 20 MiB. glibc serves such a buffer
with mmap, but its *dynamic* mmap threshold then rises to the size of the first one
freed, so later large buffers come from the heap, where one small live allocation above
them keeps the freed pages in the process for good: after a burst of 20 MiB messages an
agent stayed ~25 MiB above its start (`bench.hostile --attack big-bodies`). A fixed
threshold keeps every large buffer mmapped, so its memory goes back to the system when
it is freed. This is the process owner's decision, so only the CLI makes it; a library
user's process is left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

LARGE_BUFFER = 1 << 20
"""Buffers from this size on are mmapped (glibc's default starts at 128 KiB, then moves)."""

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)


def return_large_buffers_to_the_system(threshold: int = LARGE_BUFFER) -> bool:
    """Fix glibc's mmap threshold at `threshold` bytes; False where it does not apply."""
    if platform.libc_ver()[0] != "glibc":
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False
