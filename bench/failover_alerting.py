#!/usr/bin/env python3
"""failover_alerting.py - benchmark: kill -9 of the node that is about to page, just as an
alert becomes due; how long until the page reaches a real webhook sink, and whether any page
is lost or sent twice. lbwatch (3 nodes) side by side with a 3-peer Prometheus Alertmanager
0.25 cluster (issue 4, acceptance point 9).

Both systems run on 127.0.0.1 with a fresh temp dir, each with its own webhook sink
(tests/support/webhook_sink.py: it records every request with received_ms, on the same clock
as this script). RUNS runs each (FAILOVER_ALERT_RUNS, default 30), after one warm-up run
without a kill; every run is a new alert instance (target tNN / amNN), so runs are
independent; the killed node is restarted, and the cluster back to 3 agreeing members, before
the next run. group_wait is GROUP_WAIT_S for both.

  lbwatch       3 `lbwatch node` processes ($LBWATCH, the release build), probes every 1 s,
                evaluation_interval 1s, default rules off, one rule
                    BenchTargetDown: probe_success{probe="tls"} == 0, for: 1s
                routed to the sink grouped by [alertname, target], group_wait 2s. Targets are
                RUNS+1 `openssl s_server` processes, all up at the start. A run stops one of
                them; the bench polls a follower's /api/v1/alerts until the alert is firing,
                reads its firing_since F (the leader's clock, op time), and the notification
                is due at F + group_wait: the bench kills -9 the ready leader KILL_LEAD_MS
                before that, when it has not planned the notification yet. The survivors
                elect a leader, which plans, commits and delivers it.
  alertmanager  3 peers (--cluster.peer for each other, gossip 50ms and push-pull 5s so
                that a restarted peer settles in ~3 s (it polls 10 x the gossip interval),
                peer_timeout FAILOVER_ALERT_AM_PEER_TIMEOUT, default 15s: Alertmanager's own
                default), route grouped by [alertname, target], group_wait 2s,
                send_resolved off. Like Prometheus, the bench POSTs every firing alert
                (/api/v2/alerts) to every live peer every second, endsAt 4 minutes ahead. A
                run starts a new alert (startsAt now) and posts it; every peer opens its group
                and flushes it group_wait later; the peer first in the gossip order (members
                sorted by name, read from /api/v2/status; the warm-up run checks that this is
                the one that sends, from the payload's externalURL) sends at once, the others
                after position x peer_timeout unless the notification log gossiped to them
                says it was sent. The bench kills -9 that first peer KILL_LEAD_MS before
                its flush; after the delivery it restarts it (same storage), posts the alerts
                to it at once and waits until all 3 peers report "ready" with the same 3
                members.

  Figures: kill -> first delivery of the run's alert at the sink (received_ms - kill time),
  p50/p90/p99/max (nearest rank); delivered / lost (no delivery by the end of the bench;
  a delivery later than the run's wait is "late" but not lost); duplicates: raw (requests
  beyond the first for the same alert) and after dedup (distinct Idempotency-Key beyond the
  first for lbwatch; distinct (fingerprint, startsAt) beyond the first for Alertmanager,
  which has no key); notifications for alerts no run started (false pages). For lbwatch also
  kill -> a survivor reports leader_ready (the election part of the latency).

The two scenarios run side by side in two threads (FAILOVER_ALERT_SERIAL=1: one after the
other), so that the whole bench stays within about 12 minutes: an Alertmanager run lasts
peer_timeout + ~5 s (30 runs: ~10 min), an lbwatch run ~7 s. FAILOVER_ALERT_KEEP=DIR copies
the nodes' and peers' logs and the sinks' records there. Prints figures, the issue's targets
for lbwatch (p99 <= 3 s, 0 lost, 0 duplicates after dedup) with PASS/MISS, and never fails
on them: the exit status is non-zero only when the bench could not run (or a scenario had to
stop). Every process started here is killed and every temp dir removed, whatever happens.
Machine load makes the figures noisy.

usage: failover_alerting.py [--runs N] [--only lbwatch|alertmanager] [--serial]
"""

import argparse
import atexit
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
os.environ.setdefault("LBWATCH", os.path.join(ROOT, "build/lbwatch"))
sys.path.insert(0, os.path.join(ROOT, "tests/support"))
import lbwcluster as lc  # noqa: E402 - needs LBWATCH set first

