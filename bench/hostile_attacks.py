"""The attacks of the hostile-input bench, one function each, against a `LiveCluster`.

Every attack is bounded by a count and a duration (it stops by itself), sends to
127.0.0.1 only, and returns what it did: units sent, the fewest drops the agent must
count for them (`expected_min_drops`), and figures specific to the finding it probes.
Packets whose decoded content would make an agent send anywhere but loopback (a mutated
address in an alive, a ping's source, a Serf query's reply address...) are skipped
before sending, using the project's own decoder, so the agents' replies stay local too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import random
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.hostile_live import LiveCluster
from bench.hostile_packets import (
    EMPTY_STATE,
    MIB,
    PacketFactory,
    encrypt_for,
    frame_for,
    join_request,
    pushpull_lie_head,
    user_stream_head,
)
from bench.procs import LOOPBACK
from swimguard.serf import decode_message as decode_serf
from swimguard.wire import DecodeError, Keyring, UserData, decode_packet

_ADDRESS_FIELDS = frozenset({"addr", "source_addr", "target", "dest_ip"})


@dataclass
class AttackConfig:
    """Sizes and rates of every attack (the command-line flags)."""

    udp_packets: int = 1_000_000
    udp_rate: float = 6_000.0  # datagrams per second, at most (an agent drains ~7k/s here)
    udp_seconds: float = 300.0  # hard stop of one fuzz run
    bomb_packets: int = 300
    bomb_rate: float = 30.0
    bomb_parts: int = 31
    lie_connections: int = 1
    lie_seconds: float = 40.0  # the attacker gives up after this (tcp_timeout is 10 s)
    big_connections: int = 32
    big_bytes: int = 20 * MIB - 1024
    big_seconds: float = 60.0
    slowloris_connections: int = 160
    slowloris_seconds: float = 15.0
    endless_connections: int = 6
    endless_seconds: float = 35.0
    never_read_connections: int = 32
    spoof_rounds: int = 20
    spoof_interval: float = 0.2
    # After the forced failure, how long to wait for the re-add: gossip_to_the_dead_time
    # (lan: 30 s) plus a push/pull; the wait ends as soon as every view has it alive.
    wrap_readd_seconds: float = 120.0
    tcp_timeout: float = 10.0  # of the cluster's profile


@dataclass
class AttackResult:
    """What one attack did and saw (JSON-ready via `as_dict`)."""

    sent: dict[str, int] = field(default_factory=dict)  # unit -> count
    expected_min_drops: int = 0
    figures: dict[str, Any] = field(default_factory=dict)
    extra_checks: dict[str, bool] = field(default_factory=dict)  # finding-specific criteria

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for the JSON result file."""
        return dataclasses.asdict(self)


@dataclass
class Context:
    """Everything an attack needs."""

    live: LiveCluster
    factory: PacketFactory
    cfg: AttackConfig
    rng: random.Random
    key_b64: str | None  # the cluster's key (the attacker does not have it)


# --------------------------------------------------------------------------- helpers


def _is_loopback(raw: object) -> bool:
    if not isinstance(raw, bytes | bytearray) or len(raw) not in (4, 16):
        return True  # not an address an agent would use
    ip = ipaddress.ip_address(bytes(raw))
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _stays_local(obj: object, depth: int = 0) -> bool:
    if depth > 4 or not dataclasses.is_dataclass(obj):
        return True
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name in _ADDRESS_FIELDS and not _is_loopback(value):
            return False
        if f.name == "inner" and isinstance(value, bytes):
            with contextlib.suppress(DecodeError, ValueError):
                if not _stays_local(decode_serf(value), depth + 1):
                    return False
    return True


