"""The member table: mutable records, name index and the shuffled probe order.

Mirrors memberlist's `nodes` slice + `nodeMap`: new members go to a random
position of the probe list; at every wrap-around of the probe index the list is
purged of long-dead members and reshuffled (`resetNodes`), which costs O(n) once
per n probes.

A simulator warm start (`SharedView`, `MemberTable.adopt`) lets many tables hold the
same records: a shared record is copied into the table before its first change (inside
the table's writers, `set_alive`/`set_state`/`set_incarnation`, the only code that changes
a record), so N tables of N members cost N^2 dict entries, not N^2 records.
"""

from __future__ import annotations

import functools
import math
import random
from collections import Counter
from collections.abc import Callable, Iterable

from swimguard.protocol.addresses import host_to_bytes
from swimguard.protocol.members import Member, MemberState
from swimguard.protocol.outgoing import Address
from swimguard.protocol.versions import answers_nacks, answers_tcp_ping, reads_crc, vsns_agree

__all__ = ["MemberRecord", "MemberTable", "SharedView"]

_EMPTY_VSN = bytes(6)


@functools.lru_cache(maxsize=1 << 16)
def _shared_address(host: str, port: int) -> Address:
    """One (host, port) tuple per address: a simulated cluster holds N^2 records."""
    return (host, port)


class MemberRecord:
    """What we know about one member (ourselves included)."""

    __slots__ = (
        "addr_bytes",
        "address",
        "incarnation",
        "meta",
        "name",
        "port",
        "shared",
        "state",
        "state_change",
        "vsn",
    )

    def __init__(self, name: str, host: str, addr_bytes: bytes, port: int, meta: bytes) -> None:
        self.name = name
        self.address: Address = _shared_address(host, port)  # (host, port) to send to
        self.addr_bytes = addr_bytes
        self.port = port
        self.meta = meta
        self.incarnation = 0
        # memberlist creates unknown nodes "dead" with a zero StateChange (long ago).
        self.state = MemberState.DEAD
        self.state_change = -math.inf
        self.vsn = _EMPTY_VSN
        self.shared = False  # held by several tables (`SharedView`): copy before changing

    @property
    def host(self) -> str:
        """IP text of the member's address."""
        return self.address[0]

    @property
    def pmax(self) -> int:
        """Highest memberlist protocol version the member understands."""
        return self.vsn[1]

    @property
    def reads_crc(self) -> bool:
        """The member accepts packets in the CRC envelope."""
        return reads_crc(self.vsn[1])

    @property
    def answers_nacks(self) -> bool:
        """The member sends a nack when it relays an indirect ping that goes unanswered."""
        return answers_nacks(self.vsn[1])

    @property
    def answers_tcp_ping(self) -> bool:
        """The member answers the TCP fallback ping."""
        return answers_tcp_ping(self.vsn[1])

    @property
    def dead_or_left(self) -> bool:
        """True for DEAD and LEFT."""
        return self.state is MemberState.DEAD or self.state is MemberState.LEFT

    def snapshot(self) -> Member:
        """An immutable copy for events and `Node.members()`."""
        return Member(
            name=self.name,
            addr=self.address,
            incarnation=self.incarnation,
            state=self.state,
            meta=self.meta,
            vsn=self.vsn,
        )


