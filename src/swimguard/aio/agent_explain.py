"""`AgentExplain`: `Agent.explain(name)`, why a member is in its state (a mixin: agent.py
stays small). It builds on `AgentFence`, self-fencing, whose state our own explanation
reports (`fence_at`).

The explanation is built by the core (`swimguard.protocol.explain`) from the bounded
history its parts keep; times in it are the agent's clock (`loop.time()`), and its `now`
is the instant it describes, so `now - since` is how long the member has been in its state.
`to_dict()` gives plain JSON types, for an RPC or a log line.
"""

from __future__ import annotations

from swimguard.aio.agent_fence import AgentFence
from swimguard.errors import UsageError
from swimguard.protocol.explain import Explanation
from swimguard.protocol.node import Node
from swimguard.serf.node import SerfNode

__all__ = ["AgentExplain"]


class AgentExplain(AgentFence):
    """Adds `explain()` to the class that owns the node and driver."""

    def explain(self, name: str) -> Explanation | None:
        """Why member `name` (ourselves included) is in its state; None if unknown.

        For a member: state, incarnation and since when; the running (or last) suspicion
        with its accuser, confirmations, timeout, deadline and why the timeout has its value;
        who declared it dead and after which timeout; its last direct, indirect and TCP
        probe results. For ourselves also our health score and the recent changes of it with
        their causes. Needs swimguard's own core (UsageError with a custom `node_factory`).
        """
        node, driver = self._running()
        core = node.node if isinstance(node, SerfNode) else node
        if not isinstance(core, Node):
            raise UsageError("explain() needs swimguard's own core, not a node_factory's")
        if not isinstance(name, str):
            raise ValueError(f"name must be a str, got {name!r}")
        return core.explain(name, now=driver.now())
