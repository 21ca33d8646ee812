"""The server against requests captured from real serf 0.9.4 sessions: same replies, same
close/keep-open behaviour (tests/rpc/data holds the captures; see shared spec serf-rpc.md)."""

from __future__ import annotations

import ast
from typing import Any

import msgpack
import pytest
from rpc_support import FakeBackend, RawClient, captured, member, run, serve, session

from swimguard.rpc import SerfStatus
from swimguard.rpc.backend import KeyResult, QueryItemKind
from swimguard.rpc.commands import BODIES, Command
from swimguard.rpc.handlers import HANDLERS


def _members_of_session() -> FakeBackend:
    return FakeBackend([
        member("a", 17946),
        member("b", 17947),
        member("pyy", 17953, SerfStatus.LEFT, {"role": "py"}),
        member("pyx", 17952, SerfStatus.FAILED, {"role": ""}),
    ])


def _replay_steps(file: str, conn: str) -> list[tuple[bytes, list[Any] | None, bool | None]]:
    """(bytes the client sent, the objects serf answered, closed-after) per client step."""
    steps = captured(file, conn)
    out: list[tuple[bytes, list[Any] | None, bool | None]] = []
    for step in steps:
        if step.get("dir") == "client->agent":
            out.append((bytes.fromhex(step["hex"]), None, None))
        elif step.get("dir") == "agent->client":
            data, _, closed = out[-1]
            out[-1] = (data, _decode(step["hex"]), step.get("closed") or closed)
        elif "closed" in step and out:
            data, replies, _ = out[-1]
            out[-1] = (data, replies, step["closed"])
    return out


def _decode(hexdata: str) -> list[Any]:
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(bytes.fromhex(hexdata))
    return list(unpacker)


def test_every_command_has_a_handler_and_bodies_name_real_commands() -> None:
    assert set(HANDLERS) == set(Command)
    assert set(BODIES) <= set(Command)
    assert len(set(Command) - {Command.EXPLAIN}) == 20  # Serf's, and our extension


def test_session_bytes_identical() -> None:
    """Handshake, members, members-filtered, stream, event + record, stop, unknown command:
    our bytes equal serf's byte for byte (the member tags are empty, so no map order)."""

    async def body() -> None:
        backend = _members_of_session()
        server = await serve(backend)
        exchanges = session()
        client = await RawClient.connect(server.address)
        try:
            # First connection: a command before the handshake, answered then closed.
            await client.send_raw(bytes.fromhex(exchanges[0]["hex"]))
            assert await client.reader.read(65536) == bytes.fromhex(exchanges[1]["hex"])
            assert await client.closed()
            await client.aclose()
            client = await RawClient.connect(server.address)
            for i in range(2, len(exchanges), 2):
                request, reply = exchanges[i], exchanges[i + 1]
                await client.send_raw(bytes.fromhex(request["hex"]))
                want = bytes.fromhex(reply["hex"])
                got = b""
                while len(got) < len(want):
                    chunk = await client.reader.read(65536)
                    assert chunk, f"closed before the reply to {request['note']}"
                    got += chunk
                if request["note"] == "members-filtered":
                    # Our filter keeps the same member; compare the objects.
                    assert _decode(got.hex()) == _decode(want.hex())
                else:
                    assert got == want, request["note"]
            assert await client.closed()  # after "Unsupported command"
        finally:
            await client.aclose()
            await server.close()

    run(body)


@pytest.mark.parametrize(
    ("file", "conn"),
    [
        ("cap1.json", "a0"),  # command before handshake: error, closed
        ("cap1.json", "a0b"),  # handshake version 2: error, open
        ("cap1.json", "b2"),  # auth before handshake
        ("cap2a.json", "a6"),  # Name as bin: closed without a reply
        ("cap2a.json", "a7"),  # extra header key ignored; Version as str: closed
    ],
)
def test_state_machine_matches_serf(file: str, conn: str) -> None:
    async def body() -> None:
        auth = "s3cret" if conn.startswith("b") else ""
        server = await serve(FakeBackend([member("a", 7946)]), auth_key=auth)
        client = await RawClient.connect(server.address)
        try:
            for data, replies, closed in _replay_steps(file, conn):
                await client.send_raw(data)
                if replies:
                    got = await client.read(len(replies))
                    for want, have in zip(replies, got, strict=True):
                        if "Error" in want:
                            assert have == want
                if closed:
                    assert await client.closed()
                    return
        finally:
            await client.aclose()
            await server.close()

    run(body)


