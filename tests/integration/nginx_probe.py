#!/usr/bin/env python3
"""nginx_probe.py - `lbwatch node` reading a real nginx's stub_status and probing its TLS.

nginx (/usr/sbin/nginx -p TMP -c nginx.conf -g 'daemon off;', pid, logs and temp paths in the
temp dir) serves on loopback:
  HTTP   /stub_status (stub_status), / (a short text)
  HTTPS  a certificate from `lbwatch pki` for www.test and 127.0.0.1; /private_status
         (stub_status behind basic authentication), / (a short text)
After some requests through it (kept-alive, so requests outnumber connections), one node
probes it every second through these targets:
  web          TLS probe of the HTTPS server + nginx: {url: http://.../stub_status}
  web-tls      nginx: {url: https://.../private_status, username, password_file, ca_file}
  web-badpass  the same with a wrong password            -> HTTP status 401
  web-untrust  https://.../private_status without ca_file -> a certificate error
  web-notstub  nginx: {url: http://.../} (not a stub_status page) -> the parser's line/column
The node's /metrics must agree with what curl reads from the same stub_status just before and
just after: accepted, handled and requests lie between the two readings (the node's own
scrapes and curl's readings keep them moving), handled equals accepted, active >= 1 and
writing >= 1 (the scrape itself); the TLS probe succeeds with a verified chain, a matching
host name and the notAfter openssl reads from the certificate nginx serves; failures say why.
A bad nginx: section is refused with FILE:LINE:COL. Bounded to 60 s; nginx (master and
workers), the node and the temp dir are gone at the end."""
import calendar
import json
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import lbwsingle as ls  # noqa: E402

NGINX = "/usr/sbin/nginx"
STUB_RE = re.compile(r"Active connections: (\d+) \nserver accepts handled requests\n"
                     r" (\d+) (\d+) (\d+) \nReading: (\d+) Writing: (\d+) Waiting: (\d+) \n\Z")
STUB_FIELDS = ("active", "accepts", "handled", "requests", "reading", "writing", "waiting")
NODE_NAMES = {"accepts": "nginx_connections_accepted", "handled": "nginx_connections_handled",
              "requests": "nginx_http_requests_total", "active": "nginx_connections_active",
              "reading": "nginx_connections_reading", "writing": "nginx_connections_writing",
              "waiting": "nginx_connections_waiting"}


def nginx_conf(s, http, https, pki):
    for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.makedirs(s.path("nginx/tmp/" + d), exist_ok=True)
    # as root nginx's workers run as nobody: they read the password file at each request
    os.chmod(s.write("htpasswd", "mon:{PLAIN}s3cret\n"), 0o644)
    os.chmod(s.dir, 0o711)
    user = "user nobody nogroup;\n" if os.geteuid() == 0 else ""
    return s.write("nginx.conf", f"""{user}worker_processes 1;
pid {s.path("nginx.pid")};
error_log {s.path("nginx-error.log")} info;
events {{ worker_connections 128; }}
http {{
    access_log {s.path("nginx-access.log")};
    client_body_temp_path {s.path("nginx/tmp/client_body")};
    proxy_temp_path {s.path("nginx/tmp/proxy")};
    fastcgi_temp_path {s.path("nginx/tmp/fastcgi")};
    uwsgi_temp_path {s.path("nginx/tmp/uwsgi")};
    scgi_temp_path {s.path("nginx/tmp/scgi")};
    keepalive_requests 1000;
    server {{
        listen 127.0.0.1:{http};
        location = /stub_status {{ stub_status; }}
        location / {{ return 200 "hello\\n"; }}
    }}
    server {{
        listen 127.0.0.1:{https} ssl;
        ssl_certificate {pki["crt"]};
        ssl_certificate_key {pki["key"]};
        location = /private_status {{
            stub_status;
            auth_basic "stats";
            auth_basic_user_file {s.path("htpasswd")};
        }}
        location / {{ return 200 "hello over tls\\n"; }}
    }}
}}
""")


def stub(url, ca):
    """The stub_status page as curl reads it: {field: int}."""
    text = ls.run(["curl", "-sS", "--fail", "--max-time", "5", "--cacert", ca, url]).stdout
    m = STUB_RE.match(text)
    ls.check(m is not None, "curl %s: not a stub_status page: %r" % (url, text))
    return dict(zip(STUB_FIELDS, (int(v) for v in m.groups())))


