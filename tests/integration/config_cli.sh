# config_cli.sh - `lbwatch node --check-config`: the shipped example is valid and quiet; bad
# files exit 2 with exactly "FILE:LINE:COL: reason" on stderr; `lbwatch node --help` works.
# `lbwatch agent --check-config`: the shipped agent example, beside a PKI with the agent
# certificate it names, is valid with its four collectors, and quiet; so for lbwatch-agent,
# which loads none of the node's libraries.
. tests/support/lib.sh

"$LBWATCH" node --help >"$T/help.out" 2>"$T/help.err" || fail "node --help exited $?"
grep -q -- "--check-config" "$T/help.out" || fail "node --help does not mention --check-config"
pass "node --help"

"$LBWATCH" node --check-config -c images/lbwatch.example.yaml >"$T/ok.out" 2>"$T/ok.err" ||
    fail "example config rejected: $(cat "$T/ok.err")"
[ -s "$T/ok.err" ] && fail "example config: unexpected stderr: $(cat "$T/ok.err")"
grep -qiE 'error|warn|fail' "$T/ok.out" && fail "example config: alarming output: $(cat "$T/ok.out")"
pass "example config is valid"

mkdir "$T/agent"
cp images/agent.example.yaml "$T/agent/agent.yaml"
"$LBWATCH" pki init --dir "$T/agent/pki" >/dev/null 2>&1 || fail "pki init"
"$LBWATCH" pki issue --dir "$T/agent/pki" --agent --name lb1 >/dev/null 2>&1 ||
    fail "pki issue --agent"
"$LBWATCH" agent --check-config -c "$T/agent/agent.yaml" >"$T/agent.out" 2>"$T/agent.err" ||
    fail "agent example config rejected: $(cat "$T/agent.err")"
[ -s "$T/agent.err" ] && fail "agent example config: unexpected stderr: $(cat "$T/agent.err")"
[ "$(cat "$T/agent.out")" = "$T/agent/agent.yaml: ok (agent lb1, 4 collectors)" ] ||
    fail "agent example config: output: $(cat "$T/agent.out")"
pass "agent example config is valid (4 collectors)"

# lbwatch-agent: the same agent, linked with only the agent's libraries
AGENT_BIN=$(dirname "$LBWATCH")/lbwatch-agent
[ -x "$AGENT_BIN" ] || fail "$AGENT_BIN is not built"
"$AGENT_BIN" --check-config -c "$T/agent/agent.yaml" >"$T/agentbin.out" 2>"$T/agentbin.err" ||
    fail "lbwatch-agent rejects the example: $(cat "$T/agentbin.err")"
[ "$(cat "$T/agentbin.out")" = "$T/agent/agent.yaml: ok (agent lb1, 4 collectors)" ] ||
    fail "lbwatch-agent --check-config: output: $(cat "$T/agentbin.out")"
"$AGENT_BIN" --help | grep -q "^usage: lbwatch-agent -c FILE" || fail "lbwatch-agent --help"
node_libs=$(ldd "$AGENT_BIN" | grep -E 'libraft|liblmdb|libmicrohttpd|libcurl|libjansson')
[ -z "$node_libs" ] || fail "lbwatch-agent loads the node's libraries: $node_libs"
pass "lbwatch-agent checks the example and loads none of the node's libraries"

# check_bad NAME WANT: writes stdin to $T/NAME, expects exit 2 and stderr "$T/NAME:WANT"
check_bad() {
    cat >"$T/$1"
    "$LBWATCH" node --check-config -c "$T/$1" >"$T/$1.out" 2>"$T/$1.err"
    rc=$?
    [ $rc -eq 2 ] || fail "$1: exit $rc, want 2 (stderr: $(cat "$T/$1.err"))"
    got=$(cat "$T/$1.err")
    [ "$got" = "$T/$1:$2" ] || fail "$1: stderr
  got:  $got
  want: $T/$1:$2"
    pass "$1: $2"
}

check_bad unknown.yaml "3:3: unknown key 'timout' in 'probes' (expected interval, timeout)" <<'EOF'
node: {name: n1, data_dir: /var/lib/lbwatch}
probes:
  timout: 2s
EOF

check_bad duration.yaml "5:14: targets[0].timeout: bad duration \"5x\" (use e.g. 500ms, 10s, 5m, 1h)" <<'EOF'
node: {name: n1, data_dir: /var/lib/lbwatch}
targets:
  - name: www
    address: www.example.com:443
    timeout: 5x
EOF

check_bad missing.yaml "2:3: missing required key 'data_dir' in 'node'" <<'EOF'
node:
  name: n1
EOF

check_bad port.yaml "4:14: targets[0].address: bad address \"www.example.com:0\": port must be 1-65535" <<'EOF'
node: {name: n1, data_dir: /var/lib/lbwatch}
targets:
  - name: www
    address: www.example.com:0
EOF

check_bad syntax.yaml "2:10: mapping values are not allowed in this context" <<'EOF'
node:
  name: a: b
EOF

check_bad empty.yaml "1:1: empty document" </dev/null

"$LBWATCH" node --check-config -c "$T/does-not-exist.yaml" >/dev/null 2>"$T/nofile.err"
rc=$?
[ $rc -eq 2 ] || fail "missing file: exit $rc, want 2"
[ "$(cat "$T/nofile.err")" = "$T/does-not-exist.yaml: No such file or directory" ] ||
    fail "missing file: stderr: $(cat "$T/nofile.err")"
pass "missing file"
