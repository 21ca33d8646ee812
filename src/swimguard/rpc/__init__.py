"""Serf's agent RPC ("IPC") for swimguard: the server the `serf` CLI and Serf clients talk to.

`RpcServer` listens (Serf's default `127.0.0.1:7373`) and serves an `RpcBackend`;
`AgentBackend` is that backend for a `swimguard.aio.Agent`, and `LogRing` the log
source of `monitor`. `Client` talks to such a port (a swimguard or a serf agent).
The wire format and behaviour follow serf 0.9.4's agent; see docs/reference/rpc.md
for what is supported.
"""

from swimguard.rpc.agent_backend import AgentBackend
from swimguard.rpc.backend import BackendError, RpcBackend
from swimguard.rpc.client import (
    Client,
    KeyReport,
    MemberInfo,
    QueryAnswer,
    RpcClientError,
    StreamEvent,
)
from swimguard.rpc.commands import Command, RpcError
from swimguard.rpc.log_ring import LogLevel, LogRing
from swimguard.rpc.members import MemberDirectory, RpcMember, SerfStatus
from swimguard.rpc.server import RpcLimits, RpcServer

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
