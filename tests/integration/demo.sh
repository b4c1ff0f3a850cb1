#!/usr/bin/env bash
# demo.sh - `lbwatch demo` end to end: a 3-node cluster whose nodes agree on the leader and
# the state hash; the four demo targets show the right state, from every vantage, on the
# status page, /api/v1/targets and /metrics of http://127.0.0.1:8441/; the expiring
# certificate pages exactly once (the demo's webhook sink logs it); with HAProxy installed,
# the balancer target (a real HAProxy the demo runs, with traffic through it) shows its
# frontend, backends and servers on the page and in /metrics, web2 DOWN, and
# BackendServerDown pages exactly once; the agent lb1 the demo runs beside HAProxy is pulled
# by one node and its samples (host, the haproxy process UP, the frontend port's listener,
# traffic when capturing is permitted) reach every node's /metrics and the page's Hosts (and
# Traffic) sections; Ctrl-C stops the demo, HAProxy and the agent cleanly (exit 0) and
# removes its temp dir.
. tests/support/lib.sh

HAPROXY=/usr/sbin/haproxy
NTARGETS=4
if [ -x "$HAPROXY" ]; then NTARGETS=5; else echo "# $HAPROXY not installed: the balancer is not tested"; fi

WEB=http://127.0.0.1:8441
if (exec 3<>/dev/tcp/127.0.0.1/8441) 2>/dev/null; then fail "port 8441 is already in use"; fi

"$LBWATCH" demo >"$T/demo.log" 2>&1 &
DEMO=$!
PIDS="$PIDS $DEMO"

# every target has a TLS result, healthy has its http and redirect results, the balancer its
# haproxy statistics
ready() {
    curl -sf "$WEB/api/v1/targets" | python3 -c '
import json, sys
d = json.load(sys.stdin)
want = {"node1", "node2", "node3"}
def vantages(t, probe):
    return {v["vantage"] for v in t["vantages"] if probe in v}
ok = len(d["targets"]) == int(sys.argv[1]) and all(vantages(t, "tls") == want for t in d["targets"])
h = [t for t in d["targets"] if t["name"] == "healthy"]
ok = ok and h and vantages(h[0], "http") == want and vantages(h[0], "redirect") == want
b = [t for t in d["targets"] if t["name"] == "balancer"]
ok = ok and (not b or vantages(b[0], "haproxy") == want)
sys.exit(0 if ok else 1)' "$NTARGETS"
}
for i in $(seq 600); do
    kill -0 "$DEMO" 2>/dev/null || { cat "$T/demo.log"; fail "demo exited"; }
    ready 2>/dev/null && break
    [ "$i" = 600 ] && { cat "$T/demo.log"; fail "demo did not produce results for all targets"; }
    sleep 0.1
