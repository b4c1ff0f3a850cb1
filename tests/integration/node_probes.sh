#!/usr/bin/env bash
# node_probes.sh - `lbwatch node` against real targets on loopback: an `openssl s_server` with
# a certificate from `lbwatch pki`, a silent listener (accepts, never speaks) and a closed
# port. The silent target times out without slowing the others' cadence; a clean restart
# keeps every stored sample and continues the same series; after kill -9 the store reopens
# and ingest continues.
. tests/support/lib.sh

api() { curl -sf "http://127.0.0.1:$WEB$1"; }

# count of probe_success points of a target's TLS probe over the last 10 minutes
points() {
    api "/api/v1/series?name=probe_success&target=$1&from=-10m" | python3 -c '
import json, sys
s = json.load(sys.stdin)["series"]
print(sum(len(x["points"]) for x in s if x["labels"].get("probe") == "tls"))'
}

"$LBWATCH" pki init --dir "$T/pki" >/dev/null || fail "pki init"
"$LBWATCH" pki issue --dir "$T/pki" --name www --id 99 --ip 127.0.0.1 --dns www.test >/dev/null \
    || fail "pki issue"

TLS=$(free_port); SILENT=$(free_port); CLOSED=$(free_port); WEB=$(free_port)
bg "$T/s_server.log" openssl s_server -quiet -accept "$TLS" -cert "$T/pki/www.crt" -key "$T/pki/www.key" -www
bg "$T/silent.log" python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)' "$SILENT"
wait_port "$TLS" 10 || fail "s_server did not start"
wait_port "$SILENT" 10 || fail "silent listener did not start"

cat > "$T/node.yaml" <<YAML
node:
  name: it1
  data_dir: $T/data
web:
  listen: 127.0.0.1:$WEB
probes:
  interval: 1s
  timeout: 900ms
targets:
  - name: www
    address: 127.0.0.1:$TLS
    server_name: www.test
    ca_file: $T/pki/ca.crt
  - name: silent
    address: 127.0.0.1:$SILENT
  - name: closed
    address: 127.0.0.1:$CLOSED
YAML

start_node() { bg "$T/node$1.log" "$LBWATCH" node -c "$T/node.yaml"; NODE=$!; wait_port "$WEB" 20 || fail "node did not listen"; }

start_node 1
sleep 6
n1=$(points www)
[ "$n1" -ge 4 ] || fail "www probed $n1 times in 6 s with a 1 s interval while silent hangs"
api /api/v1/targets > "$T/t1.json"
python3 - "$T/t1.json" <<'PY' || fail "unexpected target states"
import json, sys
t = {x["name"]: x["vantages"][0]["tls"] for x in json.load(open(sys.argv[1]))["targets"]}
assert t["www"]["success"] and t["www"]["chain_verified"] and t["www"]["hostname_match"], t["www"]
assert t["silent"]["success"] is False and "timeout" in t["silent"]["error"], t["silent"]
assert t["closed"]["success"] is False and "refused" in t["closed"]["error"], t["closed"]
PY
pass "www keeps a 1 s cadence ($n1 results in 6 s) while 'silent' times out and 'closed' is refused"

api "/api/v1/series?name=probe_success&target=www&from=-10m" > "$T/before.json"
kill -TERM "$NODE"; rc=0; wait "$NODE" || rc=$?
[ "$rc" = 0 ] || { cat "$T/node1.log"; fail "node exited $rc on SIGTERM"; }
start_node 2
sleep 3
api "/api/v1/series?name=probe_success&target=www&from=-10m" > "$T/after.json"
python3 - "$T/before.json" "$T/after.json" <<'PY' || fail "restart lost or changed samples"
import json, sys
def pts(f):
    return [tuple(p) for s in json.load(open(f))["series"] if s["labels"]["probe"] == "tls" for p in s["points"]]
b, a = pts(sys.argv[1]), pts(sys.argv[2])
assert a[:len(b)] == b, "stored points changed across the restart"
assert len(a) > len(b), "no new points after the restart"
assert all(x[0] < y[0] for x, y in zip(a, a[1:])), "timestamps not increasing"
PY
pass "clean restart keeps all $(python3 -c 'import json,sys;print(sum(len(s["points"]) for s in json.load(open(sys.argv[1]))["series"]))' "$T/before.json") samples and continues the series"

kill -9 "$NODE"; wait "$NODE" 2>/dev/null
n2=$(python3 -c 'import json,sys;print(sum(len(s["points"]) for s in json.load(open(sys.argv[1]))["series"] if s["labels"]["probe"]=="tls"))' "$T/after.json")
start_node 3
sleep 3
n3=$(points www)
[ "$n3" -gt "$n2" ] || fail "after kill -9 and restart: $n3 points, had $n2"
pass "after kill -9 the store reopens and ingest continues ($n2 -> $n3 points)"
kill -TERM "$NODE"; wait "$NODE"
for f in "$T"/node*.log; do
    grep -q 'AddressSanitizer\|runtime error:\|LeakSanitizer' "$f" && { cat "$f"; fail "sanitizer report in $f"; }
done
pass "no sanitizer reports"
