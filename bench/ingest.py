#!/usr/bin/env python3
"""ingest.py - benchmark: committed samples/s of a 3-node lbwatch cluster on loopback over
mutual TLS, the same run over libraft's plain TCP transport (the baseline), and leader
failover time.

Starts real `lbwatch node` processes ($LBWATCH, the release build) with a fresh PKI made by
`lbwatch pki`, free 127.0.0.1 ports and a fresh temp dir per cluster. Each node has a
`bench:` section (node/loadgen.h): the ready leader generates synthetic samples of SERIES
series as fast as the cluster takes them, through the normal path (batcher, signed batches,
raft, every replica verifies and stores them); followers generate nothing.

  ingest     ROUNDS times, for each transport in turn (cluster.transport: mutual-tls, then
             plain-tcp, so that drifting background load hits both alike): a new cluster,
             WARMUP_S of load, then the samples each node applied (batches.samples of
             /api/v1/cluster: committed AND applied there) over WINDOW_S. The figure is the
             slowest follower's rate (applied on every replica). Prints every run (with the
             nodes' CPU per sample and the largest resident size: libraft keeps the log since
             the last snapshot in memory), the means and mTLS / plain.
  failover   a new mutual-TLS cluster under a steady FAILOVER_RATE samples/s; KILLS times:
             kill -9 the ready leader, poll the survivors' /api/v1/cluster every 10 ms until
             one reports leader_ready (its post-election barrier committed: it accepts writes)
             in a later term, restart the killed node and wait until every node has applied
             what the leader had committed. Prints p50, p99 and max of kill -> leader_ready.

Prints figures, asserts nothing. Every process started here is killed and every temp dir
removed, whatever happens. Total time about 2.5 minutes.

usage: ingest.py [--only ingest|failover] [--window S] [--rounds N] [--kills N]
                 [--no-baseline]
"""

import argparse
import atexit
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

LBWATCH = os.environ.get("LBWATCH", os.path.join(os.getcwd(), "build/lbwatch"))
NODES = 3
SERIES = 5000
WARMUP_S = 8
WINDOW_S = 10
ROUNDS = 2
KILLS = 20
FAILOVER_RATE = 20000
FAILOVER_SERIES = 1000
POLL_S = 0.010
ELECTION_TIMEOUT = "1s"
HEARTBEAT = "100ms"

_clusters = []


def die_with_parent():
    """In the child: SIGKILL when the bench goes away, however it goes."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def wait_until(what, timeout, fn, interval=0.1):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise RuntimeError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


class Node:
    def __init__(self, cluster, i):
        self.c, self.id, self.name = cluster, i, "node%d" % i
        self.raft_port, self.web_port = free_ports(2)
        self.data = os.path.join(cluster.dir, self.name)
        self.config = os.path.join(cluster.dir, self.name + ".yaml")
        self.log = os.path.join(cluster.dir, self.name + ".log")
        self.url = "http://127.0.0.1:%d" % self.web_port
        self.p = None

    def write_config(self):
        c = self.c
        lines = [
            "node: {name: %s, id: %d, data_dir: '%s', log_level: warn}" % (
                self.name, self.id, self.data),
            "web: {listen: '127.0.0.1:%d'}" % self.web_port,
            "tls: {ca: '%s/ca.crt', cert: '%s/%s.crt', key: '%s/%s.key'}" % (
                c.pki, c.pki, self.name, c.pki, self.name),
            "cluster:",
            "  transport: %s" % c.transport,
            "  election_timeout: %s" % ELECTION_TIMEOUT,
            "  heartbeat: %s" % HEARTBEAT,
            "  peers:",
        ]
        for n in c.nodes:
            lines.append("    - {id: %d, name: %s, raft: '127.0.0.1:%d', web: '%s'}"
                         % (n.id, n.name, n.raft_port, n.url))
        lines += ["bench:", "  series: %d" % c.series,
                  "  samples_per_second: %d" % c.rate]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        self.write_config()
        log = open(self.log, "ab")
        self.p = subprocess.Popen([LBWATCH, "node", "-c", self.config], stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=subprocess.STDOUT,
                                  preexec_fn=die_with_parent)
        log.close()

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def kill(self):
        if self.alive():
            self.p.kill()
            self.p.wait()

    def stop(self):
        if self.alive():
            self.p.terminate()
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def status(self, timeout=1.0):
        """/api/v1/cluster, or None if the node does not answer."""
        try:
            with urllib.request.urlopen(self.url + "/api/v1/cluster", timeout=timeout) as r:
                return json.load(r)
        except (OSError, ValueError):
            return None

    def log_tail(self, n=30):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


class Cluster:
    def __init__(self, pki_dir, transport, series, rate):
        self.dir = tempfile.mkdtemp(prefix="lbw-bench-ingest.", dir=os.environ.get("TMPDIR"))
        _clusters.append(self)
        self.pki, self.transport, self.series, self.rate = pki_dir, transport, series, rate
        self.nodes = []
        for i in range(1, NODES + 1):
            self.nodes.append(Node(self, i))

    def start(self):
        for n in self.nodes:
            n.start()

    def statuses(self):
        return [n.status() if n.alive() else None for n in self.nodes]

    def ready_leader(self, timeout=30):
        def find():
            for n, s in zip(self.nodes, self.statuses()):
                if s and s.get("leader_ready"):
                    return n, s
            for n in self.nodes:
                if n.p is not None and not n.alive():
                    raise RuntimeError("%s exited:\n%s" % (n.name, n.log_tail()))
            return None
        return wait_until("a ready leader", timeout, find)

    def close(self):
        for n in self.nodes:
            n.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self in _clusters:
            _clusters.remove(self)


def cleanup():
    for c in list(_clusters):
        for n in c.nodes:
            n.kill()
        shutil.rmtree(c.dir, ignore_errors=True)
    _clusters.clear()


def make_pki(root):
    pki = os.path.join(root, "pki")
    subprocess.run([LBWATCH, "pki", "init", "--dir", pki], check=True, capture_output=True)
    for i in range(1, NODES + 1):
        subprocess.run([LBWATCH, "pki", "issue", "--dir", pki, "--name", "node%d" % i,
                        "--id", str(i), "--ip", "127.0.0.1"], check=True, capture_output=True)
    return pki


def rss_mib(pid):
    """Resident memory of a process in MiB (from /proc)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def cpu_seconds(pid):
    """User + system CPU seconds of a process so far (from /proc)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


# ---- ingest ---------------------------------------------------------------------------------

def fresh_status(node, timeout=5):
    """(time, status) right after the node published a new status (it does every 250 ms):
    polls until its applied sample count changes, so a rate's ends are exact to ~5 ms."""
    first = node.status()
    end = time.monotonic() + timeout
    while first is not None and time.monotonic() < end:
        s = node.status()
        if s is None:
            break
        if s["batches"]["samples"] != first["batches"]["samples"]:
            return time.monotonic(), s
        time.sleep(0.005)
    raise RuntimeError("%s stopped answering or applying:\n%s" % (node.name, node.log_tail()))


