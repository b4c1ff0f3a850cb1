#!/usr/bin/env python3
"""alert_deadman.py - the dead man's switch on three real nodes: only the ready leader calls
the configured URL, once per interval (not once per node); when the leader cannot reach a
majority (the two other nodes SIGSTOPped) the calls stop, so the outside service notices that
the appliance cannot alert; when the majority is back they resume. The switch is a real HTTP
sink (tests/support/webhook_sink.py) on loopback."""
import json
import os
import sys
import time

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import lbwcluster as lc  # noqa: E402

SINK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support",
                    "webhook_sink.py")
INTERVAL_S = 10                   # the shortest interval the config accepts


def pings(path):
    """received_ms of every call the sink recorded, in order (a line being written is left
    for the next read)."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                if r["path"] == "/ping":
                    out.append(r["received_ms"])
    except FileNotFoundError:
        pass
    return out


def test(c):
    port = lc.free_ports(1)[0]
    out = os.path.join(c.dir, "deadman.jsonl")
    c.spawn("deadman-sink", [sys.executable, SINK, "--port", str(port), "--out", out])
    lc.wait_until("the dead man's switch sink listens", 10, lambda: lc.port_open(port))
    c.extra_config = ("alerting:\n  evaluation_interval: 1s\n"
                      "  deadman: {url: 'http://127.0.0.1:%d/ping', interval: %ds}\n"
                      "  receivers:\n"
                      "    - {name: hook, webhook: {url: 'http://127.0.0.1:%d/hook'}}\n"
                      "  route: {receiver: hook}\n" % (port, INTERVAL_S, port))
    c.start_all()
    leader = c.wait_leader(timeout=30)
    lc.wait_until("the first call to the dead man's switch", 30, lambda: pings(out))
    t0 = time.time()
    time.sleep(3 * INTERVAL_S + 2)
    got = [p for p in pings(out) if p / 1000 >= t0]
    lc.check(len(got) in (3, 4), "%d calls in %d s with a %d s interval from 3 nodes (one "
             "caller expected)" % (len(got), 3 * INTERVAL_S + 2, INTERVAL_S))
    gaps = [b - a for a, b in zip(got, got[1:])]
    lc.check(all(INTERVAL_S * 1000 - 1500 <= g <= INTERVAL_S * 1000 + 3000 for g in gaps),
             "calls are not one interval apart: %r ms" % gaps)
    lc.ok("the leader (%s) alone calls the dead man's switch every %d s: %d calls, gaps %r ms"
          % (leader.name, INTERVAL_S, len(got), gaps))

    others = [n for n in c.bootstrap_nodes() if n is not leader]
    for n in others:
        n.pause()
    lc.wait_until("%s says it has no quorum" % leader.name, 20,
                  lambda: leader.cluster()["has_quorum"] is False)
    t_cut = time.time()
    time.sleep(2.5 * INTERVAL_S)
    during = [p for p in pings(out) if p / 1000 >= t_cut]
    lc.check(not during, "%d calls to the dead man's switch while the leader had no majority"
             % len(during))
    lc.ok("no call in %.0f s while %s could not reach a majority"
          % (2.5 * INTERVAL_S, leader.name))

    for n in others:
        n.resume()
    t_back = time.time()
    c.wait_leader(timeout=30)
    lc.wait_until("calls resume once a majority is back", 3 * INTERVAL_S,
                  lambda: [p for p in pings(out) if p / 1000 >= t_back])
    lc.ok("calls resume once the majority is back")
    c.wait_converged(timeout=60)


lc.main(test, nodes=3)
