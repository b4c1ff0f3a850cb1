#!/usr/bin/env python3
"""agent_collectors.py - a real agent (the lbwatch-agent program next to $LBWATCH) with all
four collector kinds, pulled by a 3-node cluster: what it measures on this host reaches every
node's /metrics with vantage=c1.

The agent c1 (interval 1 s, pulled every second) runs:
  host       filesystems local: node_load1, node_memory_MemTotal_bytes, node_cpu_seconds_total
  processes  a process the test starts (a symlink to sleep with a unique name, so comm and
             argv[0] are that name), and a pidfile that does not exist (label "gone")
  sockets    a port the test listens on with K connections it never accepts
  traffic    on lo, watching that port and the agent's own (skipped, with a note, when capturing is not
             permitted: then the collector must report lbwatch_traffic_capture_up 0 and
             fail while the agent keeps running)
Shown, on every node:
  - lbwatch_collector_success 1 for host, processes and sockets (and traffic), host metrics;
  - the watched process up 1 with count 1; killed: up 0 everywhere; started again (a new
    PID): up 1 and lbwatch_process_restarts_total 1 everywhere; "gone" up 0;
  - lbwatch_tcp_listen_queue_length{port} = K, lbwatch_tcp_listeners 1;
  - traffic: capture up 1 and, for the K connections made after the capture started,
    exactly 2K packets in (SYN, ACK) and K out (SYN+ACK) on the watched port; the nodes'
    pulls of the agent (mutual TLS to its port) counted as TLS 1.3 ClientHellos.
The agent stops cleanly on SIGTERM with no sanitizer report.
"""
import os
import re
import secrets
import socket
import sys

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import lbwcluster as lc  # noqa: E402

AGENT_PORT, WATCHED_PORT = lc.free_ports(2)
K = 4
EXTRA = ("agents:\n  - {name: c1, address: '127.0.0.1:%d', interval: 1s, timeout: 5s}\n"
         % AGENT_PORT)
PROC = "lbwsl" + secrets.token_hex(4)      # 13 characters: comm keeps all of it
AGENT_BIN = os.path.join(os.path.dirname(lc.LBWATCH), "lbwatch-agent")


def labels(**kw):
    kw["vantage"] = "c1"
    return ",".join('%s="%s"' % (k, kw[k]) for k in sorted(kw))


def m(metric, **kw):
    return "%s{%s}" % (metric, labels(**kw))


def read_log(proc):
    with open(proc.log, errors="replace") as f:
        return f.read()


def on_every_node(nodes, what, timeout, want):
    """Waits until want(metrics) holds for every node's /metrics."""
    lc.wait_until(what + " on every node", timeout,
                  lambda: all(want(n.metrics()) for n in nodes))


def values_on_every_node(nodes, what, timeout, want):
    """Waits until every node's /metrics has the values of want {key: value}; the failure
    names the values that differ."""
    seen = {}

    def agree():
        for n in nodes:
            mx = n.metrics()
            seen[n.name] = {k: mx.get(k) for k, v in want.items() if mx.get(k) != v}
        return not any(seen.values())
    try:
        lc.wait_until(what + " on every node", timeout, agree)
    except lc.Failure as e:
        lc.fail("%s; differing (want %r): %r" % (e, want, seen))


def start_watched(c, path):
    return c.spawn(PROC, [path, "1000"])


