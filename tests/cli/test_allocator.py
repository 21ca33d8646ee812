"""The CLI's allocator tuning: large freed buffers go back to the system."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

from swimguard.allocator import return_large_buffers_to_the_system

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's (the CI machines run glibc)"
)

# After one 20 MiB buffer is freed, glibc's dynamic threshold moves the next ones onto
# the heap; a small allocation made while they live pins their pages after they are freed.
_PROGRAM = textwrap.dedent(
    """
    import sys
    from swimguard.allocator import return_large_buffers_to_the_system
    if sys.argv[1] == "tuned":
        assert return_large_buffers_to_the_system()
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    del bytearray(20 << 20)[:]  # one mmapped buffer, freed: the threshold moves up
    start = rss()
    keep = []
    for _ in range(4):
        big = [bytearray(19 << 20) for _ in range(3)]
        keep.append(bytearray(100_000))  # small (heap), allocated above the big ones
        del big
    print((rss() - start) >> 20)
    """
)


def _retained_mib(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _PROGRAM, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


def test_tuning_returns_freed_large_buffers_and_untuned_keeps_them() -> None:
    untuned, tuned = _retained_mib("default"), _retained_mib("tuned")
    assert tuned < 8
    assert untuned >= 19  # the premise: without the tuning a freed buffer's pages stay


def test_tuning_reports_success_on_glibc() -> None:
    assert return_large_buffers_to_the_system() is True
