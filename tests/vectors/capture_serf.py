"""Capture memberlist/Serf packets from real serf agents into tests/vectors/serf-captured.json.

Not a test: run by hand when the corpus needs refreshing (needs Debian's `serf`):

    .venv/bin/python tests/vectors/capture_serf.py

How: two or three serf agents (-profile=local) run on 127.0.0.1; this script poses as a
fourth member "pose" with its own UDP+TCP sockets. It joins with a hand-made push/pull
(so the agent's TCP reply is captured), acks pings, and records every datagram and
stream it receives while the script makes things happen: a third agent joins (alive),
is SIGKILLed (suspect, dead), a user event is fired, "pose" stops acking for a while
(ping+suspect compound about itself, then it refutes), and an agent leaves (leave
intent, dead from itself). Three runs: compression off, compression on (agent default),
encryption with a fixed key.

The "decoded" fields are produced by an independent decoder in this file (its own LZW,
AES-GCM and msgpack walk), not by swimguard.wire, so the vectors check the codec against
what Go actually sent rather than against itself.
"""

from __future__ import annotations

import base64
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench.serf_harness import SERF as SERF_BIN  # noqa: E402
from bench.serf_harness import Cluster, free_port, wait_for  # noqa: E402

from swimguard.serf import SerfLayer, decode_message  # noqa: E402

OUT = Path(__file__).with_name("serf-captured.json")
KEY_B64 = "5K9OtfP7efFrNKe5WCQvXvnaXJ5cWP0SvXiwe0kkjM4="
VSN = bytes((1, 5, 2, 2, 5, 5))
TYPES = {
    0: "ping",
    1: "indirect_ping",
    2: "ack",
    3: "suspect",
    4: "alive",
    5: "dead",
    6: "push_pull",
    7: "compound",
    8: "user",
    9: "compress",
    11: "nack",
    12: "has_crc",
    13: "err",
}
SERF_TYPES = {
    0: "leave",
    1: "join",
    2: "push_pull",
    3: "user_event",
    4: "query",
    5: "query_response",
}


# --- independent decoding -----------------------------------------------------------------


def lzw_decode(buf: bytes) -> bytes:
    """Go compress/lzw reader, LSB order, literal width 8."""
    clear, eof = 256, 257
    width, nxt = 9, 258
    table: dict[int, bytes] = {}
    prev: bytes | None = None
    acc = nbits = 0
    out = bytearray()
    pos = 0
    while True:
        while nbits < width:
            if pos >= len(buf):
                raise ValueError("lzw: unexpected end")
            acc |= buf[pos] << nbits
            pos += 1
            nbits += 8
        code = acc & ((1 << width) - 1)
        acc >>= width
        nbits -= width
        if code == clear:
            width, nxt, table, prev = 9, 258, {}, None
            continue
        if code == eof:
            return bytes(out)
        if code < 256:
            entry = bytes((code,))
        elif code in table:
            entry = table[code]
        elif code == nxt and prev is not None:
            entry = prev + prev[:1]
        else:
            raise ValueError(f"lzw: bad code {code}")
        if prev is not None and nxt < 4096:
            table[nxt] = prev + entry[:1]
            nxt += 1
        out += entry
        prev = entry
        if nxt >= (1 << width) and width < 12:
            width += 1


