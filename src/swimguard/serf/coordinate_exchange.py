"""Coordinates carried in probe acks, and what we learned from them (spec/serf-rpc.md §3.1).

Serf answers every UDP ping with its coordinate in the ack's payload (`0x01` + a msgpack
map, serf-wire.md §7), and each direct probe's ack, with its round-trip time, is one
Vivaldi sample for the prober. `CoordinateExchange` does both halves for a `SerfNode`:
it encodes our coordinate for the acks we send, and turns each acked direct probe into a
client update and a cache entry (the peer's coordinate as it reported it, which is what
`serf rtt` and our `rtt()` estimate from).

Everything in a payload is hostile: a payload that does not decode, a coordinate of the
wrong dimension, non-finite or absurd, or a round-trip time Serf would not use is
counted by reason and dropped; nothing unusable is stored or sent on again. The cache
holds at most `max_entries` peers (the member table's own limit), dropping the one not
heard from for longest, with its latency samples; a member that failed or left is dropped
`GONE_RETENTION` later, when Serf would reap it.
"""

from __future__ import annotations

import enum
import random
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final

import msgpack

from swimguard.protocol.stats import Histogram
from swimguard.serf.coordinate import (
    DEFAULT_CONFIG,
    Coordinate,
    VivaldiClient,
    VivaldiConfig,
)

__all__ = [
    "ADJUSTMENT_MS_BUCKETS",
    "GONE_RETENTION",
    "PING_VERSION",
    "AckPayloadProblem",
    "CoordinateExchange",
    "coordinate_map",
    "decode_ack_payload",
    "encode_ack_payload",
]

PING_VERSION: Final = 1
"""First byte of Serf's ack payload."""

GONE_RETENTION: Final = 24 * 3600.0
"""How long a failed or left member's coordinate is kept (s): Serf reaps such members, and
their coordinates with them, after its 24 h reconnect and tombstone timeouts."""

ADJUSTMENT_MS_BUCKETS: Final = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0
)
"""Upper bounds (milliseconds) of the per-update move of our coordinate. Serf reports the
move in ms (`serf.coordinate.adjustment-ms`); on a LAN a settled member moves by hundredths
of a millisecond, a new one (at the origin, with the largest error) by up to a few ms."""

_MAX_PAYLOAD: Final = 4096
"""Far above Serf's 130 bytes; a larger payload is not decoded at all."""


class AckPayloadProblem(enum.Enum):
    """Why an ack payload gave no coordinate; the value is the drop counter's name."""

    BAD_VERSION = "coordinate_bad_version"
    UNDECODABLE = "coordinate_undecodable"


def coordinate_map(coord: Coordinate) -> dict[str, Any]:
    """The map Serf encodes a coordinate as, keys in its order (ack payloads, RPC replies).

    RPC `get-coordinate` answers `{"Coord": coordinate_map(c), "Ok": True}` for a known one.
    """
    return {
        "Adjustment": float(coord.adjustment),
        "Error": float(coord.error),
        "Height": float(coord.height),
        "Vec": [float(v) for v in coord.vec],
    }


def encode_ack_payload(coord: Coordinate) -> bytes:
    """`0x01` + the old-spec msgpack map Serf writes (keys sorted, float64s): 130 bytes."""
    return bytes((PING_VERSION,)) + msgpack.packb(coordinate_map(coord), use_bin_type=False)


def decode_ack_payload(payload: bytes) -> Coordinate | AckPayloadProblem:
    """The coordinate in a peer's ack payload (not yet checked for sanity).

    Read as Serf's decoder reads it: unknown keys are skipped, a missing or nil field is
    zero (a missing `Vec` is empty, so the dimension check refuses it), integers are
    accepted where floats are expected, and bytes after the map are ignored.
    """
    if payload[:1] != bytes((PING_VERSION,)):
        return AckPayloadProblem.BAD_VERSION
    if len(payload) > _MAX_PAYLOAD:
        return AckPayloadProblem.UNDECODABLE
    # One call, not a streaming Unpacker: this runs for every probe ack, and building an
    # Unpacker cost more than decoding. The payload's length is bounded above; the limits
    # bound what a hostile map or array may hold.
    try:
        body = msgpack.unpackb(payload[1:], raw=True, max_array_len=64, max_map_len=16)
    except msgpack.ExtraData as extra:
        # Serf's decoder stops after the map (the stubs do not declare `unpacked`).
        body = extra.unpacked  # type: ignore[attr-defined]
    except (ValueError, msgpack.UnpackException):
        return AckPayloadProblem.UNDECODABLE
    if body is None:
        body = {}
    if not isinstance(body, dict):
        return AckPayloadProblem.UNDECODABLE
    if not set(map(type, body)) <= _BYTES_ONLY:
        return AckPayloadProblem.UNDECODABLE
    fields: dict[bytes, Any] = body
    try:
        vec_raw = fields.get(b"Vec")
        if vec_raw is None:
            vec: tuple[float, ...] = ()
        elif not isinstance(vec_raw, list):
            return AckPayloadProblem.UNDECODABLE
        elif set(map(type, vec_raw)) == _FLOATS_ONLY:  # what Serf sends: no conversion
            vec = tuple(vec_raw)
        else:
            vec = tuple(_number(v) for v in vec_raw)
        return Coordinate(
            vec=vec,
            error=_number(fields.get(b"Error")),
            adjustment=_number(fields.get(b"Adjustment")),
            height=_number(fields.get(b"Height")),
        )
    except TypeError:
        return AckPayloadProblem.UNDECODABLE


