# lib.sh - shared helpers for integration scripts (sourced by bash).
# Every script: . tests/support/lib.sh; it gets $LBWATCH, a temp dir $T removed on exit,
# and every process started with `bg` is killed on exit.
set -u
: "${LBWATCH:=$PWD/build/asan/lbwatch}"
T=$(mktemp -d "${TMPDIR:-/tmp}/lbw-it.XXXXXX")
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    sleep 0.2
    for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap "exit 1" INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok - $*"; }

# free_port: a TCP port on 127.0.0.1 nobody listens on right now
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }

# bg LOG CMD...: start CMD in the background, output to LOG; its pid is added to PIDS and kept in $!
bg() { log=$1; shift; "$@" >"$log" 2>&1 & PIDS="$PIDS $!"; }

# wait_port PORT [SECONDS]
wait_port() {
    i=0; lim=$(( ${2:-10} * 10 ))
    while ! (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; do
        i=$((i+1)); [ $i -ge $lim ] && return 1; sleep 0.1
    done
    return 0
}

# wait_for SECONDS CMD...: retry CMD until it succeeds
wait_for() {
    lim=$(( $1 * 10 )); shift; i=0
    until "$@" >/dev/null 2>&1; do i=$((i+1)); [ $i -ge $lim ] && return 1; sleep 0.1; done
}