def test_auth_flow_matches_serf_b1() -> None:
    """Before auth, a body is read as the next header: two `Authentication required`."""

    async def body() -> None:
        server = await serve(FakeBackend([member("a", 7946)]), auth_key="s3cret")
        client = await RawClient.connect(server.address)
        try:
            steps = captured("cap1.json", "b1")
            for step in steps:
                if step.get("dir") == "client->agent":
                    await client.send_raw(bytes.fromhex(step["hex"]))
                elif step.get("dir") == "agent->client":
                    want = ast.literal_eval(step["decoded"])
                    got = await client.read(len(want))
                    assert [g for g in got if "Error" in g] == [w for w in want if "Error" in w]
        finally:
            await client.aclose()
            await server.close()

    run(body)


def test_query_records_and_key_replies_are_serfs_bytes() -> None:
    """The ack/done records and a key reply, byte for byte as captured from serf 0.9.4."""

    async def body() -> None:
        backend = FakeBackend([member("a", 1)])
        backend.query_items = [(QueryItemKind.ACK, "a", None)]
        backend.key_result = KeyResult({}, {}, 2, 2, 0, "")
        server = await serve(backend)
        client = await RawClient.connect(server.address)
        try:
            await client.handshake()
            await client.send(
                {"Command": "query", "Seq": 1},
                {"RequestAck": True, "Timeout": 1_000_000_000, "Name": "ping-app"},
            )
            want = bytes.fromhex(
                "82a54572726f72a0a353657101"  # the reply header
                "82a54572726f72a0a353657101" "83a446726f6da161a75061796c6f6164c0a454797065a361636b"
                "82a54572726f72a0a353657101" "83a446726f6da0a75061796c6f6164c0a454797065a4646f6e65"
            )
            got = b""
            while len(got) < len(want):
                got += await client.reader.read(65536)
            assert got == want
            name, payload, params = backend.queries[0]
            assert (name, payload, params["timeout"], params["request_ack"]) == (
                "ping-app", b"", 1.0, True
            )
            await client.send({"Command": "install-key", "Seq": 18}, {"Key": "QHOY"})
            want = bytes.fromhex(
                "82a54572726f72a0a353657112"
                "85a44b657973c0a84d6573736167657380a64e756d45727200a84e756d4e6f64657302"
                "a74e756d5265737002"
            )
            got = b""
            while len(got) < len(want):
                got += await client.reader.read(65536)
            assert got == want
            assert backend.key_commands == [("install-key", "QHOY")]
            (refused,) = await client.call("query", 19, {"Name": "_serf_conflict"})
            assert refused == {"Error": "Queries cannot contain the '_serf_' prefix", "Seq": 19}
        finally:
            await client.aclose()
            await server.close()

    run(body)


def test_get_coordinate_bytes() -> None:
    """Unknown node: serf's captured zero coordinate (Vec nil, Ok false); known: Ok true."""

    async def body() -> None:
        backend = FakeBackend([member("a", 1)])
        backend.coordinates["b"] = {
            "Adjustment": 0.0, "Error": 1.5, "Height": 1e-5, "Vec": [0.0] * 8,
        }
        server = await serve(backend)
        client = await RawClient.connect(server.address)
        try:
            await client.handshake()
            await client.send({"Command": "get-coordinate", "Seq": 16}, {"Node": "zz"})
            want = bytes.fromhex(
                "82a54572726f72a0a353657110"
                "82a5436f6f726484aa41646a7573746d656e74cb0000000000000000a54572726f72cb"
                "0000000000000000a6486569676874cb0000000000000000a3566563c0a24f6bc2"
            )
            got = b""
            while len(got) < len(want):
                got += await client.reader.read(65536)
            assert got == want
            head, known = await client.call("get-coordinate", 17, {"Node": "b"}, replies=2)
            assert head == {"Error": "", "Seq": 17}
            assert known == {"Coord": backend.coordinates["b"], "Ok": True}
        finally:
            await client.aclose()
            await server.close()

    run(body)