def ingest_run(pki, transport, window):
    c = Cluster(pki, transport, SERIES, 0)
    try:
        c.start()
        leader, _ = c.ready_leader()
        time.sleep(WARMUP_S)
        t0, s0 = zip(*[fresh_status(n) for n in c.nodes])
        cpu0, c0 = [cpu_seconds(n.p.pid) for n in c.nodes], time.monotonic()
        time.sleep(window)
        t1, s1 = zip(*[fresh_status(n) for n in c.nodes])
        cpu1, c1 = [cpu_seconds(n.p.pid) for n in c.nodes], time.monotonic()
        rss = max(rss_mib(n.p.pid) for n in c.nodes)
        rates = [(b["batches"]["samples"] - a["batches"]["samples"]) / (y - x)
                 for a, b, x, y in zip(s0, s1, t0, t1)]
        li = c.nodes.index(leader)
        stable = all(b["term"] == s0[li]["term"] for b in s1) and s1[li]["leader_ready"]
        return {
            "transport": transport, "rates": rates, "leader": li,
            "followers": [r for i, r in enumerate(rates) if i != li],
            "generated": (s1[li]["bench"]["samples"] - s0[li]["bench"]["samples"]) /
                         (t1[li] - t0[li]),
            "cpu": sum(b - a for a, b in zip(cpu0, cpu1)) / (c1 - c0),
            "lag": s1[li]["replication_lag"], "pending": s1[li]["pending_bytes"], "rss": rss,
            "stable": stable,
        }
    finally:
        c.close()


def print_ingest(r):
    nodes = "  ".join("%.0f%s" % (x, "*" if i == r["leader"] else "")
                      for i, x in enumerate(r["rates"]))
    print("  %-10s  %9.0f samples/s   (each node, * leader: %s)%s"
          % (r["transport"], min(r["followers"]), nodes,
             "" if r["stable"] else "   LEADER CHANGED during the window"))
    print("              generated %.0f/s; CPU %.2f of 2 cores = %.2f CPU-us per sample (3 "
          "nodes);\n              at the end %.1f MiB waiting to apply, slowest follower %d "
          "entries behind, largest node %.0f MiB resident"
          % (r["generated"], r["cpu"], r["cpu"] * 1e6 / min(r["followers"]),
             r["pending"] / 1048576.0, r["lag"], r["rss"]))
    sys.stdout.flush()


