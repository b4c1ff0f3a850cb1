#!/usr/bin/env python3
"""alert_failover.py - a notification survives the death of the leader that was delivering
it, and a paused leader sends nothing once it wakes up.

kill -9: target a goes down; the leader commits the notification intent and posts it to a
webhook sink that holds every answer 8 s, so the intent is committed with no receipt. A
follower already serves the intent's idempotency key; the leader is killed in that window.
The new leader delivers the same intent again with the same key and the same body, and
records its receipt: deduplicated by key the sink holds exactly one notification. The killed
node restarts and converges, with the delivered intent in its ledger.

SIGSTOP: target b goes down; its receiver fails its first three requests (503), so the
intent waits for a retry. The leader is paused after the first failed attempt; a new leader
delivers the intent (same key) until the sink accepts it. After SIGCONT the old leader steps
down and sends nothing: no request reaches the sink after the new leader's success, no key
is accepted twice, and its log shows no delivery after it woke up."""
import os
import sys
import time

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import alertfx as af  # noqa: E402
import lbwcluster as lc  # noqa: E402

SLOW_DELAY_S = 8        # the slow sink answers this late: the kill happens before
FLAKY_FAILS = 3         # the flaky sink fails this many requests first
AFTER_RESUME_S = 6      # how long the old leader is watched after SIGCONT
def setup(c):
    www = ("%s/www.crt" % c.pki, "%s/www.key" % c.pki)
    c.ta = af.TlsTarget(c, "target-a", *www)
    c.tb = af.TlsTarget(c, "target-b", *www)
    c.slow = af.WebhookSink(c, "slow", "--delay", str(SLOW_DELAY_S))
    c.flaky = af.WebhookSink(c, "flaky", "--fail-first", str(FLAKY_FAILS), "--status", "503")
    c.ops = af.WebhookSink(c, "ops")
    c.targets = af.www_targets(c, {"a": c.ta, "b": c.tb})
    c.extra_config = """\
default_rules:
  disable: [%s]
rules:
  - name: ProbeFailing
    severity: critical
    min_vantages: 2
    annotations: {summary: "{{ $labels.target }} fails its TLS probe"}
    threshold: {metric: probe_success, match: {probe: tls}, agg: last, window: 1m,
                op: "==", value: 0}
alerting:
  evaluation_interval: 1s
  external_url: http://lbwatch.alerts.test/
  receivers:
    - name: slow
      webhook: {url: "%s", timeout: 30s}
    - name: flaky
      webhook: {url: "%s"}
    - name: ops
      webhook: {url: "%s"}
  route:
    receiver: slow
    group_by: [alertname, target]
    group_wait: 1s
    group_interval: 1m
    repeat_interval: 1h
    routes:
      - {match: {target: b}, receiver: flaky}
      - {match: {alertname: NotificationsFailing}, receiver: ops}
""" % (af.ALL_DEFAULT_RULES, c.slow.url, c.flaky.url, c.ops.url)


def log_from(node, offset):
    with open(node.log, errors="replace") as f:
        f.seek(offset)
        return f.read()


def only_intent(node, receiver):
    got = af.intents(node, receiver)
    lc.check(len(got) <= 1, "%s serves %d intents for %s: %r" % (node.name, len(got),
                                                                 receiver, got))
    return got[0] if got else None


def targets_up(nodes):
    """Every node has a successful TLS result of a and b from every vantage."""
    want = {n.name for n in nodes}
    for n in nodes:
        doc = n.api("/api/v1/targets")
        for t in doc["targets"]:
            ok = {v["vantage"] for v in t["vantages"] if v.get("tls", {}).get("success")}
            if ok != want:
                return False
    return True


def kill_while_delivering(c, nodes):
    leader = c.wait_leader()
    c.ta.stop()
    first = c.slow.wait_records(1, 60, "the slow sink receives the notification about a")[0]
    # the sink holds its answer SLOW_DELAY_S: the intent is committed without a receipt
    sender = c.wait_leader()
    lc.check(sender is leader, "leadership moved from %s to %s while a went down"
             % (leader.name, sender.name))
    follower = [n for n in nodes if n is not leader][0]
    intent = lc.wait_until("%s serves the intent for slow" % follower.name, 10,
                           lambda: only_intent(follower, "slow"))
    key = intent["idempotency_key"]
    waited = time.time() - first["received_ms"] / 1000
    lc.check(not intent["delivered"] and intent["attempts"] == 0,
             "the intent has a receipt before the kill: %r" % intent)
    lc.check(waited < SLOW_DELAY_S - 1, "%.1f s passed since the first delivery: too close to "
             "the sink's answer to kill the leader in the window" % waited)
    lc.check(af.key_of(first) == key and first["json"]["alerts"][0]["labels"]["target"] == "a",
             "first delivery: key %r (ledger %r), alerts %r"
             % (af.key_of(first), key, first["json"]["alerts"]))
    leader.kill()
    lc.ok("%s posted intent %d (key %s...) to a sink that answers in %d s; %s serves it "
          "undelivered; kill -9 %s %.1f s after the post"
          % (leader.name, intent["id"], key[:12], SLOW_DELAY_S, follower.name, leader.name,
             waited))

    survivors = [n for n in nodes if n is not leader]
    new = c.wait_leader(nodes=survivors, timeout=20)
    recs = c.slow.wait_records(2, 40, "the new leader delivers the intent again")
    done = af.wait_agree(survivors, "the survivors record the intent's receipt",
                         lambda n: (lambda i: i and i["delivered"] and
                                    (i["id"], i["idempotency_key"], i["attempts"]))(
                                        only_intent(n, "slow")), timeout=30)
    lc.check(done == (intent["id"], key, 1), "delivered intent (id, key, attempts) %r, want "
             "(%d, %s, 1)" % (done, intent["id"], key))
    lc.check(af.key_of(recs[1]) == key and recs[1]["body"] == recs[0]["body"],
             "the new leader's delivery differs: key %r, body %r vs %r"
             % (af.key_of(recs[1]), recs[1]["body"], recs[0]["body"]))
    lc.check("intent %d delivered to slow" % intent["id"] in log_from(new, 0),
             "%s's log does not show it delivered intent %d" % (new.name, intent["id"]))
    rep = c.slow.report()
    lc.check(rep["requests"] == 2 and rep["keys"] == 1 and rep["duplicates"] == {key: 2} and
             rep["without_key"] == 0, "slow sink report: %r" % rep)
    lc.ok("%s leads and delivers intent %d again with the same key and body; deduplicated by "
          "key the sink holds exactly 1 notification (report %r)" % (new.name, intent["id"], rep))

    leader.start()
    c.wait_leader(nodes=nodes)
    idx, h = c.wait_converged(nodes)
    again = only_intent(leader, "slow")
    lc.check(again and again["delivered"] and again["idempotency_key"] == key,
             "restarted %s serves intent %r" % (leader.name, again))
    lc.ok("restarted %s converges (applied %d, %s...) with the delivered intent"
          % (leader.name, idx, h[:12]))


