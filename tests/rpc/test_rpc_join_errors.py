"""memberlist's join error text from the agent's (pure; the live text is checked in
test_rpc_client.py and against serf in tests/interop/test_serf_cli_rpc.py)."""

from __future__ import annotations

from swimguard.rpc.join_errors import multierror, seed_failures


def test_a_refused_connection_reads_as_go_dial_error() -> None:
    ours = "no seed answered: 127.0.0.1:1: connect to 127.0.0.1:1 failed: [Errno 111] Connect "\
        "call failed ('127.0.0.1', 1)"
    lines = seed_failures("127.0.0.1:1", ours)
    assert lines == ["Failed to join 127.0.0.1: dial tcp 127.0.0.1:1: connect: connection refused"]
    # Byte for byte what serf 0.9.4's agent answered (tests/rpc/data/cap1.json).
    assert multierror(lines) == (
        "1 error occurred:\n\t* Failed to join 127.0.0.1: dial tcp 127.0.0.1:1: connect: "
        "connection refused\n\n"
    )


def test_several_errors_and_ipv6() -> None:
    ours = "no seed answered: [::1]:7: connect to [::1]:7 failed: [Errno 113] x; "\
        "10.0.0.1:7: connect to 10.0.0.1:7 failed: [Errno 101] y"
    lines = seed_failures("host:7", ours)
    assert lines == [
        "Failed to join ::1: dial tcp [::1]:7: connect: no route to host",
        "Failed to join 10.0.0.1: dial tcp 10.0.0.1:7: connect: network is unreachable",
    ]
    assert multierror(lines).startswith("2 errors occurred:\n\t* Failed to join ::1")
    assert multierror(lines).endswith("unreachable\n\n")


def test_what_go_has_no_words_for_keeps_ours_in_serfs_shape() -> None:
    assert seed_failures("nohost.invalid:1", "cannot resolve seed 'nohost.invalid': boom") == [
        "Failed to resolve nohost.invalid:1: cannot resolve seed 'nohost.invalid': boom"
    ]
    assert seed_failures("10.1.2.3", "join timed out after 21.0s") == [
        "Failed to join 10.1.2.3: dial tcp 10.1.2.3:7946: i/o timeout"
    ]
    assert seed_failures("[::1]:5", "cannot join through '[::1]:5': IPv6 seed") == [
        "Failed to join ::1: cannot join through '[::1]:5': IPv6 seed"
    ]
    bad = seed_failures("a:b:c", "port out of range")
    assert bad == ["Failed to join a:b:c: port out of range"]  # no port: a bare v6 address
