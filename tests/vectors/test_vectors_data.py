"""The repository carries every vector its tests read: no test reaches outside the clone."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).with_name("data")
# Places a test could have read data from before the repository carried its own copy.
# (Spelled in pieces so that this file does not match its own pattern, nor a plain grep.)
OUTSIDE = re.compile(
    "|".join((r"/work/", r"\.\./" + "shared", r"\"shared\"\s*/", "shared" + "/vectors"))
)


def _sources() -> list[Path]:
    return sorted(p for d in ("tests", "bench") for p in (ROOT / d).rglob("*.py"))


def test_no_test_or_bench_reads_a_path_outside_the_repository() -> None:
    me = Path(__file__).resolve()
    offenders = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in _sources()
        if p.resolve() != me
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


def test_every_carried_vector_file_is_read_by_a_test() -> None:
    text = "\n".join(p.read_text() for p in _sources())
    files = sorted(p.name for p in DATA.glob("*.json"))
    assert files  # the copy is there at all
    assert [f for f in files if f not in text] == []
