"""The simulator from Python: 20 members on virtual time, one crash, checked invariants."""

from swimguard.sim import attach_all, check_converged
from swimguard.sim.scenarios import start_cluster

cluster = start_cluster(20, seed=7, settle=30, trace=True)  # m0..m19, LAN, settled
attach_all(cluster)  # invariant checkers: raise InvariantViolation with the seed to replay
cluster.crash("m3")
cluster.run_for(30)  # virtual seconds: runs in a fraction of a real second
view = cluster.view("m0")  # what m0 believes about everyone
print("m0 sees m3 as", view["m3"].state.name, "at", f"{cluster.now:.0f} virtual s")
check_converged(cluster)  # every live member agrees on every other
print("converged; trace digest", cluster.trace_digest()[:12])  # same seed, same digest
