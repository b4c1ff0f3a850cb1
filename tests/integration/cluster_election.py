#!/usr/bin/env python3
"""cluster_election.py - three real nodes over mutual TLS on loopback elect one leader and
agree on it; every node serves every vantage's samples (node1..3) from its own replica in
/api/v1/targets and /metrics; /api/v1/cluster carries the documented fields; `lbwatch ctl
status` shows the cluster; the replicas converge on one applied index and fsm_hash."""
import os
import sys

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import lbwcluster as lc  # noqa: E402

CLUSTER_FIELDS = {"clustered", "id", "name", "state", "term", "leader", "leader_ready",
                  "has_quorum", "commit_index", "applied_index", "raft_applied_index",
                  "fsm_hash", "members", "batches", "refused", "pending"}
MEMBER_FIELDS = {"id", "name", "role", "leader", "self", "reachable", "last_contact", "raft",
                 "web"}
REJECT_REASONS = {"malformed", "untrusted", "forged", "bad_signature", "replay",
                  "foreign_vantage"}
REFUSAL_REASONS = {"no_certificate", "untrusted", "expired", "not_a_node", "id_mismatch",
                   "handshake", "preamble", "not_an_agent"}


def test(c):
    c.start_all()
    nodes = c.bootstrap_nodes()
    leader = c.wait_leader(timeout=30)
    lc.ok("3 nodes elected %s (leader_ready) and all agree on it" % leader.name)

    names = {n.name for n in nodes}

    def every_vantage_everywhere():
        for n in nodes:
            got = lc.vantages_in_targets(n.api("/api/v1/targets"))
            if set(got) != names:
                return None
            m = n.metrics()
            for v in names:
                key = 'probe_success{probe="tls",target="www",vantage="%s"}' % v
                if m.get(key) != 1.0:
                    return None
                key = 'probe_success{probe="tls",target="closed",vantage="%s"}' % v
                if m.get(key) != 0.0:
                    return None
        return True
    lc.wait_until("every node serves www (up) and closed (down) results of node1..3", 45,
                  every_vantage_everywhere)
    lc.ok("every node's /api/v1/targets and /metrics serve the results of all 3 vantages")

    # the same samples, not just the same latest values: node1's view of node3's series
    # matches node3's own for the points both have
    key = 'probe_success{probe="tls",target="www",vantage="node3"}'

    def shared_points():
        a = lc.series_points(nodes[0], "probe_success", "www").get(key, [])
        b = lc.series_points(nodes[2], "probe_success", "www").get(key, [])
        common = {p[0] for p in a} & {p[0] for p in b}
        if len(common) < 3:
            return None
        lc.check([p for p in a if p[0] in common] == [p for p in b if p[0] in common],
                 "node1 and node3 disagree on the points of %s" % key)
        return len(common)
    common = lc.wait_until("node1 and node3 share 3 points of node3's www series", 30,
                           shared_points)
    lc.ok("node1 and node3 store identical points of node3's series (%d in common)" % common)

    for n in nodes:
        doc = n.cluster()
        missing = CLUSTER_FIELDS - set(doc)
        lc.check(not missing, "%s /api/v1/cluster lacks %s" % (n.name, sorted(missing)))
        lc.check(doc["clustered"] is True and doc["id"] == n.id and doc["name"] == n.name,
                 "%s: clustered/id/name wrong: %r" % (n.name, {k: doc[k] for k in
                                                              ("clustered", "id", "name")}))
        lc.check(doc["state"] == ("leader" if n is leader else "follower"),
                 "%s state %s" % (n.name, doc["state"]))
        lc.check(doc["leader"] == {"id": leader.id, "name": leader.name, "web": leader.web},
                 "%s leader field %r" % (n.name, doc["leader"]))
        lc.check(doc["leader_ready"] == (n is leader), "%s leader_ready" % n.name)
        lc.check(doc["has_quorum"] is True, "%s has no quorum" % n.name)
        lc.check(doc["term"] >= 1 and doc["commit_index"] >= doc["raft_applied_index"] > 0,
                 "%s term/commit/applied %r" % (n.name, (doc["term"], doc["commit_index"],
                                                         doc["raft_applied_index"])))
        lc.check(len(doc["fsm_hash"]) == 64 and int(doc["fsm_hash"], 16) != 0,
                 "%s fsm_hash %r" % (n.name, doc["fsm_hash"]))
        lc.check(len(doc["members"]) == 3, "%s lists %d members" % (n.name, len(doc["members"])))
        for m in doc["members"]:
            missing = MEMBER_FIELDS - set(m)
            lc.check(not missing, "%s member entry lacks %s" % (n.name, sorted(missing)))
            peer = c.node(m["id"])
            lc.check((m["name"], m["role"], m["raft"], m["web"]) ==
                     (peer.name, "voter", peer.raft, peer.web),
                     "%s member %r" % (n.name, m))
            lc.check(m["leader"] == (peer is leader) and m["self"] == (peer is n),
                     "%s member %s leader/self flags" % (n.name, peer.name))
            lc.check(m["reachable"] is True and isinstance(m["last_contact"], int),
                     "%s says %s is unreachable: %r" % (n.name, peer.name, m))
        lc.check(doc["batches"]["accepted"] > 0 and doc["batches"]["samples"] > 0,
                 "%s applied no batches: %r" % (n.name, doc["batches"]))
        lc.check(set(doc["batches"]["rejected"]) == REJECT_REASONS and
                 not any(doc["batches"]["rejected"].values()),
                 "%s rejected batches: %r" % (n.name, doc["batches"]["rejected"]))
        lc.check(set(doc["refused"]) == REFUSAL_REASONS and not any(doc["refused"].values()),
                 "%s refused connections: %r" % (n.name, doc["refused"]))
        m = n.metrics()
        lc.check(m.get('lbwatch_raft_state{state="%s",vantage="%s"}' % (doc["state"], n.name))
                 == 1, "%s /metrics lbwatch_raft_state" % n.name)
        lc.check(m.get('lbwatch_raft_leader_ready{vantage="%s"}' % n.name) ==
                 (1 if n is leader else 0), "%s /metrics leader_ready" % n.name)
    lc.ok("/api/v1/cluster has every documented field with consistent values on all nodes")

    out = nodes[1].ctl("status").stdout
    lc.check(("leader %s" % leader.name) in out, "ctl status does not name the leader:\n" + out)
    for n in nodes:
        lc.check(any(line.split()[:3] == [str(n.id), n.name, "voter"]
                     for line in out.splitlines() if line.strip()),
                 "ctl status lacks a member line for %s:\n%s" % (n.name, out))
    lc.check("WARNING" not in out, "ctl status warns:\n" + out)
    lc.ok("lbwatch ctl status names the leader and lists the 3 voters")

    idx, h = c.wait_converged(nodes, timeout=60)
    lc.ok("all 3 replicas report applied index %d with fsm_hash %s..." % (idx, h[:16]))


if __name__ == "__main__":
    lc.main(test, nodes=3, spares=0)
