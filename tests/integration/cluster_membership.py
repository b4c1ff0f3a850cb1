#!/usr/bin/env python3
"""cluster_membership.py - membership changes with `lbwatch ctl` on a 3-node cluster that
snapshots often (snapshot_threshold 32, trailing 16):
  - writes need the token: remove-node with a wrong token is refused (exit 1) and changes
    nothing;
  - `ctl remove-node` takes a follower out (every remaining node lists 2 voters) and it
    stops cleanly;
  - once every node's log starts past index 1 (a snapshot was taken and the log compacted),
    a brand-new node (id 4, join: true, empty data dir) is started and `ctl add-node` makes
    it a voter: it can only catch up by installing a snapshot (one shows up in its raft dir,
    though it never takes one itself), reaches the others' applied index and fsm_hash, and
    serves the other vantages' samples, including results taken before it joined;
  - node4 and an original node restart (snapshot restore plus log replay) and converge."""
import os
import re
import sys
import time

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import lbwcluster as lc  # noqa: E402

CLOSED_SEGMENT = re.compile(r"^(\d{16})-(\d{16})$")


def raft_files(node):
    try:
        return os.listdir(os.path.join(node.data_dir, "raft"))
    except OSError:
        return []


def log_compacted(node):
    """The node took a snapshot and no longer keeps the log from index 1."""
    files = raft_files(node)
    firsts = [int(m.group(1)) for m in map(CLOSED_SEGMENT.match, files) if m]
    return any(f.startswith("snapshot-") for f in files) and firsts and min(firsts) > 1


def members(node):
    return sorted((m["id"], m["role"]) for m in node.cluster()["members"])


def latest(node):
    return lc.vantages_in_targets(node.api("/api/v1/targets"))


def test(c):
    n1, n2, n3, n4 = (c.node(i) for i in (1, 2, 3, 4))
    n4.snapshot_threshold = n4.snapshot_trailing = None  # the newcomer never snapshots itself
    c.start_all()
    nodes = [n1, n2, n3]
    leader = c.wait_leader()
    lc.ok("3-node cluster up (snapshot_threshold 32), %s leads" % leader.name)

    # ---- remove a follower -----------------------------------------------------------------
    gone = [n for n in nodes if n is not leader][-1]
    stay = [n for n in nodes if n is not gone]
    bad_token = os.path.join(c.dir, "bad-token")
    with open(bad_token, "w") as f:
        f.write("not-the-token\n")
    p = lc.run([lc.LBWATCH, "ctl", "-u", n1.web, "-t", bad_token, "remove-node", "--id",
                str(gone.id)], check_rc=False)
    lc.check(p.returncode == 1, "remove-node with a wrong token exited %d:\n%s%s"
             % (p.returncode, p.stdout, p.stderr))
    lc.check(members(n1) == [(1, "voter"), (2, "voter"), (3, "voter")],
             "membership changed after a refused write: %r" % members(n1))
    lc.ok("remove-node with a wrong token is refused (exit 1) and changes nothing")

    out = stay[0].ctl("remove-node", "--id", str(gone.id)).stdout
    lc.check("removed" in out, "ctl remove-node said: %r" % out)
    want = sorted((n.id, "voter") for n in stay)
    lc.wait_until("the remaining nodes list only each other", 15,
                  lambda: all(members(n) == want for n in stay))
    gone.stop()
    c.wait_leader(nodes=stay)
    lc.ok("ctl remove-node %s: the others list %s; it stopped cleanly"
          % (gone.name, [n.name for n in stay]))

    # ---- wait for a compacted log, then add a brand-new node ------------------------------
    lc.wait_until("every remaining node snapshotted and compacted its log", 60,
                  lambda: all(log_compacted(n) for n in stay))
    lc.check(not os.path.exists(n4.data_dir), "node4 has a data dir before it starts")
    t_join = int(time.time() * 1000)
    n4.start(join=True)
    st = n4.cluster()
    lc.check(st["state"] != "leader" and not st["leader_ready"],
             "the joining node claims to lead before it was added: %r" % st["state"])
    out = n1.ctl("add-node", "--id", "4", "--raft", n4.raft).stdout
    lc.check("voter" in out, "ctl add-node said: %r" % out)
    everyone = stay + [n4]
    want = sorted((n.id, "voter") for n in everyone)
    lc.wait_until("every node lists node4 as a voter", 30,
                  lambda: all(members(n) == want for n in everyone))
    idx, h = c.wait_converged(everyone, timeout=60)
    lc.ok("ctl add-node 4: node4 is a voter everywhere and converges at applied index %d "
          "(%s...)" % (idx, h[:16]))

    snaps = [f for f in raft_files(n4) if f.startswith("snapshot-")]
    lc.check(snaps, "node4 caught up without installing a snapshot: %r" % raft_files(n4))

    def serves_others():
        seen = latest(n4)
        if not all(seen.get(n.name, 0) > t_join for n in stay):
            return None
        return seen
    seen = lc.wait_until("node4 serves recent results of the other vantages", 30, serves_others)
    early = lc.series_points(n4, "probe_success", "www")
    key = 'probe_success{probe="tls",target="www",vantage="%s"}' % stay[0].name
    lc.check(any(ts < t_join for ts, _ in early.get(key, [])),
             "node4 has none of %s's results from before it joined" % stay[0].name)
    lc.check(gone.name in seen, "node4 lacks the removed node's results (from the snapshot)")
    lc.wait_until("node4's own results reach the others", 30, lambda: all(
        latest(n).get("node4", 0) > t_join for n in stay))
    c.wait_leader(nodes=everyone)
    idx, h = c.wait_converged(everyone, timeout=60)
    lc.ok("node4 installed a snapshot (%s), serves the others' samples from before and after "
          "it joined, its own reach them; converged at %d" % (snaps[0], idx))

    # ---- restarts from a snapshot plus the log after it -----------------------------------
    for n in (n4, stay[0]):
        n.stop()
        n.start()
        c.wait_leader(nodes=everyone)
        idx2, h2 = c.wait_converged(everyone, timeout=60)
        lc.check(idx2 > idx, "converged at %d, not past %d" % (idx2, idx))
        idx = idx2
    lc.check(members(n4) == want, "node4 lists %r after its restart" % members(n4))
    lc.ok("node4 and %s restarted (restore their snapshot, replay the log after it) and "
          "converge at %d (%s...)" % (stay[0].name, idx, h2[:16]))


if __name__ == "__main__":
    lc.main(test, nodes=3, spares=1, snapshot_threshold=32, snapshot_trailing=16)
