# pki_cli.sh - `lbwatch pki` end to end: make a CA, issue a node and an agent certificate,
# check them with the openssl CLI (chain, SANs, key match, modes), `pki show`, and the exit
# codes for help (0), runtime errors (1) and bad usage (2).
. tests/support/lib.sh

command -v openssl >/dev/null || fail "the openssl CLI is needed"
D=$T/pki

# run RC ARGS...: runs `lbwatch ARGS...` expecting exit code RC; stdout in $T/out, stderr in
# $T/err; a sanitizer report fails the test whatever the exit code.
run() {
    want=$1; shift
    "$LBWATCH" "$@" >"$T/out" 2>"$T/err"
    got=$?
    if grep -qE 'Sanitizer|runtime error' "$T/err"; then
        cat "$T/err" >&2; fail "sanitizer report from: lbwatch $*"
    fi
    [ "$got" = "$want" ] || { cat "$T/out" "$T/err" >&2; fail "lbwatch $*: exit $got, want $want"; }
}

mode() { stat -c %a "$1"; }

# --- help ---------------------------------------------------------------------------------
run 0 pki --help
grep -q '^usage: lbwatch pki <command>' "$T/out" || fail "pki --help text"
for c in init issue show; do
    run 0 pki "$c" --help
    grep -q "^usage: lbwatch pki $c" "$T/out" || fail "pki $c --help text"
done
pass "--help for pki and every command exits 0"

# --- init and issue -----------------------------------------------------------------------
run 0 pki init --dir "$D"
[ -s "$D/ca.crt" ] && [ -s "$D/ca.key" ] || fail "init wrote no CA"
[ "$(mode "$D/ca.key")" = 600 ] || fail "ca.key mode $(mode "$D/ca.key")"
[ "$(mode "$D")" = 700 ] || fail "pki dir mode $(mode "$D")"
run 0 pki issue --dir "$D" --name n1 --id 1 --ip 127.0.0.1 --dns n1.lbwatch.test
run 0 pki issue --dir "$D" --agent --name edge-1 --ip 10.1.2.3
for f in n1 edge-1; do
    [ "$(mode "$D/$f.key")" = 600 ] || fail "$f.key mode $(mode "$D/$f.key")"
done
ls "$D" | grep -q tmp && fail "temp files left in $D: $(ls "$D")"
pass "init and issue write certificates and 0600 keys"

# --- the openssl CLI agrees ---------------------------------------------------------------
openssl verify -CAfile "$D/ca.crt" "$D/n1.crt" "$D/edge-1.crt" >"$T/v" 2>&1 || { cat "$T/v"; fail "openssl verify"; }
for p in sslserver sslclient; do
    openssl verify -purpose "$p" -CAfile "$D/ca.crt" "$D/n1.crt" >/dev/null 2>&1 || fail "n1 not valid for $p"
done
openssl verify -CAfile "$D/n1.crt" "$D/edge-1.crt" >/dev/null 2>&1 && fail "verified against the wrong CA"
san=$(openssl x509 -in "$D/n1.crt" -noout -ext subjectAltName) || fail "openssl x509 -ext"
echo "$san" | grep -q 'URI:lbwatch://node/1' || fail "no node URI in: $san"
echo "$san" | grep -q 'IP Address:127.0.0.1' || fail "no IP SAN in: $san"
echo "$san" | grep -q 'DNS:n1.lbwatch.test' || fail "no DNS SAN in: $san"
san=$(openssl x509 -in "$D/edge-1.crt" -noout -ext subjectAltName)
echo "$san" | grep -q 'URI:lbwatch://agent/edge-1' || fail "no agent URI in: $san"
openssl x509 -in "$D/n1.crt" -noout -subject | grep -q 'CN *= *n1' || fail "n1 subject"
for f in ca n1 edge-1; do
    a=$(openssl x509 -in "$D/$f.crt" -noout -pubkey)
    b=$(openssl pkey -in "$D/$f.key" -pubout)
    [ "$a" = "$b" ] || fail "$f.key does not match $f.crt"
    head -1 "$D/$f.key" | grep -q '^-----BEGIN PRIVATE KEY-----$' || fail "$f.key is not PKCS#8"
done
pass "openssl verifies the chain, the SANs and the key pairs"

# --- show ---------------------------------------------------------------------------------
run 0 pki show "$D/n1.crt"
grep -q '^identity: *lbwatch://node/1 (node 1, name n1)$' "$T/out" || { cat "$T/out"; fail "show: identity"; }
grep -qE '^days left: *(824|825)$' "$T/out" || { cat "$T/out"; fail "show: days left"; }
grep -q '^SANs: .*IP:127.0.0.1' "$T/out" || fail "show: SANs"
fp=$(openssl x509 -in "$D/n1.crt" -noout -fingerprint -sha256 | sed 's/.*=//')
grep -q "^sha256: *$fp$" "$T/out" || fail "show: fingerprint differs from openssl's $fp"
run 0 pki show "$D/edge-1.crt"
grep -q '^identity: *lbwatch://agent/edge-1 (agent edge-1)$' "$T/out" || fail "show: agent identity"
run 0 pki show "$D/ca.crt"
grep -q '^identity: *none$' "$T/out" || fail "show: CA identity"
grep -q '^CA: *yes$' "$T/out" || fail "show: CA flag"
pass "pki show prints identity, days left, SANs and the fingerprint"

# --- runtime errors exit 1 ----------------------------------------------------------------
before=$(sha256sum "$D/ca.key" "$D/ca.crt")
run 1 pki init --dir "$D"
grep -q '^lbwatch pki: .*already exists' "$T/err" || fail "init twice: $(cat "$T/err")"
[ "$before" = "$(sha256sum "$D/ca.key" "$D/ca.crt")" ] || fail "init twice changed the CA"
run 1 pki show "$T/missing.crt"
grep -q '^lbwatch pki: ' "$T/err" || fail "show missing: $(cat "$T/err")"
run 1 pki show "$D/n1.key"
run 1 pki issue --dir "$T/nowhere" --name n2 --id 2 --ip 127.0.0.2
pass "init twice, missing files and non-certificates exit 1"

# --- bad usage exits 2 --------------------------------------------------------------------
run 2 pki
run 2 pki frobnicate
run 2 pki init
run 2 pki init --dir "$T/x" --days twelve
run 2 pki init --dir "$T/x" --bogus
run 2 pki issue --dir "$D" --name n2 --id 0 --ip 127.0.0.2
run 2 pki issue --dir "$D" --name n2 --id 02 --ip 127.0.0.2
run 2 pki issue --dir "$D" --name n2 --id 9223372036854775808 --ip 127.0.0.2
run 2 pki issue --dir "$D" --name n2 --id 2
run 2 pki issue --dir "$D" --name n2 --id 2 --ip 999.0.0.1
run 2 pki issue --dir "$D" --name 'bad name' --id 2 --ip 127.0.0.2
run 2 pki issue --dir "$D" --name ca --id 2 --ip 127.0.0.2
run 2 pki issue --dir "$D" --agent --name a2 --id 2
run 2 pki issue --dir "$D" --id 2 --ip 127.0.0.2
run 2 pki show
run 2 pki show "$D/n1.crt" "$D/ca.crt"
[ -e "$D/n2.crt" ] || [ -e "$D/a2.crt" ] || [ -e "$T/x" ] && fail "bad usage wrote files"
pass "bad usage exits 2 and writes nothing"