def ingest(pki, window, rounds, with_plain=True):
    order = ["mutual-tls", "plain-tcp"] if with_plain else ["mutual-tls"]
    print("ingest: 3 nodes on 127.0.0.1, %d synthetic series, the leader generates as fast as "
          "the cluster takes them;\n        each run a new cluster: %d s warm-up, %d s "
          "measured; %s, %d rounds\n        figure: samples/s committed and applied on every "
          "replica (the slowest follower's rate)"
          % (SERIES, WARMUP_S, window, " then ".join(order), rounds))
    sys.stdout.flush()
    runs = {t: [] for t in order}
    cpu = {t: [] for t in order}
    for _ in range(rounds):
        for t in order:
            r = ingest_run(pki, t, window)
            print_ingest(r)
            runs[t].append(min(r["followers"]))
            cpu[t].append(r["cpu"] * 1e6 / min(r["followers"]))
    mean = {t: sum(v) / len(v) for t, v in runs.items()}
    us = {t: sum(v) / len(v) for t, v in cpu.items()}
    print("  mean over %d rounds: mTLS %.0f samples/s (%.2f CPU-us per sample)"
          % (rounds, mean["mutual-tls"], us["mutual-tls"]), end="")
    if with_plain:
        print(", plain TCP %.0f samples/s (%.2f CPU-us per sample)\n  ratio mTLS / plain TCP: "
              "%.2f (samples/s); mTLS takes %.2fx the CPU per sample"
              % (mean["plain-tcp"], us["plain-tcp"], mean["mutual-tls"] / mean["plain-tcp"],
                 us["mutual-tls"] / us["plain-tcp"]), end="")
    print("\n  (targets: >= 200000 samples/s committed over mTLS, mTLS / plain >= 0.85)")
    sys.stdout.flush()


# ---- failover -------------------------------------------------------------------------------

def wait_new_leader(survivors, old_term, t_kill):
    """Polls the survivors every POLL_S until one is the ready leader in a later term."""
    while True:
        for n in survivors:
            s = n.status(timeout=0.5)
            if s and s.get("leader_ready") and s["term"] > old_term:
                return time.monotonic() - t_kill, n
        if time.monotonic() - t_kill > 60:
            raise RuntimeError("no ready leader 60 s after the kill")
        time.sleep(POLL_S)


def wait_converged(c, timeout=60):
    """Every node alive, agreeing on the leader, and having applied what the leader had
    committed when this started."""
    leader, s = c.ready_leader(timeout)
    target = s["commit_index"]

    def done():
        st = c.statuses()
        if any(x is None for x in st):
            return False
        return (all(x["leader"] and x["leader"]["id"] == leader.id for x in st) and
                all(x["applied_index"] >= target for x in st))
    wait_until("the cluster to converge", timeout, done)


def percentile(xs, p):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def failover(pki, kills):
    print("failover: 3 nodes over mTLS, election timeout %s, heartbeat %s, load %d samples/s;"
          "\n          %d x kill -9 of the ready leader -> a survivor reports leader_ready "
          "(polled every %d ms)" % (ELECTION_TIMEOUT, HEARTBEAT, FAILOVER_RATE, kills,
                                    POLL_S * 1000))
    sys.stdout.flush()
    c = Cluster(pki, "mutual-tls", FAILOVER_SERIES, FAILOVER_RATE)
    times = []
    try:
        c.start()
        wait_converged(c)
        for _ in range(kills):
            leader, s = c.ready_leader()
            survivors = [n for n in c.nodes if n is not leader]
            leader.p.send_signal(signal.SIGKILL)
            t_kill = time.monotonic()
            dt, _ = wait_new_leader(survivors, s["term"], t_kill)
            times.append(dt)
            leader.p.wait()
            leader.start()
            wait_converged(c)
            time.sleep(0.5)
    finally:
        c.close()
    ms = [t * 1000 for t in times]
    print("  kill -> new leader ready: p50 %.0f ms, p99 %.0f ms, max %.0f ms, min %.0f ms "
          "over %d kills   (target: p99 <= 2500 ms)" %
          (percentile(ms, 50), percentile(ms, 99), max(ms), min(ms), len(ms)))
    print("  each (ms): %s" % " ".join("%.0f" % x for x in ms))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=("ingest", "failover"))
    ap.add_argument("--window", type=int, default=WINDOW_S)
    ap.add_argument("--rounds", type=int, default=ROUNDS)
    ap.add_argument("--kills", type=int, default=KILLS)
    ap.add_argument("--no-baseline", action="store_true",
                    help="ingest over mTLS only (for profiling)")
    a = ap.parse_args()
    if not os.access(LBWATCH, os.X_OK):
        print("ingest: LBWATCH=%s is not an executable" % LBWATCH, file=sys.stderr)
        return 1
    atexit.register(cleanup)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sys.exit(1))
    root = tempfile.mkdtemp(prefix="lbw-bench-pki.", dir=os.environ.get("TMPDIR"))
    try:
        pki = make_pki(root)
        if a.only != "failover":
            ingest(pki, a.window, a.rounds, not a.no_baseline)
        if a.only != "ingest":
            failover(pki, a.kills)
    except (RuntimeError, subprocess.CalledProcessError) as e:
        print("ingest: %s" % e, file=sys.stderr)
        return 1
    finally:
        cleanup()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
