#!/usr/bin/env python3
"""alert_delivery.py - a 3-node cluster probes a TLS target whose certificate expires in 5
days and pages about it exactly once per receiver: one signed Alertmanager-v4 webhook (its
X-Lbwatch-Signature checked here with HMAC-SHA256 over the body) and one e-mail over
STARTTLS with AUTH to a real SMTP sink (whose certificate the receiver trusts through its
ca_file), each carrying the idempotency key the replicated ledger holds; nothing more over a
few group intervals. Every node serves the same alert (fingerprint, state) and the
notification intents with their receipts. The certificate is then renewed (365 days, same
port): exactly one resolved notification per receiver follows, and nothing else."""
import base64
import email
import email.policy
import email.utils
import hashlib
import hmac
import os
import secrets
import sys
import time

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import alertfx as af  # noqa: E402
import lbwcluster as lc  # noqa: E402

ALERT = "CertExpiringSoon"
GROUP_INTERVAL_S = 3
QUIET_S = 3 * GROUP_INTERVAL_S      # "a few group intervals" without another notification
SMTP_USER = "lbwatch-test"
MAIL_FROM = "lbwatch@alerts.test"
MAIL_TO = "oncall@ops.test"


def secret_file(c, name):
    path = os.path.join(c.dir, name)
    value = secrets.token_hex(20)
    with open(path, "w") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)
    return path, value


def setup(c):
    """Target with a 5-day certificate, the two sinks, and the nodes' alerting config."""
    c.shop5 = c.issue("shop5", 0, agent=True, dns="shop.test", days=5)
    c.shop365 = c.issue("shop365", 0, agent=True, dns="shop.test", days=365)
    c.shop = af.TlsTarget(c, "shop", *c.shop5)
    c.hook_secret_file, c.hook_secret = secret_file(c, "hook.secret")
    c.smtp_pass_file, smtp_pass = secret_file(c, "smtp.pass")
    c.hook = af.WebhookSink(c, "hook")
    smtp_crt, smtp_key = c.issue("smtp", 0, agent=True, dns="localhost")
    c.mail = af.SmtpSink(c, "mail", smtp_crt, smtp_key, SMTP_USER, smtp_pass)
    c.targets = ("  - name: shop\n    address: %s\n    server_name: shop.test\n"
                 "    ca_file: %s/ca.crt\n" % (c.shop.address, c.pki))
    c.extra_config = """\
default_rules:
  disable: [HandshakeSlow]
alerting:
  evaluation_interval: 1s
  receivers:
    - name: hook
      webhook: {url: "%s", secret_file: %s}
    - name: mail
      email: {url: "smtp://127.0.0.1:%d", starttls: required, from: "%s", to: ["%s"],
              username: %s, password_file: %s, ca_file: %s/ca.crt}
  route:
    receiver: hook
    group_by: [alertname, target]
    group_wait: 1s
    group_interval: %ds
    repeat_interval: 1h
    routes:
      - {match: {alertname: %s}, receiver: hook, continue: true}
      - {match: {alertname: %s}, receiver: mail}
""" % (c.hook.url, c.hook_secret_file, c.mail.port, MAIL_FROM, MAIL_TO, SMTP_USER,
       c.smtp_pass_file, c.pki, GROUP_INTERVAL_S, ALERT, ALERT)


# ---- what the sinks got ------------------------------------------------------------------

def hooks(c, status=None):
    """The webhook records about ALERT (with the given payload status)."""
    out = []
    for r in c.hook.records():
        doc = r.get("json") or {}
        names = {a["labels"].get("alertname") for a in doc.get("alerts", [])}
        if ALERT in names and (status is None or doc.get("status") == status):
            out.append(r)
    return out


def parse_mail(rec):
    return email.message_from_string(rec["data"], policy=email.policy.default)


def mails(c, status=None):
    """(record, message) of the e-mails about ALERT ("FIRING" or "RESOLVED")."""
    out = []
    for r in c.mail.records():
        m = parse_mail(r)
        subject = str(m["Subject"] or "")
        if ALERT in subject and (status is None or subject.startswith("[%s" % status)):
            out.append((r, m))
    return out