_BYTES_ONLY: Final = frozenset((bytes,))
_FLOATS_ONLY: Final = frozenset((float,))


def _number(value: object) -> float:
    # bool is an int to Python but not a number to Serf's decoder.
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"not a number: {type(value).__name__}")
    return float(value)


class CoordinateExchange:
    """Our Vivaldi client, the peers' reported coordinates and the drop counters.

    `ack_payload()` and `ping_completed()` are the two halves of the node's `PingHook`
    (`SerfNode` wires them); `note_member()` and `expire()` take memberlist's verdicts and
    the passing time, so departed members age out.
    """

    def __init__(
        self,
        name: str,
        *,
        rng: random.Random,
        config: VivaldiConfig = DEFAULT_CONFIG,
        max_entries: int = 100_000,
        retention: float = GONE_RETENTION,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self._retention = retention
        # Members that failed or left while we held their coordinate, oldest first: when.
        self._gone: OrderedDict[str, float] = OrderedDict()
        self.name = name
        self.client = VivaldiClient(config, rng=rng)
        self._max_entries = max_entries
        self._cache: OrderedDict[str, Coordinate] = OrderedDict()
        self._drops: dict[str, int] = {}
        self.updates = 0
        """Samples that moved our coordinate."""
        self.adjustment_ms = Histogram(ADJUSTMENT_MS_BUCKETS)
        """How far each update moved our coordinate, in ms (Serf's `adjustment-ms`)."""
        self.rejected = 0
        """Samples the Vivaldi client refused: a bad coordinate or round-trip time (Serf's
        `coordinate.rejected`; payloads that do not decode are not samples, as in Serf)."""
        self.zero_rtt = 0
        """Accepted samples whose round-trip time was 0 (a coarse clock; Serf's `zero-rtt`)."""
        # Our coordinate only changes in `ping_completed`; acks reuse its encoding.
        self._payload = encode_ack_payload(self.client.coordinate)

    # -- the two halves of the ping hook ---------------------------------------------------

    def ack_payload(self) -> bytes:
        """Our coordinate, for every UDP ack we send."""
        return self._payload

    def ping_completed(self, node: str, rtt: float, payload: bytes) -> None:
        """A direct probe of `node` was acked after `rtt` seconds with `payload`.

        An empty payload (a member without coordinates, e.g. plain memberlist) is not an
        error and is not counted.
        """
        if not payload:
            return
        if node == self.name:
            return  # never our own sample: it would pull us towards ourselves
        coord = decode_ack_payload(payload)
        if isinstance(coord, AckPayloadProblem):
            self._count(coord.value)
            return
        before = self.client.coordinate
        problem = self.client.update(node, coord, rtt)
        if problem is not None:
            self.rejected += 1
            self._count(problem.value)
            return
        if rtt == 0.0:
            self.zero_rtt += 1
        self.updates += 1
        self.adjustment_ms.observe(before.distance_to(self.client.coordinate) * 1000.0)
        self._payload = encode_ack_payload(self.client.coordinate)
        self._cache[node] = coord
        self._cache.move_to_end(node)
        if len(self._cache) > self._max_entries:
            self.forget(next(iter(self._cache)))  # the one heard from longest ago

    # -- what we know -----------------------------------------------------------------------

    @property
    def own(self) -> Coordinate:
        """Our current coordinate."""
        return self.client.coordinate

    def coordinate(self, node: str) -> Coordinate | None:
        """`node`'s coordinate as it last reported it (ours for our own name), or None."""
        if node == self.name:
            return self.client.coordinate
        return self._cache.get(node)

    def forget(self, node: str) -> None:
        """Drop everything about `node` (it was removed from the cluster)."""
        self._cache.pop(node, None)
        self._gone.pop(node, None)
        self.client.forget(node)

    def note_member(self, node: str, *, alive: bool, now: float) -> None:
        """Memberlist's verdict on `node`; a departed member is forgotten `retention` later.

        Like Serf, `rtt()` still answers for a member that just failed or left (it may come
        back); coordinates of members gone longer than the retention are dropped here and in
        `expire`.
        """
        if alive:
            self._gone.pop(node, None)
        elif node in self._cache and node not in self._gone:
            self._gone[node] = now
        self.expire(now=now)

    def expire(self, *, now: float) -> None:
        """Forget the members that failed or left more than `retention` ago."""
        while self._gone:
            oldest, since = next(iter(self._gone.items()))
            if now - since < self._retention:
                break
            self.forget(oldest)

    def __len__(self) -> int:
        """Peers with a cached coordinate."""
        return len(self._cache)

    @property
    def resets(self) -> int:
        """Times our coordinate went non-finite and restarted at the origin."""
        return self.client.resets

    @property
    def drops(self) -> Mapping[str, int]:
        """Refused payloads and samples, by reason (`CoordinateRejected`, `AckPayloadProblem`)."""
        return dict(self._drops)

    def _count(self, reason: str) -> None:
        self._drops[reason] = self._drops.get(reason, 0) + 1

