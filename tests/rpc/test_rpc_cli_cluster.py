"""Pure parts of `swimguard query|keys|rtt`: Go durations, Go JSON, hostile key and
coordinate replies (the end-to-end output is compared with serf in tests/interop)."""

from __future__ import annotations

import argparse

import pytest

from swimguard.rpc.cli import main
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


@pytest.mark.parametrize(
    ("argv", "first_line"),
    [
        (["force-leave"], "A node name must be specified to force leave."),
        (["force-leave", "a", "b"], "A node name must be specified to force leave."),
        (["query"], "A query name must be specified."),
        (["query", "n", "p", "extra"],
         "Too many command line arguments. Only a name and payload must be specified."),
        (["rtt"], "One or two node names must be specified"),
        (["rtt", "a", "b", "c"], "One or two node names must be specified"),
        (["keys", "-list", "-install", "x"],
         "Only one of -install, -use, -remove, or -list allowed"),
        (["keys"], "Usage: swimguard keys [-install=KEY | -use=KEY | -remove=KEY | -list]"),
    ],
)
def test_argument_errors_are_serfs_and_come_before_connecting(
    argv: list[str], first_line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Port 1 refuses connections: a connection attempt would print another error.
    assert main([*argv[:1], "-rpc-addr=127.0.0.1:1", *argv[1:]]) == 1
    out = capsys.readouterr()
    assert out.out.splitlines()[0] == first_line
    assert out.err == ""
