"""Hostile input on the RPC port: the server stays up, bounded, and answers the next client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import msgpack
import pytest
from rpc_support import FakeBackend, RawClient, member, run, serve

from swimguard.rpc import RpcLimits, RpcServer
from swimguard.rpc.event_filter import EventKind, StreamRecord

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def _still_serves(server: RpcServer) -> None:
    client = await RawClient.connect(server.address)
    try:
        await client.handshake()
        head, body = await client.call("members", 1, replies=2)
        assert head == {"Error": "", "Seq": 1}
        assert [m["Name"] for m in body["Members"]] == ["a"]
    finally:
        await client.aclose()


async def _until_connections_below(server: RpcServer, limit: int) -> None:
    """Wait (event-driven enough: the server closes within a few loop turns) for hang-ups."""
    for _ in range(100_000):
        if server.connections < limit:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"still {server.connections} connections")


async def _until_no_connections(server: RpcServer) -> None:
    await _until_connections_below(server, 1)


def test_connections_beyond_the_limit_are_closed_and_counted() -> None:
    async def body() -> None:
        server = await serve(FakeBackend([member("a", 1)]), limits=RpcLimits(max_connections=2))
        held = [await RawClient.connect(server.address) for _ in range(2)]
        try:
            for client in held:
                await client.handshake()
            extra = await RawClient.connect(server.address)
            assert await extra.closed()
            await extra.aclose()
            assert server.drops["connections_refused"] == 1
            await held[0].aclose()
            await _until_connections_below(server, 2)
            await _still_serves(server)
        finally:
            for client in held:
                await client.aclose()
            await server.close()

    run(body)


def test_idle_connections_give_their_slot_to_a_new_client() -> None:
    async def body() -> None:
        server = await serve(
            FakeBackend([member("a", 1)]), auth_key="t", limits=RpcLimits(max_connections=3)
        )
        admitted = await RawClient.connect(server.address)
        idle = await RawClient.connect(server.address)
        no_token = await RawClient.connect(server.address)
        try:
            await admitted.handshake()
            assert await admitted.call("auth", 1, {"AuthKey": "t"}) == [{"Error": "", "Seq": 1}]
            await no_token.handshake()  # shook hands, but no token: not admitted either
            # At the limit: the oldest connection not admitted (idle) makes room.
            newcomer = await RawClient.connect(server.address)
            await newcomer.handshake()
            assert await idle.closed()
            assert server.drops["connections_evicted"] == 1
            # Then the one without a token; the admitted client is never evicted.
            late = await RawClient.connect(server.address)
            assert await no_token.closed()
            assert server.drops["connections_evicted"] == 2
            await late.handshake()
            for client in (newcomer, late):
                assert await client.call("auth", 1, {"AuthKey": "t"}) == [
                    {"Error": "", "Seq": 1}
                ]
            # Every slot is admitted now: a fourth is refused, nobody is evicted.
            refused = await RawClient.connect(server.address)
            assert await refused.closed()
            assert server.drops["connections_refused"] == 1
            assert server.drops["connections_evicted"] == 2
            assert await admitted.call("members", 2, replies=2)
            for client in (newcomer, late, refused):
                await client.aclose()
        finally:
            for client in (admitted, idle, no_token):
                await client.aclose()
            await server.close()

    run(body)


def test_a_client_that_does_not_read_its_stream_loses_records_not_our_memory() -> None:
    async def body() -> None:
        server = await serve(FakeBackend([member("a", 1)]), limits=RpcLimits(queue_records=16))
        lazy = await RawClient.connect(server.address)
        try:
            await lazy.handshake()
            assert await lazy.call("stream", 1, {"Type": "*"}) == [{"Error": "", "Seq": 1}]
            (conn,) = server._connections
            record = StreamRecord(EventKind.USER, "x", {"Event": "user", "Payload": b"p" * 8192})
            longest = 0
            for _ in range(6000):  # 48 MiB: more than any socket buffer holds
                server.publish(record)
                longest = max(longest, len(conn.outbox))
                await asyncio.sleep(0)
            assert longest <= 16
            assert server.drops["records_dropped"] > 0
            await _still_serves(server)
        finally:
            await lazy.aclose()
            await server.close()

    run(body)


@pytest.mark.parametrize(
    "data",
    [
        b"\xc1garbage",  # not msgpack
        b"\x93\x01\x02\x03",  # a header that is not a map
        msgpack.packb({"Command": 1, "Seq": 0}),  # Command not a string
        msgpack.packb({"Command": "handshake", "Seq": -1}),  # negative Seq
        msgpack.packb({"Command": "handshake", "Seq": 0}) + msgpack.packb([1]),  # body not a map
        b"\xc6\x7f\xff\xff\xff" + b"x" * 70000,  # a 2 GiB bin announced: bigger than the limit
        msgpack.packb({"Command": "handshake", "Seq": 0, 5: 1}),  # non-string key
        # Small requests that would unpack into a flood of Python objects:
        msgpack.packb({"Command": "handshake", "Seq": 0, "x": [{}] * 9000}),  # nested maps
        msgpack.packb({"Command": "handshake", "Seq": 0, "x": ["ab"] * 9000}),  # a long list
        b"\xdd\x00\x01\x00\x00",  # an array announcing 65,536 elements
        msgpack.packb({"Command": "handshake", "Seq": 0, "x": [[[]] * 100] * 90}),  # nesting
    ],
)
def test_undecodable_requests_close_the_connection_without_reply(data: bytes) -> None:
    async def body() -> None:
        server = await serve(
            FakeBackend([member("a", 1)]), limits=RpcLimits(max_request_bytes=64 * 1024)
        )
        client = await RawClient.connect(server.address)
        try:
            await client.send_raw(data)
            assert await client.closed()
            assert server.drops["protocol_violations"] == 1
            await _still_serves(server)
        finally:
            await client.aclose()
            await server.close()

    run(body)


def test_a_request_bomb_is_refused_before_it_is_built() -> None:
    """A megabyte of empty maps, sent in small pieces: the count spans the pieces, so it
    is refused once it passes the limit, not rebuilt per read."""

    async def body() -> None:
        server = await serve(FakeBackend([member("a", 1)]), limits=RpcLimits(max_request_items=64))
        client = await RawClient.connect(server.address)
        try:
            await client.handshake()
            bomb = msgpack.packb({"Command": "members", "Seq": 1, "x": [[{}] * 40] * 20})
            sent = 0
            with contextlib.suppress(ConnectionError):  # hung up on, mid-bomb
                while sent < len(bomb):  # a few bytes at a time: one read each
                    await client.send_raw(bomb[sent : sent + 7])
                    sent += 7
                    await asyncio.sleep(0)
                assert await client.closed()
            await _until_no_connections(server)
            assert server.drops["protocol_violations"] == 1
            await _still_serves(server)
        finally:
            await client.aclose()
            await server.close()

    run(body)


def test_requests_sent_ahead_wait_as_bytes_and_are_all_answered() -> None:
    async def body() -> None:
        server = await serve(FakeBackend([member("a", 1)]))
        client = await RawClient.connect(server.address)
        try:
            await client.handshake()
            ahead = b"".join(
                msgpack.packb({"Command": "members", "Seq": seq}) for seq in range(1, 2001)
            )
            await client.send_raw(ahead + b"\xc1")  # then garbage: answered up to it
            replies = await client.read(4000)
            assert [r["Seq"] for r in replies[::2]] == list(range(1, 2001))
            assert await client.closed()
            assert server.drops["protocol_violations"] == 1
        finally:
            await client.aclose()
            await server.close()

    run(body)


def test_bad_and_evil_regexps() -> None:
    async def body() -> None:
        backend = FakeBackend([member("a" * 30 + "!", 1), member("a", 2)])
        server = await serve(backend)
        client = await RawClient.connect(server.address)
        try:
            await client.handshake()
            # RE2 has no backtracking: a pattern that is exponential for Python's re is not.
            _, found = await client.call("members-filtered", 1, {"Name": "(a+)+"}, replies=2)
            assert [m["Name"] for m in found["Members"]] == ["a"]
            await client.send({"Command": "members-filtered", "Seq": 2}, {"Name": "("})
            assert await client.closed()  # serf closes without a reply too
        finally:
            await client.aclose()
            await server.close()

    run(body)


def test_random_bytes_never_stop_the_server() -> None:
    async def body() -> None:
        rng = random.Random(13)
        server = await serve(FakeBackend([member("a", 1)]))
        handshake = msgpack.packb({"Command": "handshake", "Seq": 0}) + msgpack.packb(
            {"Version": 1}
        )
        try:
            for i in range(300):
                client = await RawClient.connect(server.address)
                junk = rng.randbytes(rng.randrange(1, 600))
                await client.send_raw((handshake if i % 2 else b"") + junk)
                client.writer.write_eof()
                # Whatever it answered, the server ends the conversation.
                while await client.reader.read(65536):
                    pass
                await client.aclose()
            await _until_no_connections(server)
            await _still_serves(server)
        finally:
            await server.close()

    run(body)


def test_half_sent_request_and_hang_up_frees_the_connection() -> None:
    async def body() -> None:
        server = await serve(FakeBackend([member("a", 1)]))
        try:
            client = await RawClient.connect(server.address)
            await client.send_raw(msgpack.packb({"Command": "handshake", "Seq": 0})[:5])
            await client.aclose()
            await _until_no_connections(server)
            await _still_serves(server)
        finally:
            await server.close()

    run(body)


def test_many_streams_per_connection_are_bounded() -> None:
    async def body() -> None:
        server = await serve(FakeBackend([member("a", 1)]), limits=RpcLimits(max_streams=3))
        client = await RawClient.connect(server.address)
        try:
            await client.handshake()
            for seq in range(1, 4):
                ok = await client.call("stream", seq, {"Type": "*"})
                assert ok == [{"Error": "", "Seq": seq}]
            (refused,) = await client.call("stream", 4, {"Type": "*"})
            assert refused["Error"] == "at most 3 streams per client"
            assert await client.call("stop", 5, {"Stop": 1}) == [{"Error": "", "Seq": 5}]
            assert await client.call("stream", 4, {"Type": "*"}) == [{"Error": "", "Seq": 4}]
        finally:
            await client.aclose()
            await server.close()

    run(body)


def test_a_connection_that_never_shakes_hands_is_closed() -> None:
    async def body() -> None:
        server = await serve(
            FakeBackend([member("a", 1)]),
            limits=RpcLimits(max_connections=1, handshake_timeout=1.0),
        )
        idle = await RawClient.connect(server.address)
        try:
            assert await idle.closed()  # waits for the server's timer, however long
            assert server.drops["handshake_timeouts"] == 1
            await _until_no_connections(server)
            await _still_serves(server)  # the one slot is free again
        finally:
            await idle.aclose()
            await server.close()

    run(body)


def test_a_connection_that_never_sends_its_token_is_closed() -> None:
    async def body() -> None:
        server = await serve(
            FakeBackend([member("a", 1)]), auth_key="t", limits=RpcLimits(handshake_timeout=1.0)
        )
        client = await RawClient.connect(server.address)
        try:
            await client.handshake()
            bad = await client.call("auth", 1, {"AuthKey": "guess"})
            assert bad == [{"Error": "Invalid authentication token", "Seq": 1}]
            assert await client.closed()  # waits for the server's timer, however long
            assert server.drops["handshake_timeouts"] == 1
        finally:
            await client.aclose()
            await server.close()

    run(body)


def test_a_failing_backend_costs_one_connection_not_the_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(FakeBackend):
        def stats(self) -> dict[str, dict[str, str]]:
            raise KeyError("bug")

    async def body() -> None:
        server = await serve(Broken([member("a", 1)]))
        client = await RawClient.connect(server.address)
        try:
            await client.handshake()
            await client.send({"Command": "stats", "Seq": 1})
            assert await client.closed()
            assert server.drops["internal_errors"] == 1
            await _still_serves(server)
        finally:
            await client.aclose()
            await server.close()

    with caplog.at_level(logging.ERROR, logger="swimguard.rpc"):
        run(body)
    assert "internal error" in caplog.text


def test_a_join_naming_too_many_addresses_is_refused() -> None:
    async def body() -> None:
        backend = FakeBackend([member("a", 1)])
        server = await serve(backend, limits=RpcLimits(max_join_addresses=3))
        client = await RawClient.connect(server.address)
        try:
            await client.handshake()
            head, reply = await client.call(
                "join", 1, {"Existing": ["h"] * 4, "Replay": False}, replies=2
            )
            assert head["Error"] == "at most 3 addresses per join"
            assert reply == {"Num": 0}
            assert backend.joins == []
        finally:
            await client.aclose()
            await server.close()

    run(body)
