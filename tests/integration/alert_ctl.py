#!/usr/bin/env python3
"""alert_ctl.py - operating alerts with `lbwatch ctl` on a 3-node cluster: writes without
the token are refused (ctl without a token, and the API with none or a wrong one: 401) and
change nothing; `ctl silence` (sent to a follower, which names the leader) creates a silence
that every node serves; the alert it matches fires but is not delivered, and `ctl alerts`
shows it silenced; `ctl unsilence` expires the silence on every node and the alert is then
delivered exactly once; `ctl ack` records the acknowledgement on every node and `ctl alerts`
shows who acknowledged it; unknown silences and alerts are refused."""
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import alertfx as af  # noqa: E402
import lbwcluster as lc  # noqa: E402

ALERT = "ProbeFailing"
SILENCED_S = 6          # a silenced alert stays undelivered this long (group_wait is 1 s)
def setup(c):
    c.ta = af.TlsTarget(c, "target-a", "%s/www.crt" % c.pki, "%s/www.key" % c.pki)
    c.hook = af.WebhookSink(c, "hook")
    c.targets = af.www_targets(c, {"a": c.ta})
    c.extra_config = """\
default_rules:
  disable: [%s]
rules:
  - name: %s
    severity: critical
    min_vantages: 2
    threshold: {metric: probe_success, match: {probe: tls}, agg: last, window: 1m,
                op: "==", value: 0}
alerting:
  evaluation_interval: 1s
  receivers:
    - name: hook
      webhook: {url: "%s"}
  route:
    receiver: hook
    group_by: [alertname, target]
    group_wait: 1s
    group_interval: 1m
    repeat_interval: 1h
""" % (af.ALL_DEFAULT_RULES, ALERT, c.hook.url)


