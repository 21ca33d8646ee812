"""Injected gray failure (`aio.gray_fault`): mlnode's schedule, FIFO delays, real sockets."""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import socket
from typing import Any

import pytest
from aio_fakes import wait_for

from swimguard.aio import Agent, AgentConfig
from swimguard.aio.gray_fault import (
    DATAGRAM_SEED_OFFSET,
    DelayQueue,
    GrayFault,
    GrayFaultOptions,
    SlowSchedule,
    SplitMix64,
)
from swimguard.aio.gray_flags import add_arguments, options_from
from swimguard.aio.udp import UdpEndpoint
from swimguard.config import Config
from swimguard.protocol.outgoing import Address

pytestmark = pytest.mark.timeout(60)


def test_splitmix64_matches_the_reference_vectors() -> None:
    # The published first outputs of splitmix64 seeded with 0.
    rng = SplitMix64(0)
    assert [rng.next() for _ in range(3)] == [
        0xE220A8397B1DCDAF,
        0x6E789E6AA1B965F4,
        0x06C45D188009454F,
    ]
    # A negative seed wraps to uint64, as Go's uint64(int64(-1)).
    assert SplitMix64(-1).next() == SplitMix64((1 << 64) - 1).next()


def test_uniform_and_exponential_use_the_top_53_bits() -> None:
    raw = SplitMix64(7).next()
    u = (raw >> 11) / (1 << 53)
    assert SplitMix64(7).uniform(2.0, 4.0) == 2.0 + 2.0 * u
    assert SplitMix64(7).exponential(2.0) == -2.0 * math.log(1.0 - u)


def _lengths(seed: int, count: int) -> list[float]:
    options = GrayFaultOptions(seed=seed, on=(0.2, 0.5), off=(0.1, 0.3))
    toggles = iter(SlowSchedule(options, origin=0.0))
    return [round(next(toggles).length, 3) for _ in range(count)]


def test_schedule_matches_mlnode_for_the_same_seed() -> None:
    # `for=` values printed by tools/mlnode (gray.go) run with
    # -slow -seed 42 -slow-on 0.2,0.5 -slow-off 0.1,0.3, and with -seed -5.
    assert _lengths(42, 9) == [0.248, 0.156, 0.303, 0.108, 0.460, 0.144, 0.440, 0.168, 0.386]
    assert _lengths(-5, 3) == [0.367, 0.277, 0.454]


def test_schedule_alternates_from_origin_plus_a_first_gap() -> None:
    options = GrayFaultOptions(seed=42, on=(0.2, 0.5), off=(0.1, 0.3))
    toggles = iter(SlowSchedule(options, origin=1000.0))
    first = next(toggles)
    # mlnode's first episode started 0.2226 s after its origin (measured, sleep included).
    assert first.slow
    assert 1000.2215 < first.at < 1000.2227
    at, slow = first.at + first.length, False
    for _ in range(20):
        toggle = next(toggles)
        assert toggle.slow is slow
        assert toggle.at == pytest.approx(at)
        assert (0.2 <= toggle.length <= 0.5) if slow else (0.1 <= toggle.length <= 0.3)
        at, slow = toggle.at + toggle.length, not slow


def test_queue_is_fifo_and_a_backlog_outlives_the_episode() -> None:
    queue: DelayQueue[str] = DelayQueue(11, 2.0, max_items=100)
    draws = SplitMix64(11)
    d1, d2 = draws.exponential(2.0), draws.exponential(2.0)
    assert queue.push("a", now=0.0, slow=True)
    assert queue.push("b", now=0.1, slow=True)
    assert queue.push("c", now=0.2, slow=False)  # episode over: no draw, but waits in line
    due_a, due_b = d1, max(0.1 + d2, d1)
    assert queue.next_due() == pytest.approx(due_a)
    assert queue.pop_due(now=due_a - 1e-6) is None
    assert queue.pop_due(now=due_a) == "a"
    assert queue.next_due() == pytest.approx(due_b)
    assert queue.pop_due(now=due_b) == "b"
    assert queue.pop_due(now=due_b) == "c"  # due with b: not earlier, never before b
    assert queue.stats.items == 3
    assert queue.stats.slow_items == 2
    assert queue.stats.wait_max == pytest.approx(max(due_a, due_b - 0.1))


def test_queue_not_slow_is_due_at_once() -> None:
    queue: DelayQueue[int] = DelayQueue(1, 2.0, max_items=10)
    queue.push(1, now=5.0, slow=False)
    assert queue.pop_due(now=5.0) == 1
    assert queue.stats.slow_items == 0
    assert queue.stats.wait_max == 0.0


def test_queue_is_bounded_by_items_and_bytes() -> None:
    queue: DelayQueue[bytes] = DelayQueue(1, 2.0, max_items=3, max_bytes=100)
    assert queue.push(b"x" * 60, now=0.0, slow=True, size=60)
    assert not queue.push(b"x" * 60, now=0.0, slow=True, size=60)  # over the bytes
    assert queue.push(b"x", now=0.0, slow=True, size=1)
    assert queue.push(b"x", now=0.0, slow=True, size=1)
    assert not queue.push(b"x", now=0.0, slow=True, size=1)  # over the items
    assert queue.stats.dropped == 2
    assert len(queue) == 3
    assert len(queue.clear()) == 3
    assert queue.next_due() is None