def test(c):
    cert, key = c.issue("c1", 0, agent=True)
    sleeper = os.path.join(c.dir, PROC)
    os.symlink("/bin/sleep", sleeper)
    watched = start_watched(c, sleeper)

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", WATCHED_PORT))
    listener.listen(16)

    path = os.path.join(c.dir, "agent-c1.yaml")
    with open(path, "w") as f:
        f.write("agent: {listen: '127.0.0.1:%d', interval: 1s}\n"
                "tls: {ca: %s/ca.crt, cert: %s, key: %s}\n"
                "collectors:\n"
                "  host: {filesystems: local}\n"
                "  processes:\n    - {name: %s}\n    - {pidfile: %s/none.pid, label: gone}\n"
                "  sockets: {ports: [%d]}\n"
                "  traffic: {interface: lo, ports: [%d, %d]}\n"
                % (AGENT_PORT, c.pki, cert, key, PROC, c.dir, WATCHED_PORT, WATCHED_PORT,
                   AGENT_PORT))
    lc.check(os.access(AGENT_BIN, os.X_OK), "%s is not built" % AGENT_BIN)
    agent = c.spawn("agent-c1", [AGENT_BIN, "-c", path, "--log-level", "debug"])
    lc.wait_until("agent c1 listens", 20, lambda: lc.port_open(AGENT_PORT))
    lc.wait_until("agent c1 made a round", 10, lambda: "round 1 at" in read_log(agent))
    capture = "collector traffic:" not in read_log(agent)

    clients = []
    if capture:     # connections made while the capture runs: K handshakes to account
        for _ in range(K):
            clients.append(socket.create_connection(("127.0.0.1", WATCHED_PORT), timeout=5))

    c.start_all()
    nodes = c.bootstrap_nodes()
    c.wait_leader()

    def collected(mx):
        return all(mx.get(m("lbwatch_collector_success", probe=p)) == 1
                   for p in ("host", "processes", "sockets"))
    on_every_node(nodes, "c1's collectors succeeded", 30, collected)
    for n in nodes:
        mx = n.metrics()
        lc.check(m("node_load1", probe="host") in mx and
                 mx.get(m("node_memory_MemTotal_bytes", probe="host"), 0) > 0 and
                 any(k.startswith("node_cpu_seconds_total{") and 'vantage="c1"' in k
                     for k in mx), "%s /metrics lacks c1's host metrics" % n.name)
    lc.ok("c1's host, processes and sockets collectors succeed; host metrics (vantage=c1) on "
          "every node's /metrics")

    up = m("lbwatch_process_up", probe="processes", process=PROC)
    count = m("lbwatch_process_count", probe="processes", process=PROC)
    restarts = m("lbwatch_process_restarts_total", probe="processes", process=PROC)
    gone = m("lbwatch_process_up", probe="processes", process="gone")
    on_every_node(nodes, "%s up" % PROC, 15,
                  lambda mx: mx.get(up) == 1 and mx.get(count) == 1 and mx.get(restarts) == 0
                  and mx.get(gone) == 0)
    watched.kill()
    on_every_node(nodes, "%s down" % PROC, 15, lambda mx: mx.get(up) == 0)
    watched = start_watched(c, sleeper)
    on_every_node(nodes, "%s up again with one restart" % PROC, 15,
                  lambda mx: mx.get(up) == 1 and mx.get(restarts) == 1)
    lc.ok("process %s: up 1, killed -> up 0, started again -> up 1 and restarts_total 1 on "
          "every node; a missing pidfile is up 0" % PROC)

    if not capture:
        for _ in range(K):
            clients.append(socket.create_connection(("127.0.0.1", WATCHED_PORT), timeout=5))
    queue = m("lbwatch_tcp_listen_queue_length", port=WATCHED_PORT, probe="sockets")
    listeners = m("lbwatch_tcp_listeners", port=WATCHED_PORT, probe="sockets")
    on_every_node(nodes, "listen queue %d on port %d" % (K, WATCHED_PORT), 15,
                  lambda mx: mx.get(queue) == K and mx.get(listeners) == 1)
    lc.ok("port %d with %d connections not accepted: lbwatch_tcp_listen_queue_length %d on "
          "every node" % (WATCHED_PORT, K, K))

    cap_up = m("lbwatch_traffic_capture_up", probe="traffic")
    if not capture:
        why = re.search(r"collector traffic: (.*)", read_log(agent)).group(1)
        on_every_node(nodes, "traffic capture down, reported", 15,
                      lambda mx: mx.get(cap_up) == 0 and
                      mx.get(m("lbwatch_collector_success", probe="traffic")) == 0)
        lc.check(agent.alive(), "the agent died without a capture")
        lc.note("SKIPPED traffic on lo: capturing is not permitted here (%s); the collector "
                "reports capture_up 0 and the agent keeps running" % why)
    else:
        port = dict(port=WATCHED_PORT, probe="traffic")
        want = {m("lbwatch_traffic_port_packets_total", direction="in", **port): 2 * K,
                m("lbwatch_traffic_port_packets_total", direction="out", **port): K,
                cap_up: 1, m("lbwatch_collector_success", probe="traffic"): 1}
        values_on_every_node(nodes, "c1's traffic counts", 20, want)
        hellos = m("lbwatch_tls_client_hello_total", probe="traffic", version="TLS 1.3")
        completed = m("lbwatch_tcp_handshakes_total", outcome="completed", probe="traffic")
        on_every_node(nodes, "the nodes' pulls counted as TLS 1.3 ClientHellos", 15,
                      lambda mx: mx.get(hellos, 0) >= 1 and mx.get(completed, 0) >= K)
        lc.ok("traffic on lo: exactly %d packets in (SYN, ACK) and %d out (SYN+ACK) on port %d "
              "for its %d handshakes, the nodes' pulls of the agent counted as TLS 1.3 "
              "ClientHellos, capture up, on every node" % (2 * K, K, WATCHED_PORT, K))

    for s in clients:
        s.close()
    listener.close()
    agent.p.terminate()
    lc.check(agent.p.wait(timeout=10) == 0, "agent c1 did not exit 0 on SIGTERM")
    lc.check(not lc.SANITIZER_RE.search(read_log(agent)), "sanitizer report in agent c1's log")
    lc.ok("agent c1 stopped cleanly on SIGTERM; no sanitizer report")


lc.main(test, nodes=3, extra_config=EXTRA)
