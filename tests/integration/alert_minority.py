#!/usr/bin/env python3
"""alert_minority.py - a node cut off from the majority never pages; once the majority is
back, the cluster pages exactly once.

Target a goes down and its notification fails at the receiver (a webhook sink that answers
503 to its first three requests), so a committed intent waits for its retry. Then the two
followers are frozen with SIGSTOP: the remaining node (the leader) says in /api/v1/cluster
that it has no quorum, and although its retry comes due and target b goes down as well (a
condition that would page within group_wait + an evaluation), the sink receives nothing for
longer than group_wait + several evaluation intervals and retry backoffs. After SIGCONT the
three agree on a leader, and the sink accepts exactly one notification for a and one for b,
each carried by the idempotency key of its intent in the ledger; nothing else follows."""
import os
import sys
import time

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import alertfx as af  # noqa: E402
import lbwcluster as lc  # noqa: E402

FAILS = 3               # the sink answers 503 to this many requests first
CUT_OFF_S = 12          # how long the majority stays frozen
QUIET_S = 5             # after both deliveries, nothing more may come
def setup(c):
    www = ("%s/www.crt" % c.pki, "%s/www.key" % c.pki)
    c.ta = af.TlsTarget(c, "target-a", *www)
    c.tb = af.TlsTarget(c, "target-b", *www)
    c.hook = af.WebhookSink(c, "hook", "--fail-first", str(FAILS), "--status", "503")
    c.ops = af.WebhookSink(c, "ops")
    c.targets = af.www_targets(c, {"a": c.ta, "b": c.tb})
    c.extra_config = """\
default_rules:
  disable: [%s]
rules:
  - name: ProbeFailing
    severity: critical
    min_vantages: 2
    threshold: {metric: probe_success, match: {probe: tls}, agg: last, window: 1m,
                op: "==", value: 0}
alerting:
  evaluation_interval: 1s
  receivers:
    - name: hook
      webhook: {url: "%s"}
    - name: ops
      webhook: {url: "%s"}
  route:
    receiver: hook
    group_by: [alertname, target]
    group_wait: 1s
    group_interval: 1m
    repeat_interval: 1h
    routes:
      - {match: {alertname: NotificationsFailing}, receiver: ops}
""" % (af.ALL_DEFAULT_RULES, c.hook.url, c.ops.url)


def deliveries(node):
    """This node's delivery attempts, {result: count}, from its /metrics."""
    m = node.metrics()
    got = {r: m.get('lbwatch_notification_deliveries_total{result="%s",vantage="%s"}'
                    % (r, node.name)) for r in ("ok", "failed")}
    lc.check(None not in got.values(), "no delivery counters in %s's /metrics" % node.name)
    return got


def target_of(rec):
    return rec["json"]["alerts"][0]["labels"]["target"]


def test(c):
    c.start_all()
    nodes = c.bootstrap_nodes()
    leader = c.wait_leader()
    c.wait_converged(nodes)
    lc.ok("3 nodes up, %s leads" % leader.name)

    c.ta.stop()
    c.hook.wait_records(1, 60, "the first (failing) notification about a")
    followers = [n for n in nodes if n is not leader]
    for n in followers:
        n.pause()
    t_cut = time.monotonic()

    def settled():
        """The sink's requests once the leader logged and counted each one's failure (the
        sink records a request before it answers)."""
        recs = c.hook.records()
        with open(leader.log, errors="replace") as f:
            logged = f.read().count("to hook failed (attempt")
        sent = deliveries(leader)
        return (recs, sent) if logged == len(recs) == sent["failed"] and not sent["ok"] \
            else None
    at_cut, sends = lc.wait_until("%s logs and counts every failed attempt the sink got"
                                  % leader.name, 10, settled)
    offset = os.path.getsize(leader.log)
    lc.check(at_cut and all(r["status"] == 503 and target_of(r) == "a" for r in at_cut),
             "at the cut: %r" % af.brief(at_cut))
    lc.ok("a is down; its notification failed %d time(s); SIGSTOP %s"
          % (len(at_cut), [n.name for n in followers]))

    c.tb.stop()
    st = lc.wait_until("%s reports no quorum" % leader.name, 15,
                       lambda: (lambda s: s if s["has_quorum"] is False else None)(
                           leader.cluster()))
    lc.wait_until("%s no longer leads" % leader.name, 15,
                  lambda: not leader.cluster()["leader_ready"])
    lc.check(sum(m["reachable"] for m in st["members"]) == 1,
             "members reachable from %s: %r" % (leader.name, st["members"]))
    time.sleep(max(0.0, t_cut + CUT_OFF_S - time.monotonic()))
    during = c.hook.records()
    log = open(leader.log, errors="replace").read()[offset:]
    lc.check(len(during) == len(at_cut), "%s, cut off, sent %d notification(s): %r"
             % (leader.name, len(during) - len(at_cut), af.brief(during[len(at_cut):])))
    lc.check(c.ops.records() == [], "the ops receiver got %r while cut off" % c.ops.records())
    lc.check(deliveries(leader) == sends, "%s's delivery attempts went from %r to %r while cut "
             "off" % (leader.name, sends, deliveries(leader)))
    lc.check(" delivered to " not in log and "failed (attempt" not in log,
             "%s's log shows a delivery while cut off:\n%s" % (leader.name, log))
    lc.ok("%s alone: has_quorum false, not leading; b is down too; it sends nothing in %d s "
          "(its retry of a was due)" % (leader.name, CUT_OFF_S))

    for n in followers:
        n.resume()
    new = c.wait_leader(nodes=nodes, timeout=30)
    lc.ok("SIGCONT: %s leads again over all three" % new.name)

    def accepted():
        ok = [r for r in c.hook.records() if r["status"] == 200]
        return ok if {target_of(r) for r in ok} == {"a", "b"} else None
    lc.wait_until("the sink accepts a notification for a and one for b", 60, accepted)
    t_done = time.monotonic()
    delivered = af.wait_agree(nodes, "every node records both intents delivered", lambda n: (
        lambda ins: sorted((i["alerts"][0]["labels"]["target"], i["idempotency_key"])
                           for i in ins) if len(ins) == 2 and all(i["delivered"] for i in ins)
        else None)(af.intents(n, "hook")), timeout=30)
    time.sleep(max(0.0, t_done + QUIET_S - time.monotonic()))
    recs = c.hook.records()
    ok = sorted((target_of(r), af.key_of(r)) for r in recs if r["status"] == 200)
    lc.check(ok == delivered, "accepted (target, key) %r, the ledger's delivered intents %r"
             % (ok, delivered))
    lc.check({(target_of(r), af.key_of(r)) for r in recs} == set(delivered),
             "requests with other keys: %r" % [(target_of(r), af.key_of(r)) for r in recs])
    rep = c.hook.report()
    lc.check(rep["keys"] == 2 and rep["by_status"].get("200") == 2 and rep["without_key"] == 0,
             "sink report %r" % rep)
    lc.check(all(a["labels"]["alertname"] == "NotificationsFailing"
                 for r in c.ops.records() for a in r["json"]["alerts"]),
             "ops got %r" % af.brief(c.ops.records()))
    lc.ok("after recovery: exactly one accepted notification for a and one for b, with their "
          "intents' keys (%d requests in all, report %r)" % (len(recs), rep))
    c.wait_converged(nodes)


if __name__ == "__main__":
    lc.main(lambda c: (setup(c), test(c)), nodes=3, spares=0)
