#!/usr/bin/env python3
"""cluster_tamper.py - crafted batches handed to the leader of a 3-node cluster over the
side channel (tests/tools/inject_batch). The injector uses node3's certificate - a member
whose key fell into the wrong hands - while node3 itself is stopped:
  tamper           payload byte flipped after signing     -> refused as bad_signature
  foreign-vantage  a sample with vantage="node2"          -> refused as foreign_vantage
  forged-origin    claims to be node2, signed by node3    -> refused as forged
  untrusted        signed by a certificate of another CA  -> refused as untrusted
  replay           the same good batch twice              -> the second refused as replay
  good             a properly signed batch                -> stored on every node
Every node counts each refusal once under its reason (/api/v1/cluster batches.rejected and
/metrics lbwatch_fsm_rejected_total) and under no other; a refused batch's metric is in no
node's store; the replicas still converge on one fsm_hash; node2's own batches are still
accepted after the forgery in its name, and node3's after it restarts.
A node that is not a member ("injector", id 50, a valid certificate of the cluster CA) is not
even proposed: its good batch reaches no store and the leader counts it in submits_refused."""
import os
import sys
import time

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import lbwcluster as lc  # noqa: E402

REASON = {"tamper": "bad_signature", "foreign-vantage": "foreign_vantage",
          "forged-origin": "forged", "untrusted": "untrusted", "replay": "replay"}


def rejected(nodes):
    return {n.name: n.cluster()["batches"]["rejected"] for n in nodes}


def stored_series(node, metric):
    """Series keys of metric in node's store (via /api/v1/series over the last hour)."""
    return set(lc.series_points(node, metric, since="-1h"))