def classify(data: bytes, keyring: Keyring | None) -> tuple[bool, bool]:
    """(rejected at decode, safe to send): what the project's decoder makes of `data`.

    Rejected means the whole packet or one of its parts fails to decode, so the agent
    must count at least one drop. Unsafe means an address in it points off loopback.
    """
    errors: list[DecodeError] = []
    try:
        messages = decode_packet(data, keyring=keyring, errors=errors)
    except DecodeError:
        return True, True
    except Exception:  # a decoder bug: still send it, the agent must survive it too
        return True, True
    for msg in messages:
        if not _stays_local(msg):
            return bool(errors), False
        if isinstance(msg, UserData) and msg.data:
            with contextlib.suppress(DecodeError, ValueError):
                if not _stays_local(decode_serf(msg.data)):
                    return bool(errors), False
    return bool(errors), True


class Pacer:
    """Keeps a sender at or under `rate` units per second (sleeps in small batches)."""

    def __init__(self, rate: float, batch: int = 64) -> None:
        self.rate = rate
        self.batch = batch
        self.t0 = time.monotonic()
        self.n = 0

    def tick(self) -> None:
        """Account one unit; sleep when ahead of the schedule."""
        self.n += 1
        if self.n % self.batch == 0 and self.rate > 0:
            ahead = self.t0 + self.n / self.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)


def _udp_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * MIB)
    return s


def _send(sock: socket.socket, data: bytes, dest: tuple[str, int]) -> bool:
    try:
        sock.sendto(data, dest)
        return True
    except OSError:  # ENOBUFS / EMSGSIZE: not sent, not counted
        return False


ATTACKER_ADDRESS = "127.0.0.2"
"""Source of the hostile TCP streams: a host of its own, as an attacker is. The cluster's
members and the joiners use 127.0.0.1, so the agent's per-address connection limit can
tell them apart (from one shared address no per-peer limit could)."""


def _connect(
    addr: tuple[str, int], timeout: float = 5.0, *, source: str = ATTACKER_ADDRESS
) -> socket.socket | None:
    try:
        s = socket.create_connection(addr, timeout=timeout, source_address=(source, 0))
    except OSError:
        return None
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _closed_by_peer(s: socket.socket) -> bool:
    """True when the peer closed or reset `s` (non-blocking peek)."""
    try:
        r, _, _ = select.select([s], [], [], 0)
        if not r:
            return False
        return s.recv(65536, socket.MSG_PEEK) == b""
    except OSError:
        return True


# --------------------------------------------------------------------------- UDP


def udp_fuzz(ctx: Context, packets: int) -> AttackResult:
    """`packets` datagrams of the fuzz mix (mutated captures, deep mutations, random bytes,
    every field with every wrong type, nested compounds/compress) at the attacked agent."""
    live, cfg = ctx.live, ctx.cfg
    dest = live.addr(live.attacked)
    res = AttackResult()
    kinds: dict[str, int] = {}
    rejected = skipped = failed = 0
    sock = _udp_socket()
    pacer = Pacer(cfg.udp_rate)
    end = time.monotonic() + cfg.udp_seconds
    sent = 0
    # The nested and wrong-type packets come from fixed pools: classify each one once.
    pooled: dict[int, tuple[bool, bool]] = {}
    try:
        while sent < packets and time.monotonic() < end:
            kind, data = ctx.factory.fuzz()
            if kind in ("nested", "wrong_type"):
                verdict = pooled.get(id(data))
                if verdict is None:
                    verdict = pooled[id(data)] = classify(data, live.keyring)
                bad, safe = verdict
            else:
                bad, safe = classify(data, live.keyring)
            if not safe:
                skipped += 1
                continue
            if not _send(sock, data, dest):
                failed += 1
                continue
            sent += 1
            kinds[kind] = kinds.get(kind, 0) + 1
            rejected += bad
            pacer.tick()
    finally:
        sock.close()
    elapsed = time.monotonic() - pacer.t0
    res.sent = {"datagrams": sent, **{f"datagrams_{k}": v for k, v in sorted(kinds.items())}}
    res.expected_min_drops = rejected
    res.figures = {
        "predicted_rejected_at_decode": rejected,
        "skipped_off_loopback": skipped,
        "send_errors": failed,
        "seconds": round(elapsed, 1),
        "rate_per_s": round(sent / elapsed, 0) if elapsed > 0 else None,
    }
    return res


