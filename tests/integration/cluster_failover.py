#!/usr/bin/env python3
"""cluster_failover.py - a 3-node cluster loses its leader to kill -9: the other two elect a
new leader (leader_ready) within 15 s, ingest goes on (the commit index grows and new samples
of both surviving vantages reach both survivors), and the killed node, restarted on its data
dir, replays its log, catches up and reaches the same applied index and fsm_hash as the others,
and serves the results the survivors took while it was down. Then a follower is frozen with
SIGSTOP: the other two keep committing; after SIGCONT it catches up to the same applied index
and hash."""
import os
import sys
import time

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import lbwcluster as lc  # noqa: E402


def latest(node):
    """{vantage: latest www TLS result timestamp} as node serves them."""
    return lc.vantages_in_targets(node.api("/api/v1/targets"))


def test(c):
    c.start_all()
    nodes = c.bootstrap_nodes()
    old = c.wait_leader()
    c.wait_converged(nodes)
    lc.wait_until("every node has results of node1..3", 30, lambda: all(
        set(latest(n)) == {"node1", "node2", "node3"} for n in nodes))
    lc.ok("3-node cluster up, %s leads" % old.name)

    # ---- kill -9 the leader --------------------------------------------------------------
    survivors = [n for n in nodes if n is not old]
    before = {n.name: n.cluster()["commit_index"] for n in survivors}
    t_kill = time.monotonic()
    old.kill()
    new = c.wait_leader(nodes=survivors, timeout=15)
    took = time.monotonic() - t_kill
    st = new.cluster()
    lc.check(st["term"] > 1 and st["leader"]["id"] == new.id and st["has_quorum"],
             "new leader's status %r" % {k: st[k] for k in ("term", "leader", "has_quorum")})
    lc.ok("kill -9 %s: %s leads (leader_ready) after %.1f s, both survivors agree"
          % (old.name, new.name, took))

    t_new = int(time.time() * 1000)
    lc.wait_until("the commit index grows on both survivors", 20, lambda: all(
        n.cluster()["commit_index"] > before[n.name] + 5 for n in survivors))

    def fresh():
        for n in survivors:
            seen = latest(n)
            if not all(seen.get(v.name, 0) > t_new for v in survivors):
                return None
        return True
    lc.wait_until("both survivors store new results of both surviving vantages", 20, fresh)
    down = {n.name: latest(n).get(old.name, 0) for n in survivors}
    lc.ok("ingest continues: commit index grows, %s and %s see new results of each other"
          % tuple(n.name for n in survivors))
    idx, h = c.wait_converged(survivors)
    lc.ok("survivors converge at applied index %d (%s...)" % (idx, h[:16]))

    # ---- restart it ------------------------------------------------------------------------
    old.start()
    c.wait_leader(nodes=nodes)
    idx, h = c.wait_converged(nodes, timeout=60)
    lc.check(idx > before[survivors[0].name], "converged at %d, before the kill at %d"
             % (idx, before[survivors[0].name]))
    seen = latest(old)
    lc.check(all(seen.get(n.name, 0) > t_new for n in survivors),
             "restarted %s lacks the survivors' results taken while it was down: %r"
             % (old.name, seen))
    lc.wait_until("%s ingests again, seen by all" % old.name, 20, lambda: all(
        latest(n).get(old.name, 0) > down[survivors[0].name] for n in nodes))
    lc.ok("restarted %s catches up: same applied index %d and fsm_hash %s..., has what the "
          "others took meanwhile, ingests again" % (old.name, idx, h[:16]))

    # ---- freeze a follower -----------------------------------------------------------------
    leader = c.wait_leader(nodes=nodes)
    frozen = [n for n in nodes if n is not leader][0]
    others = [n for n in nodes if n is not frozen]
    frozen.pause()
    at = {n.name: n.cluster()["commit_index"] for n in others}
    lc.wait_until("the others keep committing while %s is stopped" % frozen.name, 20,
                  lambda: all(n.cluster()["commit_index"] > at[n.name] + 10 for n in others))
    c.wait_converged(others)
    behind = max(n.cluster()["applied_index"] for n in others)
    time.sleep(2)   # well past the election timeout: the frozen node misses heartbeats
    lc.check(c.wait_leader(nodes=others) is not frozen, "the frozen node leads")
    frozen.resume()
    idx, h = c.wait_converged(nodes, timeout=60)
    lc.check(idx > behind, "converged at %d, not past %d" % (idx, behind))
    c.wait_leader(nodes=nodes)
    lc.ok("SIGSTOP %s: the others committed on; after SIGCONT it caught up to applied index "
          "%d (%s...)" % (frozen.name, idx, h[:16]))


if __name__ == "__main__":
    lc.main(test, nodes=3, spares=0)
