"""`AgentMetrics`: the metrics half of `Agent`'s API (a mixin, so agent.py stays small).

`agent.metrics` is a `prometheus_client.CollectorRegistry` of the agent's own: two agents
in one process export separately, and nothing lands in prometheus_client's global
registry unless the application registers our collector there itself. It builds on
`AgentHealth`, whose reports it exports.

prometheus_client is imported on first use, not with the agent: it costs about 3.5 MB
of RSS and 60 ms of start-up, which an agent that never exports should not pay.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from swimguard.aio.agent_health import AgentHealth
from swimguard.aio.driver import DrivenNode, Driver
from swimguard.protocol.outgoing import Address

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from swimguard.aio.metrics import MetricsServer, MetricsView

__all__ = ["AgentMetrics"]


class AgentMetrics(AgentHealth):
    """Adds `metrics` and `serve_metrics()` to the class that owns the node and driver."""

    _node: DrivenNode | None
    _driver: Driver | None

    if TYPE_CHECKING:

        @property
        def drops(self) -> dict[str, int]: ...

    @functools.cached_property
    def metrics(self) -> CollectorRegistry:
        """This agent's Prometheus registry (read at scrape time; empty before `start()`)."""
        from swimguard.aio.metrics import new_registry

        return new_registry(self._metrics_view)

    async def serve_metrics(self, address: Address) -> MetricsServer:
        """Serve `metrics` over HTTP at `(host, port)` on this loop (`GET /metrics`).

        Returns the running server (`server.address`, `await server.close()`); OSError
        naming the address when it cannot be bound. Closing the agent does not close it.
        """
        from swimguard.aio.metrics import MetricsServer

        server = MetricsServer(self.metrics)
        await server.start(address)
        return server

    def _metrics_view(self) -> MetricsView | None:
        from swimguard.aio.metrics import MetricsView

        if self._node is None or self._driver is None:
            return None
        return MetricsView(self._node, self._driver, self.drops, self._health_log.by_reason)
