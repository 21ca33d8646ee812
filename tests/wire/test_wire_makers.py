"""maker_for builds exactly what the dataclass constructor builds."""

from __future__ import annotations

import dataclasses

import pytest

from swimguard.wire.messages import Alive, Ping, PushNodeState, maker_for


@pytest.mark.parametrize(
    "value",
    [
        Alive(incarnation=3, node="a", addr=bytes(4), port=7946, meta=None, vsn=bytes(6)),
        Alive(incarnation=0, node="", addr=b"", port=0, meta=b"m", vsn=b""),
        PushNodeState(name="n", addr=bytes(16), port=1, incarnation=2, state=3, meta=b"", vsn=b""),
        Ping(seq_no=7, node="x", source_addr=b"\x01", source_node="y", source_port=9),
    ],
)
def test_maker_equals_constructor(value: object) -> None:
    cls = type(value)
    fields = [getattr(value, f.name) for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    made = maker_for(cls)(*fields)  # type: ignore[type-var]
    assert type(made) is cls
    assert made == value
    assert hash(made) == hash(value)
