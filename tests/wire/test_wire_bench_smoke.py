"""The wire benchmark runs and reports every case (a smoke test, not a timing test)."""

from __future__ import annotations

import pytest

from bench import wire_bench


def test_wire_bench_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    assert wire_bench.main(["--runs", "1", "--seconds", "0.005"]) == 0
    out = capsys.readouterr().out
    for name, _encode, _decode in wire_bench.cases():
        line = next(row for row in out.splitlines() if row.startswith(name))
        encode_rate, decode_rate = (float(v.replace(",", "")) for v in line.split()[-2:])
        assert encode_rate > 0
        assert decode_rate > 0
