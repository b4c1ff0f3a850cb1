#!/usr/bin/env python3
"""cluster_refusals.py - peers the cluster must refuse, each counted by reason on the node
that refused it, in /metrics lbwatch_transport_refused_total{reason=...} and in
/api/v1/cluster "refused":
  no_certificate  `openssl s_client` without a certificate against node1's raft port
  untrusted       a node certificate (id 1, node1) issued by another CA
  not_a_node      an agent certificate of the cluster CA
  id_mismatch     node3 stopped and `openssl s_server` with node2's (valid) certificate on
                  node3's raft address: nodes 1 and 2, dialling node 3, refuse it
None of them disturbs the cluster: the leader stays, entries keep committing, and node3,
restarted, catches up to the same fsm_hash."""
import os
import sys

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import lbwcluster as lc  # noqa: E402


def refused(node):
    """(from /api/v1/cluster, from /metrics) refusal counts by reason."""
    api = node.cluster()["refused"]
    m = node.metrics()
    prom = {r: m.get('lbwatch_transport_refused_total{reason="%s",vantage="%s"}'
                     % (r, node.name)) for r in api}
    return api, prom


def s_client(c, node, cert=None, key=None):
    """One TLS client connection to node's raft port; returns its output."""
    args = ["openssl", "s_client", "-connect", node.raft, "-CAfile", "%s/ca.crt" % c.pki]
    if cert:
        args += ["-cert", cert, "-key", key]
    p = lc.run(args, timeout=20, check_rc=False)
    return p.stdout + p.stderr


def test(c):
    other = os.path.join(c.dir, "other-pki")
    lc.run([lc.LBWATCH, "pki", "init", "--dir", other])
    rogue = c.issue("node1", 1, pki=other)
    agent = c.issue("edge1", 0, agent=True)

    c.start_all()
    n1, n2, n3 = c.bootstrap_nodes()
    c.wait_leader()
    lc.ok("3-node cluster up")

    def expect(node, before, reason, what):
        """Waits until node counted `reason` once more than in before, in both places, and
        nothing else."""
        def counted():
            api, prom = refused(node)
            lc.check(api == prom, "%s: /api/v1/cluster refused %r but /metrics %r"
                     % (node.name, api, prom))
            others = {r: v - before[r] for r, v in api.items() if r != reason and v != before[r]}
            lc.check(not others, "%s: %s also counted as %r" % (node.name, what, others))
            return api[reason] > before[reason] and api
        return lc.wait_until("%s counts %s as %s" % (node.name, what, reason), 15, counted)

    before = refused(n1)[0]
    out = s_client(c, n1)
    expect(n1, before, "no_certificate", "a client without a certificate")
    lc.ok("no certificate: refused and counted as no_certificate (s_client: %s)"
          % (out.strip().splitlines() or ["?"])[-1][:60])

    before = refused(n1)[0]
    s_client(c, n1, *rogue)
    expect(n1, before, "untrusted", "a certificate of another CA")
    lc.ok("another CA's certificate (claiming node1): refused and counted as untrusted")

    before = refused(n1)[0]
    s_client(c, n1, *agent)
    expect(n1, before, "not_a_node", "an agent certificate")
    lc.ok("an agent certificate: refused and counted as not_a_node")

    for n in (n2, n3):
        api, _ = refused(n)
        lc.check(not any(api.values()), "%s counted refusals it did not make: %r"
                 % (n.name, api))

    # id_mismatch: what answers on node3's raft address is node2's certificate
    n3.stop()
    base = {n.name: refused(n)[0]["id_mismatch"] for n in (n1, n2)}
    c.wait_leader(nodes=[n1, n2])
    impostor = c.spawn("impostor", ["openssl", "s_server", "-quiet", "-accept", n3.raft,
                                    "-cert", "%s/node2.crt" % c.pki,
                                    "-key", "%s/node2.key" % c.pki])
    lc.wait_until("the impostor listens on node3's raft address", 10,
                  lambda: lc.port_open(n3.raft_port))
    for n in (n1, n2):
        lc.wait_until("%s refuses the impostor as id_mismatch" % n.name, 20,
                      lambda n=n: refused(n)[0]["id_mismatch"] > base[n.name])
        api, prom = refused(n)
        lc.check(api == prom, "%s: /api/v1/cluster refused %r but /metrics %r"
                 % (n.name, api, prom))

    def node3_unreachable():
        for n in (n1, n2):
            m3 = [m for m in n.cluster()["members"] if m["id"] == 3][0]
            lc.check(m3["name"] == "node3", "%s names member 3 %r" % (n.name, m3["name"]))
            if m3["reachable"] is not False:
                return None
        return True
    # "reachable" means heard from within 3 election timeouts: the impostor must not count
    lc.wait_until("nodes 1 and 2 see node3 unreachable while the impostor answers", 15,
                  node3_unreachable)
    lc.ok("node2's certificate on node3's address: nodes 1 and 2 refuse it as id_mismatch "
          "(%d, %d times) and node3 stays unreachable"
          % tuple(refused(n)[0]["id_mismatch"] - base[n.name] for n in (n1, n2)))

    # the cluster carried on through all of it
    leader = c.wait_leader(nodes=[n1, n2])
    ci = leader.cluster()["commit_index"]
    lc.wait_until("commits continue", 15, lambda: leader.cluster()["commit_index"] > ci + 3)
    impostor.kill()
    n3.start()
    c.wait_leader()
    idx, h = c.wait_converged([n1, n2, n3])
    lc.ok("commits continued; node3 restarted and converged at applied index %d (%s...)"
          % (idx, h[:16]))


if __name__ == "__main__":
    lc.main(test, nodes=3, spares=0)
