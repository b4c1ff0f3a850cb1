"""alertfx.py - what the alerting integration tests (tests/integration/alert_*.py) share: the
real sinks notifications go to, TLS targets the tests bring up and down, and readers of the
alert documents every node serves.

Python 3, standard library only; builds on lbwcluster.py (every process is spawned through
the Cluster, so it is killed and its files removed with it).

    hook = WebhookSink(c, "hook", "--delay", "5")     # tests/support/webhook_sink.py
    hook.url, hook.records(), hook.report(), hook.wait_records(n, timeout)
    mail = SmtpSink(c, "mail", cert, key, user, password)   # STARTTLS required + AUTH
    mail.port, mail.records(), mail.wait_records(n, timeout)
    t = TlsTarget(c, "shop", cert, key); t.stop(); t.start(cert2, key2)   # openssl s_server
    intents(node, receiver=None)   /api/v1/notifications intents, newest first
    alerts(node, name=None)        /api/v1/alerts entries
    key_of(record)                 a webhook record's Idempotency-Key
    brief(records)                 webhook records, short, for failure messages
    wait_agree(nodes, what, fn, timeout)  fn(node) -> value, equal and true on every node
    ALL_DEFAULT_RULES              every built-in rule, for `default_rules: {disable: [...]}`
    www_targets(c, {name: TlsTarget})   targets: YAML for TLS targets serving www.test
"""

import json
import os
import sys
import time

import lbwcluster as lc

SUPPORT = os.path.dirname(os.path.abspath(__file__))
WEBHOOK_SINK = os.path.join(SUPPORT, "webhook_sink.py")
SMTP_SINK = os.path.join(SUPPORT, "smtp_sink.py")
SYSTEM_PYTHON = "/usr/bin/python3"      # smtp_sink needs Debian's python3-aiosmtpd

# The built-in default rules (node/ruleconf.c), so a test can turn them all off and alert on its
# own rules alone. An unknown name is a config error, so a renamed rule fails loudly here.
ALL_DEFAULT_RULES = ("CertExpiringSoon, CertExpiryCritical, CertHostnameMismatch, "
                     "CertChainUntrusted, TargetDown, HandshakeSlow, BackendServerDown, "
                     "BackendDown, Backend5xxRatioHigh, RequestsDeniedSpike, "
                     "ConnectionsNearLimit, ProcessDown, ProcessFileDescriptorsHigh, "
                     "HostCPUBusy, HostMemoryLow, HostFileDescriptorsHigh")


def www_targets(c, targets):
    """The targets: items (Cluster(targets=...)) for {name: TlsTarget} serving www.test
    certificates of the cluster CA."""
    return "".join("  - name: %s\n    address: %s\n    server_name: www.test\n"
                   "    ca_file: %s/ca.crt\n" % (name, t.address, c.pki)
                   for name, t in targets.items())


def _read_jsonl(path):
    """The complete JSON lines of path (a line still being written is left out)."""
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.endswith("\n") and line.strip():
                    out.append(json.loads(line))
    except FileNotFoundError:
        pass
    return out


class _Sink:
    """A sink process that appends one JSON line per request to DIR/NAME.jsonl."""

    def __init__(self, c, name, argv):
        self.name = name
        self.port = lc.free_ports(1)[0]
        self.out = os.path.join(c.dir, name + ".jsonl")
        self.proc = c.spawn(name, argv + ["--port", str(self.port), "--out", self.out])
        lc.wait_until("%s listens on %d" % (name, self.port), 20, self._up)

    def _up(self):
        if not self.proc.alive():
            lc.fail("%s exited while starting (see %s)" % (self.name, self.proc.log))
        return lc.port_open(self.port)

    def records(self):
        return _read_jsonl(self.out)

    def wait_records(self, n, timeout, what=None):
        """Waits until at least n records exist; returns them all."""
        return lc.wait_until(what or "%s has %d record(s)" % (self.name, n), timeout,
                             lambda: len(self.records()) >= n and self.records())


class WebhookSink(_Sink):
    """tests/support/webhook_sink.py on 127.0.0.1 (plain HTTP); extra: its options."""

    def __init__(self, c, name, *extra):
        super().__init__(c, name, [sys.executable, WEBHOOK_SINK] + list(extra))
        self.url = "http://127.0.0.1:%d/%s" % (self.port, name)

    def report(self):
        """webhook_sink.py --report: requests, by_status, keys, duplicates, without_key."""
        p = lc.run([sys.executable, WEBHOOK_SINK, "--report", self.out], timeout=30)
        return json.loads(p.stdout)


class SmtpSink(_Sink):
    """tests/support/smtp_sink.py with STARTTLS required and AUTH for user/password."""

    def __init__(self, c, name, cert, key, user, password):
        super().__init__(c, name, [SYSTEM_PYTHON, SMTP_SINK, "--tls", "starttls", "--cert",
                                   cert, "--key", key, "--user", user, "--password", password])


class TlsTarget:
    """`openssl s_server -www` on a fixed 127.0.0.1 port, stopped and restarted at will."""

    def __init__(self, c, name, cert, key):
        self.c, self.name = c, name
        self.port = lc.free_ports(1)[0]
        self.address = "127.0.0.1:%d" % self.port
        self.proc = None
        self.start(cert, key)

    def start(self, cert, key):
        lc.check(self.proc is None or not self.proc.alive(), "%s runs already" % self.name)
        # the port was just closed: a bind can fail for a moment, so retry the start
        for _ in range(20):
            self.proc = self.c.spawn(self.name, [
                "openssl", "s_server", "-quiet", "-www", "-accept", self.address,
                "-cert", cert, "-key", key])
            if lc.wait_until("%s listens or exits" % self.name, 10,
                             lambda: lc.port_open(self.port) or not self.proc.alive()) \
                    and self.proc.alive():
                return
            time.sleep(0.5)
        lc.fail("openssl s_server for %s cannot listen on %s" % (self.name, self.address))

    def stop(self):
        self.proc.kill()
        lc.wait_until("%s no longer accepts" % self.name, 10,
                      lambda: not lc.port_open(self.port))


def key_of(record):
    return record.get("headers", {}).get("idempotency-key")


def brief(records):
    """What failure messages show of webhook records: number, status, key, payload status,
    (alertname, target) of each alert, time received."""
    out = []
    for r in records:
        doc = r.get("json") or {}
        out.append((r.get("n"), r.get("status"), key_of(r), doc.get("status"),
                    [(a["labels"].get("alertname"), a["labels"].get("target"))
                     for a in doc.get("alerts", [])], r.get("received")))
    return out


def intents(node, receiver=None):
    doc = node.api("/api/v1/notifications")
    return [i for i in doc["intents"] if receiver is None or i["receiver"] == receiver]


def alerts(node, name=None):
    return [a for a in node.api("/api/v1/alerts") if name is None or a["name"] == name]


def wait_agree(nodes, what, fn, timeout=30):
    """Waits until fn(node) gives the same true value on every node; returns it."""
    last = {}

    def agreed():
        vals = [fn(n) for n in nodes]
        last["v"] = vals
        return vals[0] if vals[0] and all(v == vals[0] for v in vals) else None
    try:
        return lc.wait_until(what, timeout, agreed)
    except lc.Failure as e:
        lc.fail("%s; last seen per node %s: %r" % (e, [n.name for n in nodes], last.get("v")))