class MemberTable:
    """Records by name plus the probe order."""

    __slots__ = ("by_addr", "by_name", "order", "probe_index", "vsns")

    def __init__(self) -> None:
        self.by_name: dict[str, MemberRecord] = {}
        self.by_addr: dict[Address, MemberRecord] = {}
        self.order: list[MemberRecord] = []
        self.probe_index = 0
        # How many records hold each Vsn: a cluster has a handful of distinct values, so
        # `vsn_fits` checks a newcomer against those, not against every record.
        self.vsns: Counter[bytes] = Counter()

    def __len__(self) -> int:
        return len(self.order)

    def get(self, name: str) -> MemberRecord | None:
        """The record for `name`, if known."""
        return self.by_name.get(name)

    def vsn_fits(self, vsn: bytes) -> bool:  # 6 bytes; a record without one holds zeros
        """Storing a member with this Vsn keeps memberlist's push/pull check passing.

        `verify_protocol` (ours and memberlist's) refuses a whole push/pull when any member
        of it, local or remote, has a current version outside the range every other
        member accepts. A member stored with such a Vsn (one forged alive with delegate
        version 144, or with no Vsn, read as all zeros) would make every later join
        through us fail, so it is never stored. The range check runs over every record,
        dead ones too (memberlist ranges over alive members only): stricter, so a
        newcomer is at worst kept out until an incompatible dead member is reaped.
        """
        if vsn in self.vsns:
            return True
        return vsns_agree(vsn, vsn) and all(vsns_agree(vsn, other) for other in self.vsns)

    def add(self, record: MemberRecord, rng: random.Random) -> None:
        """Insert at a random position of the probe order (memberlist's `aliveNode`)."""
        self.vsns[record.vsn] += 1
        self.by_name[record.name] = record
        self.by_addr[record.address] = record
        order = self.order
        n = len(order)
        offset = rng.randrange(n) if n else 0
        order.append(record)
        order[offset], order[n] = order[n], order[offset]

    def add_new(
        self,
        name: str,
        host: str,
        addr_bytes: bytes,
        port: int,
        meta: bytes,
        vsn: bytes,
        rng: random.Random,
    ) -> MemberRecord:
        """A record for an unknown member (still DEAD, incarnation 0), put in the table."""
        rec = MemberRecord(name, host, addr_bytes, port, meta)
        if len(vsn) == 6:
            rec.vsn = vsn
        self.add(rec, rng)
        return rec

    # The writers below are the only code that changes a record in the table. A record
    # shared with other tables (`SharedView`) is first swapped for a private copy, so the
    # rules never see the sharing; each returns the record now in the table.

    def set_alive(
        self,
        rec: MemberRecord,
        *,
        incarnation: int,
        meta: bytes,
        vsn: bytes,
        host: str,
        addr_bytes: bytes,
        port: int,
        now: float,
    ) -> MemberRecord:
        """`rec` is alive at `incarnation` with this meta, Vsn (if any) and address."""
        if rec.shared:
            rec = self._own(rec)
        if vsn and vsn != rec.vsn:
            self._count_vsn(rec.vsn, -1)
            self.vsns[vsn] += 1
            rec.vsn = vsn
        rec.incarnation = incarnation
        rec.meta = meta
        if rec.addr_bytes != addr_bytes or rec.port != port:
            self._move(rec, host, addr_bytes, port)
        if rec.state is not MemberState.ALIVE:
            rec.state = MemberState.ALIVE
            rec.state_change = now
        return rec

    def set_state(
        self, rec: MemberRecord, state: MemberState, incarnation: int, *, now: float
    ) -> MemberRecord:
        """`rec` changes to `state` (suspect, dead or left) at `incarnation`."""
        if rec.shared:
            rec = self._own(rec)
        rec.incarnation = incarnation
        rec.state = state
        rec.state_change = now
        return rec

    def set_incarnation(self, rec: MemberRecord, incarnation: int) -> MemberRecord:
        """`rec` (our own record, when we refute) takes `incarnation`, state unchanged."""
        if rec.shared:
            rec = self._own(rec)
        rec.incarnation = incarnation
        return rec

    def _count_vsn(self, vsn: bytes, delta: int) -> None:
        n = self.vsns[vsn] + delta
        if n > 0:
            self.vsns[vsn] = n
        else:
            del self.vsns[vsn]

    def _own(self, rec: MemberRecord) -> MemberRecord:
        """A private copy of shared `rec`, put in its place (copy-on-write)."""
        copy = MemberRecord.__new__(MemberRecord)
        for field in MemberRecord.__slots__:  # every field, also ones added later
            setattr(copy, field, getattr(rec, field))
        copy.shared = False
        self.by_name[rec.name] = copy
        if self.by_addr.get(rec.address) is rec:
            self.by_addr[rec.address] = copy
        order = self.order
        order[order.index(rec)] = copy
        return copy

    def adopt(self, view: SharedView, own: MemberRecord, rng: random.Random) -> None:
        """Take every member of `view` (shared, not copied) except `own`, in a random order."""
        if len(self.order) != 1 or self.order[0] is not own:
            raise ValueError("adopt() needs a table that holds only our own record")
        by_name = dict(view.by_name)
        by_addr = dict(view.by_addr)
        order = list(view.records)
        at = view.index.get(own.name)
        if at is None:
            order.append(own)
        else:
            order[at] = own  # `Node.preload` checked that the view has our address
        by_name[own.name] = own
        by_addr[own.address] = own
        vsns = view.vsns.copy()
        if at is not None:
            vsns[view.records[at].vsn] -= 1
        vsns[own.vsn] += 1
        rng.shuffle(order)
        self.by_name, self.by_addr, self.order = by_name, by_addr, order
        self.vsns = +vsns  # drops a count that fell to zero
        self.probe_index = 0

    def _move(self, rec: MemberRecord, host: str, addr_bytes: bytes, port: int) -> None:
        """Change a member's address, keeping the address index right."""
        if self.by_addr.get(rec.address) is rec:
            del self.by_addr[rec.address]
        rec.address, rec.addr_bytes, rec.port = _shared_address(host, port), addr_bytes, port
        self.by_addr[rec.address] = rec

    def reset(
        self, rng: random.Random, dead_time: float, reap_left: bool, *, now: float
    ) -> list[MemberRecord]:
        """Drop members dead (or left) for longer than `dead_time`, reshuffle; returns dropped."""
        keep: list[MemberRecord] = []
        dropped: list[MemberRecord] = []
        for rec in self.order:
            gone = rec.state is MemberState.DEAD or (reap_left and rec.state is MemberState.LEFT)
            if gone and now - rec.state_change > dead_time:
                dropped.append(rec)
                self._count_vsn(rec.vsn, -1)
                del self.by_name[rec.name]
                if self.by_addr.get(rec.address) is rec:
                    del self.by_addr[rec.address]
            else:
                keep.append(rec)
        rng.shuffle(keep)
        self.order = keep
        return dropped

    def k_random(
        self, k: int, rng: random.Random, exclude: Callable[[MemberRecord], bool]
    ) -> list[MemberRecord]:
        """Up to `k` distinct random records not excluded, in at most 3n draws (`kRandomNodes`)."""
        order = self.order
        n = len(order)
        out: list[MemberRecord] = []
        if n == 0 or k <= 0:
            return out
        randrange = rng.randrange
        for _ in range(3 * n):
            if len(out) >= k:
                break
            rec = order[randrange(n)]
            if exclude(rec) or rec in out:
                continue
            out.append(rec)
        return out


class SharedView:
    """Alive records of a converged cluster that many tables start from (`MemberTable.adopt`).

    For simulations only: it replaces the O(N^2 log N) join storm of a large cluster by the
    state the storm converges to, each member alive at its current incarnation.
    """

    __slots__ = ("by_addr", "by_name", "index", "records", "vsns")

    def __init__(self, members: Iterable[Member], *, now: float) -> None:
        self.records: list[MemberRecord] = []
        for m in members:
            host, port = m.addr
            rec = MemberRecord(m.name, host, host_to_bytes(host), port, m.meta)
            rec.incarnation = m.incarnation
            rec.state = MemberState.ALIVE
            rec.state_change = now
            rec.vsn = m.vsn
            rec.shared = True
            self.records.append(rec)
        self.by_name = {r.name: r for r in self.records}
        if len(self.by_name) != len(self.records):
            raise ValueError("SharedView: member names must be unique")
        self.by_addr = {r.address: r for r in self.records}
        self.index = {r.name: i for i, r in enumerate(self.records)}
        self.vsns: Counter[bytes] = Counter(r.vsn for r in self.records)
