"""lbwcluster.py - a harness for integration tests that run real lbwatch cluster nodes.

Python 3, standard library only. A test script does:

    import lbwcluster as lc

    def test(c):                      # c: a Cluster of real `lbwatch node` processes
        c.start_all()
        leader = c.wait_leader()
        ...
        lc.ok("what was shown")

    lc.main(test, nodes=3)            # or lc.main(test, nodes=5, snapshot_threshold=32, ...)

What a Cluster sets up, in a temp dir removed at exit:
  - a cluster PKI (`lbwatch pki init/issue`): certificates for node ids 1..N and for spares
    (ids N+1.. for nodes added later), a write token and its SHA-256 for the node configs;
  - real TLS targets every node probes each second: `openssl s_server -www` with a
    certificate of the same CA for www.test, and a closed port;
  - free loopback ports for every node's raft and web addresses;
  - a node config per node (cluster peers, election timeout 1 s, optional snapshot settings).

The API tests use:
  Cluster   .node(i) .bootstrap_nodes() .live() .start_all()
            .issue(name, id, pki=, dns=, agent=, days=)
            .spawn(name, args) (a helper process killed at the end)
            .wait_leader(nodes=None, timeout=30) -> the Node that leads (leader_ready) and
                that every one of nodes names as leader
            .wait_converged(nodes=None, timeout=60) -> (applied_index, fsm_hash) all of
                nodes reported in one parallel poll; fails at once on divergence
            .metrics(node) -> {series key: value} from /metrics
  Node      .start(join=None) .stop() (SIGTERM, must exit 0) .kill() (SIGKILL) .pause()
            .resume() (SIGSTOP/SIGCONT) .api(path) -> JSON .cluster() .metrics()
            .ctl(*args) (`lbwatch ctl` with the write token) .log .raft .web .data_dir
  module    ok() check() fail() wait_until() run() series_points() vantages_in_targets()
            tool(name) (a built tests/tools program)

Every wait is bounded. Whatever happens (failure, exception, SIGTERM/SIGINT from the test
runner, a global alarm a little under the runner's limit) every process started here is killed
and the temp dir removed; on failure the nodes' logs are printed. At the end the logs are
scanned for AddressSanitizer / LeakSanitizer / UBSan reports, which fail the test.
"""

import atexit
import concurrent.futures
import ctypes
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

LBWATCH = os.environ.get("LBWATCH", os.path.join(os.getcwd(), "build/asan/lbwatch"))
TOOLS = os.environ.get("LBWATCH_TOOLS", os.path.join(os.getcwd(), "build/asan/tools"))
SCRIPT_DEADLINE_S = 280         # the runner kills a script at 300 s
SANITIZER_RE = re.compile(r"AddressSanitizer|LeakSanitizer|runtime error:")
LOG_TAIL_LINES = 150

_t0 = time.monotonic()
_registry = []                  # every Cluster, for the emergency cleanup


class Failure(Exception):
    """A test assertion that did not hold."""


def fail(msg):
    raise Failure(msg)


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def ok(msg):
    print("ok - %s (%.0fs)" % (msg, time.monotonic() - _t0), flush=True)


def note(msg):
    print("# %s" % msg, flush=True)


def wait_until(what, timeout, fn, interval=0.2):
    """Calls fn() until it returns something true; returns that. Fails after timeout s."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = fn()
            if v:
                return v
            last_exc = None
        except (OSError, ValueError, KeyError) as e:
            last_exc = e
        if time.monotonic() >= deadline:
            fail("%s: not within %.0f s%s" % (what, timeout,
                                               " (last error: %s)" % last_exc if last_exc else ""))
        time.sleep(interval)


def free_ports(n):
    """n distinct TCP ports on 127.0.0.1 that were free a moment ago."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _die_with_parent():
    """preexec_fn: the child gets SIGKILL if this test process dies, even by SIGKILL."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort; cleanup handlers still run
        pass


def run(args, timeout=30, check_rc=True):
    """Runs a command to completion (stdin empty); returns CompletedProcess (text). Fails on
    a sanitizer report, and on a non-zero exit when check_rc."""
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, input="",
                           preexec_fn=_die_with_parent)
    except subprocess.TimeoutExpired:
        fail("%s did not finish within %d s" % (" ".join(args), timeout))
    if SANITIZER_RE.search(p.stderr):
        fail("sanitizer report from %s:\n%s" % (" ".join(args), p.stderr))
    if check_rc and p.returncode != 0:
        fail("%s exited %d:\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


class Proc:
    """A background helper process (openssl s_server, ...) with its output in a log file."""

    def __init__(self, name, args, log):
        self.name, self.args, self.log = name, args, log
        self.p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=open(log, "ab"),
                                  stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)

    def alive(self):
        return self.p.poll() is None

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def parse_metrics(text):
    """Prometheus text -> {series key: float}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            out[key] = float(value)
        except ValueError:
            pass
    return out


