"""The hostile-input suite (bench/hostile.py) against live agents, and its building blocks.

The live tests start real `python -m swimguard agent` processes on 127.0.0.1 and assert the
issue-10 criteria of each scenario (no crash, no false failure, RSS back under 2x, a join
through the attacked agent afterwards, drops accounted for, no internal error). The fast
test runs a few thousand datagrams; the whole suite at its full size (a million datagrams,
every stream attack) is `make hostile`, which CI runs after `make test` (.ci/run).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import random
from pathlib import Path

import msgpack
import pytest
from bench.hostile_attacks import ATTACKS, classify
from bench.hostile_live import PingStats, read_stderr
from bench.hostile_packets import (
    BAD_NAMES,
    EMPTY_STATE,
    PacketFactory,
    Target,
    load_seeds,
    mutate,
    pushpull_lie_head,
)

from bench import hostile
from swimguard.wire import Alive, Keyring, MessageType, StreamDecoder, decode_packet
from swimguard.wire.errors import DecodeError, TooLargeError

TARGET = Target(
    "a0", ("127.0.0.1", 7000), (("a0", ("127.0.0.1", 7000)), ("a1", ("127.0.0.1", 7001)))
)


def _factory(seed: int = 1) -> PacketFactory:
    return PacketFactory(load_seeds(), TARGET, random.Random(seed))


# --------------------------------------------------------------------------- building blocks


def test_seeds_are_in_the_repository_and_unwrap_to_bare_messages() -> None:
    seeds = load_seeds()
    assert len(seeds.udp) >= 50
    assert len(seeds.tcp) >= 5
    assert len(seeds.bare) >= 20  # plain and decryptable captures, unwrapped
    for bare in seeds.bare:
        decode_packet(bare)  # each is one well-formed message


def test_mutate_changes_bytes_deterministically() -> None:
    data = bytes(range(64))
    a = [mutate(data, random.Random(i)) for i in range(50)]
    b = [mutate(data, random.Random(i)) for i in range(50)]
    assert a == b
    assert sum(1 for x in a if x != data) >= 45


def test_fuzz_mix_is_deterministic_and_mostly_rejected() -> None:
    f1, f2 = _factory(), _factory()
    packets = [f1.fuzz() for _ in range(2000)]
    assert packets == [f2.fuzz() for _ in range(2000)]
    kinds = {k for k, _ in packets}
    assert kinds == {"mutate_captured", "mutate_deep", "random", "wrong_type", "nested"}
    assert all(len(p) <= 65507 for _, p in packets)
    rejected = sum(classify(p, None)[0] for _, p in packets)
    assert 0.5 * len(packets) < rejected < len(packets)  # some survive decoding, most not


def test_wrong_type_cycle_covers_every_field_of_every_message() -> None:
    f = _factory()
    seen: set[tuple[int, str]] = set()
    for _ in range(f.wrong_type_count):
        pkt = f.next_wrong_type()
        with_map = msgpack.Unpacker(raw=True, strict_map_key=False)
        with_map.feed(pkt[1:] if pkt[0] != MessageType.USER else pkt[2:])
        body = next(with_map, None)
        if isinstance(body, dict):
            seen.update((pkt[0], k.decode(errors="replace")) for k in body if isinstance(k, bytes))
    for kind in (
        MessageType.PING,
        MessageType.ALIVE,
        MessageType.SUSPECT,
        MessageType.DEAD,
        MessageType.INDIRECT_PING,
    ):
        assert (int(kind), "Node") in seen
    assert (int(MessageType.ALIVE), "Incarnation") in seen


def test_bad_name_packets_decode_to_alive_with_a_name_that_is_not_utf8() -> None:
    alives = [
        m
        for pkt in _factory().bad_name_packets()
        for m in decode_packet(pkt)
        if isinstance(m, Alive)
    ]
    assert len(alives) == len(BAD_NAMES)
    names = {a.node for a in alives}
    # The first name is b"\xff\xfe": whatever the decoder makes of it, not valid UTF-8 text.
    assert any(not _encodable(n) for n in names)


def _encodable(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def test_lzw_bomb_packet_fits_a_datagram_and_inflates_past_the_budget() -> None:
    f = _factory()
    pkt = f.lzw_bomb_packet(31)
    assert len(pkt) <= 65507
    errors: list[DecodeError] = []
    decode_packet(pkt, errors=errors)
    assert errors  # every part is over the 1 MiB budget


def test_incarnation_wrap_and_spoof_packets() -> None:
    f = _factory()
    alive, suspect = (
        decode_packet(p)[0] for p in f.incarnation_wrap_packets("a1", ("127.0.0.1", 7001))
    )
    assert isinstance(alive, Alive)
    assert alive.incarnation == 0xFFFFFFFF
    assert getattr(suspect, "incarnation", None) == 0xFFFFFFFF
    spoofed = f.spoof_packets(lambda name: 3)
    assert {k for k, _ in spoofed} == {"suspect", "dead", "dead_as_leave", "alive_moved"}
    assert len(spoofed) == 4 * len(TARGET.healthy)


def test_pushpull_lie_header_claims_twenty_million_one_byte_states() -> None:
    head = msgpack.unpackb(pushpull_lie_head()[1:], raw=False)
    assert head["Nodes"] == 20 * 1024 * 1024
    # The decoder refuses the lie at the header: no real state is that small.
    with pytest.raises(TooLargeError, match="member states cannot fit"):
        StreamDecoder().feed(pushpull_lie_head() + EMPTY_STATE * 1000)


def test_classify_skips_packets_pointing_off_loopback() -> None:
    alive = bytes([MessageType.ALIVE]) + msgpack.packb(
        {
            "Addr": ipaddress.ip_address("192.0.2.1").packed,
            "Incarnation": 1,
            "Meta": b"",
            "Node": "x",
            "Port": 7,
            "Vsn": bytes([1, 5, 2, 2, 5, 5]),
        },
        use_bin_type=False,
    )
    assert classify(alive, None) == (False, False)
    local = alive.replace(ipaddress.ip_address("192.0.2.1").packed, b"\x7f\x00\x00\x05")
    assert classify(local, None) == (False, True)
    assert classify(b"\xff", None) == (True, True)
    keyring = Keyring([bytes(32)])
    assert classify(local, keyring) == (True, True)  # not encrypted: rejected


def test_read_stderr_final_and_periodic_drops_and_exceptions(tmp_path: Path) -> None:
    log = tmp_path / "a.stderr"
    log.write_text(
        "2026-12-03 20:00:00,000 WARNING swimguard.agent: a: dropped input in the last 10s: "
        "body=3, crc=2\n"
        "2026-12-03 20:00:10,000 WARNING swimguard.agent: a: dropped input in the last 10s: "
        "body=1\n"
        "2026-12-03 20:00:11,000 ERROR swimguard.agent: a: protocol core raised on input\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n'
        "UnicodeEncodeError: 'utf-8' codec can't encode character\n"
        "2026-12-03 20:00:12,000 INFO swimguard.cli: dropped input by reason: "
        '{"body": 5, "crc": 2, "internal_error": 1}\n'
    )
    rep = read_stderr(log)
    assert rep.periodic_drops == {"body": 4, "crc": 2}
    assert rep.final_drops == {"body": 5, "crc": 2, "internal_error": 1}
    assert rep.drops == rep.final_drops
    assert rep.internal_errors_logged == 1
    assert list(rep.exceptions) == ["UnicodeEncodeError: 'utf-8' codec can't encode character"]
    assert read_stderr(tmp_path / "missing").drops == {}


def test_plan_splits_the_million_between_plain_and_encrypted() -> None:
    opts, out = hostile.parse_args([])
    steps = hostile.plan(opts)
    assert [a for a, _, _ in steps].count("udp-fuzz") == 2
    assert sum(n for _, _, n in steps) == 1_000_000
    assert {a for a, _, _ in steps} == set(ATTACKS)
    assert out == "results/hostile/hostile-full.json"
    opts, out = hostile.parse_args(
        ["--attack", "slowloris", "--size", "ci", "--slowloris-connections", "200"]
    )
    assert hostile.plan(opts) == [("slowloris", "plain", 0)]
    assert opts.cfg.slowloris_connections == 200
    assert out == "results/hostile/hostile-slowloris-ci.json"


# --------------------------------------------------------------------------- live


def _assert_passed(sc: hostile.Scenario) -> None:
    bad = {k: v for k, v in sc.criteria.items() if not v}
    detail = {
        "failed": sorted(bad),
        "error": sc.error,
        "figures": {
            k: sc.figures.get(k)
            for k in (
                "rss",
                "pings_to_attacked",
                "false_failed_events",
                "join_after",
                "drops_attacked",
                "kernel_udp_drops",
                "internal_errors",
                "exceptions_logged",
                "crashed",
            )
        },
        "attack": sc.result,
    }
    assert sc.error is None, json.dumps(detail, indent=1, default=str)
    assert sc.criteria, "no criterion was evaluated"
    assert not bad, json.dumps(detail, indent=1, default=str)


def _options(size: str, attacks: list[str]) -> hostile.Options:
    opts, _ = hostile.parse_args(["--size", size, *(x for a in attacks for x in ("--attack", a))])
    return dataclasses.replace(opts, settle=3.0)


def test_smoke_udp_fuzz_plaintext_live() -> None:
    """A few thousand hostile datagrams at a live plaintext cluster: every criterion."""
    opts = _options("smoke", ["udp-fuzz"])
    (step,) = [s for s in hostile.plan(dataclasses.replace(opts, variants=["plain"]))]
    sc = hostile.run_scenario(*step, opts)
    assert sc.result["sent"]["datagrams"] >= 2500
    _assert_passed(sc)


def test_ping_stats_count_late_acks_as_missed_probes() -> None:
    stats = PingStats(probe_timeout=0.5, sent=5, started=0.0, ended=10.0)
    stats.rtts = [0.01, 0.02, 0.9]  # one ack came after the probe timeout, two never came
    stats.acks_at = [1.0, 2.0, 7.5]
    summary = stats.summary()
    assert summary["never_acked"] == 2
    assert summary["missed"] == 3
    assert summary["rtt_ms_max"] == 900.0
    assert summary["longest_silence_s"] == 5.5
