#!/usr/bin/env python3
"""loadgen.py - the bench: load generator and the plain-tcp baseline transport, on real nodes.

Over mutual TLS, 3 nodes with `bench: {series: 40, samples_per_second: 2000}`:
  - only the ready leader generates (bench.active, bench.samples); followers generate nothing
    and apply the leader's synthetic samples (vantage = the leader's name, in every store);
  - a follower killed does not hold the leader back (its replication lag stops counting);
  - after the leader is stopped, the new ready leader generates, and the old one, restarted,
    is a follower that generates nothing.
Then 3 nodes with `cluster.transport: plain-tcp`: each logs the warning, reports the
transport, and the followers apply the leader's synthetic samples.
Logs are checked for sanitizer reports. Every process is killed and the temp dir removed.
"""

import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

LBWATCH = os.environ.get("LBWATCH", os.path.join(os.getcwd(), "build/asan/lbwatch"))
SANITIZER_RE = re.compile(r"AddressSanitizer|LeakSanitizer|runtime error:")
procs = []


def fail(msg):
    print("FAIL: %s" % msg, file=sys.stderr)
    sys.exit(1)


def ok(msg):
    print("ok - %s" % msg)
    sys.stdout.flush()


def die_with_parent():
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_until(what, timeout, fn):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    fail("timed out after %d s waiting for %s" % (timeout, what))


class Node:
    def __init__(self, d, i, pki):
        self.d, self.id, self.name, self.pki = d, i, "node%d" % i, pki
        self.raft_port, self.web_port = free_ports(2)
        self.url = "http://127.0.0.1:%d" % self.web_port
        self.log = os.path.join(d, self.name + ".log")
        self.config = os.path.join(d, self.name + ".yaml")
        self.p = None

    def write_config(self, nodes, transport):
        lines = ["node: {name: %s, id: %d, data_dir: '%s/%s'}" % (self.name, self.id, self.d,
                                                                   self.name),
                 "web: {listen: '127.0.0.1:%d'}" % self.web_port,
                 "tls: {ca: '%s/ca.crt', cert: '%s/%s.crt', key: '%s/%s.key'}"
                 % (self.pki, self.pki, self.name, self.pki, self.name),
                 "cluster:", "  transport: %s" % transport, "  peers:"]
        lines += ["    - {id: %d, name: %s, raft: '127.0.0.1:%d', web: '%s'}"
                  % (n.id, n.name, n.raft_port, n.url) for n in nodes]
        lines += ["bench: {series: 40, samples_per_second: 2000}"]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        log = open(self.log, "ab")
        self.p = subprocess.Popen([LBWATCH, "node", "-c", self.config], stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=subprocess.STDOUT,
                                  preexec_fn=die_with_parent)
        log.close()
        procs.append(self.p)

    def stop(self):
        self.p.terminate()
        try:
            rc = self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            fail("%s did not stop on SIGTERM" % self.name)
        if rc != 0:
            fail("%s exited %d on SIGTERM:\n%s" % (self.name, rc, self.tail()))

    def api(self, path):
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as r:
                return json.load(r)
        except (OSError, ValueError):
            return None

    def tail(self):
        with open(self.log, errors="replace") as f:
            return "".join(f.readlines()[-40:])


def ready_leader(nodes):
    for n in nodes:
        s = n.api("/api/v1/cluster")
        if s and s.get("leader_ready"):
            return n
    return None


def synthetic_vantages(node):
    """The vantage labels of the synthetic series in node's store."""
    doc = node.api("/api/v1/series?name=lbwatch_synthetic&target=bench&from=-1h") or {}
    found = set()
    for s in doc.get("series", []):
        m = re.search(r'vantage="([^"]*)"', s["key"])
        if m:
            found.add(m.group(1))
    return found


def check_vantages(nodes, names):
    for n in nodes:
        got = wait_until("%s's synthetic series" % n.name, 30, lambda: synthetic_vantages(n))
        if got != set(names):
            fail("%s stores synthetic series of %s, expected %s" % (n.name, sorted(got),
                                                                      sorted(names)))


