"""swimguard: SWIM + Lifeguard membership, wire-compatible with HashiCorp memberlist.

The public names are imported lazily so that `import swimguard.wire` or
`swimguard.protocol` (pure, used by the simulator) does not pull in asyncio.
"""

from __future__ import annotations

# `typing` (and the `re` it imports) is not loaded at run time: `swimguard members` starts
# without them. Type checkers take any `TYPE_CHECKING` as true (the idiom of PEP 781).
TYPE_CHECKING = False

__version__ = "0.1.0"

_EXPORTS = {
    "Agent": "swimguard.aio",
    "AgentConfig": "swimguard.aio",
    "EventsLost": "swimguard.aio",
    "Config": "swimguard.config",
    "Member": "swimguard.protocol.members",
    "MemberState": "swimguard.protocol.members",
    "Node": "swimguard.protocol.node",
    "Keyring": "swimguard.wire.encryption",
    "DecodeError": "swimguard.wire.errors",
    "SwimError": "swimguard.errors",
    "JoinError": "swimguard.errors",
    "UsageError": "swimguard.errors",
    "DeliveryError": "swimguard.errors",
    "UnknownMemberError": "swimguard.errors",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from typing import Any

    from swimguard.aio import Agent as Agent
    from swimguard.aio import AgentConfig as AgentConfig
    from swimguard.aio import EventsLost as EventsLost
    from swimguard.config import Config as Config
    from swimguard.errors import DeliveryError as DeliveryError
    from swimguard.errors import JoinError as JoinError
    from swimguard.errors import SwimError as SwimError
    from swimguard.errors import UnknownMemberError as UnknownMemberError
    from swimguard.errors import UsageError as UsageError
    from swimguard.protocol.members import Member as Member
    from swimguard.protocol.members import MemberState as MemberState
    from swimguard.protocol.node import Node as Node
    from swimguard.wire.encryption import Keyring as Keyring
    from swimguard.wire.errors import DecodeError as DecodeError


def __getattr__(name: str) -> Any:
    import importlib  # on first use: `swimguard members` never needs it

    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'swimguard' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