class Node:
    """One `lbwatch node` process of a Cluster (id, name nodeID)."""

    def __init__(self, cluster, node_id):
        self.c = cluster
        self.id = node_id
        self.name = "node%d" % node_id
        self.raft_port, self.web_port = cluster.ports[node_id]
        self.raft = "127.0.0.1:%d" % self.raft_port
        self.web = "http://127.0.0.1:%d" % self.web_port
        self.data_dir = os.path.join(cluster.dir, self.name)
        self.config = os.path.join(cluster.dir, self.name + ".yaml")
        self.log = os.path.join(cluster.dir, self.name + ".log")
        self.p = None
        self.join = False
        self.paused = False
        self.starts = 0
        self.snapshot_threshold = cluster.snapshot_threshold
        self.snapshot_trailing = cluster.snapshot_trailing

    def __repr__(self):
        return self.name

    # -- life --------------------------------------------------------------------------------

    def write_config(self, join):
        c = self.c
        lines = [
            "# written by tests/support/lbwcluster.py",
            "node:", "  name: %s" % self.name, "  id: %d" % self.id,
            "  data_dir: %s" % self.data_dir,
            "web:", "  listen: 127.0.0.1:%d" % self.web_port,
            "  write_token_sha256: %s" % c.token_sha256,
            "tls:", "  ca: %s/ca.crt" % c.pki, "  cert: %s/%s.crt" % (c.pki, self.name),
            "  key: %s/%s.key" % (c.pki, self.name),
            "probes:", "  interval: 1s", "  timeout: 900ms",
            "targets:",
        ]
        if c.targets is None:
            lines += [
                "  - name: www", "    address: 127.0.0.1:%d" % c.www_port,
                "    server_name: www.test", "    ca_file: %s/ca.crt" % c.pki,
                "  - name: closed", "    address: 127.0.0.1:%d" % c.closed_port,
            ]
        else:
            lines += [c.targets.rstrip("\n")]
        lines += [
            "cluster:", "  election_timeout: 1s", "  heartbeat: 100ms",
        ]
        if join:
            lines += ["  join: true", "  raft: %s" % self.raft]
        if self.snapshot_threshold:
            lines.append("  snapshot_threshold: %d" % self.snapshot_threshold)
        if self.snapshot_trailing:
            lines.append("  snapshot_trailing: %d" % self.snapshot_trailing)
        lines.append("  peers:")
        for i in c.bootstrap_ids:
            n = c.nodes[i]
            lines.append("    - {id: %d, name: %s, raft: '%s', web: '%s'}"
                         % (n.id, n.name, n.raft, n.web))
        extra = c.extra_config(self) if callable(c.extra_config) else c.extra_config
        if extra:
            lines.append(extra.rstrip("\n"))
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, join=None, wait=True):
        """Starts the node (join: its config says join: true, so a fresh data dir starts empty
        and waits for `ctl add-node`; None keeps what the last start said, for a restart).
        Waits for its web port unless wait is False."""
        check(not self.alive(), "%s is already running" % self.name)
        if join is not None:
            self.join = join
        join = self.join
        self.write_config(join)
        self.starts += 1
        with open(self.log, "ab") as f:
            f.write(b"==== start %d (join=%s) ====\n" % (self.starts, str(join).encode()))
        self.p = subprocess.Popen([LBWATCH, "node", "-c", self.config], stdin=subprocess.DEVNULL,
                                  stdout=open(self.log, "ab"), stderr=subprocess.STDOUT,
                                  preexec_fn=_die_with_parent)
        self.paused = False
        if wait:
            wait_until("%s serves its web port" % self.name, 30, self.web_up)
        return self

    def web_up(self):
        if not self.alive():
            fail("%s exited (status %s) while starting; log:\n%s"
                 % (self.name, self.p.returncode, self.log_tail()))
        return port_open(self.web_port)

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def stop(self, timeout=30):
        """SIGTERM; the node must exit 0 within timeout s."""
        check(self.alive(), "%s is not running" % self.name)
        if self.paused:
            self.resume()
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            fail("%s did not stop within %d s of SIGTERM" % (self.name, timeout))
        check(rc == 0, "%s exited %d on SIGTERM" % (self.name, rc))

    def kill(self):
        """SIGKILL and reap."""
        if self.alive():
            self.p.kill()
            self.p.wait(timeout=10)
        self.paused = False

    def pause(self):
        check(self.alive(), "%s is not running" % self.name)
        self.p.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        if self.alive():
            self.p.send_signal(signal.SIGCONT)
        self.paused = False

    def log_tail(self, n=LOG_TAIL_LINES):
        try:
            with open(self.log, errors="replace") as f:
                lines = f.readlines()
        except OSError:
            return "(no log)"
        return "".join(lines[-n:])

    # -- web ---------------------------------------------------------------------------------

    def http(self, path, timeout=5):
        with urllib.request.urlopen(self.web + path, timeout=timeout) as r:
            return r.read().decode()

    def api(self, path, timeout=5):
        """GET path -> parsed JSON."""
        return json.loads(self.http(path, timeout))

    def cluster(self):
        return self.api("/api/v1/cluster")

    def metrics(self):
        return parse_metrics(self.http("/metrics"))

    def ctl(self, *args, check_rc=True, timeout=60):
        """Runs `lbwatch ctl -u THIS_NODE -t TOKEN_FILE args...`."""
        return run([LBWATCH, "ctl", "-u", self.web, "-t", self.c.token_file] + list(args),
                   timeout=timeout, check_rc=check_rc)