def test(c):
    inj_cert, inj_key = c.issue("injector", 50)
    other = os.path.join(c.dir, "other-pki")
    lc.run([lc.LBWATCH, "pki", "init", "--dir", other])
    rogue_cert, rogue_key = c.issue("rogue", 51, pki=other)
    inject = lc.tool("inject_batch")

    c.start_all()
    everyone = c.bootstrap_nodes()
    c.wait_leader()
    lc.wait_until("every node has results of node1..3", 45, lambda: all(
        set(lc.vantages_in_targets(n.api("/api/v1/targets"))) == {"node1", "node2", "node3"}
        for n in everyone))
    lc.ok("3-node cluster up with a leader and every vantage's results")

    # a member's key in the wrong hands: node3's, while node3 is down (still a member)
    node3 = everyone[2]
    node3.stop()
    nodes = everyone[:2]
    c.wait_leader()
    m3_cert, m3_key = "%s/node3.crt" % c.pki, "%s/node3.key" % c.pki

    def run_tool(mode, metric, extra=(), cert=m3_cert, key=m3_key):
        leader = c.wait_leader()
        args = [inject, "--connect", leader.raft, "--server-id", str(leader.id),
                "--ca", "%s/ca.crt" % c.pki, "--cert", cert, "--key", key,
                "--mode", mode, "--metric", metric] + list(extra)
        return lc.run(args, timeout=30).stdout

    # the tool itself refuses bad usage and a server that is not the node it expects
    p = lc.run([inject, "--help"])
    lc.check("--mode" in p.stdout, "inject_batch --help prints no usage")
    p = lc.run([inject, "--mode", "nonsense"], check_rc=False)
    lc.check(p.returncode == 2, "inject_batch with bad usage exited %d" % p.returncode)
    leader = c.wait_leader()
    wrong = [n for n in nodes if n is not leader][0]
    p = lc.run([inject, "--connect", leader.raft, "--server-id", str(wrong.id), "--ca",
                "%s/ca.crt" % c.pki, "--cert", inj_cert, "--key", inj_key], check_rc=False)
    lc.check(p.returncode == 1 and "not the expected node" in p.stderr,
             "inject_batch accepted %s as node %d: rc %d %s" % (leader.name, wrong.id,
                                                                 p.returncode, p.stderr))
    lc.ok("inject_batch: --help, bad usage (exit 2), wrong server identity (exit 1)")

    extra = {"foreign-vantage": ["--vantage", "node2"],
             "forged-origin": ["--as-id", "2", "--as-name", "node2"],
             "untrusted": ["--batch-cert", rogue_cert, "--batch-key", rogue_key]}
    for mode in ("tamper", "foreign-vantage", "forged-origin", "untrusted", "replay"):
        reason = REASON[mode]
        metric = "lbwatch_injected_" + mode.replace("-", "_")
        before = rejected(nodes)
        out = run_tool(mode, metric, extra.get(mode, ()))
        lc.note(out.strip().splitlines()[0])

        def counted():
            now = rejected(nodes)
            for n in nodes:
                for r, v in now[n.name].items():
                    want = before[n.name][r] + (1 if r == reason else 0)
                    if r == reason and v < want:
                        return None
                    lc.check(v == want, "%s: after a %s batch rejected[%s] is %d, was %d"
                             % (n.name, mode, r, v, before[n.name][r]))
            return now
        lc.wait_until("every node counts the %s batch as %s" % (mode, reason), 20, counted)
        for n in nodes:
            m = n.metrics()
            key = 'lbwatch_fsm_rejected_total{reason="%s",vantage="%s"}' % (reason, n.name)
            lc.check(m.get(key) == before[n.name][reason] + 1,
                     "%s /metrics %s = %r" % (n.name, key, m.get(key)))
            keys = stored_series(n, metric)
            if mode == "replay":
                # the first copy is a good batch: stored once; the replay added nothing
                lc.check(len(keys) == 1, "%s stores %r for the replayed batch" % (n.name, keys))
                pts = lc.series_points(n, metric, since="-1h")
                lc.check([len(v) for v in pts.values()] == [1],
                         "%s stores %r for the replayed batch" % (n.name, pts))
            else:
                lc.check(not keys, "%s stored the refused %s batch: %r" % (n.name, mode, keys))
                lc.check(not any(k.startswith(metric + "{") for k in m),
                         "%s /metrics shows the refused %s batch" % (n.name, mode))
        lc.ok("%s: refused as %s exactly once on every node, %s" %
              (mode, reason, "stored once (the first copy)" if mode == "replay"
               else "in no node's store or /metrics"))

    metric = "lbwatch_injected_good"
    run_tool("good", metric, ["--value", "7"])

    def stored_everywhere():
        for n in nodes:
            pts = lc.series_points(n, metric, since="-1h")
            key = '%s{target="inject",vantage="node3"}' % metric
            if list(pts) != [key] or [p[1] for p in pts[key]] != [7]:
                return None
        return True
    lc.wait_until("the good injected batch is stored on every node", 20, stored_everywhere)
    lc.ok("a good batch through the same path is stored on every node")

    # a valid certificate of the cluster CA, but not a member: never proposed
    leader = c.wait_leader()
    before = rejected(nodes)
    refused_before = leader.cluster()["submits_refused"]
    metric = "lbwatch_injected_nonmember"
    run_tool("good", metric, ["--value", "9"], cert=inj_cert, key=inj_key)
    lc.wait_until("the leader counts the non-member's entry", 20,
                  lambda: leader.cluster()["submits_refused"] > refused_before or None)
    time.sleep(1)
    for n in nodes:
        lc.check(not stored_series(n, metric), "%s stored a non-member's batch" % n.name)
    lc.check(rejected(nodes) == before, "a non-member's batch reached the log")
    m = leader.metrics()
    key = 'lbwatch_cluster_submits_refused_total{vantage="%s"}' % leader.name
    lc.check(m.get(key, 0) >= 1, "%s /metrics %s = %r" % (leader.name, key, m.get(key)))
    lc.ok("a non-member with a valid certificate is not proposed: stored nowhere, counted")

    node3.start()
    nodes = everyone

    # node2's own batches still go through after the forgery in its name, and node3's after
    # its key was used behind its back
    t0 = int(time.time() * 1000)
    for who in ("node2", "node3"):
        lc.wait_until("every node stores new results of " + who, 30, lambda: all(
            lc.vantages_in_targets(n.api("/api/v1/targets")).get(who, 0) > t0 for n in nodes))
    idx, h = c.wait_converged(nodes)
    lc.ok("node2 and the restarted node3 still ingest; replicas converge at applied index %d, "
          "fsm_hash %s..." % (idx, h[:16]))


if __name__ == "__main__":
    lc.main(test, nodes=3, spares=0)
