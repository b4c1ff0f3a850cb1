"""lbwsingle.py - a harness for integration tests that run one standalone `lbwatch node`
against real servers on loopback (nginx, prometheus-node-exporter, ...).

Python 3, standard library only; the general helpers (fail, check, ok, wait_until, free_ports,
port_open, run, Proc) are lbwcluster's. A test script does:

    import lbwsingle as ls

    def test(s):                            # s: a Single, with its own temp dir s.dir
        s.spawn("nginx", [...])             # a helper process, killed at the end
        s.start_node(ls.node_config(s, targets_yaml))
        m = s.metrics()                     # {(name, frozenset(labels.items())): value}
        ...
        ls.ok("what was shown")

    ls.main(test, prefix="lbw-nginx.", deadline_s=60)

Every wait is bounded; the whole script is bounded by deadline_s (an alarm). Whatever happens
every process started here is killed and the temp dir removed; on failure the node's log and
the helpers' logs are printed. The node must stop with exit status 0 on SIGTERM, and its log
must hold no AddressSanitizer / LeakSanitizer / UBSan report.
"""

import os
import re
import signal
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

import lbwcluster as lc
from lbwcluster import check, fail, ok, wait_until, free_ports, port_open, run  # noqa: F401

LBWATCH = lc.LBWATCH
NODE_NAME = "it1"

SERIES_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """/metrics text -> {(name, frozenset((label, value), ...)): float}; label values stay
    escaped as written."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SERIES_RE.match(line)
        if m:
            out[(m.group(1), frozenset(LABEL_RE.findall(m.group(2) or "")))] = float(m.group(3))
    return out


def get(m, name, **labels):
    """The value of the series name{labels} in parsed metrics; fails when it is absent."""
    key = (name, frozenset(labels.items()))
    if key not in m:
        fail("no series %s%s on /metrics" % (name, labels))
    return m[key]


def names_of(m, **labels):
    """The metric names of every series carrying all of labels."""
    want = set(labels.items())
    return {name for name, ls in m if want <= ls}


class Single:
    """A temp dir, helper processes and at most one running node."""

    def __init__(self, prefix):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.procs = []
        self.node = None
        self.node_log = os.path.join(self.dir, "node.log")
        self.web = free_ports(1)[0]

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text):
        """Writes the file mode 0600 (secret files must not be readable by others)."""
        p = self.path(name)
        with open(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(text)
        return p

    def spawn(self, name, args):
        p = lc.Proc(name, args, self.path(name + ".log"))
        self.procs.append(p)
        return p

    def pki(self):
        """A cluster CA and a server certificate for www.test and 127.0.0.1:
        {"ca": ..., "crt": ..., "key": ...}."""
        d = self.path("pki")
        run([LBWATCH, "pki", "init", "--dir", d])
        run([LBWATCH, "pki", "issue", "--dir", d, "--name", "www", "--id", "99", "--ip",
             "127.0.0.1", "--dns", "www.test"])
        return {"ca": os.path.join(d, "ca.crt"), "crt": os.path.join(d, "www.crt"),
                "key": os.path.join(d, "www.key")}

    def check_config_error(self, name, text, want):
        """`lbwatch node --check-config` of text must exit 2 with want (a FILE:LINE:COL
        message, FILE being the written file's path) in its error output."""
        p = self.write(name, text)
        res = run([LBWATCH, "node", "--check-config", "-c", p], check_rc=False)
        want = want.replace("FILE", p)
        check(res.returncode == 2 and want in res.stderr,
              "check-config of %s: rc %d, %r (wanted %r)" % (name, res.returncode, res.stderr,
                                                             want))
        return res.stderr.strip()

    def start_node(self, config):
        run([LBWATCH, "node", "--check-config", "-c", config])
        self.node = lc.Proc("node", [LBWATCH, "node", "-c", config], self.node_log)
        wait_until("the node's web server", 30, lambda: port_open(self.web))

    def http(self, path, timeout=5):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.web, path),
                                    timeout=timeout) as r:
            return r.read().decode()

    def metrics_text(self):
        return self.http("/metrics")

    def metrics(self):
        return parse_metrics(self.metrics_text())

    def stop_node(self):
        """SIGTERM; the node must exit 0 within 30 s."""
        p = self.node.p
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            fail("the node did not stop within 30 s of SIGTERM")
        check(rc == 0, "the node exited %d on SIGTERM" % rc)

    def sanitizer_report(self):
        try:
            with open(self.node_log, errors="replace") as f:
                return lc.SANITIZER_RE.search(f.read()) is not None
        except OSError:
            return False

    def stop_helper(self, p, timeout=10):
        """SIGTERM, then SIGKILL after timeout s: a master process (nginx) stops its
        workers on SIGTERM, while on SIGKILL they would live on."""
        if p.alive():
            p.p.terminate()
            try:
                p.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        p.kill()

    def kill_everything(self):
        if self.node:
            self.node.kill()
        for p in self.procs:
            self.stop_helper(p)

    def dump_logs(self):
        for name, log in [("node", self.node_log)] + [(p.name, p.log) for p in self.procs]:
            try:
                with open(log, errors="replace") as f:
                    text = f.read()[-4000:]
            except OSError:
                continue
            if text.strip():
                print("---- %s (tail of %s) ----\n%s" % (name, log, text), file=sys.stderr)

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def node_config(s, targets, interval="1s", timeout="900ms"):
    """Writes node.yaml (node_config_text) and returns its path."""
    return s.write("node.yaml", node_config_text(s, targets, interval, timeout))


def node_config_text(s, targets, interval="1s", timeout="900ms"):
    """A standalone node it1 on s.web probing targets (YAML text of the items of `targets:`,
    indented by two spaces) every interval. The first target item is on line 10."""
    return ("""node:
  name: %s
  data_dir: %s
web:
  listen: 127.0.0.1:%d
probes:
  interval: %s
  timeout: %s
targets:
%s""" % (NODE_NAME, s.path("data"), s.web, interval, timeout, targets))


def _on_signal(signum, frame):
    raise lc.Failure("interrupted by signal %d" % signum)


def main(test, prefix, deadline_s=60):
    """Runs test(Single); exits 0 on success, 1 with a "FAIL: ..." line and the logs
    otherwise. Stops the node (exit 0 required), fails on a sanitizer report, and always
    kills the helpers and removes the temp dir."""
    t0 = time.monotonic()

    def on_alarm(signum, frame):
        raise lc.Failure("the script ran for more than %d s" % deadline_s)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(deadline_s)
    s, rc = None, 0
    try:
        s = Single(prefix)
        test(s)
        if s.node and s.node.alive():
            s.stop_node()
        check(not s.sanitizer_report(), "sanitizer report in the node's log")
        ok("the node stopped cleanly on SIGTERM; no sanitizer reports (%.0f s in all)"
           % (time.monotonic() - t0))
    except lc.Failure as e:
        print("FAIL: %s" % e, file=sys.stderr, flush=True)
        rc = 1
    except Exception:  # noqa: BLE001 - any error is a failed test, with its traceback
        traceback.print_exc()
        print("FAIL: unexpected error (traceback above)", file=sys.stderr, flush=True)
        rc = 1
    finally:
        signal.alarm(0)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if s is not None:
            s.kill_everything()
            if rc != 0:
                s.dump_logs()
            s.remove()
    sys.exit(rc)