class Cluster:
    """N bootstrap nodes (ids 1..N) plus `spares` ids for nodes added later, their PKI,
    targets and configs in a temp dir."""

    def __init__(self, nodes=3, spares=1, snapshot_threshold=None, snapshot_trailing=None,
                 extra_config=None, targets=None):
        """extra_config: YAML text appended to every node's config (top-level sections such as
        alerting: and rules:), or a function node -> text. targets: YAML list items (text,
        each starting "  - name: ...") that replace the default www/closed targets."""
        self.extra_config = extra_config
        self.targets = targets
        check(os.access(LBWATCH, os.X_OK), "LBWATCH=%s is not an executable" % LBWATCH)
        self.dir = tempfile.mkdtemp(prefix="lbw-cluster.", dir=os.environ.get("TMPDIR"))
        _registry.append(self)
        self.procs = []
        self.snapshot_threshold = snapshot_threshold
        self.snapshot_trailing = snapshot_trailing
        self.bootstrap_ids = list(range(1, nodes + 1))
        all_ids = list(range(1, nodes + spares + 1))
        self.pki = os.path.join(self.dir, "pki")
        run([LBWATCH, "pki", "init", "--dir", self.pki])
        for i in all_ids:
            self.issue("node%d" % i, i)
        self.issue("www", 999, dns="www.test")
        self.token = secrets.token_hex(24)
        self.token_sha256 = hashlib.sha256(self.token.encode()).hexdigest()
        self.token_file = os.path.join(self.dir, "token")
        with open(self.token_file, "w") as f:
            f.write(self.token + "\n")
        os.chmod(self.token_file, 0o600)
        ports = free_ports(2 * len(all_ids) + 2)
        self.www_port, self.closed_port = ports[-2], ports[-1]
        self.ports = {i: (ports[2 * k], ports[2 * k + 1]) for k, i in enumerate(all_ids)}
        self.nodes = {}
        for i in all_ids:
            self.nodes[i] = Node(self, i)
        self.www = self.spawn("www", ["openssl", "s_server", "-quiet", "-www",
                                      "-accept", "127.0.0.1:%d" % self.www_port,
                                      "-cert", "%s/www.crt" % self.pki,
                                      "-key", "%s/www.key" % self.pki])
        wait_until("openssl s_server (www target) listens", 10,
                   lambda: port_open(self.www_port))

    def issue(self, name, node_id, pki=None, dns=None, agent=False, days=None):
        """Issues a certificate NAME.crt/.key in pki (default: the cluster's), valid for days
        (default: lbwatch's, 825)."""
        args = [LBWATCH, "pki", "issue", "--dir", pki or self.pki, "--name", name,
                "--ip", "127.0.0.1"]
        args += ["--agent"] if agent else ["--id", str(node_id)]
        if dns:
            args += ["--dns", dns]
        if days is not None:
            args += ["--days", str(days)]
        run(args)
        return (os.path.join(pki or self.pki, name + ".crt"),
                os.path.join(pki or self.pki, name + ".key"))

    def spawn(self, name, args):
        p = Proc(name, args, os.path.join(self.dir, name + ".log"))
        self.procs.append(p)
        return p

    # -- nodes -------------------------------------------------------------------------------

    def node(self, i):
        return self.nodes[i]

    def bootstrap_nodes(self):
        return [self.nodes[i] for i in self.bootstrap_ids]

    def live(self):
        return [n for n in self.nodes.values() if n.alive() and not n.paused]

    def start_all(self):
        for n in self.bootstrap_nodes():
            n.start(wait=False)
        for n in self.bootstrap_nodes():
            wait_until("%s serves its web port" % n.name, 30, n.web_up)

    def statuses(self, nodes):
        """/api/v1/cluster of every node, fetched in parallel (so they describe about the same
        moment). A node that does not answer gives None."""
        for n in nodes:
            if n.p is not None and not n.alive():
                fail("%s exited unexpectedly (status %s)" % (n.name, n.p.returncode))

        def get(n):
            try:
                return n.cluster()
            except (OSError, ValueError):
                return None
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(nodes)) as ex:
            return list(ex.map(get, nodes))

    def wait_leader(self, nodes=None, timeout=30):
        """Waits until one of nodes (default: every live node) leads with its barrier
        committed (leader_ready) and every one of nodes names it as leader. Returns it."""
        nodes = nodes or self.live()
        last = {}

        def agreed():
            sts = self.statuses(nodes)
            last["st"] = [(n.name, s and s["state"], s and (s["leader"] or {}).get("id"),
                           s and s["leader_ready"]) for n, s in zip(nodes, sts)]
            if any(s is None for s in sts):
                return None
            ids = {(s["leader"] or {}).get("id") for s in sts}
            if len(ids) != 1 or None in ids:
                return None
            lid = ids.pop()
            leader = self.nodes.get(lid)
            if leader not in nodes:
                return None
            ls = sts[nodes.index(leader)]
            if ls["state"] != "leader" or not ls["leader_ready"]:
                return None
            return leader
        try:
            return wait_until("a leader all of %s agree on" % nodes, timeout, agreed)
        except Failure as e:
            fail("%s; last seen (name, state, leader, leader_ready): %s" % (e, last.get("st")))

    def wait_converged(self, nodes=None, timeout=60):
        """Waits until every one of nodes reports the same applied_index and fsm_hash in one
        parallel poll (entries keep arriving, so it retries until they line up). Two nodes
        ever reporting different hashes at the same applied index fail at once: that is
        divergence. Returns the (index, hash) they agreed on."""
        nodes = nodes or self.live()
        seen = {}   # applied index -> (hash, node name) as first reported
        last = {}

        def converged():
            sts = self.statuses(nodes)
            for n, s in zip(nodes, sts):
                if s is None:
                    continue
                idx, h = s["applied_index"], s["fsm_hash"]
                if idx in seen and seen[idx][0] != h:
                    fail("DIVERGENCE: at applied index %d %s reports fsm_hash %s but %s "
                         "reported %s" % (idx, n.name, h, seen[idx][1], seen[idx][0]))
                seen.setdefault(idx, (h, n.name))
            last["st"] = [(n.name, s and s["applied_index"], s and s["fsm_hash"][:12])
                          for n, s in zip(nodes, sts)]
            if any(s is None for s in sts):
                return None
            pairs = {(s["applied_index"], s["fsm_hash"]) for s in sts}
            if len(pairs) == 1:
                return pairs.pop()
            return None
        try:
            return wait_until("%s converge on one applied index and fsm_hash" % nodes, timeout,
                              converged, interval=0.05)
        except Failure as e:
            if "DIVERGENCE" in str(e):
                raise
            fail("%s; last seen: %s" % (e, last.get("st")))

    def metrics(self, node):
        return node.metrics()

    # -- cleanup -----------------------------------------------------------------------------

    def kill_everything(self):
        for n in self.nodes.values():
            try:
                n.kill()
            except Exception:  # noqa: BLE001 - cleanup goes on whatever happens
                pass
        for p in self.procs:
            p.kill()

    def sanitizer_reports(self):
        """Names of logs that hold a sanitizer report."""
        bad = []
        for n in self.nodes.values():
            try:
                with open(n.log, errors="replace") as f:
                    if SANITIZER_RE.search(f.read()):
                        bad.append(n)
            except OSError:
                pass
        return bad

    def dump_logs(self):
        for n in self.nodes.values():
            if os.path.exists(n.log):
                print("---- %s (last %d lines of %s) ----" % (n.name, LOG_TAIL_LINES, n.log),
                      file=sys.stderr)
                print(n.log_tail(), file=sys.stderr)
        for p in self.procs:
            try:
                with open(p.log, errors="replace") as f:
                    text = f.read()[-3000:]
            except OSError:
                continue
            if text.strip():
                print("---- %s ----\n%s" % (p.name, text), file=sys.stderr)

    def remove(self):
        if self in _registry:
            _registry.remove(self)
        shutil.rmtree(self.dir, ignore_errors=True)