def lzw_bomb(ctx: Context) -> AttackResult:
    """Finding 3: datagrams of `bomb_parts` compressed parts, each inflating past the 1 MiB
    budget, at `bomb_rate` per second; plus nested compress-of-compress bombs."""
    live, cfg = ctx.live, ctx.cfg
    dest = live.addr(live.attacked)
    packet = encrypt_for(None, ctx.factory.lzw_bomb_packet(cfg.bomb_parts))
    # A bomb inside a bomb: compress(compress(1 MiB of zeros)) in one small datagram.
    from swimguard.wire.compression import compress_message

    nested = compress_message(ctx.factory.lzw_bomb_part(MIB // 2))
    sock = _udp_socket()
    pacer = Pacer(cfg.bomb_rate, batch=1)
    sent = sent_nested = 0
    try:
        for i in range(cfg.bomb_packets):
            if i % 10 == 9 and len(nested) < 65000:
                sent_nested += _send(sock, nested, dest)
            else:
                sent += _send(sock, packet, dest)
            pacer.tick()
    finally:
        sock.close()
    res = AttackResult()
    res.sent = {"bomb_datagrams": sent, "nested_bomb_datagrams": sent_nested}
    res.expected_min_drops = sent + sent_nested
    res.figures = {
        "bomb_bytes": len(packet),
        "bomb_parts": cfg.bomb_parts,
        "inflates_to_mib_per_datagram_if_unbudgeted": round(cfg.bomb_parts * (MIB + 1) / MIB, 1),
        "nested_bomb_bytes": len(nested),
    }
    return res


def spoof(ctx: Context) -> AttackResult:
    """Suspect/dead about every healthy member and forged alives taking their names, sent
    to every agent each round: plain on a plaintext cluster; on an encrypted cluster both
    plain and encrypted with a key the attacker made up."""
    live, cfg = ctx.live, ctx.cfg
    attacker_key = Keyring([bytes(ctx.rng.randrange(256) for _ in range(32))])
    keyrings: list[Keyring | None] = [None] if live.keyring is None else [None, attacker_key]
    sock = _udp_socket()
    sent: dict[str, int] = {}
    total = 0
    try:
        for _ in range(cfg.spoof_rounds):
            packets = ctx.factory.spoof_packets(lambda n: live.incarnation(live.attacked, n))
            for to in live.running():
                dest = live.addr(to)
                for kind, payload in packets:
                    for kr in keyrings:
                        data = encrypt_for(kr, payload)
                        if _send(sock, data, dest):
                            label = f"{kind}_{'wrong_key' if kr else 'plain'}"
                            sent[label] = sent.get(label, 0) + 1
                            total += 1
            time.sleep(cfg.spoof_interval)
    finally:
        sock.close()
    res = AttackResult()
    res.sent = {"datagrams": total, **dict(sorted(sent.items()))}
    # On an encrypted cluster every spoofed datagram must be dropped (and counted).
    res.expected_min_drops = total if live.keyring is not None else 0
    res.figures = {"rounds": cfg.spoof_rounds, "to_agents": len(live.running())}
    return res


def incarnation_wrap(ctx: Context) -> AttackResult:
    """Finding 5: an alive at incarnation 0xFFFFFFFF for a healthy member, then a suspect
    at that incarnation; watch whether the member's refutation is accepted."""
    live = ctx.live
    victim = live.names[1]
    sock = _udp_socket()
    t0 = time.time()
    try:
        for payload in ctx.factory.incarnation_wrap_packets(victim, live.addr(victim)):
            _send(sock, payload, live.addr(live.attacked))
            time.sleep(0.05)
    finally:
        sock.close()
    observers = [n for n in live.running() if n != victim]

    def settled() -> bool:
        evs = [e for e in live.events(t0) if e[3] == victim and e[0] in observers]
        if any(ev == "failed" for _, _, ev, _ in evs):
            return True
        suspected = {o for o, _, ev, _ in evs if ev == "suspect"}
        if not suspected:
            return time.time() - t0 > 3.0  # nobody suspected it (yet): give gossip 3 s
        for o in suspected:
            last_suspect = max(ts for ob, ts, ev, _ in evs if ob == o and ev == "suspect")
            if not any(
                ob == o and ts > last_suspect and ev in ("update", "join") for ob, ts, ev, _ in evs
            ):
                return False
        return True

    # Safety net only: the longest suspicion (lan: 6 x 4 s) stretched by health, and more.
    live.wait_until(settled, 60.0)
    failed_at = [ts for o, ts, ev, s in live.events(t0) if ev == "failed" and s == victim]
    readded_s = None
    if failed_at:
        first = min(failed_at)

        def readded() -> bool:
            return all(live.cluster.agents[o].view.get(victim) == "alive" for o in observers)

        if live.wait_until(readded, ctx.cfg.wrap_readd_seconds):
            readded_s = round(time.time() - first, 2)
    # Count again: other observers may have declared it failed during the re-add wait.
    failed_at = [ts for o, ts, ev, s in live.events(t0) if ev == "failed" and s == victim]
    res = AttackResult()
    res.sent = {"datagrams": 2}
    res.figures = {
        "victim": victim,
        "failed_events_about_victim": len(failed_at),
        "observers_that_declared_it_failed": sorted(
            {o for o, _, ev, s in live.events(t0) if ev == "failed" and s == victim}
        ),
        "first_failed_after_s": round(min(failed_at) - t0, 2) if failed_at else None,
        "readded_after_s": readded_s,
        "readd_wait_s": ctx.cfg.wrap_readd_seconds,
        "victim_incarnations_seen": sorted({live.incarnation(o, victim) for o in observers}),
    }
    return res


def bad_name(ctx: Context) -> AttackResult:
    """Finding 1: alives and Serf join intents whose node name is not UTF-8 (b"\\xff\\xfe"
    and friends), sent once to the attacked agent; then one gossip round to spread."""
    live = ctx.live
    sock = _udp_socket()
    n = 0
    try:
        for payload in ctx.factory.bad_name_packets():
            n += _send(sock, payload, live.addr(live.attacked))
    finally:
        sock.close()
    # Let the names spread by gossip and the periodic push/pulls start (no event to wait
    # for: a poisoned agent says nothing until someone tries to encode its state).
    time.sleep(2.0)
    res = AttackResult()
    res.sent = {"datagrams": n}
    res.figures = {"names": len(ctx.factory.bad_name_packets()) // 2}
    return res


# --------------------------------------------------------------------------- TCP


@dataclass
class _ConnLife:
    opened: float
    closed_by_peer_after: float | None = None
    bytes_sent: int = 0


def _stream_sender(
    addr: tuple[str, int],
    head: bytes,
    chunk: Callable[[], bytes],
    max_seconds: float,
    max_bytes: int,
    rate_bps: float = 0.0,
) -> _ConnLife:
    """Write `head` then chunks until the peer closes, `max_bytes` or `max_seconds`."""
    t0 = time.monotonic()
    life = _ConnLife(opened=t0)
    s = _connect(addr)
    if s is None:
        life.closed_by_peer_after = 0.0
        return life
    s.setblocking(False)
    pending = head
    try:
        while time.monotonic() - t0 < max_seconds:
            if _closed_by_peer(s):
                life.closed_by_peer_after = time.monotonic() - t0
                break
            if not pending and life.bytes_sent < max_bytes:
                pending = chunk()
            if not pending:
                time.sleep(0.05)
                continue
            _, w, _ = select.select([], [s], [], 0.1)
            if not w:
                continue
            try:
                n = s.send(pending[: 256 * 1024])
            except BlockingIOError:
                continue
            except OSError:
                life.closed_by_peer_after = time.monotonic() - t0
                break
            life.bytes_sent += n
            pending = pending[n:]
            if rate_bps > 0:
                time.sleep(n / rate_bps)
    finally:
        s.close()
    return life


def _run_threads(targets: list[Callable[[], _ConnLife]]) -> list[_ConnLife]:
    out: list[_ConnLife | None] = [None] * len(targets)

    def run(i: int) -> None:
        out[i] = targets[i]()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [x if x is not None else _ConnLife(0.0) for x in out]


def _lives(lives: list[_ConnLife]) -> dict[str, Any]:
    closed = [x.closed_by_peer_after for x in lives if x.closed_by_peer_after is not None]
    return {
        "connections": len(lives),
        "closed_by_agent": len(closed),
        "lifetime_s_max": round(max(closed), 2) if closed else None,
        "lifetime_s_min": round(min(closed), 2) if closed else None,
        "bytes_sent_total": sum(x.bytes_sent for x in lives),
        "bytes_sent_max": max((x.bytes_sent for x in lives), default=0),
    }


def pushpull_lie(ctx: Context) -> AttackResult:
    """Finding 2: a push/pull header claiming 20,971,520 states, then 1-byte states as fast
    as the agent reads them, until the agent closes the connection (or we give up)."""
    live, cfg = ctx.live, ctx.cfg
    addr = live.addr(live.attacked)
    # On an encrypted cluster the attacker has no key: a plain stream is all it has.
    head = pushpull_lie_head()
    states = EMPTY_STATE * (256 * 1024)
    lives = _run_threads(
        [
            (lambda: _stream_sender(addr, head, lambda: states, cfg.lie_seconds, 21 * MIB))
            for _ in range(cfg.lie_connections)
        ]
    )
    res = AttackResult()
    res.sent = {"connections": len(lives), "bytes": sum(x.bytes_sent for x in lives)}
    res.expected_min_drops = len(lives)
    res.figures = _lives(lives)
    if res.figures["closed_by_agent"] < len(lives):
        res.figures["attacker_gave_up_after_s"] = cfg.lie_seconds
    # The issue: the stream deadline must be absolute (tcp_timeout), loop lag must not
    # stretch it. Allow 2 s for the close to reach us.
    longest = max((x.closed_by_peer_after or cfg.lie_seconds) for x in lives)
    res.extra_checks["stream_closed_within_tcp_timeout"] = longest <= cfg.tcp_timeout + 2.0
    res.figures["tcp_timeout_s"] = cfg.tcp_timeout
    return res


def big_bodies(ctx: Context) -> AttackResult:
    """Finding 2 (second half): `big_connections` reliable user messages of `big_bytes`
    each (under the 20 MiB cap) sent at once, plus one that declares 1 byte over it."""
    live, cfg = ctx.live, ctx.cfg
    addr = live.addr(live.attacked)
    body = b"\xfe" * (1 * MIB)  # first byte is not a Serf type: an application message

    def one(length: int) -> Callable[[], _ConnLife]:
        head = user_stream_head(length)
        remaining = [length]

        def chunk() -> bytes:
            n = min(len(body), remaining[0])
            remaining[0] -= n
            return body[:n]

        return lambda: _stream_sender(addr, head, chunk, cfg.big_seconds, length + len(head))

    targets = [one(cfg.big_bytes) for _ in range(cfg.big_connections)]
    targets.append(one(20 * MIB + 1))
    lives = _run_threads(targets)
    res = AttackResult()
    res.sent = {"connections": len(lives), "bytes": sum(x.bytes_sent for x in lives)}
    res.expected_min_drops = 1  # the over-cap declaration; the others are legal messages
    res.figures = _lives(lives)
    return res


def slowloris(ctx: Context) -> AttackResult:
    """Finding 4: `slowloris_connections` idle TCP connections from one address, reopened
    as the agent cuts them, for `slowloris_seconds`; meanwhile a push/pull join request
    (as a new member would send) must still be answered."""
    live, cfg = ctx.live, ctx.cfg
    addr = live.addr(live.attacked)
    t0 = time.monotonic()
    socks: list[socket.socket] = []
    opened = cut = refused = 0
    join_probes: list[dict[str, Any]] = []

    def top_up() -> None:
        nonlocal opened, cut, refused
        for s in list(socks):
            if _closed_by_peer(s):
                cut += 1
                socks.remove(s)
                s.close()
        while len(socks) < cfg.slowloris_connections:
            conn = _connect(addr, timeout=2.0)
            if conn is None:
                refused += 1
                break
            socks.append(conn)
            opened += 1

    try:
        top_up()
        held_at_start = len(socks)
        next_probe = time.monotonic() + 1.0
        while time.monotonic() - t0 < cfg.slowloris_seconds:
            top_up()
            if time.monotonic() >= next_probe:
                join_probes.append(_join_probe(live, cfg.tcp_timeout))
                next_probe = time.monotonic() + max(2.0, cfg.slowloris_seconds / 3)
            time.sleep(0.2)
    finally:
        for s in socks:
            s.close()
    res = AttackResult()
    res.sent = {"connections": opened}
    # Every connection the agent cut must be a counted drop (limit or timeout).
    res.expected_min_drops = cut
    ok = sum(1 for p in join_probes if p["answered"])
    res.figures = {
        "held_at_start": held_at_start,
        "cut_by_agent": cut,
        "connect_failures": refused,
        "join_probes": len(join_probes),
        "join_probes_answered": ok,
        "join_probe_seconds": [p["seconds"] for p in join_probes],
    }
    res.extra_checks["joins_answered_during_slowloris"] = bool(join_probes) and ok == len(
        join_probes
    )
    return res


def _join_probe(live: LiveCluster, tcp_timeout: float) -> dict[str, Any]:
    """Send a push/pull join request to the attacked agent; did a reply come back?"""
    t0 = time.monotonic()
    port = 1 + (int(t0 * 1000) % 60000)
    request = join_request(f"probe-{port}", ("127.0.0.1", port), live.keyring)
    s = _connect(live.addr(live.attacked), timeout=tcp_timeout, source=LOOPBACK)
    answered = False
    if s is not None:
        try:
            s.settimeout(tcp_timeout)
            s.sendall(request)
            answered = bool(s.recv(1))
        except OSError:
            answered = False
        finally:
            s.close()
    return {"answered": answered, "seconds": round(time.monotonic() - t0, 2)}


def endless_stream(ctx: Context) -> AttackResult:
    """Streams that never end: a huge declared user message trickled slowly, a push/pull
    of endless empty states trickled, random bytes at full speed, and the same behind a
    label header; each must be cut by the agent's stream deadline."""
    live, cfg = ctx.live, ctx.cfg
    addr = live.addr(live.attacked)
    rng = random.Random(ctx.rng.random())
    noise = rng.randbytes(64 * 1024)
    kinds: list[tuple[str, bytes, Callable[[], bytes], float]] = [
        ("user_trickle", user_stream_head(20 * MIB - 64), lambda: b"\x00" * 512, 4096.0),
        ("pushpull_trickle", pushpull_lie_head(1_000_000), lambda: EMPTY_STATE * 256, 4096.0),
        ("random_fast", b"\x08" + noise[:16], lambda: noise, 0.0),
        ("header_only", user_stream_head(20 * MIB - 64), lambda: b"", 0.0),
    ]

    def sender(head: bytes, chunk: Callable[[], bytes], rate: float) -> Callable[[], _ConnLife]:
        return lambda: _stream_sender(addr, head, chunk, cfg.endless_seconds, 64 * MIB, rate)

    targets: list[Callable[[], _ConnLife]] = []
    labels = []
    for i in range(cfg.endless_connections):
        label, head, chunk, rate = kinds[i % len(kinds)]
        labels.append(label)
        targets.append(sender(head, chunk, rate))
    lives = _run_threads(targets)
    res = AttackResult()
    res.sent = {"connections": len(lives), "bytes": sum(x.bytes_sent for x in lives)}
    res.expected_min_drops = len(lives)
    res.figures = _lives(lives)
    res.figures["by_kind_lifetime_s"] = {
        f"{label}#{i}": (
            round(x.closed_by_peer_after, 2) if x.closed_by_peer_after is not None else None
        )
        for i, (label, x) in enumerate(zip(labels, lives, strict=True))
    }
    longest = max((x.closed_by_peer_after or cfg.endless_seconds) for x in lives)
    res.extra_checks["stream_closed_within_tcp_timeout"] = longest <= cfg.tcp_timeout + 2.0
    return res


def never_read(ctx: Context) -> AttackResult:
    """Push/pull requests whose replies are never read, connections left open: the agent
    must not keep them (close grace) nor their buffers."""
    live, cfg = ctx.live, ctx.cfg
    addr = live.addr(live.attacked)
    payload = frame_for(live.keyring, pushpull_lie_head(0))  # a legal, empty push/pull
    socks: list[socket.socket] = []
    t0 = time.monotonic()
    for _ in range(cfg.never_read_connections):
        s = _connect(addr)
        if s is None:
            continue
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        with contextlib.suppress(OSError):
            s.sendall(payload)
        socks.append(s)
    closed_after: list[float] = []
    pending = list(socks)
    deadline = t0 + 3 * cfg.tcp_timeout
    while pending and time.monotonic() < deadline:
        for s in list(pending):
            # The reply sits unread in our receive buffer; EOF shows behind it only when
            # read, so look for the FIN with a peek past the reply.
            try:
                r, _, _ = select.select([s], [], [], 0)
                if r:
                    data = s.recv(65536, socket.MSG_PEEK)
                    if data == b"" or _fin_after(s, len(data)):
                        closed_after.append(time.monotonic() - t0)
                        pending.remove(s)
            except OSError:
                closed_after.append(time.monotonic() - t0)
                pending.remove(s)
        time.sleep(0.2)
    for s in socks:
        s.close()
    res = AttackResult()
    res.sent = {"connections": len(socks)}
    res.figures = {
        "closed_by_agent": len(closed_after),
        "still_open_after_s": round(3 * cfg.tcp_timeout, 1) if pending else None,
        "close_after_s_max": round(max(closed_after), 2) if closed_after else None,
    }
    return res


def _fin_after(s: socket.socket, n: int) -> bool:
    """After `n` unread bytes, has the peer sent FIN? (TCP_INFO state CLOSE_WAIT = 8)."""
    with contextlib.suppress(OSError):
        info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
        return info[0] == 8
    return False


ATTACKS: dict[str, str] = {
    "udp-fuzz": "mutated/random/wrong-type/nested datagrams (the million)",
    "lzw-bomb": "finding 3: compound of LZW bombs, budget not charged on failure",
    "pushpull-lie": "finding 2: push/pull header Nodes=20,971,520 then 1-byte states",
    "big-bodies": "finding 2: 32 connections x 20 MiB reliable user messages",
    "slowloris": "finding 4: 128+ idle connections from one address",
    "endless-stream": "streams that never end (trickled, random, header only)",
    "never-read": "push/pull replies never read",
    "spoof": "suspect/dead/forged alive about healthy members",
    "incarnation-wrap": "finding 5: alive at 0xFFFFFFFF, then suspect",
    "bad-name": "finding 1: alive with Node=b'\\xff\\xfe' (not UTF-8)",
}
"""Every attack the bench knows, with what it probes."""