def pause_while_retrying(c, nodes):
    leader = c.wait_leader(nodes=nodes)
    c.tb.stop()
    c.flaky.wait_records(1, 60, "the flaky sink receives the notification about b")
    leader.pause()
    at_pause = c.flaky.records()
    lc.check(all(r["status"] == 503 for r in at_pause),
             "the sink accepted the notification before %s could be paused: %r"
             % (leader.name, [r["status"] for r in at_pause]))
    lc.check("notify intent for flaky" in log_from(leader, 0),
             "the paused node %s did not plan the intent for flaky" % leader.name)
    others = [n for n in nodes if n is not leader]
    new = c.wait_leader(nodes=others, timeout=20)
    lc.wait_until("the new leader gets the notification accepted", 40,
                  lambda: any(r["status"] == 200 for r in c.flaky.records()))
    intent = af.wait_agree(others, "the others record the delivery",
                           lambda n: (lambda i: i and i["delivered"] and i)(
                               only_intent(n, "flaky")), timeout=20)
    key = intent["idempotency_key"]
    before = c.flaky.records()
    lc.ok("SIGSTOP %s after %d failed attempt(s); %s leads and the intent is delivered "
          "(attempts %d, key %s...)" % (leader.name, len(at_pause), new.name,
                                        intent["attempts"], key[:12]))

    offset = os.path.getsize(leader.log)
    t_resume = time.monotonic()
    leader.resume()
    c.wait_leader(nodes=nodes, timeout=20)
    time.sleep(max(0.0, t_resume + AFTER_RESUME_S - time.monotonic()))
    after = c.flaky.records()
    log = log_from(leader, offset)
    lc.check(len(after) == len(before), "the sink got %d more request(s) after SIGCONT: %r"
             % (len(after) - len(before), af.brief(after[len(before):])))
    lc.check(all(af.key_of(r) == key for r in after), "keys at the sink: %r"
             % [af.key_of(r) for r in after])
    lc.check(sum(r["status"] == 200 for r in after) == 1,
             "the sink accepted %d requests" % sum(r["status"] == 200 for r in after))
    lc.check("no longer leading" in log, "%s's log after SIGCONT does not show it stepped "
             "down:\n%s" % (leader.name, log))
    lc.check("delivered to flaky" not in log and "to flaky failed" not in log,
             "%s delivered after SIGCONT:\n%s" % (leader.name, log))
    rep = c.flaky.report()
    lc.check(rep["keys"] == 1 and rep["by_status"].get("200") == 1 and rep["without_key"] == 0,
             "flaky sink report: %r" % rep)
    others = [r["json"]["alerts"] for r in c.ops.records()]
    lc.check(all(a["labels"]["alertname"] == "NotificationsFailing" and
                 a["labels"]["receiver"] == "flaky" for alerts in others for a in alerts),
             "the ops receiver got more than NotificationsFailing for flaky: %r" % others)
    lc.ok("SIGCONT %s: it steps down and sends nothing in %d s; the sink accepted key %s... "
          "once (report %r)" % (leader.name, AFTER_RESUME_S, key[:12], rep))
    c.wait_converged(nodes)


def test(c):
    c.start_all()
    nodes = c.bootstrap_nodes()
    leader = c.wait_leader()
    lc.wait_until("every node has successful results of a and b from every vantage", 40,
                  lambda: targets_up(nodes))
    lc.check(c.slow.records() == [] and c.flaky.records() == [],
             "notifications before any target went down")
    lc.ok("3 nodes up, %s leads, targets a and b up" % leader.name)
    kill_while_delivering(c, nodes)
    pause_while_retrying(c, nodes)


if __name__ == "__main__":
    lc.main(lambda c: (setup(c), test(c)), nodes=3, spares=0)