def jsonable(value: Any) -> Any:
    """msgpack raw=True values -> JSON: bytes as text when printable UTF-8 would mislead, so hex."""
    if isinstance(value, bytes):
        return "hex:" + value.hex()
    if isinstance(value, dict):
        return {
            k.decode() if isinstance(k, bytes) else str(k): jsonable(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


STRING_FIELDS = {"Node", "From", "Name", "SourceNode", "Error"}


def body_json(raw: dict[bytes, Any]) -> dict[str, Any]:
    """A memberlist body with its string fields as text and byte fields as hex."""
    out: dict[str, Any] = {}
    for k, v in raw.items():
        key = k.decode()
        if key in STRING_FIELDS and isinstance(v, bytes):
            out[key] = v.decode()
        else:
            out[key] = jsonable(v)
    return out


def serf_json(data: bytes) -> dict[str, Any]:
    """A Serf message (type byte + body) as JSON, via swimguard.serf (already checked vs Go)."""
    msg = decode_message(data)
    fields: dict[str, Any] = {}
    for name in msg.__dataclass_fields__:
        v = getattr(msg, name)
        if name == "events":  # push/pull ring: only the occupied slots
            v = {str(i): jsonable(s.__repr__()) for i, s in enumerate(v) if s is not None}
            fields["events_len"] = len(msg.events)  # type: ignore[union-attr]
        elif isinstance(v, bytes):
            v = "hex:" + v.hex()
        elif isinstance(v, tuple):
            v = [("hex:" + x.hex()) if isinstance(x, bytes) else x for x in v]
        elif hasattr(v, "items"):
            v = dict(v)
        fields[name] = v
    return {"serf_type": SERF_TYPES.get(data[0], str(data[0])), "fields": fields}


def decode_msg(data: bytes, layers: list[str], out: list[dict[str, Any]]) -> None:
    """Flatten one memberlist message into `out`, recording the wrappers seen in `layers`."""
    t = data[0]
    if t == 12:
        crc = struct.unpack(">I", data[1:5])[0]
        if zlib.crc32(data[5:]) != crc:
            raise ValueError("crc mismatch")
        layers.append("crc")
        decode_msg(data[5:], layers, out)
    elif t == 9:
        raw = msgpack.unpackb(data[1:], raw=True)
        if raw[b"Algo"] != 0:
            raise ValueError("unknown algo")
        layers.append("compress")
        decode_msg(lzw_decode(raw[b"Buf"]), layers, out)
    elif t == 7:
        n = data[1]
        lens = struct.unpack(f">{n}H", data[2 : 2 + 2 * n])
        layers.append(f"compound{n}")
        pos = 2 + 2 * n
        for ln in lens:
            decode_msg(data[pos : pos + ln], layers, out)
            pos += ln
    elif t == 8:
        out.append({"type": "user", "data": "hex:" + data[1:].hex(), "serf": serf_json(data[1:])})
    else:
        body = msgpack.unpackb(data[1:], raw=True)
        out.append({"type": TYPES[t], "body": body_json(body)})


def decrypt(blob: bytes, key: bytes, aad: bytes = b"") -> bytes:
    """memberlist AES-GCM: [vsn][nonce 12][ciphertext+tag]; vsn 0 is PKCS#7 padded."""
    vsn, nonce = blob[0], blob[1:13]
    plain = AESGCM(key).decrypt(nonce, blob[13:], aad or None)
    return plain[: -plain[-1]] if vsn == 0 else plain


def decode_datagram(data: bytes, key: bytes | None) -> dict[str, Any]:
    """Independent decoding of one datagram."""
    layers: list[str] = []
    if key is not None:
        data = decrypt(data, key)
        layers.append("encrypt")
    msgs: list[dict[str, Any]] = []
    decode_msg(data, layers, msgs)
    return {"layers": layers, "messages": msgs}


def decode_stream(data: bytes, key: bytes | None) -> dict[str, Any]:
    """Independent decoding of one TCP stream payload (push/pull or ping)."""
    layers: list[str] = []
    if data[0] == 10:
        (ln,) = struct.unpack(">I", data[1:5])
        data = decrypt(data[5 : 5 + ln], key or b"", aad=data[:5])
        layers.append("encrypt")
    if data[0] == 9:
        unp = msgpack.Unpacker(raw=True)
        unp.feed(data[1:])
        raw = unp.unpack()
        data = lzw_decode(raw[b"Buf"])
        layers.append("compress")
    t = data[0]
    if t != 6:
        body = msgpack.unpackb(data[1:], raw=True)
        return {"layers": layers, "type": TYPES[t], "body": body_json(body)}
    unp = msgpack.Unpacker(raw=True)
    unp.feed(data[1:])
    header = unp.unpack()
    states = [body_json(unp.unpack()) for _ in range(header[b"Nodes"])]
    user = data[1 + unp.tell() :]
    if len(user) != header[b"UserStateLen"]:
        raise ValueError("user state length mismatch")
    return {
        "layers": layers,
        "type": "push_pull",
        "header": body_json(header),
        "states": states,
        "user_state": serf_json(user) if user else None,
    }


# --- the posing member --------------------------------------------------------------------


class Pose:
    """A fake memberlist member on 127.0.0.1 that records what it receives."""

    def __init__(self, key: bytes | None) -> None:
        self.name = "pose"
        self.port = free_port()
        self.key = key
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(16)
        self.serf = SerfLayer(self.name)
        self.incarnation = 1
        self.acking = True
        self.records: list[dict[str, Any]] = []

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()

    def _wrap(self, payload: bytes) -> bytes:
        if self.key is None:
            return payload
        nonce = os.urandom(12)
        return b"\x01" + nonce + AESGCM(self.key).encrypt(nonce, payload, None)

    def _frame(self, payload: bytes) -> bytes:
        if self.key is None:
            return payload
        nonce = os.urandom(12)
        size = 1 + 12 + len(payload) + 16
        header = b"\x0a" + struct.pack(">I", size)
        return header + b"\x01" + nonce + AESGCM(self.key).encrypt(nonce, payload, header)

    def state(self) -> dict[str, Any]:
        return {
            "Addr": bytes((127, 0, 0, 1)),
            "Incarnation": self.incarnation,
            "Meta": b"\xff\x80",
            "Name": self.name,
            "Port": self.port,
            "State": 0,
            "Vsn": VSN,
        }

    def join(self, port: int) -> None:
        """Push/pull join with the agent at `port`; records its reply."""
        user = self.serf.local_state(True)
        header = {"Join": True, "Nodes": 1, "UserStateLen": len(user)}
        req = b"\x06" + msgpack.packb(header, use_bin_type=False)
        req += msgpack.packb(self.state(), use_bin_type=False) + user
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(self._frame(req))
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
        self.records.append(
            {"t": time.time(), "proto": "tcp", "dir": "reply", "src": port, "data": reply}
        )
        self.send_udp(port, b"\x08" + self.serf.join_intent())

    def ping(self, port: int, node: str, seq: int) -> None:
        """A UDP ping, so the agent answers with an ack carrying its coordinate."""
        body = {
            "Node": node,
            "SeqNo": seq,
            "SourceAddr": bytes((127, 0, 0, 1)),
            "SourceNode": self.name,
            "SourcePort": self.port,
        }
        self.send_udp(port, b"\x00" + msgpack.packb(body, use_bin_type=False))

    def send_udp(self, port: int, payload: bytes) -> None:
        self.udp.sendto(self._wrap(payload), ("127.0.0.1", port))

    def refute(self, port: int) -> None:
        self.incarnation += 1
        body = dict(self.state())
        body["Node"] = body.pop("Name")
        del body["State"]
        alive = {k: body[k] for k in sorted(body)}
        self.send_udp(port, b"\x04" + msgpack.packb(alive, use_bin_type=False))

    def pump(self, seconds: float) -> None:
        """Receive and record for `seconds`, acking pings when `acking`."""
        end = time.time() + seconds
        while (left := end - time.time()) > 0:
            ready, _, _ = select.select([self.udp, self.tcp], [], [], min(left, 0.05))
            for sock in ready:
                if sock is self.udp:
                    data, src = self.udp.recvfrom(65536)
                    self.records.append(
                        {"t": time.time(), "proto": "udp", "src": src[1], "data": data}
                    )
                    self._maybe_ack(data, src)
                else:
                    conn, src = self.tcp.accept()
                    conn.settimeout(0.5)
                    got = b""
                    try:
                        while chunk := conn.recv(65536):
                            got += chunk
                    except TimeoutError:
                        pass
                    conn.close()
                    self.records.append(
                        {
                            "t": time.time(),
                            "proto": "tcp",
                            "dir": "inbound",
                            "src": src[1],
                            "data": got,
                        }
                    )

    def _maybe_ack(self, data: bytes, src: tuple[str, int]) -> None:
        if not self.acking:
            return
        try:
            decoded = decode_datagram(data, self.key)
        except Exception:
            return
        for msg in decoded["messages"]:
            if msg["type"] == "ping":
                body = msg["body"]
                port = body.get("SourcePort") or src[1]
                ack = b"\x02" + msgpack.packb(
                    {"Payload": None, "SeqNo": body["SeqNo"]}, use_bin_type=False
                )
                self.send_udp(port, ack)


def run(mode: str) -> list[dict[str, Any]]:
    """One capture session; returns the raw records."""
    key_b64 = KEY_B64 if mode == "encrypted" else None
    key = base64.b64decode(KEY_B64) if key_b64 else None
    compression = mode != "plain"
    pose = Pose(key)
    with Cluster() as cluster:
        kw: dict[str, Any] = {"encrypt": key_b64, "compression": compression}
        a = cluster.start_serf("a", tags={"role": "db"}, **kw)
        b = cluster.start_serf("b", [a.addr], tags={"role": "web", "dc": "x"}, **kw)
        pose.join(a.port)
        pose.pump(1.0)
        pose.ping(a.port, "a", 1)
        pose.pump(1.0)
        assert SERF_BIN is not None
        query = subprocess.Popen(
            [SERF_BIN, "query", f"-rpc-addr=127.0.0.1:{a.rpc_port}", "-timeout=1s", "whoami", "hi"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        pose.pump(1.5)
        query.wait(10)
        c = cluster.start_serf("c", [a.addr], **kw)
        pose.pump(2.0)
        with a.rpc() as rpc:
            rpc.user_event("deploy", b"v1")
        pose.pump(1.5)
        c.proc.kill9()
        pose.pump(7.0)
        pose.acking = False
        pose.pump(1.8)
        pose.acking = True
        pose.refute(a.port)
        pose.pump(1.5)
        with b.rpc() as rpc:
            rpc.call("leave")
        wait_for(lambda: not b.proc.alive, 15, what="b to exit after leave")
        pose.pump(1.5)
        names = {a.port: "a", b.port: "b", c.port: "c"}
    pose.close()
    for r in pose.records:
        r["mode"] = mode
        r["src_name"] = names.get(r["src"], "?")
        r["key"] = key_b64
    return pose.records


# Which captured record illustrates what; the first match in capture order is kept.
def classify(rec: dict[str, Any], dec: dict[str, Any]) -> list[str]:
    kinds: list[str] = []
    if rec["proto"] == "tcp":
        if dec.get("type") == "push_pull":
            kinds.append("push_pull_reply" if rec["dir"] == "reply" else "push_pull_periodic")
        return [f"{rec['mode']}_{k}" for k in kinds]
    layers = dec["layers"]
    types = [m["type"] for m in dec["messages"]]
    serf = [m["serf"]["serf_type"] for m in dec["messages"] if m["type"] == "user"]
    for t in ("alive", "suspect", "dead", "ack", "ping", "indirect_ping", "nack"):
        if types == [t]:
            kinds.append(t)
    if any(la.startswith("compound") for la in layers):
        kinds.append("compound_" + "_".join(types))
    if "compress" in layers:
        kinds.append("compressed")
    for s in serf:
        if len(types) == 1:
            kinds.append(f"serf_{s}")
    return [f"{rec['mode']}_{k}" for k in kinds]


WANTED_PREFIXES = (
    "alive",
    "suspect",
    "dead",
    "compound_ping_suspect",
    "compound",
    "compressed",
    "ack",
    "serf_join",
    "serf_leave",
    "serf_user_event",
    "serf_query",
    "indirect_ping",
    "push_pull_reply",
    "push_pull_periodic",
)


def main() -> int:
    vectors: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    for mode in ("plain", "compressed", "encrypted"):
        records = run(mode)
        for rec in records:
            key = base64.b64decode(rec["key"]) if rec["key"] else None
            try:
                if rec["proto"] == "udp":
                    dec = decode_datagram(rec["data"], key)
                elif rec["data"]:
                    dec = decode_stream(rec["data"], key)
                else:
                    continue
            except Exception as exc:
                print(f"undecodable {mode} {rec['proto']} {rec['data'][:20].hex()}: {exc}")
                continue
            for kind in classify(rec, dec):
                counts[kind] = counts.get(kind, 0) + 1
                base = kind.split("_", 1)[1]
                if kind in vectors or not base.startswith(WANTED_PREFIXES):
                    continue
                vectors[kind] = {
                    "name": kind,
                    "mode": mode,
                    "proto": rec["proto"],
                    "from": rec["src_name"],
                    "key_b64": rec["key"],
                    "len": len(rec["data"]),
                    "hex": rec["data"].hex(),
                    "decoded": dec,
                }
    print(json.dumps(counts, indent=1, sort_keys=True))
    doc = {
        "description": (
            "Packets real serf agents (Debian serf 0.9.4~ds1, memberlist 0.2.2; -profile=local) "
            "sent to a Python member posing as 'pose' on 127.0.0.1: UDP datagrams (whole) and "
            "TCP streams (whole bytes, one direction). Modes: plain = -disable-compression, "
            "compressed = agent default, encrypted = -encrypt key_b64 (+ compression). "
            "'decoded' comes from an independent decoder in tests/vectors/capture_serf.py."
        ),
        "captured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "serf_version": os.popen("serf version").read().strip(),
        "vectors": [vectors[k] for k in sorted(vectors)],
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {len(vectors)} vectors to {OUT}")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _: Callable[[], int] = main
    raise SystemExit(main())
