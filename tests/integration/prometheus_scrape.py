#!/usr/bin/env python3
"""prometheus_scrape.py - `lbwatch node` scraping a real prometheus-node-exporter.

The exporter (/usr/bin/prometheus-node-exporter on a free loopback port, only the loadavg and
meminfo collectors, plus its own go_*, process_* and promhttp_* metrics) is scraped every
second by one node through two targets:
  host       prometheus: {url: .../metrics, allow: [node_load1, node_memory_MemTotal_bytes,
                                                    "node_memory_Mem*"]}
  host-page  prometheus: {url: .../ (the exporter's HTML landing page), allow: [node_load1]}
The node must serve exactly the allowed families the exporter has (node_load1 and the
node_memory_Mem* gauges, by curl's reading of the same endpoint), with MemTotal exactly as
curl reads it, load1 between curl's readings just before and just after (within 0.01), the
other Mem* gauges within 20 % of curl's readings; none of the others (node_memory_Active_bytes,
go_goroutines, ...) though the exporter serves them; lbwatch_scrape_samples counting the kept
and skipped samples of the exposition (none rejected); the HTML page fails with the parser's
line and column. Allow-lists that keep nothing or would keep lbwatch's own names are refused
with FILE:LINE:COL. Bounded to 60 s; the exporter, the node and the temp dir are gone at the
end."""
import json
import os
import re
import sys
import time

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import lbwsingle as ls  # noqa: E402

EXPORTER = "/usr/bin/prometheus-node-exporter"
ALLOW = ["node_load1", "node_memory_MemTotal_bytes", "node_memory_Mem*"]
OWN = {"probe_success", "probe_duration_seconds", "lbwatch_scrape_samples"}
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$')


def allowed(name):
    return any(name.startswith(p[:-1]) if p.endswith("*") else name == p for p in ALLOW)


def exposition(port):
    """The exporter's samples as curl reads them: {(name, labels text): value}."""
    text = ls.run(["curl", "-sS", "--fail", "--max-time", "5",
                   "http://127.0.0.1:%d/metrics" % port]).stdout
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = SAMPLE_RE.match(line)
        ls.check(m is not None, "exporter line not understood: %r" % line)
        out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def one(samples, name):
    vals = [v for (n, _), v in samples.items() if n == name]
    ls.check(len(vals) == 1, "%s: %d samples in the exposition" % (name, len(vals)))
    return vals[0]


def check_refusals(s):
    head = "  - name: host\n    address: 127.0.0.1:443\n    tls: false\n    prometheus:\n" \
           "      url: http://127.0.0.1:9100/metrics\n"
    errs = [s.check_config_error("bad1.yaml", ls.node_config_text(
                s, head + "      allow: [node_load1, \"lbw*\"]\n"),
                "FILE:15:27: targets[0].prometheus.allow[1]: would keep lbwatch's own series "
                "(probe_*, lbwatch_*), got \"lbw*\""),
            s.check_config_error("bad2.yaml", ls.node_config_text(s, head + "      allow: []\n"),
                "FILE:15:14: targets[0].prometheus.allow: must list at least one metric name "
                "or prefix: a scrape must say what it keeps"),
            s.check_config_error("bad3.yaml", ls.node_config_text(s, head),
                "FILE:14:7: missing required key 'allow' in 'targets[0].prometheus'")]
    ls.ok("allow-lists refused as FILE:LINE:COL: %s" % " | ".join(e.split(": ", 1)[1]
                                                                 for e in errs))


