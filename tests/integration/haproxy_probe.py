#!/usr/bin/env python3
"""haproxy_probe.py - `lbwatch node` probing a real HAProxy 2.6 on loopback.

HAProxy (/usr/sbin/haproxy -db, in a temp dir) terminates TLS with a certificate from
`lbwatch pki`, balances backend be_app over a live HTTP server ("up", python's http.server)
and a closed port ("down") with health checks, and exposes a stats socket on a unix path and
on TCP (level admin) and a stats page with basic authentication. After some requests through
it, one node probes it every second through four targets:
  lb       TLS on the frontend + haproxy: {socket: admin.sock}        (info, stat, certificates)
  lb-tcp   haproxy: {address: 127.0.0.1:PORT, certificates: false}   (info, stat)
  lb-page  haproxy: {url: http://.../stats;csv, username, password_file}
  lb-bad   haproxy: {url: ...;csv, wrong password} and lb-gone (a socket nobody listens on)
and the node's /metrics is compared with what `socat` (show stat / show info on the same
socket) and `curl ...;csv` read from the same HAProxy just before and just after: counters
lie between the two readings (with traffic flowing meanwhile), statuses are exactly UP and
DOWN as HAProxy reports them, static values (maxconn, nbthread, version) are equal, and the
certificate's notAfter equals `openssl x509 -enddate` of the certificate HAProxy serves.
Failures are reported with their reason (HTTP status 401, connect refused).
Bounded in time; HAProxy, the backend, the traffic loop and the node are killed and the temp
dir removed whatever happens; the node's log is checked for sanitizer reports."""
import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import urllib.error
import ssl
import calendar

LBWATCH = os.environ.get("LBWATCH", os.path.abspath("build/asan/lbwatch"))
HAPROXY = "/usr/sbin/haproxy"
DEADLINE = time.monotonic() + 240
PROCS = []
T = tempfile.mkdtemp(prefix="lbw-haproxy.")


def cleanup():
    for p in PROCS:
        if p.poll() is None:
            p.terminate()
    for p in PROCS:
        try:
            p.wait(timeout=3)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    shutil.rmtree(T, ignore_errors=True)


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    log = os.path.join(T, "node.log")
    if os.path.exists(log):
        sys.stderr.write("--- node log (tail) ---\n" + open(log).read()[-4000:])
    raise SystemExit(1)


def ok(msg):
    print("ok - " + msg)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def spawn(name, args, **kw):
    log = open(os.path.join(T, name + ".log"), "w")
    p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kw)
    PROCS.append(p)
    return p


