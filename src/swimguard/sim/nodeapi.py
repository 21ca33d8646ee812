"""The slice of `swimguard.protocol.Node` the simulator drives, as a structural type.

Written down so the simulator can be tested with a trivial fake node and so a change in
the core's driver contract shows up as a type error here.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from swimguard.protocol.api import NodeAPI
from swimguard.protocol.outgoing import Address

__all__ = ["NodeFactory", "SimNode"]


SimNode = NodeAPI
"""The simulator drives the same contract as the asyncio driver."""

NodeFactory = Callable[[str, Address, random.Random, float], SimNode]
"""Builds a node: (name, advertise address, seeded rng, now) -> node."""
