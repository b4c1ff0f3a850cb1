#!/usr/bin/env bash
# valgrind.sh - the release build (-O2, _FORTIFY_SOURCE, no sanitizers) under valgrind:
# pki commands, config checking, and a node probing a real TLS server, serving its pages and
# shutting down on SIGTERM. Any invalid access, uninitialised use or definite leak fails.
. tests/support/lib.sh

: "${LBWATCH_REL:=$PWD/build/lbwatch}"
VG="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite --track-fds=no"

$VG "$LBWATCH_REL" pki init --dir "$T/pki" >/dev/null || fail "pki init under valgrind"
$VG "$LBWATCH_REL" pki issue --dir "$T/pki" --name www --id 7 --ip 127.0.0.1 --dns www.test >/dev/null \
    || fail "pki issue under valgrind"
$VG "$LBWATCH_REL" pki show "$T/pki/www.crt" >/dev/null || fail "pki show under valgrind"
pass "pki init, issue, show are valgrind-clean"

TLS=$(free_port); WEB=$(free_port)
bg "$T/s_server.log" openssl s_server -quiet -accept "$TLS" -cert "$T/pki/www.crt" -key "$T/pki/www.key" -www
wait_port "$TLS" 10 || fail "s_server did not start"
cat > "$T/node.yaml" <<YAML
node:
  name: vg1
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
    http:
      path: /
  - name: closed
    address: 127.0.0.1:$(free_port)
YAML
$VG "$LBWATCH_REL" node --check-config -c "$T/node.yaml" >/dev/null || fail "check-config under valgrind"

$VG --log-file="$T/vg-node.log" "$LBWATCH_REL" node -c "$T/node.yaml" >"$T/node.log" 2>&1 &
NODE=$!; PIDS="$PIDS $NODE"
wait_port "$WEB" 60 || { cat "$T/node.log"; fail "node under valgrind did not listen"; }
sleep 5
for path in / /api/v1/targets /metrics /healthz "/api/v1/series?name=probe_success&step=1m"; do
    curl -sf -o /dev/null "http://127.0.0.1:$WEB$path" || fail "GET $path"
done
curl -sf "http://127.0.0.1:$WEB/metrics" | grep -q '^probe_success{probe="tls",target="www",vantage="vg1"} 1$' \
    || fail "node under valgrind did not probe www"
kill -TERM "$NODE"
rc=0; wait "$NODE" || rc=$?
[ "$rc" = 0 ] || { cat "$T/vg-node.log" "$T/node.log"; fail "node under valgrind exited $rc"; }
pass "node probing, serving and stopping is valgrind-clean"