def wait_until(what, fn, timeout):
    end = min(time.monotonic() + timeout, DEADLINE)
    while time.monotonic() < end:
        try:
            v = fn()
            if v:
                return v
        except (OSError, ValueError, KeyError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    fail("timed out waiting for " + what)


def port_open(port):
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def run(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=30, **kw).stdout


# --- HAProxy's own view ---------------------------------------------------------------------------

def socat(cmd, sock):
    return run(["socat", "-", "UNIX-CONNECT:" + sock], input=cmd + "\n")


def stat_rows(text):
    """show stat CSV -> {(pxname, svname): {column: value}}"""
    assert text.startswith("# "), text[:80]
    rows = list(csv.reader(io.StringIO(text[2:])))
    head = rows[0]
    return {(r[0], r[1]): dict(zip(head, r)) for r in rows[1:] if len(r) > 2}


def info_map(text):
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def page_csv(url, auth):
    req = urllib.request.Request(url)
    req.add_header("Authorization", "Basic " + auth)
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read().decode()


# --- the node's view ------------------------------------------------------------------------------

SERIES = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metrics(web):
    """/metrics -> {(name, frozenset(labels)): value}"""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % web, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = SERIES.match(line)
        if m and not line.startswith("#"):
            labels = frozenset(LABEL.findall(m.group(2) or ""))
            out[(m.group(1), labels)] = float(m.group(3))
    return out


def get(m, name, **labels):
    key = (name, frozenset(labels.items()))
    if key not in m:
        fail("no series %s%s on /metrics" % (name, labels))
    return m[key]


def main():
    pki = os.path.join(T, "pki")
    run([LBWATCH, "pki", "init", "--dir", pki])
    run([LBWATCH, "pki", "issue", "--dir", pki, "--name", "www", "--id", "99", "--ip",
         "127.0.0.1", "--dns", "www.test"])
    pem = os.path.join(T, "www.pem")
    with open(pem, "w") as f:
        f.write(open(os.path.join(pki, "www.crt")).read() + open(os.path.join(pki, "www.key")).read())

    https, up, down, stats, stats_tcp, web = (free_port() for _ in range(6))
    sock = os.path.join(T, "admin.sock")
    docroot = os.path.join(T, "www")
    os.mkdir(docroot)
    open(os.path.join(docroot, "index.html"), "w").write("hello from up\n")
    spawn("up", [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(up)], cwd=docroot)
    wait_until("the backend server", lambda: port_open(up), 20)

    cfg = os.path.join(T, "haproxy.cfg")
    open(cfg, "w").write(f"""global
    stats socket {sock} mode 600 level admin
    stats socket ipv4@127.0.0.1:{stats_tcp} level admin
    stats timeout 10s
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe_https
    bind 127.0.0.1:{https} ssl crt {pem}
    default_backend be_app
backend be_app
    balance roundrobin
    option httpchk GET /
    server up 127.0.0.1:{up} check inter 300ms
    server down 127.0.0.1:{down} check inter 300ms
frontend stats
    bind 127.0.0.1:{stats}
    stats enable
    stats uri /stats
    stats auth admin:s3cret
""")
    spawn("haproxy", [HAPROXY, "-f", cfg, "-db"])
    wait_until("haproxy", lambda: port_open(https) and os.path.exists(sock), 20)
    wait_until("server up UP and down DOWN",
               lambda: (lambda r: r[("be_app", "up")]["status"] == "UP" and
                        r[("be_app", "down")]["status"] == "DOWN")(stat_rows(socat("show stat", sock))), 20)

    ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
    ctx.check_hostname = False  # the certificate names www.test; we connect to 127.0.0.1

    def request():
        with urllib.request.urlopen("https://127.0.0.1:%d/" % https, context=ctx, timeout=5) as r:
            assert r.status == 200 and r.read() == b"hello from up\n"

    for _ in range(20):
        request()

    stop = threading.Event()

    def traffic():
        while not stop.is_set():
            try:
                request()
            except OSError:
                pass
            time.sleep(0.05)

    threading.Thread(target=traffic, daemon=True).start()

    for name, text in (("stats.pass", "s3cret\n"), ("wrong.pass", "guess\n")):
        fd = os.open(os.path.join(T, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, text.encode())
        os.close(fd)
    page = "http://127.0.0.1:%d/stats;csv" % stats
    open(os.path.join(T, "node.yaml"), "w").write(f"""node:
  name: it1
  data_dir: {T}/data
web:
  listen: 127.0.0.1:{web}
probes:
  interval: 1s
  timeout: 900ms
targets:
  - name: lb
    address: 127.0.0.1:{https}
    server_name: www.test
    ca_file: {pki}/ca.crt
    haproxy: {{socket: {sock}}}
  - name: lb-tcp
    address: 127.0.0.1:{https}
    tls: false
    haproxy:
      address: 127.0.0.1:{stats_tcp}
      certificates: false
  - name: lb-page
    address: 127.0.0.1:{https}
    tls: false
    haproxy:
      url: {page}
      username: admin
      password_file: stats.pass
  - name: lb-bad
    address: 127.0.0.1:{https}
    tls: false
    haproxy: {{url: "{page}", username: admin, password_file: wrong.pass}}
  - name: lb-gone
    address: 127.0.0.1:{https}
    tls: false
    haproxy: {{socket: {T}/nobody.sock}}
""")
    run([LBWATCH, "node", "--check-config", "-c", os.path.join(T, "node.yaml")])
    bad = os.path.join(T, "bad.yaml")
    open(bad, "w").write("node: {name: it1, data_dir: %s/data}\ntargets:\n  - name: lb\n"
                         "    address: 127.0.0.1:%d\n    haproxy: {url: \"%s\", certificates: true}\n"
                         % (T, https, page))
    res = subprocess.run([LBWATCH, "node", "--check-config", "-c", bad], capture_output=True,
                         text=True, timeout=30)
    want = "%s:5:%d: targets[0].haproxy.certificates: only on the stats socket" % (
        bad, 14 + len('{url: "%s", certificates: ' % page))
    if res.returncode != 2 or want not in res.stderr:
        fail("check-config of a bad haproxy: section: rc %d, %r (wanted %r)" % (res.returncode, res.stderr, want))
    ok("a bad haproxy: section is refused as FILE:LINE:COL: %s" % res.stderr.strip().split(": ", 1)[1])
    node = spawn("node", [LBWATCH, "node", "-c", os.path.join(T, "node.yaml")])
    wait_until("the node's web server", lambda: port_open(web), 30)

    def all_probed():
        m = metrics(web)
        return all(("probe_success", frozenset({("probe", "haproxy"), ("target", t),
                                                ("vantage", "it1")})) in m
                   for t in ("lb", "lb-tcp", "lb-page", "lb-bad", "lb-gone")) and m
    wait_until("haproxy probes of every target", all_probed, 30)

    # derived gauges (probes/haproxyderive.h): a 5xx ratio once 20 responses accumulated
    # between scrapes, the denied rate, and CurrConns/Maxconn from the same scrape
    def ratio_key(target):
        return ("lbwatch_haproxy_backend_http_5xx_ratio",
                frozenset({("probe", "haproxy"), ("target", target), ("vantage", "it1"),
                           ("proxy", "be_app")}))

    md = wait_until("5xx ratios of be_app", lambda: (lambda m: all(
        ratio_key(t) in m for t in ("lb", "lb-page")) and m)(metrics(web)), 30)
    dbase = {"probe": "haproxy", "vantage": "it1"}
    for t in ("lb", "lb-page"):
        if md[ratio_key(t)] != 0:
            fail("%s: 5xx ratio %g, but be_app answers 200 only" % (t, md[ratio_key(t)]))
        if get(md, "lbwatch_haproxy_frontend_requests_denied_rate", target=t, proxy="fe_https",
               **dbase) != 0:
            fail("%s: denied requests, but fe_https denies nothing" % t)
    used = get(md, "lbwatch_haproxy_connections_used_ratio", target="lb", **dbase)
    cur = get(md, "haproxy_process_current_connections", target="lb", **dbase)
    mx = get(md, "haproxy_process_max_connections", target="lb", **dbase)
    if used != cur / mx:
        fail("connections used ratio %r, but %g / %g from the same scrape" % (used, cur, mx))
    if any(k[0] == "lbwatch_haproxy_connections_used_ratio" and ("target", "lb-page") in k[1]
           for k in md):
        fail("the stats page has no show info, yet a connections ratio appeared for lb-page")
    ok("derived: be_app 5xx ratio 0 (socket and page), denied rate 0, connections %g / %g = %g"
       % (cur, mx, used))
    time.sleep(1.5)

    auth = "YWRtaW46czNjcmV0"  # admin:s3cret
    before = stat_rows(socat("show stat", sock))
    before_page = stat_rows(page_csv(page, auth))
    info = info_map(socat("show info", sock))
    time.sleep(2.5)  # the node's latest probe now started after `before`
    m = metrics(web)
    after = stat_rows(socat("show stat", sock))
    after_page = stat_rows(page_csv(page, auth))
    stop.set()

    base = {"probe": "haproxy", "vantage": "it1"}
    for target in ("lb", "lb-tcp", "lb-page"):
        if get(m, "probe_success", target=target, **base) != 1:
            fail("%s: probe failed" % target)
    ok("the haproxy probe succeeds over the unix socket, the TCP socket and the stats page")

    # statuses, exactly as HAProxy reports them
    for who, st in (("up", "UP"), ("down", "DOWN")):
        for rows in (before, after, before_page):
            if rows[("be_app", who)]["status"] != st:
                fail("haproxy says %s is %s" % (who, rows[("be_app", who)]["status"]))
        for target in ("lb", "lb-tcp", "lb-page"):
            for state in ("UP", "DOWN", "MAINT", "DRAIN", "NOLB"):
                v = get(m, "haproxy_server_status", target=target, proxy="be_app", server=who,
                        state=state, **base)
                if v != (1 if state == st else 0):
                    fail("%s: haproxy_server_status{server=%s,state=%s} = %g" % (target, who, state, v))
    check = get(m, "haproxy_server_check_status", target="lb", proxy="be_app", server="down",
                state=after[("be_app", "down")]["check_status"].lstrip("* "), **base)
    if check != 1:
        fail("check status of down is not %s" % after[("be_app", "down")]["check_status"])
    if get(m, "haproxy_frontend_status", target="lb", proxy="fe_https", state="UP", **base) != 1:
        fail("frontend fe_https not UP")
    ok("server up = UP, server down = DOWN (check %s), frontend UP, on all three sources"
       % after[("be_app", "down")]["check_status"])

    # counters: between HAProxy's readings just before and just after, traffic flowing
    counters = [
        ("haproxy_frontend_sessions_total", ("fe_https", "FRONTEND"), "stot", {"proxy": "fe_https"}),
        ("haproxy_frontend_http_requests_total", ("fe_https", "FRONTEND"), "req_tot", {"proxy": "fe_https"}),
        ("haproxy_frontend_bytes_out_total", ("fe_https", "FRONTEND"), "bout", {"proxy": "fe_https"}),
        ("haproxy_frontend_http_responses_total", ("fe_https", "FRONTEND"), "hrsp_2xx",
         {"proxy": "fe_https", "code": "2xx"}),
        ("haproxy_backend_sessions_total", ("be_app", "BACKEND"), "stot", {"proxy": "be_app"}),
        ("haproxy_server_sessions_total", ("be_app", "up"), "stot", {"proxy": "be_app", "server": "up"}),
        ("haproxy_server_check_failures_total", ("be_app", "down"), "chkfail",
         {"proxy": "be_app", "server": "down"}),
    ]
    for target, b, a in (("lb", before, after), ("lb-tcp", before, after),
                         ("lb-page", before_page, after_page)):
        for name, row, col, labels in counters:
            lo, hi = float(b[row][col]), float(a[row][col])
            v = get(m, name, target=target, **labels, **base)
            if not lo <= v <= hi:
                fail("%s %s%s = %g, not within haproxy's %g..%g" % (target, name, labels, v, lo, hi))
    if float(after[("fe_https", "FRONTEND")]["stot"]) <= float(before[("fe_https", "FRONTEND")]["stot"]):
        fail("no traffic between the readings: the ordering check proved nothing")
    ok("counters lie between HAProxy's readings before and after (fe_https sessions %s..%s: %g)"
       % (before[("fe_https", "FRONTEND")]["stot"], after[("fe_https", "FRONTEND")]["stot"],
          get(m, "haproxy_frontend_sessions_total", target="lb", proxy="fe_https", **base)))

    # show info: static values equal, uptime ordered
    for target in ("lb", "lb-tcp"):
        for name, field in (("haproxy_process_max_connections", "Maxconn"),
                            ("haproxy_process_nbthread", "Nbthread"),
                            ("haproxy_process_start_time_seconds", "Start_time_sec"),
                            ("lbwatch_haproxy_process_pid", "Pid")):
            if get(m, name, target=target, **base) != float(info[field]):
                fail("%s: %s = %g, haproxy says %s" % (target, name, get(m, name, target=target, **base), info[field]))
        if get(m, "haproxy_process_build_info", target=target, version=info["Version"], **base) != 1:
            fail("build_info version")
        if get(m, "haproxy_process_uptime_seconds", target=target, **base) < float(info["Uptime_sec"]):
            fail("uptime went backwards")
    if any(k[0].startswith("haproxy_process_") and ("target", "lb-page") in k[1] for k in m):
        fail("the stats page has no show info, yet process metrics appeared for lb-page")
    ok("show info: maxconn %s, nbthread %s, version %s, pid %s equal on both sockets"
       % (info["Maxconn"], info["Nbthread"], info["Version"], info["Pid"]))

    # the certificate HAProxy serves: notAfter exactly as openssl reads it
    served = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % https,
                             "-servername", "www.test"], input="", capture_output=True,
                            text=True, timeout=20).stdout
    enddate = run(["openssl", "x509", "-noout", "-enddate"], input=served).strip()
    not_after = calendar.timegm(time.strptime(enddate.split("=", 1)[1], "%b %d %H:%M:%S %Y GMT"))
    v = get(m, "lbwatch_haproxy_ssl_cert_not_after_seconds", target="lb", cert=pem, **base)
    if v != not_after:
        fail("notAfter %g, openssl says %d (%s)" % (v, not_after, enddate))
    if get(m, "lbwatch_haproxy_ssl_certs", target="lb", **base) != 1:
        fail("lbwatch_haproxy_ssl_certs != 1")
    if any(k[0].startswith("lbwatch_haproxy_ssl_cert") and ("target", "lb-tcp") in k[1] for k in m):
        fail("certificates: false, yet certificate metrics for lb-tcp")
    ok("certificate %s notAfter %d = openssl's %s" % (os.path.basename(pem), not_after, enddate))

    # failures say why
    errors = {dict(k[1]).get("target"): dict(k[1]).get("error") for k in m
              if k[0] == "lbwatch_probe_error_info" and ("probe", "haproxy") in k[1]}
    for target, want in (("lb-bad", "HTTP status 401"), ("lb-gone", "show info: connect:")):
        if get(m, "probe_success", target=target, **base) != 0:
            fail("%s succeeded" % target)
        if want not in (errors.get(target) or ""):
            fail("%s: error %r does not say %r" % (target, errors.get(target), want))
    if any(k[0].startswith("haproxy_") and ("target", "lb-bad") in k[1] for k in m):
        fail("a failed probe emitted haproxy metrics")
    ok("failures report their reason: lb-bad %r, lb-gone %r" % (errors["lb-bad"], errors["lb-gone"]))

    with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/targets" % web, timeout=5) as r:
        targets = {t["name"]: t for t in json.load(r)["targets"]}
    h = targets["lb"]["vantages"][0]["haproxy"]
    if h["success"] is not True or targets["lb-gone"]["vantages"][0]["haproxy"]["success"] is not False:
        fail("API targets: %s" % json.dumps(targets["lb"]))
    if targets["lb"]["up"] is not True or targets["lb-gone"]["up"] is not False:
        fail("API up flags")
    ok("/api/v1/targets shows the haproxy probe's outcome per target")

    node.send_signal(signal.SIGTERM)
    rc = node.wait(timeout=30)
    if rc != 0:
        fail("node exited %d on SIGTERM" % rc)
    log = open(os.path.join(T, "node.log")).read()
    if re.search(r"AddressSanitizer|LeakSanitizer|runtime error:", log):
        fail("sanitizer report in the node's log")
    ok("node stopped cleanly, no sanitizer reports")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    try:
        main()
    finally:
        cleanup()