def traffic(http, https, ca):
    """40 requests over one kept-alive HTTP connection and 20 over one TLS connection."""
    ls.run(["curl", "-sS", "--fail", "-o", "/dev/null"] +
           ["http://127.0.0.1:%d/?n=%d" % (http, i) for i in range(40)])
    ls.run(["curl", "-sS", "--fail", "-o", "/dev/null", "--cacert", ca] +
           ["https://127.0.0.1:%d/?n=%d" % (https, i) for i in range(20)])


def children_of(pid):
    """PIDs whose parent is pid (nginx's workers)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d))
    return out


def targets_yaml(http, https, pki, s):
    s.write("mon.pass", "s3cret\n")
    s.write("wrong.pass", "guess\n")
    private = "https://127.0.0.1:%d/private_status" % https
    return f"""  - name: web
    address: 127.0.0.1:{https}
    server_name: www.test
    ca_file: {pki["ca"]}
    nginx: {{url: "http://127.0.0.1:{http}/stub_status"}}
  - name: web-tls
    address: 127.0.0.1:{https}
    tls: false
    nginx:
      url: {private}
      username: mon
      password_file: mon.pass
      ca_file: {pki["ca"]}
  - name: web-badpass
    address: 127.0.0.1:{https}
    tls: false
    nginx: {{url: "{private}", username: mon, password_file: wrong.pass, ca_file: {pki["ca"]}}}
  - name: web-untrust
    address: 127.0.0.1:{https}
    tls: false
    nginx: {{url: "{private}", username: mon, password_file: mon.pass}}
  - name: web-notstub
    address: 127.0.0.1:{https}
    tls: false
    nginx: {{url: "http://127.0.0.1:{http}/"}}
"""


def check_counters(m, before, after):
    for target in ("web", "web-tls"):
        base = {"probe": "nginx", "target": target, "vantage": ls.NODE_NAME}
        ls.check(ls.get(m, "probe_success", **base) == 1, "%s: the nginx probe failed" % target)
        v = {f: ls.get(m, NODE_NAMES[f], **base) for f in STUB_FIELDS}
        for f in ("accepts", "handled", "requests"):
            ls.check(before[f] <= v[f] <= after[f], "%s %s = %g, not within curl's %d..%d"
                     % (target, NODE_NAMES[f], v[f], before[f], after[f]))
        ls.check(v["handled"] == v["accepts"], "%s: handled %g != accepted %g (no limits set)"
                 % (target, v["handled"], v["accepts"]))
        ls.check(v["active"] >= 1 and v["writing"] >= 1,
                 "%s: active %g, writing %g: the scrape itself is one" % (target, v["active"],
                                                                          v["writing"]))
    ls.check(before["requests"] - before["accepts"] > after["accepts"] - before["accepts"],
             "requests and connections too close to tell apart (%s)" % before)


def check_tls(m, https):
    base = {"probe": "tls", "target": "web", "vantage": ls.NODE_NAME}
    ls.check(ls.get(m, "probe_success", **base) == 1, "the TLS probe of nginx failed")
    ls.check(ls.get(m, "lbwatch_tls_chain_verified", **base) == 1, "chain not verified")
    ls.check(ls.get(m, "lbwatch_tls_hostname_match", **base) == 1, "host name mismatch")
    served = ls.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % https, "-servername",
                     "www.test"]).stdout
    enddate = subprocess.run(["openssl", "x509", "-noout", "-enddate"], input=served,
                             capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    not_after = calendar.timegm(time.strptime(enddate.split("=", 1)[1], "%b %d %H:%M:%S %Y GMT"))
    v = ls.get(m, "probe_ssl_earliest_cert_expiry", **base)
    ls.check(v == not_after, "notAfter %g, openssl says %d (%s)" % (v, not_after, enddate))
    return enddate


def check_failures(m):
    errors = {dict(k[1]).get("target"): dict(k[1]).get("error") for k in m
              if k[0] == "lbwatch_probe_error_info" and ("probe", "nginx") in k[1]}
    for target, want in (("web-badpass", "HTTP status 401"),
                         ("web-untrust", "certificate"),
                         ("web-notstub", "line 1, column 1: ")):
        base = {"probe": "nginx", "target": target, "vantage": ls.NODE_NAME}
        ls.check(ls.get(m, "probe_success", **base) == 0, "%s succeeded" % target)
        ls.check(want in (errors.get(target) or ""),
                 "%s: error %r does not say %r" % (target, errors.get(target), want))
        ls.check(not any(k[0].startswith("nginx_") and ("target", target) in k[1] for k in m),
                 "a failed probe of %s emitted nginx metrics" % target)
    return errors


def test(s):
    pki = s.pki()
    http, https = ls.free_ports(2)
    conf = nginx_conf(s, http, https, pki)
    nginx = s.spawn("nginx", [NGINX, "-p", s.path("nginx") + "/", "-c", conf,
                              "-e", s.path("nginx-error.log"), "-g", "daemon off;"])
    ls.wait_until("nginx listening", 20, lambda: ls.port_open(http) and ls.port_open(https))
    workers = ls.wait_until("nginx's worker", 10, lambda: children_of(nginx.p.pid))
    traffic(http, https, pki["ca"])
    first = stub("http://127.0.0.1:%d/stub_status" % http, pki["ca"])
    ls.check(first["requests"] >= 61 and first["accepts"] >= 3, "traffic not counted: %s" % first)
    ls.ok("nginx %s serves stub_status on :%d and TLS on :%d (%s)"
          % (ls.run([NGINX, "-v"]).stderr.strip().split("/")[-1], http, https, first))

    err = s.check_config_error("bad.yaml", ls.node_config_text(s, """  - name: web
    address: 127.0.0.1:443
    nginx: {socket: /run/nginx.sock}