def check_webhook(c, rec, key, status):
    doc = rec["json"]
    body = base64.b64decode(rec["body_base64"])
    want_sig = "sha256=" + hmac.new(c.hook_secret.encode(), body, hashlib.sha256).hexdigest()
    h = rec["headers"]
    lc.check(rec["method"] == "POST" and h.get("content-type", "").startswith(
        "application/json"), "webhook method/type: %s %r" % (rec["method"], h))
    lc.check(h.get("x-lbwatch-signature") == want_sig,
             "X-Lbwatch-Signature %r is not HMAC-SHA256(secret, body) %r"
             % (h.get("x-lbwatch-signature"), want_sig))
    lc.check(h.get("idempotency-key") == key,
             "Idempotency-Key %r, the ledger's intent says %r" % (h.get("idempotency-key"), key))
    lc.check(doc.get("version") == "4" and doc.get("status") == status and
             doc.get("receiver") == "hook", "webhook payload: version %r status %r receiver %r"
             % (doc.get("version"), doc.get("status"), doc.get("receiver")))
    a = doc["alerts"]
    lc.check(len(a) == 1 and a[0]["status"] == status and a[0]["labels"].get("alertname") ==
             ALERT and a[0]["labels"].get("target") == "shop" and
             a[0]["labels"].get("severity") == "warning",
             "webhook alerts: %r" % a)
    lc.check(doc.get("groupLabels") == {"alertname": ALERT, "target": "shop"},
             "groupLabels %r" % doc.get("groupLabels"))
    lc.check("shop" in a[0]["annotations"].get("summary", ""),
             "summary annotation %r" % a[0]["annotations"])
    return a[0]


def check_mail(rec, m, key, status):
    lc.check(rec["tls"] and rec["tls_version"] in ("TLSv1.2", "TLSv1.3"),
             "the e-mail did not come over TLS (STARTTLS): %r" % rec["tls_version"])
    lc.check(rec["authenticated"] and rec["user"] == SMTP_USER,
             "the e-mail was not sent with AUTH as %s: %r" % (SMTP_USER, rec["user"]))
    lc.check(rec["mail_from"] == MAIL_FROM and rec["rcpt_tos"] == [MAIL_TO],
             "envelope %r -> %r" % (rec["mail_from"], rec["rcpt_tos"]))
    date = email.utils.parsedate_to_datetime(str(m["Date"]))
    lc.check(date is not None and date.tzinfo is not None, "Date header %r" % m["Date"])
    lc.check(str(m["Message-ID"]) == "<%s@lbwatch>" % key,
             "Message-ID %r does not carry the ledger's key %s" % (m["Message-ID"], key))
    subject = str(m["Subject"])
    want = "[FIRING:1] %s" % ALERT if status == "firing" else "[RESOLVED] %s" % ALERT
    lc.check(subject.startswith(want) and "target=shop" in subject, "Subject %r" % subject)
    lc.check(str(m["From"]) == MAIL_FROM and str(m["To"]) == MAIL_TO,
             "From/To %r/%r" % (m["From"], m["To"]))
    lc.check(str(m["MIME-Version"]) == "1.0" and m.get_content_type() == "text/plain" and
             m.get_content_charset() == "utf-8" and
             str(m["Content-Transfer-Encoding"]) == "quoted-printable" and
             str(m["Auto-Submitted"]) == "auto-generated",
             "MIME headers: %r" % {k: str(v) for k, v in m.items()})
    body = m.get_content()
    lc.check(ALERT in body and "target: shop" in body and key in body and
             ("FIRING" if status == "firing" else "RESOLVED") in body,
             "e-mail body lacks the alert, its target or the key:\n%s" % body)


def intent_keys(node, status):
    """{receiver: intent} of the delivered intents about ALERT with alerts in status."""
    out = {}
    for i in af.intents(node):
        if i["alerts"] and i["alerts"][0]["labels"].get("alertname") == ALERT and \
                i["alerts"][0]["status"] == status:
            lc.check(i["receiver"] not in out,
                     "two %s intents for %s: %r" % (status, i["receiver"], i))
            out[i["receiver"]] = i
    return out


def receipts_agree(nodes, status):
    """Waits until every node serves the delivered intents of both receivers, the same."""
    def delivered(n):
        got = intent_keys(n, status)
        if set(got) != {"hook", "mail"} or not all(i["delivered"] for i in got.values()):
            return None
        return sorted((r, i["id"], i["idempotency_key"], i["attempts"], i["delivered_at"],
                       i["last_error"]) for r, i in got.items())
    agreed = af.wait_agree(nodes, "every node serves the delivered %s intents of hook and "
                           "mail" % status, delivered, timeout=30)
    for receiver, _id, key, attempts, at, err in agreed:
        lc.check(attempts == 1 and at and err is None,
                 "%s intent: attempts %r delivered_at %r last_error %r"
                 % (receiver, attempts, at, err))
    health = {h["name"]: h for h in nodes[0].api("/api/v1/notifications")["receivers"]}
    for receiver in ("hook", "mail"):
        h = health.get(receiver) or {}
        lc.check(h.get("consecutive_failures") == 0 and h.get("last_success_at") and
                 not h.get("failing"), "receiver health of %s: %r" % (receiver, h))
    return {r: key for r, _id, key, *_ in agreed}