done
pass "demo is up with results for $NTARGETS targets from 3 vantages"
dir=$(sed -n 's/^lbwatch demo is running (data in \(.*\))$/\1/p' "$T/demo.log")
[ -d "$dir" ] || fail "demo data dir not found in its banner"
if [ "$NTARGETS" = 5 ]; then
    # the demo's HAProxy (master and worker) and agent, so they are killed even if this
    # script fails before Ctrl-C
    HAPROXY_PIDS=$(pgrep -f "^$HAPROXY -f $dir/balancer/haproxy.cfg ") || fail "the demo runs no haproxy"
    AGENT_PID=$(pgrep -f " agent -c $dir/agent.yaml\$") || fail "the demo runs no agent"
    PIDS="$PIDS $HAPROXY_PIDS $AGENT_PID"
    BALANCER_PORT=$(sed -n 's/^ *balancer: HAProxy, TLS on https:[^ ]* (127\.0\.0\.1:\([0-9]*\))$/\1/p' "$T/demo.log")
    AGENT_PORT=$(sed -n 's/^ *agent lb1 .* from 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/demo.log")
    [ -n "$BALANCER_PORT" ] && [ -n "$AGENT_PORT" ] || fail "balancer or agent port not found in the banner"
fi

# the three nodes agree on the leader and, at the same applied index, on the state hash
agree() {
    for p in 8441 8442 8443; do curl -sf "http://127.0.0.1:$p/api/v1/cluster" || return 1; echo; done |
    python3 -c '
import json, sys
c = [json.loads(l) for l in sys.stdin if l.strip()]
ok = len(c) == 3 and all(x["clustered"] and x["leader"] for x in c)
ok = ok and len({x["leader"]["id"] for x in c}) == 1 and sum(x["state"] == "leader" for x in c) == 1
ok = ok and len({x["applied_index"] for x in c}) == 1 and len({x["fsm_hash"] for x in c}) == 1
sys.exit(0 if ok else 1)'
}
wait_for 30 agree || fail "the demo nodes do not agree on leader and fsm_hash"
pass "the 3 demo nodes agree on the leader, applied index and fsm_hash"

curl -sf "$WEB/api/v1/targets" > "$T/targets.json"
python3 - "$T/targets.json" <<'PY' || fail "targets API does not show the expected states"
import json, sys
d = json.load(open(sys.argv[1]))
t = {x["name"]: x["vantages"][0] for x in d["targets"]}
def check(cond, what):
    if not cond:
        print("FAIL:", what, file=sys.stderr); sys.exit(1)
h = t["healthy"]
check(h["vantage"] == "node1", "vantage label")
check(h["tls"]["success"] and h["tls"]["chain_verified"] and h["tls"]["hostname_match"], "healthy tls")
check(89 < h["tls"]["days_left"] < 91, "healthy days left")
check(h["tls"]["version"] in ("TLS 1.2", "TLS 1.3"), "healthy version")
check(h["http"]["success"] and h["http"]["status_code"] == 200, "healthy http")
check(h["redirect"]["success"] and h["redirect"]["status_code"] == 301, "healthy redirect")
e = t["expiring"]["tls"]
check(e["success"] and e["chain_verified"] and e["hostname_match"], "expiring verified")
check(4.9 < e["days_left"] <= 5.0, "expiring in 5 days: %r" % e["days_left"])
w = t["wronghost"]["tls"]
check(w["success"] and w["chain_verified"] and w["hostname_match"] is False, "wronghost mismatch")
dn = t["down"]["tls"]
check(dn["success"] is False and "connection refused" in dn["error"], "down: %r" % dn.get("error"))
check("not_after" not in dn, "down has no certificate")
up = {x["name"]: x["up"] for x in d["targets"]}
want = {"healthy": True, "expiring": True, "wronghost": True, "down": False}
if "balancer" in up:
    want["balancer"] = True
    b = t["balancer"]
    check(b["tls"]["success"] and b["tls"]["hostname_match"] and b["tls"]["chain_verified"], "balancer tls")
    check(b["haproxy"]["success"], "balancer haproxy statistics: %r" % b["haproxy"])
    check(b["http"]["success"] and b["http"]["status_code"] == 200, "balancer http through haproxy")
check(up == want, "up flags %r" % up)
PY
pass "targets API: healthy, expiring (5 days), wronghost (mismatch), down (refused)"

curl -sf "$WEB/metrics" > "$T/metrics.txt"
python3 - "$T/metrics.txt" <<'PY' || fail "/metrics does not show the expected values"
import sys, time
m = {}
for line in open(sys.argv[1]):
    if line.startswith("#") or not line.strip():
        continue
    k, v = line.rsplit(" ", 1)
    m[k] = float(v)
def get(metric, target):
    return m['%s{probe="tls",target="%s",vantage="node1"}' % (metric, target)]
now = time.time()
assert abs(get("probe_ssl_earliest_cert_expiry", "expiring") - (now + 5 * 86400)) < 300
assert get("lbwatch_tls_hostname_match", "wronghost") == 0
assert get("lbwatch_tls_hostname_match", "healthy") == 1
assert get("lbwatch_tls_chain_verified", "expiring") == 1
assert get("probe_success", "down") == 0
assert get("probe_success", "healthy") == 1
assert get("lbwatch_tls_handshake_seconds", "healthy") > 0
assert any(k.startswith("probe_tls_version_info{") and 'target="healthy"' in k for k in m)
assert m['probe_http_status_code{probe="http",target="healthy",vantage="node1"}'] == 200
PY
pass "/metrics: expiry, hostname match, chain, success, handshake, version, http status"

if [ "$NTARGETS" = 5 ]; then
    # the derived gauges need two scrapes and 20 responses: wait for them, traffic flowing
    balancer_metrics() {
        curl -sf "$WEB/metrics" > "$T/metrics.txt" &&
        grep -q '^lbwatch_haproxy_backend_http_5xx_ratio{probe="haproxy",proxy="web",target="balancer",vantage="node1"} ' "$T/metrics.txt" &&
        grep -q '^lbwatch_haproxy_frontend_requests_denied_rate{probe="haproxy",proxy="www",target="balancer",vantage="node1"} ' "$T/metrics.txt"
    }
    wait_for 60 balancer_metrics || fail "no derived balancer gauges on /metrics"
    python3 - "$T/metrics.txt" <<'PY' || fail "/metrics does not show the balancer as it is"
import sys
m = {}
for line in open(sys.argv[1]):
    if line.startswith("#") or not line.strip():
        continue
    k, v = line.rsplit(" ", 1)
    m[k] = float(v)
def get(metric, **labels):
    labels.update(probe="haproxy", target="balancer", vantage="node1")
    key = metric + "{" + ",".join('%s="%s"' % kv for kv in sorted(labels.items())) + "}"
    if key not in m:
        print("FAIL: no", key, file=sys.stderr); sys.exit(1)
    return m[key]
def check(cond, what):
    if not cond:
        print("FAIL:", what, file=sys.stderr); sys.exit(1)
check(get("probe_success") == 1, "haproxy probe")
check(get("haproxy_server_status", proxy="web", server="web2", state="DOWN") == 1, "web2 DOWN")
check(get("haproxy_server_status", proxy="web", server="web2", state="UP") == 0, "web2 not UP")
check(get("haproxy_server_status", proxy="web", server="web1", state="UP") == 1, "web1 UP")
check(get("haproxy_server_status", proxy="api", server="api1", state="UP") == 1, "api1 UP")
check(get("haproxy_frontend_status", proxy="www", state="UP") == 1, "frontend www UP")
check(get("haproxy_backend_active_servers", proxy="web") == 1, "web has one active server")
check(get("haproxy_frontend_http_requests_total", proxy="www") > 0, "no requests through www")
check(get("haproxy_frontend_requests_denied_total", proxy="www") > 0, "/admin was never denied")
check(get("lbwatch_haproxy_backend_http_5xx_ratio", proxy="web") == 0, "web answers 5xx")
check(0 < get("lbwatch_haproxy_frontend_requests_denied_rate", proxy="www") < 1, "denied rate")
check(0 <= get("lbwatch_haproxy_connections_used_ratio") < 0.1, "connections ratio")
PY
    pass "/metrics: the balancer's frontend www, backends web (web2 DOWN) and api, traffic and its derived gauges"

    curl -sf "$WEB/" > "$T/page.html"
    for want in '<h2>Balancer</h2>' '<b>balancer</b> &middot; HAProxy 2' \
                '<td class="t">www</td><td><span class="b ok">UP</span></td>' \
                '<td class="t">web</td><td><span class="b ok">UP</span></td><td class="num">1 active, 0 backup</td>' \
                '<td class="t">api</td><td><span class="b ok">UP</span></td>' \
                '<td class="ind">web1</td><td><span class="b ok">UP</span></td><td>L7OK</td>' \
                '<td class="ind">web2</td><td><span class="b bad">DOWN</span></td><td>L4CON</td>' \
                '<td class="ind">api1</td><td><span class="b ok">UP</span></td>' \
                'balancer/balancer.pem</code> <span class="b ok">90.0 days</span>'; do
        grep -qF "$want" "$T/page.html" || fail "the page's Balancer section lacks: $want"
    done
    pass "status page: Balancer section with frontend www, backends web and api, web2 DOWN, the certificate"
fi

if [ "$NTARGETS" = 5 ]; then
    # lb1's samples on every node: host metrics (CPU busy needs two rounds), haproxy UP
    agent_samples() {
        for p in 8441 8442 8443; do
            curl -sf "http://127.0.0.1:$p/metrics" > "$T/agent-$p.txt" &&
            grep -q '^node_load1{probe="host",vantage="lb1"} ' "$T/agent-$p.txt" &&
            grep -q '^lbwatch_host_cpu_busy_ratio{probe="host",vantage="lb1"} ' "$T/agent-$p.txt" &&
            grep -q '^lbwatch_process_up{probe="processes",process="haproxy",vantage="lb1"} 1$' "$T/agent-$p.txt" ||
            return 1
        done
    }
    wait_for 30 agent_samples || { cat "$T/demo.log"; fail "the agent's samples are not on every node"; }
    for p in 8441 8442 8443; do
        python3 - "$T/agent-$p.txt" "$BALANCER_PORT" "$p" <<'PY' || fail "/metrics of $p does not show lb1 as it is"
import sys
m = {}
for line in open(sys.argv[1]):
    if line.startswith("#") or not line.strip():
        continue
    k, v = line.rsplit(" ", 1)
    m[k] = float(v)
port, node = sys.argv[2], sys.argv[3]
def get(metric, **labels):
    labels["vantage"] = "lb1"
    key = metric + "{" + ",".join('%s="%s"' % kv for kv in sorted(labels.items())) + "}"
    if key not in m:
        print("FAIL: %s: no %s" % (node, key), file=sys.stderr); sys.exit(1)
    return m[key]
def check(cond, what):
    if not cond:
        print("FAIL: %s: %s" % (node, what), file=sys.stderr); sys.exit(1)
for c in ("host", "processes", "sockets"):
    check(get("lbwatch_collector_success", probe=c) == 1, "collector %s failed" % c)
check(get("node_memory_MemTotal_bytes", probe="host") > 0, "memory total")
check(0 <= get("lbwatch_host_cpu_busy_ratio", probe="host") <= 1, "cpu busy ratio")
check(0 < get("lbwatch_host_filefd_used_ratio", probe="host") < 1, "file handles ratio")
h = dict(probe="processes", process="haproxy")
check(get("lbwatch_process_count", **h) == 2, "haproxy master and worker")
check(get("lbwatch_process_restarts_total", **h) == 0, "haproxy restarts")
check(get("lbwatch_process_open_fds", **h) > 0, "haproxy open fds")
check(get("lbwatch_tcp_listeners", probe="sockets", port=port) == 1, "the frontend's listener")
if get("lbwatch_traffic_capture_up", probe="traffic") == 1:
    check(get("lbwatch_collector_success", probe="traffic") == 1, "traffic collector")
    for d in ("in", "out"):
        check(get("lbwatch_traffic_port_bytes_total", probe="traffic", direction=d, port=port) > 0,
              "no %s bytes on the frontend port" % d)
else:
    check(get("lbwatch_collector_success", probe="traffic") == 0, "capture down, traffic succeeds")
PY
    done
    if grep -q '^lbwatch_traffic_capture_up{probe="traffic",vantage="lb1"} 1$' "$T/agent-8441.txt"; then
        CAPTURE=1
    else
        CAPTURE=0; echo "# capturing is not permitted here: lb1's traffic is not tested"
    fi
    pass "lb1's host, haproxy process (master and worker, UP), listener and traffic (capture $CAPTURE) samples on every node"

    for p in 8441 8442 8443; do
        curl -sf "http://127.0.0.1:$p/api/v1/agents"; echo
    done | python3 -c '
import json, sys
v = [json.loads(l)["agents"] for l in sys.stdin if l.strip()]
ok = len(v) == 3 and all(len(a) == 1 and a[0]["name"] == "lb1" and a[0]["up"] for a in v)
ok = ok and all(a[0]["address"] == "127.0.0.1:" + sys.argv[1] and a[0]["interval_ms"] == 2000 for a in v)
owners = {(a[0]["owner"] or {}).get("id") for a in v}
ok = ok and len(owners) == 1 and owners != {None} and sum(a[0]["owned"] for a in v) == 1
sys.exit(0 if ok else 1)' "$AGENT_PORT" || fail "/api/v1/agents does not show lb1 up with one owner on every node"
    pass "/api/v1/agents: lb1 up, one owner, the same on every node"

    hosts_page() {
        curl -sf "$WEB/" > "$T/page.html" &&
        grep -qF '<h2>Hosts</h2>' "$T/page.html" &&
        grep -Eq '<tr><td class="t">lb1</td><td class="num"><span class="b (ok|warn|bad)">[0-9.]+ %</span></td><td class="num">[0-9.]+</td>' "$T/page.html" &&
        grep -qF '<span class="b ok">haproxy</span> UP <span class="sub">0 restarts</span>' "$T/page.html" &&
        if [ "$CAPTURE" = 1 ]; then
            grep -qF '<h2>Traffic (last 5 minutes)</h2>' "$T/page.html" &&
            grep -Eq '<tr><td class="t">lb1</td><td class="num">[^<]*tcp [0-9.]+ [kMG]?B/s[^<]*</td><td class="num">[^<]*tcp [0-9.]+ [kMG]?B/s' "$T/page.html"
        fi
    }
    wait_for 20 hosts_page || fail "the page's Hosts (and Traffic) sections lack lb1: $(grep -A2 '<h2>Hosts' "$T/page.html")"
    pass "status page: Hosts row for lb1 (CPU busy, load, haproxy UP with 0 restarts)$([ "$CAPTURE" = 1 ] && echo ', Traffic row with tcp bytes')"
fi

curl -sf "$WEB/" > "$T/page.html"
grep -q 'MISMATCH' "$T/page.html" || fail "page does not flag the host name mismatch"
grep -q '>DOWN<' "$T/page.html" || fail "page does not show the down target"
grep -Eq 'class="b (warn|bad)">(4\.9|5\.0) days<' "$T/page.html" || fail "page does not show 5 days left"
grep -q 'connection refused' "$T/page.html" || fail "page does not say why down is down"
pass "status page flags mismatch, down (with reason) and the expiring certificate"

# the demo pages once for the expiring certificate, to the webhook sink it starts
expiring_pages() { grep -c 'demo webhook: firing CertExpiringSoon target=expiring (key [0-9a-f]\{64\})$' "$T/demo.log"; }
paged() { [ "$(expiring_pages)" -ge 1 ]; }
wait_for 30 paged || { cat "$T/demo.log"; fail "no CertExpiringSoon notification reached the demo sink"; }
sleep 5  # longer than group_wait and two evaluation intervals: a repeat would have come
[ "$(expiring_pages)" = 1 ] || { cat "$T/demo.log"; fail "CertExpiringSoon paged $(expiring_pages) times"; }
! grep -q 'REPEAT of a key' "$T/demo.log" || { cat "$T/demo.log"; fail "the sink saw a key twice"; }
for p in 8441 8442 8443; do
    curl -sf "http://127.0.0.1:$p/api/v1/alerts" | python3 -c '
import json, sys
a = [x for x in json.load(sys.stdin) if x["name"] == "CertExpiringSoon"]
sys.exit(0 if len(a) == 1 and a[0]["state"] == "firing" and a[0]["labels"]["target"] == "expiring" else 1)' ||
        fail "node on port $p does not list CertExpiringSoon firing for expiring"
done
curl -sf "$WEB/" | grep -q '>CertExpiringSoon<' || fail "status page does not list the alert"
pass "the expiring certificate paged exactly once; every node lists the alert, the page shows it"

if [ "$NTARGETS" = 5 ]; then
    # web2 is DOWN: BackendServerDown (from two vantages, for 30 s) pages once, to the sink
    server_pages() { grep -c 'demo webhook: firing BackendServerDown target=balancer (key [0-9a-f]\{64\})$' "$T/demo.log"; }
    server_paged() { [ "$(server_pages)" -ge 1 ]; }
    wait_for 90 server_paged || { cat "$T/demo.log"; fail "no BackendServerDown notification reached the demo sink"; }
    sleep 5  # longer than group_wait and two evaluation intervals: a repeat would have come
    [ "$(server_pages)" = 1 ] || { cat "$T/demo.log"; fail "BackendServerDown paged $(server_pages) times"; }
    ! grep -q 'REPEAT of a key' "$T/demo.log" || { cat "$T/demo.log"; fail "the sink saw a key twice"; }
    for p in 8441 8442 8443; do
        curl -sf "http://127.0.0.1:$p/api/v1/alerts" | python3 -c '
import json, sys
a = [x for x in json.load(sys.stdin) if x["name"] == "BackendServerDown"]
ok = len(a) == 1 and a[0]["state"] == "firing"
ok = ok and {k: a[0]["labels"].get(k) for k in ("target", "proxy", "server")} == {"target": "balancer", "proxy": "web", "server": "web2"}
sys.exit(0 if ok else 1)' || fail "node on port $p does not list BackendServerDown firing for web2"
    done
    ! grep -q 'firing BackendDown\|firing Backend5xxRatioHigh\|firing RequestsDeniedSpike\|firing ConnectionsNearLimit\|firing Process\|firing Host' "$T/demo.log" ||
        { cat "$T/demo.log"; fail "a balancer rule fired that should not"; }
    pass "BackendServerDown for web2 paged exactly once; every node lists it; no other balancer rule fired"
fi

kill -INT "$DEMO"
rc=0; wait "$DEMO" || rc=$?
[ "$rc" = 0 ] || { cat "$T/demo.log"; fail "demo exited $rc after Ctrl-C"; }
[ ! -e "$dir" ] || fail "demo left $dir behind"
! (exec 3<>/dev/tcp/127.0.0.1/8441) 2>/dev/null || fail "node still serving after the demo stopped"
if [ "$NTARGETS" = 5 ]; then
    for p in $HAPROXY_PIDS; do
        ! kill -0 "$p" 2>/dev/null || fail "haproxy (pid $p) still runs after the demo stopped"
    done
    ! kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent (pid $AGENT_PID) still runs after the demo stopped"
    ! (exec 3<>/dev/tcp/127.0.0.1/"$AGENT_PORT") 2>/dev/null || fail "the agent's port still answers"
fi
grep -q 'ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer' "$T/demo.log" && { cat "$T/demo.log"; fail "sanitizer report"; }
pass "Ctrl-C stops the demo, its nodes, HAProxy and the agent, and removes $dir"
