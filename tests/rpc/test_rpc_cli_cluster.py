"""Pure parts of `swimguard query|keys|rtt`: Go durations, Go JSON, hostile key and
coordinate replies (the end-to-end output is compared with serf in tests/interop)."""

from __future__ import annotations

import argparse

import pytest

from swimguard.rpc.cli_cluster import _go_json, parse_duration
from swimguard.rpc.client import KeyReport, _coordinate


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("15s", 15.0), ("250ms", 0.25), ("1m30s", 90.0), ("1.5h", 5400.0),
     ("2us", 2e-6), ("+3s", 3.0), (".5s", 0.5)],
)
def test_go_durations_parse_as_serf_reads_timeout(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


# Go would take "-1s"; a query cannot have a deadline in the past, so it is refused here.
@pytest.mark.parametrize("text", ["", "3", "s", "3x", "1s2", "-1s", "1 s"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid duration"):
        parse_duration(text)


def test_query_json_escapes_html_like_go_and_keeps_unicode() -> None:
    text = _go_json({"Acks": None, "Responses": {"a": "<b>&é\u2028"}})
    assert text == (
        '{\n  "Acks": null,\n  "Responses": {\n    "a": "\\u003cb\\u003e\\u0026é\\u2028"\n  }\n}'
    )


def test_key_report_from_hostile_bodies_keeps_only_well_typed_fields() -> None:
    report = KeyReport.from_wire("2/2 nodes reported failure", {
        "Keys": {"k": 2, "bad": "x", "flag": True}, "Messages": {"a": "no"},
        "NumNodes": "2", "NumResp": 2, "NumErr": True,
    })
    assert report.keys == {"k": 2}
    assert report.messages == {"a": "no"}
    assert (report.num_nodes, report.num_resp, report.num_err) == (0, 2, 0)
    empty = KeyReport.from_wire("", None)
    assert (empty.keys, empty.messages, empty.num_nodes) == ({}, {}, 0)
    assert KeyReport.from_wire("", {"Keys": None, "Messages": []}).messages == {}


def test_coordinates_that_cannot_be_used_read_as_none() -> None:
    good = {"Vec": [0.001, 0.0], "Error": 1.5, "Adjustment": 0, "Height": 1e-5}
    coord = _coordinate(good)
    assert coord is not None
    assert coord.vec == (0.001, 0.0)
    assert _coordinate({**good, "Vec": None}) is None  # serf's "no coordinate" (Ok false)
    assert _coordinate({**good, "Vec": ["x"]}) is None
    assert _coordinate({**good, "Height": "1"}) is None
    assert _coordinate([1, 2]) is None
    assert _coordinate({**good, "Error": float("nan")}) is None