def quiet_then_count(c, since):
    """Waits until QUIET_S after since, then returns (webhooks, e-mails) about ALERT."""
    left = since + QUIET_S - time.monotonic()
    if left > 0:
        time.sleep(left)
    return hooks(c), mails(c)


# ---- the test ----------------------------------------------------------------------------

def test(c):
    c.start_all()
    nodes = c.bootstrap_nodes()
    leader = c.wait_leader()
    lc.ok("3 nodes up, %s leads; shop serves a certificate valid 5 days" % leader.name)

    hk = c.hook.wait_records(1, 90, "the webhook sink receives a notification")
    mrec = c.mail.wait_records(1, 60, "the SMTP sink receives a notification")
    t_first = time.monotonic()
    keys = receipts_agree(nodes, "firing")
    lc.ok("firing: one intent per receiver delivered at attempt 1, the same on every node")

    fp = af.wait_agree(nodes, "every node serves %s firing with the same fingerprint" % ALERT,
                       lambda n: tuple((a["fingerprint"], a["state"], a["labels"].get("target"))
                                       for a in af.alerts(n, ALERT)), timeout=30)
    lc.check(len(fp) == 1 and fp[0][1] == "firing" and fp[0][2] == "shop",
             "alerts named %s: %r" % (ALERT, fp))
    fingerprint = fp[0][0]
    lc.ok("/api/v1/alerts on %s: %s firing, fingerprint %s"
          % ([n.name for n in nodes], ALERT, fingerprint))

    got_hooks, got_mails = quiet_then_count(c, t_first)
    lc.check(len(got_hooks) == 1, "%d webhooks about %s, want exactly 1: %r"
             % (len(got_hooks), ALERT, af.brief(got_hooks)))
    lc.check(len(got_mails) == 1, "%d e-mails about %s, want exactly 1: %r"
             % (len(got_mails), ALERT, [r["data"][:300] for r, _ in got_mails]))
    lc.check(hk[0]["n"] == got_hooks[0]["n"],
             "the first webhook was not about %s: %r" % (ALERT, hk[0].get("json")))
    lc.check(mrec[0]["n"] == got_mails[0][0]["n"], "the first e-mail was not about " + ALERT)
    a = check_webhook(c, got_hooks[0], keys["hook"], "firing")
    lc.check(a["fingerprint"] == fingerprint, "webhook fingerprint %r, API %r"
             % (a["fingerprint"], fingerprint))
    check_mail(got_mails[0][0], got_mails[0][1], keys["mail"], "firing")
    lc.ok("exactly one signed v4 webhook (Idempotency-Key %s...) and one STARTTLS+AUTH "
          "e-mail (Message-ID <%s...@lbwatch>) in %d s" % (keys["hook"][:12], keys["mail"][:12],
                                                          QUIET_S))

    # ---- renew the certificate ---------------------------------------------------------
    c.shop.stop()
    c.shop.start(*c.shop365)
    lc.wait_until("a resolved webhook and a resolved e-mail", 60,
                  lambda: hooks(c, "resolved") and mails(c, "RESOLVED"))
    t_resolved = time.monotonic()
    rkeys = receipts_agree(nodes, "resolved")
    lc.check(set(rkeys.values()).isdisjoint(keys.values()),
             "a resolved notification reuses a firing key: %r %r" % (rkeys, keys))
    af.wait_agree(nodes, "every node serves %s resolved" % ALERT,
                  lambda n: [(a["fingerprint"], a["state"]) for a in af.alerts(n, ALERT)]
                  == [(fingerprint, "resolved")])
    got_hooks, got_mails = quiet_then_count(c, t_resolved)
    resolved_hooks = [r for r in got_hooks if r["json"]["status"] == "resolved"]
    resolved_mails = [(r, m) for r, m in got_mails if str(m["Subject"]).startswith("[RESOLVED")]
    lc.check(len(got_hooks) == 2 and len(resolved_hooks) == 1,
             "webhooks about %s after renewal: %r" % (ALERT, af.brief(got_hooks)))
    lc.check(len(got_mails) == 2 and len(resolved_mails) == 1,
             "e-mails about %s after renewal: %r" % (ALERT, [str(m["Subject"])
                                                            for _, m in got_mails]))
    check_webhook(c, resolved_hooks[0], rkeys["hook"], "resolved")
    check_mail(resolved_mails[0][0], resolved_mails[0][1], rkeys["mail"], "RESOLVED")
    rep = c.hook.report()
    lc.check(rep["duplicates"] == {} and rep["without_key"] == 0,
             "webhook sink report: %r" % rep)
    lc.ok("renewed (365 days): exactly one resolved webhook and one resolved e-mail, with "
          "their own keys; nothing else in %d s" % QUIET_S)
    c.wait_converged(nodes)


if __name__ == "__main__":
    lc.main(lambda c: (setup(c), test(c)), nodes=3, spares=0)
