"""asyncio driver: `Agent` runs one protocol node on real UDP/TCP sockets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Each public name and the module that defines it: imported on first use (PEP 562), so
# that importing one submodule does not load the whole package.
_EXPORTS: dict[str, str] = {
    "Agent": "swimguard.aio.agent",
    "AgentEvent": "swimguard.aio.agent",
    "AgentConfig": "swimguard.aio.agent_config",
    "EventsLost": "swimguard.aio.event_buffer",
}

if TYPE_CHECKING:
    from swimguard.aio.agent import Agent as Agent
    from swimguard.aio.agent import AgentEvent as AgentEvent
    from swimguard.aio.agent_config import AgentConfig as AgentConfig
    from swimguard.aio.event_buffer import EventsLost as EventsLost

__all__ = ["Agent", "AgentConfig", "AgentEvent", "EventsLost"]


def __getattr__(name: str) -> Any:
    import importlib  # on first use: `swimguard members` never needs it

    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain global lookup
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
