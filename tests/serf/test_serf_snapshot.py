"""SnapshotRecorder: Serf's snapshot lines, replay of a captured file, compaction, bad lines."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from swimguard.serf.snapshot import (
    MAX_LINE_BYTES,
    MIN_COMPACT_SIZE,
    SnapshotRecorder,
    format_tcp_addr,
    parse_tcp_addr,
)

DATA = Path(__file__).parent / "data"


def _lines(text: str) -> list[bytes]:
    return text.encode().splitlines(keepends=True)


def test_captured_serf_file_ends_with_leave_so_nothing_is_remembered() -> None:
    # a.snap was written by serf 0.9.4 agent "a": b joined, failed, then a left gracefully.
    raw = (DATA / "a.snap").read_bytes()
    rec = SnapshotRecorder()
    rec.replay(raw.splitlines(keepends=True))
    assert rec.alive == {}
    # `leave` resets the clocks; the `clock: 8` written at shutdown comes after it.
    assert (rec.last_clock, rec.last_event_clock, rec.last_query_clock) == (8, 0, 0)
    assert rec.offset == len(raw)
    assert not rec.problems


def test_captured_serf_file_with_rejoin_keeps_members_and_clocks() -> None:
    raw = (DATA / "a.snap").read_bytes()
    rec = SnapshotRecorder(rejoin_after_leave=True)
    rec.replay(raw.splitlines(keepends=True))
    assert rec.alive == {"a": "127.0.0.1:27946"}  # b: not-alive
    assert (rec.last_clock, rec.last_event_clock, rec.last_query_clock) == (8, 7, 19)
    assert rec.alive_members(exclude="a") == []
    assert rec.alive_members() == [("a", ("127.0.0.1", 27946))]


def test_alive_name_splits_at_last_space_and_ipv6_is_bracketed() -> None:
    rec = SnapshotRecorder()
    rec.replay(_lines("alive: web 1 10.0.0.1:7946\nalive: v6 [::1]:7947\n"))
    assert rec.alive == {"web 1": "10.0.0.1:7946", "v6": "[::1]:7947"}
    assert rec.alive_members() == [("web 1", ("10.0.0.1", 7946)), ("v6", ("::1", 7947))]


def test_recording_writes_serf_lines_and_round_trips() -> None:
    rec = SnapshotRecorder()
    out: list[str] = []
    out += rec.on_alive("a", "127.0.0.1", 7946, member_clock=2)
    out += rec.on_alive("b", "::1", 7947, member_clock=2)  # clock unchanged: no line
    out += rec.on_user_event(3)
    out += rec.on_user_event(2)  # older: nothing
    out += rec.on_query(5)
    out += rec.on_not_alive("b", member_clock=4)
    out += rec.on_clock(4)  # unchanged
    assert out == [
        "alive: a 127.0.0.1:7946\n",
        "clock: 1\n",
        "alive: b [::1]:7947\n",
        "event-clock: 3\n",
        "query-clock: 5\n",
        "not-alive: b\n",
        "clock: 3\n",
    ]
    assert rec.offset == sum(len(line) for line in out)
    again = SnapshotRecorder()
    again.replay(line.encode() for line in out)
    assert again.alive == rec.alive == {"a": "127.0.0.1:7946"}
    assert (again.last_clock, again.last_event_clock, again.last_query_clock) == (3, 3, 5)


def test_leave_clears_alive_and_stops_recording_except_the_clock() -> None:
    rec = SnapshotRecorder()
    rec.on_alive("a", "127.0.0.1", 1, member_clock=1)
    assert rec.on_leave() == ["leave\n"]
    assert rec.alive == {}
    assert rec.on_alive("b", "127.0.0.1", 2, member_clock=1) == []
    assert rec.on_user_event(9) == []
    assert rec.on_clock(9) == ["clock: 8\n"]  # Serf's shutdown still writes the clock

    keep = SnapshotRecorder(rejoin_after_leave=True)
    keep.on_alive("a", "127.0.0.1", 1, member_clock=1)
    keep.on_leave()
    assert keep.alive == {"a": "127.0.0.1:1"}


def test_compaction_threshold_and_content() -> None:
    rec = SnapshotRecorder(min_compact_size=100)
    rec.on_alive("a", "127.0.0.1", 1, member_clock=5)
    for t in range(1, 20):
        rec.on_query(t)
    assert rec.should_compact
    lines = rec.compacted()
    assert lines == [
        "alive: a 127.0.0.1:1\n",
        "clock: 4\n",
        "event-clock: 0\n",
        "query-clock: 19\n",
    ]
    assert rec.offset == sum(len(x) for x in lines)
    assert not rec.should_compact
    # Serf's threshold grows with the alive set: 2 x 128 bytes per member.
    big = SnapshotRecorder()
    for i in range(1000):
        big.on_alive(f"n{i}", "10.0.0.1", 1000 + i, member_clock=1)
    assert big.offset < MIN_COMPACT_SIZE < 2 * 128 * 1000
    big.offset = MIN_COMPACT_SIZE + 1
    assert not big.should_compact


def test_bad_lines_are_counted_and_skipped() -> None:
    text = (
        b"alive: good 127.0.0.1:7946\n"
        b"alive: nospace\n"
        b"alive: host example.com:7946\n"
        b"alive: port 127.0.0.1:99999\n"
        b"alive: v6 ::1:7946\n"
        b"alive: \xff\xfe 127.0.0.1:1\n"
        b"alive:  127.0.0.1:1\n"  # empty name
        b"clock: -1\n"
        b"clock: 18446744073709551616\n"
        b"event-clock: \xd9\xa3\n"  # valid UTF-8, not an ASCII digit
        b"query-clock: 12\n"
        b"# a comment\n"
        b'coordinate: {"Vec": [0]}\n'
        b"bogus\n"
        b"\n"
        + b"alive: "
        + b"x" * MAX_LINE_BYTES
        + b" 127.0.0.1:1\n"
        + b"not-alive: good"  # cut by a crash (no newline): skipped, as Serf does
    )
    rec = SnapshotRecorder()
    rec.replay(text.splitlines(keepends=True))
    assert rec.alive == {"good": "127.0.0.1:7946"}
    assert rec.torn
    assert rec.last_query_clock == 12
    assert rec.last_clock == 0
    assert rec.problems == {
        "bad_alive": 1,
        "bad_address": 3,
        "not_utf8": 1,
        "bad_name": 1,
        "bad_clock": 3,  # -1, 2^64, an Arabic-Indic digit
        "unknown_record": 1,
        "line_too_long": 1,
        "torn_line": 1,
    }


def test_names_that_would_break_a_line_are_not_written() -> None:
    rec = SnapshotRecorder()
    assert rec.on_alive("x\nleave", "127.0.0.1", 1, member_clock=3) == ["clock: 2\n"]
    assert rec.on_not_alive("y\r", member_clock=3) == []
    assert rec.problems["unwritable_member"] == 2
    assert rec.alive == {}


def test_tcp_addr_text() -> None:
    assert format_tcp_addr("::1", 1) == "[::1]:1"
    assert parse_tcp_addr("[::1]:1") == ("::1", 1)
    assert parse_tcp_addr("1.2.3.4:0") is None
    assert parse_tcp_addr("[1.2.3.4]:5") is None
    assert parse_tcp_addr("1.2.3.4:٣") is None


_record = st.one_of(
    st.tuples(st.just("alive: "), st.text(max_size=20), st.just(" "), st.text(max_size=30)),
    st.tuples(st.just("not-alive: "), st.text(max_size=20)),
    st.tuples(st.sampled_from(["clock: ", "event-clock: ", "query-clock: "]), st.text(max_size=25)),
    st.tuples(st.sampled_from(["leave", "#", "coordinate: "])),
    st.tuples(st.text(max_size=40)),
)


@given(
    st.lists(
        st.one_of(
            _record.map(lambda t: "".join(t).encode("utf-8", "surrogatepass")),
            st.binary(max_size=60),
        ),
        max_size=40,
    ),
    st.booleans(),
)
def test_any_file_replays_without_raising_and_what_is_kept_writes_back(
    raw_lines: list[bytes], rejoin: bool
) -> None:
    rec = SnapshotRecorder(rejoin_after_leave=rejoin)
    rec.replay(line + b"\n" for line in raw_lines)
    # Whatever was kept can be written and read back to the same state.
    written = rec.compacted()
    data = "".join(written).encode("utf-8")
    again = SnapshotRecorder()
    again.replay(data.splitlines(keepends=True))
    assert again.alive == rec.alive
    assert not again.problems
    assert (again.last_clock, again.last_event_clock, again.last_query_clock) == (
        rec.last_clock,
        rec.last_event_clock,
        rec.last_query_clock,
    )
    for name, addr in rec.alive_members():
        assert "\n" not in name
        assert parse_tcp_addr(format_tcp_addr(*addr)) == addr
