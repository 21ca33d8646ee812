"""asyncio driver: `Agent` runs one protocol node on real UDP/TCP sockets."""

from __future__ import annotations

from swimguard.aio.agent import Agent, AgentEvent
from swimguard.aio.agent_config import AgentConfig
from swimguard.aio.event_buffer import EventsLost

__all__ = ["Agent", "AgentConfig", "AgentEvent", "EventsLost"]
