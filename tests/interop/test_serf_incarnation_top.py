"""Issue 10, finding 5 against a real Go peer: a forged accusation at incarnation 0xFFFFFFFF.

A spoofed alive about our member at 0xFFFFFFFF plus a suspect at 0xFFFFFFFF, sent to a
Debian serf agent (memberlist 0.2.2) and to us. Nothing outbids the top under memberlist's
uint32 rules, so the serf agent fails our member whatever it answers. Before the fix our
refutation wrapped to incarnation 0, which memberlist never accepts for a member it does
not know (it creates the record at 0 and drops an alive that is not newer), so the member
stayed failed for good. Now it restarts at 1 and is alive again for serf once serf has
reaped the dead record (GossipToTheDeadTime, 15 s under -profile=local) and a push/pull
carries our state (15 s under the local preset).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from bench.serf_harness import Cluster
from interop_support import local_agent, until, until_serf_status

from swimguard.config import Config
from swimguard.protocol.node import Node
from swimguard.wire.messages import Alive, Suspect
from swimguard.wire.packet import encode_message, encode_packet, make_compound

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(180)]

TOP = 0xFFFF_FFFF


def _udp(addr: str) -> tuple[str, int]:
    host, port = addr.rsplit(":", 1)
    return host, int(port)


class _Keep:
    """A node factory that keeps the protocol node it builds (inside the agent's SerfNode)."""

    def __init__(self) -> None:
        self.node: Node | None = None

    def __call__(self, config: Config, **kwargs: Any) -> Node:
        self.node = Node(config, **kwargs)
        return self.node

    def restarts(self) -> int:
        assert self.node is not None
        return self.node.incarnation_restarts


def test_forged_top_incarnation_fails_once_then_serf_takes_us_back(cluster: Cluster) -> None:
    a = cluster.start_serf("a")

    async def scenario() -> None:
        kept = _Keep()
        async with local_agent("py", node_factory=kept) as py:
            await py.join([a.addr])
            await until_serf_status(a, "py", "alive", 10)
            host, port = py.advertise_address
            forged = encode_packet(make_compound([
                encode_message(Alive(incarnation=TOP, node="py", addr=socket.inet_aton(host),
                                     port=port, vsn=bytes((1, 5, 2, 2, 5, 5)))),
                encode_message(Suspect(incarnation=TOP, node="py", from_="mallory")),
            ]))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(forged, _udp(a.addr))
                s.sendto(forged, (host, port))
            await until(lambda: kept.restarts() >= 1, 10, "py to restart its incarnation")
            assert py.local_member.incarnation < 10  # 1 (then a few refutations), never 0
            # The Go peer cannot take any refutation above the top: py fails once...
            await until_serf_status(a, "py", "failed", 30)
            # ...and comes back at a low incarnation once serf reaped the dead record.
            await until_serf_status(a, "py", "alive", 90)

    asyncio.run(scenario())
