"""Why is m4 dead? Ask a member: `explain` on the simulator (the agent's is the same call)."""

import json

from swimguard.sim.scenarios import start_cluster

cluster = start_cluster(5, seed=2, settle=10)  # m0..m4, LAN, settled
cluster.crash("m4")
cluster.run_for(30)
node = cluster.node("m0")
story = node.explain("m4", now=cluster.now)  # Agent.explain("m4") on real sockets
assert story is not None
print(json.dumps(story.to_dict(), indent=1))
me = node.explain("m0", now=cluster.now)  # ourselves: our health and what moved it
assert me is not None
print("m0 health", me.health_score, "of", me.health_max)
for change in me.health_changes:
    print(f"  {change.at:7.3f}s {change.cause.value:13} {change.delta:+d} -> {change.score}")