def test(s):
    port = ls.free_ports(1)[0]
    exporter = s.spawn("exporter", [EXPORTER, "--web.listen-address=127.0.0.1:%d" % port,
                                    "--collector.disable-defaults", "--collector.loadavg",
                                    "--collector.meminfo"])
    ls.wait_until("the exporter listening", 20, lambda: ls.port_open(port))
    first = exposition(port)
    names = {n for n, _ in first}
    want = {n for n in names if allowed(n)}
    ls.check({"node_load1", "node_memory_MemTotal_bytes", "node_memory_MemFree_bytes"} <= want,
             "the exporter lacks the allowed families: %s" % sorted(want))
    for absent in ("node_memory_Active_bytes", "go_goroutines", "node_load5"):
        ls.check(absent in names, "the exporter does not serve %s: its absence would prove "
                                  "nothing" % absent)
    ls.ok("node exporter on :%d serves %d samples; the allow-list keeps %s"
          % (port, len(first), sorted(want)))

    check_refusals(s)
    allow = ", ".join('"%s"' % p for p in ALLOW)
    s.start_node(ls.node_config(s, f"""  - name: host
    address: 127.0.0.1:{port}
    tls: false
    prometheus:
      url: http://127.0.0.1:{port}/metrics
      allow: [{allow}]
  - name: host-page
    address: 127.0.0.1:{port}
    tls: false
    prometheus: {{url: "http://127.0.0.1:{port}/", allow: [node_load1]}}
"""))
    base = {"probe": "prometheus", "target": "host", "vantage": ls.NODE_NAME}
    page = {"probe": "prometheus", "target": "host-page", "vantage": ls.NODE_NAME}

    def both_scraped():
        m = s.metrics()
        return (("probe_success", frozenset(base.items())) in m and
                ("probe_success", frozenset(page.items())) in m and m)
    ls.wait_until("scrapes of both targets", 30, both_scraped)
    time.sleep(1.5)
    before = exposition(port)
    time.sleep(2.5)   # the node's latest scrape started after `before`
    text = s.metrics_text()
    after = exposition(port)
    m = ls.parse_metrics(text)

    ls.check(ls.get(m, "probe_success", **base) == 1, "the scrape of /metrics failed")
    served = ls.names_of(m, **base) - OWN
    ls.check(served == want, "served %s, allowed in the exposition %s" % (sorted(served),
                                                                         sorted(want)))
    ls.check(not any(n.startswith("node_memory_Active") or n.startswith("go_")
                     for n in ls.names_of(m, target="host")), "a family not allowed is served")
    ls.ok("the node serves exactly the allowed families %s, not node_memory_Active_bytes, "
          "go_* ..." % sorted(served))

    total = ls.get(m, "node_memory_MemTotal_bytes", **base)
    ls.check(total == one(before, "node_memory_MemTotal_bytes"),
             "MemTotal %r, curl reads %r" % (total, one(before, "node_memory_MemTotal_bytes")))
    load = ls.get(m, "node_load1", **base)
    lo, hi = sorted((one(before, "node_load1"), one(after, "node_load1")))
    ls.check(lo - 0.01 <= load <= hi + 0.01, "load1 %g not within curl's %g..%g" % (load, lo, hi))
    for name in sorted(want - {"node_load1", "node_memory_MemTotal_bytes"}):
        v = ls.get(m, name, **base)
        lo, hi = sorted((one(before, name), one(after, name)))
        ls.check(0 < v <= total and lo * 0.8 <= v <= hi * 1.2,
                 "%s = %g, curl reads %g..%g" % (name, v, lo, hi))
    ls.ok("MemTotal %d = curl's; load1 %g within curl's %g..%g; the other Mem* gauges agree"
          % (total, load, one(before, "node_load1"), one(after, "node_load1")))

    counts = {r: ls.get(m, "lbwatch_scrape_samples", result=r, **base)
              for r in ("emitted", "skipped", "rejected")}
    kept = sum(1 for n, _ in after if allowed(n))
    ls.check(counts["emitted"] == kept and counts["rejected"] == 0 and
             counts["emitted"] + counts["skipped"] in (len(before), len(after)),
             "lbwatch_scrape_samples %s, exposition %d..%d samples, %d allowed"
             % (counts, len(before), len(after), kept))
    ls.check(("lbwatch_probe_error_info", frozenset(base.items())) not in m and
             not any(k[0] == "lbwatch_probe_error_info" and ("target", "host") in k[1]
                     for k in m), "an error reported for a clean scrape")
    ls.check("# HELP lbwatch_scrape_samples " in text, "no HELP for lbwatch_scrape_samples")
    ls.ok("lbwatch_scrape_samples: %d emitted, %d skipped, 0 rejected"
          % (counts["emitted"], counts["skipped"]))

    ls.check(ls.get(m, "probe_success", **page) == 0, "the HTML landing page parsed")
    errors = [dict(k[1])["error"] for k in m if k[0] == "lbwatch_probe_error_info" and
              ("target", "host-page") in k[1]]
    ls.check(len(errors) == 1 and re.match(r"line \d+, column \d+: ", errors[0]),
             "host-page errors %r" % errors)
    ls.check(ls.names_of(m, **page) == {"probe_success", "probe_duration_seconds",
                                         "lbwatch_probe_error_info"},
             "a failed scrape kept samples: %s" % sorted(ls.names_of(m, **page)))
    ls.ok("the exporter's HTML page fails the scrape: %r" % errors[0])

    doc = json.loads(s.http("/api/v1/targets"))
    by = {t["name"]: t["vantages"][0] for t in doc["targets"]}
    ls.check(by["host"]["prometheus"]["success"] is True and
             by["host-page"]["prometheus"]["success"] is False,
             "API targets: %s" % json.dumps(by))
    ls.ok("/api/v1/targets shows the prometheus scrape's outcome per target")

    s.stop_node()
    s.stop_helper(exporter)
    ls.check(not exporter.alive(), "the exporter is still running")


if __name__ == "__main__":
    ls.main(test, prefix="lbw-prom.", deadline_s=60)