SINK = os.path.join(ROOT, "tests/support/webhook_sink.py")
ALERTMANAGER = os.environ.get("ALERTMANAGER", "/usr/bin/prometheus-alertmanager")
RUNS = int(os.environ.get("FAILOVER_ALERT_RUNS", "30"))
AM_PEER_TIMEOUT_S = float(os.environ.get("FAILOVER_ALERT_AM_PEER_TIMEOUT", "15"))
GROUP_WAIT_S = 2
KILL_LEAD_MS = 100
LBW_WAIT_S = 30                 # a run waits this long for its delivery
POLL_S = 0.02
ALERTNAME = "BenchTargetDown"
TARGET_P99_S = 3.0

_out_lock = threading.Lock()


def say(who, msg):
    with _out_lock:
        print("  %-12s %s" % (who, msg), flush=True)


def now_ms():
    return time.time() * 1000.0


def percentile(xs, p):
    """Nearest rank."""
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(-(-p * len(xs) // 100)) - 1))
    return xs[k]


def sleep_until(t_ms):
    """Sleeps until unix time t_ms (returns at once if it has passed)."""
    wait_s = (t_ms - now_ms()) / 1000.0
    if wait_s > 0:
        time.sleep(wait_s)


def http_json(url, body=None, timeout=2.0):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data,
                                 headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        text = r.read().decode()
    return json.loads(text) if text.strip() else None


# ---- the webhook sink ------------------------------------------------------------------------

class Sink:
    """A webhook_sink.py process and the records it wrote so far."""

    def __init__(self, cluster_dir, name):
        self.port = lc.free_ports(1)[0]
        self.path = os.path.join(cluster_dir, name + ".jsonl")
        self.log = os.path.join(cluster_dir, name + ".log")
        self.url = "http://127.0.0.1:%d/%s" % (self.port, name)
        self.records = []
        self._offset = 0
        self._partial = b""
        self.p = subprocess.Popen([sys.executable, SINK, "--port", str(self.port),
                                   "--out", self.path], stdin=subprocess.DEVNULL,
                                  stdout=open(self.log, "ab"), stderr=subprocess.STDOUT,
                                  preexec_fn=lc._die_with_parent)
        lc.wait_until("the webhook sink listens", 15, lambda: lc.port_open(self.port))

    def poll(self):
        """Reads what was appended since the last call; returns the new records."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        new = [json.loads(x) for x in lines if x.strip()]
        self.records.extend(new)
        return new

    def received(self, target):
        """received_ms of every request so far that notifies an alert of target, in order."""
        self.poll()
        return sorted(x["received_ms"] for x in self.records
                      if any(a["labels"].get("target") == target for a in alerts_of(x)))

    def close(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.poll()


def alerts_of(rec):
    body = rec.get("json")
    return body.get("alerts", []) if isinstance(body, dict) else []


# ---- results -------------------------------------------------------------------------------

class Result:
    """What one system's runs measured."""

    def __init__(self, system):
        self.system = system
        self.runs = []          # {name, kill_ms, deadline_ms, late_kill_ms, ...}
        self.warmup = None      # ms from due to delivery without a kill
        self.error = None
        self.elapsed_s = 0.0
        self.extra = {}         # system-specific lists (election times, senders)
        self.false_pages = 0
        self.started = set()    # alerts a run started: any other notification is a false page
        self.tally = None

    def finish(self, sink, key_of, name_of):
        """Counts deliveries, duplicates and false pages over everything the sink got."""
        sink.poll()
        by_name = {}
        for rec in sink.records:
            for name in name_of(rec):
                by_name.setdefault(name, []).append(rec)
        self.false_pages = sum(len(v) for k, v in by_name.items() if k not in self.started)
        lat, late, lost, raw, dedup = [], 0, 0, 0, 0
        for r in self.runs:
            recs = sorted(by_name.get(r["name"], []), key=lambda x: x["received_ms"])
            r["requests"] = len(recs)
            r["keys"] = len({key_of(x, r["name"]) for x in recs})
            if not recs:
                lost += 1
                continue
            first = recs[0]["received_ms"]
            r["latency_ms"] = first - r["kill_ms"]
            lat.append(r["latency_ms"])
            late += first > r["deadline_ms"]
            raw += len(recs) - 1
            dedup += r["keys"] - 1
        self.tally = {"runs": len(self.runs), "delivered": len(lat), "lost": lost,
                      "late": late, "raw": raw, "dedup": dedup, "latency": lat}


# ---- lbwatch ---------------------------------------------------------------------------------

LBW_CONFIG = """\
default_rules:
  disable: [CertExpiringSoon, CertExpiryCritical, CertHostnameMismatch, CertChainUntrusted,
            TargetDown, HandshakeSlow]
rules:
  - name: %(alertname)s
    severity: critical
    for: 1s
    annotations:
      summary: "{{ $labels.target }} is down"
    threshold: {metric: probe_success, match: {probe: tls}, agg: last, window: 10s,
                op: "==", value: 0}
alerting:
  evaluation_interval: 1s
  receivers:
    - name: sink
      webhook: {url: "%(url)s"}
  route:
    receiver: sink
    group_by: [alertname, target]
    group_wait: %(group_wait)ds
    group_interval: 1h
    repeat_interval: 4h
"""


class LbwatchBench:
    """The lbwatch scenario: its cluster, its targets, its sink."""

    def __init__(self, runs, res):
        self.nruns, self.res = runs, res
        self.c = lc.Cluster(nodes=3, spares=0)
        self.sink = Sink(self.c.dir, "lbwatch")
        self.c.extra_config = LBW_CONFIG % {"alertname": ALERTNAME, "url": self.sink.url,
                                            "group_wait": GROUP_WAIT_S}
        self.names = ["warmup"] + ["t%02d" % i for i in range(1, runs + 1)]
        ports = lc.free_ports(len(self.names))
        self.target_port = dict(zip(self.names, ports))
        self.servers = {}
        items = []
        for name in self.names:
            items += ["  - name: %s" % name, "    address: 127.0.0.1:%d" % self.target_port[name],
                      "    server_name: www.test", "    ca_file: %s/ca.crt" % self.c.pki]
        self.c.targets = "\n".join(items)

    def start(self):
        for name in self.names:
            self.servers[name] = self.c.spawn(name, [
                "openssl", "s_server", "-quiet", "-www",
                "-accept", "127.0.0.1:%d" % self.target_port[name],
                "-cert", "%s/www.crt" % self.c.pki, "-key", "%s/www.key" % self.c.pki])
        for name in self.names:
            lc.wait_until("target %s listens" % name, 15,
                          lambda n=name: lc.port_open(self.target_port[n]))
        self.c.start_all()
        self.c.wait_leader(timeout=60)
        # every target probed as up from every vantage, so no alert starts from a cold probe
        lc.wait_until("every target probed up", 60, self.all_up, interval=0.5)

    def all_up(self):
        up = lc.series_points(self.c.node(1), "probe_success", since="-3s")
        last = {}
        for key, pts in up.items():
            if pts and 'probe="tls"' in key:
                last[key] = pts[-1][1]
        return len(last) >= 3 * len(self.names) and all(v == 1 for v in last.values())

    def close(self):
        self.sink.close()
        self.c.kill_everything()

    # -- one run -----------------------------------------------------------------------------

    def statuses(self):
        nodes = [n for n in self.c.nodes.values() if n.alive()]
        return nodes, self.c.statuses(nodes)

    def ready_leader(self):
        nodes, sts = self.statuses()
        for n, s in zip(nodes, sts):
            if s and s["state"] == "leader" and s["leader_ready"]:
                return n, s
        return None

    def firing_since(self, name):
        """firing_since (unix ms, the leader's op time) once a follower shows the alert of
        target name firing."""
        watch = {}

        def seen():
            if "follower" not in watch:
                found = self.ready_leader()
                if not found:
                    return None
                watch["follower"] = next(n for n in self.c.nodes.values()
                                         if n is not found[0] and n.alive())
            try:
                doc = watch["follower"].api("/api/v1/alerts", timeout=2)
            except OSError:
                del watch["follower"]
                raise
            for a in doc:
                if a["labels"].get("target") == name and a["state"] == "firing":
                    return a["firing_since"]
            return None
        return lc.wait_until("alert for %s firing on a follower" % name, 60, seen,
                             interval=POLL_S)

    def caught_up(self, restarted):
        """Every node alive, naming the same ready leader, the restarted one applied what that
        leader had committed."""
        nodes, sts = self.statuses()
        if len(nodes) != 3 or any(s is None for s in sts):
            return False
        ids = {(s["leader"] or {}).get("id") for s in sts}
        if len(ids) != 1 or None in ids:
            return False
        lead = dict(zip([n.id for n in nodes], sts)).get(ids.pop())
        mine = sts[nodes.index(restarted)]
        return (lead is not None and lead["leader_ready"] and
                mine["applied_index"] >= lead["commit_index"])

    def kill_leader_at(self, t_ms):
        """Kills -9 the ready leader at t_ms (unix ms; at once if past). Returns (the node,
        its /api/v1/cluster status just before, the kill time in unix ms)."""
        sleep_until(t_ms - 150)
        found = self.ready_leader()
        if not found:
            raise lc.Failure("no ready leader just before the kill")
        sleep_until(t_ms)
        os.kill(found[0].p.pid, signal.SIGKILL)
        return found[0], found[1], now_ms()

    def watch_failover(self, name, killed, old_term, kill_ms, deadline_ms):
        """(ms from the kill until a survivor is leader_ready in a later term, ms until the
        first notification for target name), each None if not by deadline_ms."""
        survivors = [n for n in self.c.nodes.values() if n is not killed and n.alive()]
        ready_ms = delivered_ms = None
        while now_ms() < deadline_ms and (ready_ms is None or delivered_ms is None):
            if ready_ms is None and any(s and s["leader_ready"] and s["term"] > old_term
                                        for s in self.c.statuses(survivors)):
                ready_ms = now_ms() - kill_ms
            got = self.sink.received(name)
            if delivered_ms is None and got:
                delivered_ms = got[0] - kill_ms
            time.sleep(POLL_S)
        return ready_ms, delivered_ms

    def restart(self, node):
        node.kill()
        node.start()
        lc.wait_until("%s rejoins and catches up" % node.name, 60,
                      lambda: self.caught_up(node), interval=0.1)

    def warmup(self, name):
        """Without a kill: ms from due to the notification."""
        self.res.started.add(name)
        self.servers[name].kill()
        due = self.firing_since(name) + GROUP_WAIT_S * 1000
        got = lc.wait_until("the warm-up notification", LBW_WAIT_S,
                            lambda: self.sink.received(name), interval=POLL_S)
        return got[0] - due

    def run(self, name):
        """One run: target name goes down; the leader is killed just before the alert's
        notification is due."""
        self.res.started.add(name)
        self.servers[name].kill()
        due = self.firing_since(name) + GROUP_WAIT_S * 1000
        leader, ls, kill_ms = self.kill_leader_at(due - KILL_LEAD_MS)
        r = {"name": name, "kill_ms": kill_ms, "deadline_ms": kill_ms + LBW_WAIT_S * 1000,
             "late_kill_ms": max(0.0, kill_ms - (due - KILL_LEAD_MS))}
        r["ready_ms"], delivered_ms = self.watch_failover(name, leader, ls["term"], kill_ms,
                                                          r["deadline_ms"])
        self.restart(leader)
        say("lbwatch", "%s: killed %s (leader, term %d) %.0f ms before due; new leader ready "
            "%s, delivered %s after the kill" % (
                name, leader.name, ls["term"], due - kill_ms,
                "%.2f s" % (r["ready_ms"] / 1000) if r["ready_ms"] is not None else "NEVER",
                "%.2f s" % (delivered_ms / 1000) if delivered_ms is not None
                else "NOT within %d s" % LBW_WAIT_S))
        return r

    def main(self):
        t0 = time.monotonic()
        self.start()
        say("lbwatch", "3 nodes ready, %d targets up (%.0f s)" % (len(self.names),
                                                                  time.monotonic() - t0))
        self.res.warmup = self.warmup("warmup")
        say("lbwatch", "warm-up without a kill: delivered %.2f s after due" %
            (self.res.warmup / 1000))
        for name in self.names[1:]:
            r = self.run(name)
            self.res.runs.append(r)
            self.res.extra.setdefault("ready", []).append(r["ready_ms"])
            time.sleep(0.3)
        time.sleep(2)   # anything late or repeated still reaches the sink
        self.sink.poll()


def lbw_key(rec, _name):
    return rec.get("headers", {}).get("idempotency-key")


def alert_targets(rec):
    return {a["labels"].get("target") for a in alerts_of(rec)}


# ---- Alertmanager ----------------------------------------------------------------------------

AM_CONFIG = """\
route:
  receiver: sink
  group_by: [alertname, target]
  group_wait: %(group_wait)ds
  group_interval: 1h
  repeat_interval: 4h
receivers:
  - name: sink
    webhook_configs:
      - url: "%(url)s"
        send_resolved: false
"""


def rfc3339(ms):
    return datetime.datetime.fromtimestamp(ms / 1000.0, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


_am_benches = []


def _am_cleanup():
    for b in list(_am_benches):
        for p in b.peers:
            p.kill()
        shutil.rmtree(b.dir, ignore_errors=True)


atexit.register(_am_cleanup)


class AmPeer:
    def __init__(self, am, i, web_port, cluster_port):
        self.am, self.i = am, i
        self.name = "am%d" % i
        self.web_port, self.cluster_port = web_port, cluster_port
        self.url = "http://127.0.0.1:%d" % web_port
        self.cluster_addr = "127.0.0.1:%d" % cluster_port
        self.storage = os.path.join(am.dir, self.name)
        self.log = os.path.join(am.dir, self.name + ".log")
        self.p = None
        os.makedirs(self.storage)

    def start(self):
        args = [ALERTMANAGER, "--config.file=%s" % self.am.config,
                "--storage.path=%s" % self.storage,
                "--web.listen-address=127.0.0.1:%d" % self.web_port,
                "--web.external-url=%s/" % self.url,
                "--cluster.listen-address=%s" % self.cluster_addr,
                "--cluster.advertise-address=%s" % self.cluster_addr,
                "--cluster.gossip-interval=50ms", "--cluster.pushpull-interval=5s",
                "--cluster.peer-timeout=%gs" % AM_PEER_TIMEOUT_S, "--log.level=debug"]
        args += ["--cluster.peer=%s" % p.cluster_addr for p in self.am.peers if p is not self]
        with open(self.log, "ab") as f:
            f.write(b"==== start ====\n")
        self.p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=open(self.log, "ab"),
                                  stderr=subprocess.STDOUT, preexec_fn=lc._die_with_parent)

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def kill(self):
        if self.alive():
            self.p.kill()
        if self.p is not None:
            self.p.wait()

    def status(self):
        try:
            return http_json(self.url + "/api/v2/status", timeout=1)
        except (OSError, ValueError):
            return None


class AlertmanagerBench:
    """The Alertmanager scenario: 3 peers, the poster (Prometheus' part), the sink."""

    def __init__(self, runs, res):
        self.nruns, self.res = runs, res
        self.peers = []
        self.dir = tempfile.mkdtemp(prefix="lbw-bench-am.", dir=os.environ.get("TMPDIR"))
        _am_benches.append(self)
        self.sink = Sink(self.dir, "alertmanager")
        self.config = os.path.join(self.dir, "alertmanager.yml")
        with open(self.config, "w") as f:
            f.write(AM_CONFIG % {"group_wait": GROUP_WAIT_S, "url": self.sink.url})
        ports = lc.free_ports(6)
        for i in range(3):
            self.peers.append(AmPeer(self, i + 1, ports[2 * i], ports[2 * i + 1]))
        self.alerts = {}            # name -> the alert as posted (startsAt fixed)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.poster = threading.Thread(target=self.post_loop, daemon=True)

    def close(self):
        self.stop.set()
        for p in self.peers:
            p.kill()
        self.sink.close()

    def post(self):
        """POSTs every firing alert to every live peer, endsAt 4 minutes ahead (as Prometheus
        does with its default resend delay)."""
        with self.lock:
            ends = rfc3339(now_ms() + 240000)
            body = [dict(a, endsAt=ends) for a in self.alerts.values()]
            if not body:
                return
            for p in self.peers:
                if p.alive():
                    try:
                        http_json(p.url + "/api/v2/alerts", body, timeout=2)
                    except (OSError, ValueError):
                        pass

    def post_loop(self):
        while not self.stop.wait(1.0):
            self.post()

    def ready(self):
        """The peers' views when all 3 are settled ("ready") and agree on 3 members, or None."""
        sts = [p.status() for p in self.peers]
        if any(s is None for s in sts):
            return None
        views = set()
        for s in sts:
            cl = s.get("cluster") or {}
            if cl.get("status") != "ready":
                return None
            views.add(tuple(sorted((m["name"], m["address"]) for m in cl.get("peers") or [])))
        if len(views) != 1:
            return None
        view = views.pop()
        return view if len(view) == 3 else None

    def in_order(self, view, position):
        """The peer at position in the gossip order (Alertmanager's Peer.Position(): the
        members sorted by name)."""
        addr = view[position][1]
        for p in self.peers:
            if p.cluster_addr == addr:
                return p
        raise lc.Failure("no peer listens on %s (members %s)" % (addr, view))

    def start(self):
        for p in self.peers:
            p.start()
        lc.wait_until("the Alertmanager peers settle as one cluster of 3", 90, self.ready,
                      interval=0.2)
        self.poster.start()

    def fire(self, name):
        """Starts the alert of target name (startsAt now) and posts it to every live peer at
        once. Returns when its groups come due (unix ms): group_wait after the post."""
        alert = {"labels": {"alertname": ALERTNAME, "target": name, "severity": "critical",
                            "probe": "tls"},
                 "annotations": {"summary": "%s is down" % name},
                 "startsAt": rfc3339(now_ms()), "generatorURL": "http://127.0.0.1/bench"}
        with self.lock:
            self.alerts[name] = alert
        self.res.started.add(name)
        t_post = now_ms()
        self.post()
        return t_post + GROUP_WAIT_S * 1000

    def sender_of(self, name):
        """The URL of the peer whose notification of target name reached the sink first."""
        for rec in sorted(self.sink.records, key=lambda x: x["received_ms"]):
            if any(a["labels"].get("target") == name for a in alerts_of(rec)):
                return rec["json"].get("externalURL", "").rstrip("/")
        return None

    def restart(self, peer):
        """Restarts a killed peer (same storage), gives it the firing alerts at once and waits
        until the cluster is settled again. Returns how long that took (s)."""
        t0 = time.monotonic()
        peer.kill()
        peer.start()
        self.post()
        lc.wait_until("%s rejoins and the cluster settles" % peer.name, 90, self.ready,
                      interval=0.2)
        return time.monotonic() - t0

    def warmup(self, name):
        """Without a kill: ms from due to the notification; checks who sent it."""
        first = self.in_order(lc.wait_until("the Alertmanager cluster is settled", 90,
                                            self.ready, interval=0.2), 0)
        due = self.fire(name)
        got = lc.wait_until("the warm-up notification", 3 * AM_PEER_TIMEOUT_S + 15,
                            lambda: self.sink.received(name), interval=POLL_S)
        sender = self.sender_of(name)
        say("alertmanager", "warm-up without a kill: delivered %.2f s after due by %s, the "
            "first in gossip order being %s%s" % (
                (got[0] - due) / 1000, self.peer_by_url(sender), first.name,
                "" if sender == first.url else "  (NOT the expected sender)"))
        return got[0] - due

    def run(self, name):
        """One run: a new alert; the peer first in gossip order is killed just before its
        group is flushed."""
        view = lc.wait_until("the Alertmanager cluster is settled", 90, self.ready,
                             interval=0.2)
        first, second = self.in_order(view, 0), self.in_order(view, 1)
        due = self.fire(name)
        sleep_until(due - KILL_LEAD_MS)
        os.kill(first.p.pid, signal.SIGKILL)
        kill_ms = now_ms()
        r = {"name": name, "kill_ms": kill_ms,
             "deadline_ms": kill_ms + (3 * AM_PEER_TIMEOUT_S + 15) * 1000,
             "late_kill_ms": max(0.0, kill_ms - (due - KILL_LEAD_MS))}
        got = []
        while now_ms() < r["deadline_ms"] and not got:
            got = self.sink.received(name)
            time.sleep(POLL_S)
        sender = self.sender_of(name)
        r["sender_was_second"] = sender == second.url
        settle_s = self.restart(first)
        say("alertmanager", "%s: killed %s (first in gossip order) %.0f ms before its flush; "
            "%s; restarted, cluster settled in %.1f s" % (
                name, first.name, due - kill_ms,
                "delivered %.2f s after the kill by %s" % ((got[0] - kill_ms) / 1000,
                                                           self.peer_by_url(sender))
                if got else "NOT delivered within %.0f s" % ((r["deadline_ms"] - kill_ms) / 1000),
                settle_s))
        return r

    def peer_by_url(self, url):
        for p in self.peers:
            if p.url == url:
                return p.name
        return url

    def main(self):
        t0 = time.monotonic()
        self.start()
        say("alertmanager", "3 peers settled (%.0f s)" % (time.monotonic() - t0))
        self.res.warmup = self.warmup("warmup")
        for i in range(1, self.nruns + 1):
            r = self.run("am%02d" % i)
            self.res.runs.append(r)
        time.sleep(2)
        self.sink.poll()


def am_key(rec, name):
    """Alertmanager has no idempotency key: the alert's fingerprint and startsAt."""
    for a in alerts_of(rec):
        if a["labels"].get("target") == name:
            return (a.get("fingerprint"), a.get("startsAt"))
    return None


# ---- running and reporting -------------------------------------------------------------------

def run_scenario(cls, res, runs):
    t0 = time.monotonic()
    bench = None
    try:
        bench = cls(runs, res)
        bench.main()
    except lc.Failure as e:
        res.error = str(e)
    except Exception as e:  # noqa: BLE001 - reported, the other scenario goes on
        res.error = "%s: %s" % (type(e).__name__, e)
    finally:
        if bench is not None:
            if res.error and isinstance(bench, LbwatchBench):
                bench.c.dump_logs()
            bench.sink.poll()
            key = lbw_key if isinstance(bench, LbwatchBench) else am_key
            res.finish(bench.sink, key, alert_targets)
            keep = os.environ.get("FAILOVER_ALERT_KEEP")
            bench.close()
            src = bench.c.dir if isinstance(bench, LbwatchBench) else bench.dir
            if keep:
                dst = os.path.join(keep, res.system)
                shutil.copytree(src, dst, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("data*", "node*[0-9]", "am[0-9]"))
            if isinstance(bench, LbwatchBench):
                bench.c.remove()
            else:
                shutil.rmtree(bench.dir, ignore_errors=True)
        res.elapsed_s = time.monotonic() - t0


def fmt_s(ms):
    return "%.2f s" % (ms / 1000.0)


def verdict(ok):
    return "PASS" if ok else "MISS"


def report(results, runs):
    lbw = results.get("lbwatch")
    am = results.get("alertmanager")
    cols = [r for r in (lbw, am) if r is not None and r.tally is not None]
    print("\nfailover alerting: kill -9 of the sending node %d ms before the alert's "
          "notification is due (group_wait %d s), %d runs each" % (KILL_LEAD_MS, GROUP_WAIT_S,
                                                                  runs))
    head = "  %-30s" % "" + "".join("%16s" % r.system for r in cols) + "   lbwatch target"
    print(head)

    def row(label, fn, target=None, ok=None):
        cells = "".join("%16s" % fn(r) for r in cols)
        tail = ""
        if target is not None and lbw is not None and lbw.tally is not None:
            tail = "   %-10s %s" % (target, verdict(ok(lbw.tally)) if lbw.tally["runs"] else "-")
        print("  %-30s%s%s" % (label, cells, tail))

    def lat(p):
        return lambda r: fmt_s(percentile(r.tally["latency"], p)) if r.tally["latency"] else "-"
    row("runs", lambda r: str(r.tally["runs"]))
    row("delivered", lambda r: str(r.tally["delivered"]))
    row("lost", lambda r: str(r.tally["lost"]), "0", lambda t: t["lost"] == 0)
    row("delivered late (after wait)", lambda r: str(r.tally["late"]))
    row("duplicates raw", lambda r: str(r.tally["raw"]))
    row("duplicates after key dedup", lambda r: str(r.tally["dedup"]), "0",
        lambda t: t["dedup"] == 0)
    row("false pages (no run's alert)", lambda r: str(r.false_pages))
    row("kill -> delivery p50", lat(50))
    row("kill -> delivery p90", lat(90))
    row("kill -> delivery p99", lat(99), "<= 3 s",
        lambda t: bool(t["latency"]) and percentile(t["latency"], 99) <= TARGET_P99_S * 1000
        and t["lost"] == 0)
    row("kill -> delivery max", lambda r: fmt_s(max(r.tally["latency"]))
        if r.tally["latency"] else "-")
    row("kill -> delivery min", lambda r: fmt_s(min(r.tally["latency"]))
        if r.tally["latency"] else "-")
    row("warm-up (no kill): due -> deliv.", lambda r: fmt_s(r.warmup)
        if r.warmup is not None else "-")
    row("scenario wall time", lambda r: "%.0f s" % r.elapsed_s)
    if lbw is not None and lbw.tally is not None:
        ready = [x for x in lbw.extra.get("ready", []) if x is not None]
        if ready:
            print("  lbwatch kill -> a survivor is leader_ready: p50 %s, p90 %s, max %s"
                  % (fmt_s(percentile(ready, 50)), fmt_s(percentile(ready, 90)),
                     fmt_s(max(ready))))
        lat_ms = lbw.tally["latency"]
        print("  lbwatch kill -> delivery, each run (s): %s"
              % " ".join("%.2f" % (x / 1000) for x in lat_ms))
        late_kills = [r for r in lbw.runs if r.get("late_kill_ms", 0) > 50]
        if late_kills:
            print("  lbwatch: %d runs saw the alert firing too late to kill before due"
                  % len(late_kills))
    if am is not None and am.tally is not None:
        print("  alertmanager: peer_timeout %gs; the killed peer's notification comes from the "
              "next peer in gossip order once position x peer_timeout has passed"
              % AM_PEER_TIMEOUT_S)
        print("  alertmanager: the notification came from the peer second in gossip order in "
              "%d of %d runs" % (sum(1 for r in am.runs if r.get("sender_was_second")),
                                 len(am.runs)))
        print("  alertmanager kill -> delivery, each run (s): %s"
              % " ".join("%.2f" % (x / 1000) for x in am.tally["latency"]))
    for r in (lbw, am):
        if r is not None and r.error:
            print("  %s: the scenario stopped: %s" % (r.system, r.error))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=RUNS)
    ap.add_argument("--only", choices=("lbwatch", "alertmanager"))
    ap.add_argument("--serial", action="store_true",
                    default=os.environ.get("FAILOVER_ALERT_SERIAL") == "1")
    a = ap.parse_args()
    if not os.access(lc.LBWATCH, os.X_OK):
        print("failover_alerting: LBWATCH=%s is not an executable" % lc.LBWATCH, file=sys.stderr)
        return 1
    if a.only != "lbwatch" and not os.access(ALERTMANAGER, os.X_OK):
        print("failover_alerting: %s is missing (scripts/install-deps installs "
              "prometheus-alertmanager)" % ALERTMANAGER, file=sys.stderr)
        return 1
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sys.exit(1))
    print("failover alerting: %d runs per system; lbwatch %s, %s (peer_timeout %gs); %s"
          % (a.runs, lc.LBWATCH, ALERTMANAGER, AM_PEER_TIMEOUT_S,
             "one after the other" if a.serial else "both side by side"), flush=True)
    t0 = time.monotonic()
    results = {}
    jobs = []
    if a.only != "alertmanager":
        results["lbwatch"] = Result("lbwatch")
        jobs.append((LbwatchBench, results["lbwatch"]))
    if a.only != "lbwatch":
        results["alertmanager"] = Result("alertmanager")
        jobs.append((AlertmanagerBench, results["alertmanager"]))
    threads = [threading.Thread(target=run_scenario, args=(cls, res, a.runs), daemon=True)
               for cls, res in jobs]
    for t in threads:
        t.start()
        if a.serial:
            while t.is_alive():
                t.join(0.5)
    for t in threads:
        while t.is_alive():
            t.join(0.5)
    report(results, a.runs)
    print("  total %.0f s" % (time.monotonic() - t0))
    return 1 if any(r.error for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