def _emergency_cleanup():
    for c in list(_registry):
        c.kill_everything()
        c.remove()


atexit.register(_emergency_cleanup)


def _on_signal(signum, frame):
    raise Failure("interrupted by signal %d" % signum)


def _on_alarm(signum, frame):
    raise Failure("the script ran for more than %d s" % SCRIPT_DEADLINE_S)


def main(test, **cluster_args):
    """Runs test(cluster) on a new Cluster(**cluster_args); exits 0 on success, 1 with a
    "FAIL: ..." line and the node logs otherwise. Stops the nodes still running (each must
    exit 0), fails on any sanitizer report, and always removes the temp dir."""
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, _on_signal)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(SCRIPT_DEADLINE_S)
    c = None
    rc = 0
    try:
        c = Cluster(**cluster_args)
        test(c)
        for n in c.nodes.values():
            if n.alive():
                n.stop()
        bad = c.sanitizer_reports()
        check(not bad, "sanitizer report in the log of %s" % bad)
        ok("every node stopped cleanly on SIGTERM; no sanitizer reports")
    except Failure as e:
        print("FAIL: %s" % e, file=sys.stderr, flush=True)
        rc = 1
    except Exception:  # noqa: BLE001 - any error is a failed test, with its traceback
        traceback.print_exc()
        print("FAIL: unexpected error (traceback above)", file=sys.stderr, flush=True)
        rc = 1
    finally:
        signal.alarm(0)
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        if c is not None:
            c.kill_everything()
            if rc != 0:
                c.dump_logs()
                bad = c.sanitizer_reports()
                if bad:
                    print("FAIL: sanitizer report in the log of %s" % bad, file=sys.stderr)
            c.remove()
    sys.exit(rc)


# ---- helpers for what tests look at ---------------------------------------------------------

def vantages_in_targets(doc, target="www"):
    """{vantage: latest TLS result timestamp} for target in an /api/v1/targets document."""
    out = {}
    for t in doc["targets"]:
        if t["name"] != target:
            continue
        for v in t["vantages"]:
            if "tls" in v:
                out[v["vantage"]] = v["tls"]["ts"]
    return out


def series_points(node, metric, target=None, since="-10m"):
    """{series key: [(ts, value), ...]} for a metric from a node's /api/v1/series."""
    q = "/api/v1/series?name=%s&from=%s" % (metric, since)
    if target:
        q += "&target=%s" % target
    doc = node.api(q)
    return {s["key"]: [tuple(p) for p in s["points"]] for s in doc["series"]}


def tool(name):
    path = os.path.join(TOOLS, name)
    check(os.access(path, os.X_OK), "tool %s not built (LBWATCH_TOOLS=%s)" % (name, TOOLS))
    return path