"""), "FILE:12:21: targets[0].nginx.socket: nginx statistics are not read from a socket")
    ls.ok("a bad nginx: section is refused as FILE:LINE:COL: %s" % err.split(": ", 1)[1])

    s.start_node(ls.node_config(s, targets_yaml(http, https, pki, s)))
    targets = ("web", "web-tls", "web-badpass", "web-untrust", "web-notstub")

    def all_probed():
        m = s.metrics()
        return all(("probe_success", frozenset({("probe", "nginx"), ("target", t),
                                                ("vantage", ls.NODE_NAME)})) in m
                   for t in targets) and m
    ls.wait_until("nginx probes of every target", 30, all_probed)
    time.sleep(1.5)
    before = stub("http://127.0.0.1:%d/stub_status" % http, pki["ca"])
    time.sleep(2.5)   # the node's latest scrapes started after `before`
    text = s.metrics_text()
    after = stub("http://127.0.0.1:%d/stub_status" % http, pki["ca"])
    m = ls.parse_metrics(text)

    check_counters(m, before, after)
    v = {f: ls.get(m, NODE_NAMES[f], probe="nginx", target="web", vantage=ls.NODE_NAME)
         for f in ("accepts", "requests")}
    ls.ok("stub_status over http and over https with basic auth and ca_file: accepted %d "
          "and requests %d lie within curl's readings (%d..%d, %d..%d); handled = accepted; "
          "active, writing >= 1" % (v["accepts"], v["requests"], before["accepts"],
                                    after["accepts"], before["requests"], after["requests"]))
    ls.check("# HELP nginx_connections_active " in text and
             "# HELP nginx_http_requests_total " in text, "no HELP for the nginx families")

    enddate = check_tls(m, https)
    ls.ok("the TLS probe of the same nginx: verified chain, host name match, %s" % enddate)

    errors = check_failures(m)
    ls.ok("failures say why: %s" % "; ".join("%s %r" % (t, errors[t]) for t in
                                               ("web-badpass", "web-untrust", "web-notstub")))

    doc = json.loads(s.http("/api/v1/targets"))
    by = {t["name"]: t["vantages"][0] for t in doc["targets"]}
    ls.check(by["web"]["nginx"]["success"] is True and by["web"]["tls"]["success"] is True and
             by["web-notstub"]["nginx"]["success"] is False and
             "line 1, column 1" in by["web-notstub"]["nginx"]["error"],
             "API targets: %s" % json.dumps(by))
    ls.ok("/api/v1/targets shows the nginx probe's outcome per target")

    s.stop_node()
    s.stop_helper(nginx)
    gone = ls.wait_until("nginx's workers gone", 10,
                         lambda: not any(os.path.exists("/proc/%d" % w) for w in workers))
    ls.check(gone, "nginx workers left running")
    ls.ok("nginx stopped with its worker(s) %s" % workers)


if __name__ == "__main__":
    ls.main(test, prefix="lbw-nginx.", deadline_s=60)
