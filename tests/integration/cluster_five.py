#!/usr/bin/env python3
"""cluster_five.py - a 5-node cluster survives losing two nodes to kill -9 (the leader and a
follower): the three left elect a leader (leader_ready) within 15 s, keep committing and keep
ingesting every surviving vantage; both killed nodes restart on their data dirs and all five
converge on one applied index and fsm_hash."""
import os
import sys
import time

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import lbwcluster as lc  # noqa: E402


def latest(node):
    return lc.vantages_in_targets(node.api("/api/v1/targets"))


def test(c):
    c.start_all()
    nodes = c.bootstrap_nodes()
    leader = c.wait_leader(timeout=30)
    names = {n.name for n in nodes}
    lc.wait_until("every node has results of all 5 vantages", 45,
                  lambda: all(set(latest(n)) == names for n in nodes))
    c.wait_converged(nodes)
    lc.ok("5 nodes up, %s leads, every node serves all 5 vantages, replicas converge"
          % leader.name)

    victims = [leader, [n for n in nodes if n is not leader][0]]
    left = [n for n in nodes if n not in victims]
    at = {n.name: n.cluster()["commit_index"] for n in left}
    t0 = time.monotonic()
    for v in victims:
        v.kill()
    new = c.wait_leader(nodes=left, timeout=15)
    lc.ok("kill -9 %s and %s: %s leads after %.1f s, the 3 left agree"
          % (victims[0].name, victims[1].name, new.name, time.monotonic() - t0))

    t_ms = int(time.time() * 1000)
    lc.wait_until("the 3 left keep committing", 20, lambda: all(
        n.cluster()["commit_index"] > at[n.name] + 10 for n in left))
    lc.wait_until("the 3 left store new results of each other", 20, lambda: all(
        all(latest(n).get(v.name, 0) > t_ms for v in left) for n in left))
    st = new.cluster()
    lc.check(st["has_quorum"] and len(st["members"]) == 5,
             "leader status after 2 kills: quorum %r, %d members" % (st["has_quorum"],
                                                                    len(st["members"])))
    lc.wait_until("the leader sees the killed nodes as unreachable", 15, lambda: sorted(
        m["name"] for m in new.cluster()["members"] if not m["reachable"]) ==
        sorted(v.name for v in victims))
    idx, h = c.wait_converged(left)
    lc.ok("with 2 of 5 down: commits and ingest continue, quorum held, the leader reports "
          "%s unreachable; the 3 converge at %d (%s...)"
          % (", ".join(sorted(v.name for v in victims)), idx, h[:16]))

    for v in victims:
        v.start(wait=False)
    for v in victims:
        lc.wait_until("%s serves its web port" % v.name, 30, v.web_up)
    c.wait_leader(nodes=nodes, timeout=30)
    idx2, h2 = c.wait_converged(nodes, timeout=90)
    lc.check(idx2 > idx, "converged at %d, not past %d" % (idx2, idx))
    lc.wait_until("every node has new results of the restarted nodes", 30, lambda: all(
        all(latest(n).get(v.name, 0) > t_ms for v in victims) for n in nodes))
    lc.ok("both restarted; all 5 converge at applied index %d (%s...) and ingest every vantage"
          % (idx2, h2[:16]))


if __name__ == "__main__":
    lc.main(test, nodes=5, spares=0)