def http(node, method, path, body=None, token=None):
    """(status, JSON answer) of a request to node."""
    req = urllib.request.Request(node.web + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def ctl_no_token(node, *args):
    return lc.run([lc.LBWATCH, "ctl", "-u", node.web] + list(args), check_rc=False)


def silences(node):
    return node.api("/api/v1/silences")


def the_alert(node):
    got = af.alerts(node, ALERT)
    return got[0] if len(got) == 1 else None


def refusals(c, nodes, leader, follower):
    p = ctl_no_token(follower, "silence", "--author", "mallory", "--duration", "1h",
                     "alertname=" + ALERT)
    lc.check(p.returncode == 2 and "need a token" in p.stderr,
             "ctl silence without a token: exit %d, %r" % (p.returncode, p.stderr))
    bad = os.path.join(c.dir, "wrong.token")
    with open(bad, "w") as f:
        f.write("not-the-token\n")
    p = lc.run([lc.LBWATCH, "ctl", "-u", follower.web, "-t", bad, "silence", "--author",
                "mallory", "--duration", "1h", "alertname=" + ALERT], check_rc=False)
    lc.check(p.returncode == 1 and "HTTP 401" in p.stderr,
             "ctl silence with a wrong token: exit %d, %r" % (p.returncode, p.stderr))
    body = {"matchers": {"alertname": ALERT}, "author": "mallory", "duration": "1h"}
    for token in (None, "not-the-token", ""):
        for method, path, b in (("POST", "/api/v1/silences", body),
                                ("DELETE", "/api/v1/silences/1", None),
                                ("POST", "/api/v1/alerts/0123456789abcdef/ack",
                                 {"author": "mallory"})):
            status, doc = http(leader, method, path, b, token)
            lc.check(status == 401 and "Bearer" in doc.get("error", ""),
                     "%s %s with token %r: %d %r" % (method, path, token, status, doc))
    for n in nodes:
        lc.check(silences(n) == [], "%s serves silences after refused writes: %r"
                 % (n.name, silences(n)))
    lc.ok("writes without the token are refused: ctl exits 2 without one and 1 (HTTP 401) "
          "with a wrong one; POST/DELETE silences and ack answer 401; no silence exists")


def test(c):
    os.environ.pop("LBWATCH_TOKEN", None)
    c.start_all()
    nodes = c.bootstrap_nodes()
    leader = c.wait_leader()
    follower = [n for n in nodes if n is not leader][0]
    c.wait_converged(nodes)
    lc.ok("3 nodes up, %s leads" % leader.name)
    refusals(c, nodes, leader, follower)

    # ---- silence -------------------------------------------------------------------------
    p = follower.ctl("silence", "--author", "alice", "--duration", "30m", "--comment",
                     "maintenance of a", "alertname=" + ALERT, "target=a", "severity!=info")
    m = re.fullmatch(r"silence (\d+) created\n", p.stdout)
    lc.check(m, "ctl silence printed %r" % p.stdout)
    sid = int(m.group(1))
    want = [{"name": "alertname", "value": ALERT, "negate": False},
            {"name": "target", "value": "a", "negate": False},
            {"name": "severity", "value": "info", "negate": True}]
    sil = af.wait_agree(nodes, "every node serves silence %d" % sid, lambda n: (
        lambda s: s if len(s) == 1 else None)(silences(n)))[0]
    lc.check(sil["id"] == sid and sil["matchers"] == want and sil["author"] == "alice" and
             sil["comment"] == "maintenance of a" and sil["active"] and
             25 * 60000 < sil["ends_at"] - sil["starts_at"] <= 30 * 60000,
             "silence %r" % sil)
    out = follower.ctl("silences").stdout
    lc.check(re.search(r"^%d\s+active\s+in \d+m\s+alice\s+alertname=%s,target=a,severity!=info\s+"
                       r"maintenance of a$" % (sid, ALERT), out, re.M),
             "ctl silences:\n%s" % out)
    lc.ok("ctl silence (via follower %s) created silence %d; every node serves it; ctl "
          "silences lists it" % (follower.name, sid))

    c.ta.stop()
    alert = af.wait_agree(nodes, "every node serves %s firing, silenced by %d" % (ALERT, sid),
                          lambda n: (lambda a: a if a and a["state"] == "firing" and
                                     a["silenced_by"] == sid else None)(the_alert(n)),
                          timeout=60)
    fp = alert["fingerprint"]
    t_firing = time.monotonic()
    out = follower.ctl("alerts").stdout
    lc.check(re.search(r"^firing\s+critical\s+%s\s+\S+\s+%s\s+\S*target=a\S*\s+silenced by "
                       r"%d$" % (ALERT, fp, sid), out, re.M), "ctl alerts:\n%s" % out)
    time.sleep(max(0.0, t_firing + SILENCED_S - time.monotonic()))
    lc.check(c.hook.records() == [], "a silenced alert was delivered: %r"
             % af.brief(c.hook.records()))
    lc.check(af.intents(leader) == [], "intents for a silenced alert: %r" % af.intents(leader))
    lc.ok("a is down: %s %s fires on every node, silenced by %d; ctl alerts shows it; nothing "
          "delivered in %d s" % (ALERT, fp, sid, SILENCED_S))

    # ---- unsilence -------------------------------------------------------------------------
    p = follower.ctl("unsilence", str(sid))
    lc.check(p.stdout == "silence %d expired\n" % sid, "ctl unsilence printed %r" % p.stdout)
    now_ms = int(time.time() * 1000)
    exp = af.wait_agree(nodes, "every node serves silence %d expired" % sid, lambda n: (
        lambda s: s if len(s) == 1 and not s[0]["active"] else None)(silences(n)))[0]
    lc.check(exp["ends_at"] <= now_ms + 1000 and exp["id"] == sid, "expired silence %r" % exp)
    lc.check("(no active silences)" in follower.ctl("silences").stdout,
             "ctl silences still lists it")
    rec = c.hook.wait_records(1, 30, "the alert is delivered once unsilenced")[0]
    intent = af.wait_agree(nodes, "every node records the delivery", lambda n: (
        lambda ins: ins[0] if len(ins) == 1 and ins[0]["delivered"] else None)(
            af.intents(n, "hook")))
    lc.check(af.key_of(rec) == intent["idempotency_key"] and
             rec["json"]["alerts"][0]["fingerprint"] == fp and
             rec["json"]["status"] == "firing",
             "delivery %r, intent %r" % (af.brief([rec]), intent))
    lc.ok("ctl unsilence %d: expired on every node; the alert is delivered (key %s...)"
          % (sid, intent["idempotency_key"][:12]))

    # ---- ack -------------------------------------------------------------------------------
    p = follower.ctl("ack", fp, "--author", "bob", "--comment", "looking into it")
    lc.check(p.stdout == "acknowledged\n", "ctl ack printed %r" % p.stdout)
    ack = af.wait_agree(nodes, "every node records the acknowledgement", lambda n: (
        lambda a: a and a["acknowledged"])(the_alert(n)))
    lc.check(ack["by"] == "bob" and ack["comment"] == "looking into it" and ack["at"] > 0,
             "acknowledged %r" % ack)
    out = follower.ctl("alerts").stdout
    lc.check(re.search(r"^firing\s+critical\s+%s\s+.*%s.*acked by bob$" % (ALERT, fp), out,
                       re.M), "ctl alerts:\n%s" % out)
    p = follower.ctl("ack", "0123456789abcdef", "--author", "bob", check_rc=False)
    lc.check(p.returncode == 1 and "no such alert" in p.stderr,
             "ack of an unknown alert: exit %d %r" % (p.returncode, p.stderr))
    p = follower.ctl("unsilence", "999999", check_rc=False)
    lc.check(p.returncode == 1 and "no such silence" in p.stderr,
             "unsilence of an unknown silence: exit %d %r" % (p.returncode, p.stderr))
    lc.ok("ctl ack %s --author bob: every node serves the acknowledgement; ctl alerts shows "
          "it; unknown alerts and silences are refused" % fp)

    rep = c.hook.report()
    lc.check(rep["requests"] == 1 and rep["keys"] == 1, "sink report %r" % rep)
    lc.ok("exactly one notification in all (report %r)" % rep)
    c.wait_converged(nodes)


if __name__ == "__main__":
    lc.main(lambda c: (setup(c), test(c)), nodes=3, spares=0)
