"""Serf's agent RPC ("IPC") for swimguard: the server the `serf` CLI and Serf clients talk to.

`RpcServer` listens (Serf's default `127.0.0.1:7373`) and serves an `RpcBackend`;
`AgentBackend` is that backend for a `swimguard.aio.Agent`, and `LogRing` the log
source of `monitor`. `Client` talks to such a port (a swimguard or a serf agent).
The wire format and behaviour follow serf 0.9.4's agent; see docs/reference/rpc.md
for what is supported.
"""

from __future__ import annotations

# `typing` (and the `re` it imports) is not loaded at run time: `swimguard members` starts
# without them. Type checkers take any `TYPE_CHECKING` as true (the idiom of PEP 781).
TYPE_CHECKING = False

# Each public name and the module that defines it: imported on first use (PEP 562), so
# that importing one submodule does not load the whole package.
_EXPORTS: dict[str, str] = {
    "AgentBackend": "swimguard.rpc.agent_backend",
    "BackendError": "swimguard.rpc.backend",
    "RpcBackend": "swimguard.rpc.backend",
    "Client": "swimguard.rpc.client",
    "KeyReport": "swimguard.rpc.client",
    "MemberInfo": "swimguard.rpc.client",
    "QueryAnswer": "swimguard.rpc.client",
    "RpcClientError": "swimguard.rpc.client",
    "StreamEvent": "swimguard.rpc.client",
    "Command": "swimguard.rpc.commands",
    "RpcError": "swimguard.rpc.commands",
    "LogLevel": "swimguard.rpc.log_ring",
    "LogRing": "swimguard.rpc.log_ring",
    "MemberDirectory": "swimguard.rpc.members",
    "RpcMember": "swimguard.rpc.members",
    "SerfStatus": "swimguard.rpc.members",
    "RpcLimits": "swimguard.rpc.server",
    "RpcServer": "swimguard.rpc.server",
}

if TYPE_CHECKING:
    from typing import Any

    from swimguard.rpc.agent_backend import AgentBackend as AgentBackend
    from swimguard.rpc.backend import BackendError as BackendError
    from swimguard.rpc.backend import RpcBackend as RpcBackend
    from swimguard.rpc.client import Client as Client
    from swimguard.rpc.client import KeyReport as KeyReport
    from swimguard.rpc.client import MemberInfo as MemberInfo
    from swimguard.rpc.client import QueryAnswer as QueryAnswer
    from swimguard.rpc.client import RpcClientError as RpcClientError
    from swimguard.rpc.client import StreamEvent as StreamEvent
    from swimguard.rpc.commands import Command as Command
    from swimguard.rpc.commands import RpcError as RpcError
    from swimguard.rpc.log_ring import LogLevel as LogLevel
    from swimguard.rpc.log_ring import LogRing as LogRing
    from swimguard.rpc.members import MemberDirectory as MemberDirectory
    from swimguard.rpc.members import RpcMember as RpcMember
    from swimguard.rpc.members import SerfStatus as SerfStatus
    from swimguard.rpc.server import RpcLimits as RpcLimits
    from swimguard.rpc.server import RpcServer as RpcServer

DEFAULT_RPC_ADDR = "127.0.0.1:7373"

__all__ = [
    "DEFAULT_RPC_ADDR",
    "AgentBackend",
    "BackendError",
    "Client",
    "Command",
    "KeyReport",
    "LogLevel",
    "LogRing",
    "MemberDirectory",
    "MemberInfo",
    "QueryAnswer",
    "RpcBackend",
    "RpcClientError",
    "RpcError",
    "RpcLimits",
    "RpcMember",
    "RpcServer",
    "SerfStatus",
    "StreamEvent",
]


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