def test_options_refuse_bad_values() -> None:
    for bad in (
        {"mean": -1.0},
        {"on": (5.0, 1.0)},
        {"off": (-1.0, 2.0)},
        {"at": 0.0},
        {"after": math.inf},
        {"seed": 1 << 63},
    ):
        with pytest.raises(ValueError, match="GrayFaultOptions"):
            GrayFaultOptions(**bad)


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser)
    return parser.parse_args(argv)


def test_flags_are_off_unless_slow_is_given() -> None:
    assert options_from(_parse("--slow-mean", "1")) is None
    options = options_from(
        _parse("--slow", "--slow-mean", "0.5", "--slow-on", "1,2", "--slow-off", "3,4",
               "--slow-seed", "-9", "--slow-after", "7", "--slow-dialed")
    )  # fmt: skip
    assert options == GrayFaultOptions(
        mean=0.5, on=(1.0, 2.0), off=(3.0, 4.0), seed=-9, after=7.0, dialed=True
    )
    assert options_from(_parse("--slow", "--slow-at", "1700000000")) == GrayFaultOptions(
        at=1700000000.0
    )
    with pytest.raises(ValueError, match="--slow"):
        options_from(_parse("--slow", "--slow-at", "-3"))


@pytest.mark.parametrize(("flag", "value"), [("--slow-on", "3"), ("--slow-on", "4,1"),
                                        ("--slow-off", "a,b"), ("--slow-mean", "-1"),
                                        ("--slow-seed", "1.5")])  # fmt: skip
def test_flags_refuse_bad_values(flag: str, value: str) -> None:
    with pytest.raises(argparse.ArgumentError):
        _parse("--slow", flag, value)


def _always_slow(mean: float, **kwargs: Any) -> GrayFaultOptions:
    # off=(0, 0): the first episode starts at the origin, and lasts far beyond the test.
    return GrayFaultOptions(mean=mean, on=(1e6, 1e6), off=(0.0, 0.0), seed=3, **kwargs)


def test_datagrams_on_a_real_socket_arrive_late_and_in_order() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        err = io.StringIO()
        drops: list[str] = []
        fault = GrayFault(
            _always_slow(0.1), name="n1", loop=loop, count_drop=drops.append, err=err
        )
        got: list[tuple[bytes, float]] = []

        def record(data: bytes, sender: Address) -> None:
            got.append((data, loop.time()))

        endpoint = UdpEndpoint(fault.delay_datagrams(record), drops.append)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: endpoint, local_addr=("127.0.0.1", 0)
        )
        fault.start()
        await wait_for(lambda: fault.slow)
        port = transport.get_extra_info("sockname")[1]
        sent_at = loop.time()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
            for i in range(20):
                out.sendto(b"%d" % i, ("127.0.0.1", port))
        try:
            await wait_for(lambda: len(got) == 20, timeout=30)
        finally:
            fault.close()
            transport.close()
        assert [data for data, _ in got] == [b"%d" % i for i in range(20)]
        # The first datagram waited at least its own draw (the queue's first one).
        first_draw = SplitMix64(3 + DATAGRAM_SEED_OFFSET).exponential(0.1)
        assert got[0][1] - sent_at >= first_draw - 0.001
        assert [t for _, t in got] == sorted(t for _, t in got)
        assert "GRAY n1 schedule origin=" in err.getvalue()
        assert "GRAY n1 slow=on" in err.getvalue()
        assert not drops

    asyncio.run(main())


def test_agents_read_accepted_and_dialed_streams_through_the_queues() -> None:
    async def main() -> None:
        plain = Agent("plain", bind=("127.0.0.1", 0), config=Config.local(), serf_compat=False)
        options = AgentConfig(gray_fault=_always_slow(0.05, dialed=True))
        slowed = Agent(
            "slowed", bind=("127.0.0.1", 0), config=Config.local(), serf_compat=False,
            options=options,
        )  # fmt: skip
        async with plain, slowed:
            gray = slowed._driver.gray if slowed._driver is not None else None
            assert gray is not None
            await wait_for(lambda: gray.slow)
            # plain dials slowed: slowed accepts the push/pull late.
            assert await plain.join([slowed.advertise_address]) == 1
            await wait_for(lambda: "n=1 slow=1" in gray.stats_text().split("streams")[1])
            # slowed dials plain: the push/pull reply is read late (--slow-dialed).
            assert await slowed.join([plain.advertise_address]) == 1
            assert "dialed{n=1 slow=1" in gray.stats_text()
            await wait_for(lambda: len(slowed.members()) == 2)
            assert slowed.drops.get("gray_queue_full", 0) == 0

    asyncio.run(main())


def test_without_options_nothing_is_built() -> None:
    async def main() -> None:
        async with Agent("n", bind=("127.0.0.1", 0), config=Config.local()) as agent:
            assert agent._driver is not None
            assert agent._driver.gray is None

    asyncio.run(main())