def check_roles(nodes, leader):
    """The leader generates, the others do not, and every node applies the leader's samples."""
    def generating():
        s = leader.api("/api/v1/cluster")
        return s and s["bench"]["active"] and s["bench"]["samples"] > 2000
    wait_until("%s to generate samples" % leader.name, 30, generating)
    for n in nodes:
        if n is leader:
            continue
        s = n.api("/api/v1/cluster")
        if s["bench"]["active"] or s["bench"]["samples"] != 0:
            fail("follower %s generated samples: %r" % (n.name, s["bench"]))
    base = {n.name: n.api("/api/v1/cluster")["batches"]["samples"] for n in nodes}
    wait_until("every node to apply the leader's samples", 30, lambda: all(
        n.api("/api/v1/cluster")["batches"]["samples"] > base[n.name] + 1000 for n in nodes))


def mtls_cluster(d, pki):
    nodes = [Node(d, i, pki) for i in (1, 2, 3)]
    for n in nodes:
        n.write_config(nodes, "mutual-tls")
        n.start()
    leader = wait_until("a ready leader", 60, lambda: ready_leader(nodes))
    check_roles(nodes, leader)
    check_vantages(nodes, [leader.name])
    ok("mTLS: only the ready leader (%s) generates; every node stores its samples"
       % leader.name)
    for n in nodes:
        if n.api("/api/v1/cluster")["transport"] != "mutual-tls":
            fail("%s does not report transport mutual-tls" % n.name)

    dead = [n for n in nodes if n is not leader][0]
    dead.p.kill()
    dead.p.wait()
    time.sleep(4)
    s0 = leader.api("/api/v1/cluster")
    time.sleep(1)
    s1 = leader.api("/api/v1/cluster")
    if s1["replication_lag"] > 4 or s1["bench"]["samples"] < s0["bench"]["samples"] + 1000:
        fail("with %s dead, %s is held back: %r then %r" % (dead.name, leader.name, s0, s1))
    dead.start()
    wait_until("%s to catch up" % dead.name, 30,
               lambda: (dead.api("/api/v1/cluster") or {}).get("applied_index", 0) >=
               s1["commit_index"])
    ok("a dead follower does not hold the leader's load back (replication lag %d)"
       % s1["replication_lag"])

    leader.stop()
    rest = [n for n in nodes if n is not leader]
    new = wait_until("a new ready leader", 60, lambda: ready_leader(rest))
    leader.start()
    wait_until("%s back" % leader.name, 30, lambda: leader.api("/api/v1/cluster"))
    check_roles(nodes, new)
    s = leader.api("/api/v1/cluster")
    if s["state"] == "leader" or s["bench"]["samples"] != 0:
        fail("restarted %s generates: %r" % (leader.name, s))
    check_vantages(nodes, [leader.name, new.name])
    ok("after the leader stopped, the new leader (%s) generates and the restarted %s does not"
       % (new.name, leader.name))
    for n in nodes:
        n.stop()
    return nodes


def plain_cluster(d, pki):
    sub = os.path.join(d, "plain")
    os.mkdir(sub)
    nodes = [Node(sub, i, pki) for i in (1, 2, 3)]
    for n in nodes:
        n.write_config(nodes, "plain-tcp")
        n.start()
    leader = wait_until("a ready leader over plain TCP", 60, lambda: ready_leader(nodes))
    check_roles(nodes, leader)
    for n in nodes:
        if n.api("/api/v1/cluster")["transport"] != "plain-tcp":
            fail("%s does not report transport plain-tcp" % n.name)
    for n in nodes:
        n.stop()
        if "NOT authenticated and NOT encrypted" not in open(n.log).read():
            fail("%s did not warn about plain-tcp" % n.name)
    ok("plain-tcp: warned at start, reported, the leader's samples applied everywhere")
    return nodes


def main():
    d = tempfile.mkdtemp(prefix="lbw-it-loadgen.", dir=os.environ.get("TMPDIR"))
    nodes = []
    try:
        pki = os.path.join(d, "pki")
        subprocess.run([LBWATCH, "pki", "init", "--dir", pki], check=True, capture_output=True)
        for i in (1, 2, 3):
            subprocess.run([LBWATCH, "pki", "issue", "--dir", pki, "--name", "node%d" % i,
                            "--id", str(i), "--ip", "127.0.0.1"], check=True,
                           capture_output=True)
        nodes = mtls_cluster(d, pki)
        nodes += plain_cluster(d, pki)
        for n in nodes:
            if SANITIZER_RE.search(open(n.log, errors="replace").read()):
                fail("sanitizer report in %s:\n%s" % (n.log, n.tail()))
        ok("no sanitizer reports")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if sys.exc_info()[0] is not None or os.environ.get("KEEP"):
            for n in nodes:
                print("--- %s\n%s" % (n.log, n.tail()), file=sys.stderr)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
