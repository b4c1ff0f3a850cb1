#!/usr/bin/env python3
"""agent_pull.py - real `lbwatch agent` processes pulled into a 3-node cluster (node/agentpull.h).

Agents (every node has the same agents: list, pull interval 1 s):
  a1      a real agent (certificate issued with `pki issue --agent`), collecting every second
  a2      a real agent whose certificate (and CA) is another CA's      -> refused: untrusted
  a3      a fake agent (Python ssl) presenting a NODE certificate      -> refused: not_an_agent
  evil    a fake agent in the middle of a real agent "evil": it serves the real agent's first
          batch with one payload byte flipped                         -> refused on apply:
                                                                          bad_signature
  forger  a fake agent serving a batch that claims agent "forger" but is signed with a node's
          key and certificate (tests/tools/inject_batch --as-agent)    -> refused on apply:
                                                                          forged
Shown:
  - the agent's own checks: --help, --check-config (FILE:LINE:COL and exit 2 for bad config, a
    node certificate given as the agent's), refusals of a peer without a certificate and of an
    agent certificate (not a node), the protocol from outside (BATCH frames ascending, END,
    ERROR for an unknown version);
  - one owner per agent, the same on every node (/api/v1/agents), agents spread over nodes;
  - a1's samples (vantage="a1") on every node's /api/v1/series and /metrics,
    lbwatch_agent_up{agent="a1"} 1 everywhere; a1's log shows pulls from its owner only;
  - the refusals above counted where they happen, the tampered and forged batches refused on
    every replica exactly once (lbwatch_fsm_rejected_total) and stored nowhere;
  - kill -9 of a1's owner: the survivors agree on a new owner, a1's sequence keeps rising, and
    every round the agent made up to a point well after the kill is stored on every survivor
    (no batch the agent still buffered is lost).
"""
import os
import re
import socket
import ssl
import struct
import sys
import threading

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import lbwcluster as lc  # noqa: E402

PORTS = lc.free_ports(6)
AGENTS = {"a1": PORTS[0], "a2": PORTS[1], "a3": PORTS[2], "evil": PORTS[3],
          "forger": PORTS[4]}
EVIL_UPSTREAM = PORTS[5]          # the real agent "evil" behind the tampering fake
EXTRA = "agents:\n" + "".join(
    "  - {name: %s, address: '127.0.0.1:%d', interval: 1s, timeout: 5s}\n" % (n, p)
    for n, p in AGENTS.items())

PULL, BATCH, END, ERROR = 1, 2, 3, 4
ROUND_RE = re.compile(r"round \d+ at (\d+): \d+ samples in batch (\d+)")
PULLED_RE = re.compile(r"pulled by (\S+) \(node (\d+), [^)]*\): after")


# ---- the wire protocol (node/agentproto.h) ----------------------------------------------------

def frame(ftype, body):
    return struct.pack(">IB", len(body) + 1, ftype) + body


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def read_frames(s):
    """Frames until END or ERROR (inclusive): [(type, body)]."""
    out = []
    while True:
        length, ftype = struct.unpack(">IB", recv_exact(s, 5))
        out.append((ftype, recv_exact(s, length - 1)))
        if ftype in (END, ERROR):
            return out


def entry_seq(entry):
    nlen = entry[11]
    return struct.unpack(">Q", entry[12 + nlen:20 + nlen])[0]


def flip_last_payload_byte(entry):
    """The last payload byte (the last sample's value): still well-formed, signature broken."""
    p = 12 + entry[11] + 8
    p += 2 + struct.unpack(">H", entry[p:p + 2])[0]
    end = p + 4 + struct.unpack(">I", entry[p:p + 4])[0]
    b = bytearray(entry)
    b[end - 1] ^= 0x01
    return bytes(b)


def client_ctx(c, cert=None, key=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations("%s/ca.crt" % c.pki)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def pull(c, port, after, cert, key, version=1):
    """One PULL to an agent as a node would; returns its frames."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with client_ctx(c, cert, key).wrap_socket(raw) as s:
            s.sendall(frame(PULL, struct.pack(">BQI", version, after, 0)))
            return read_frames(s)


class FakeAgent:
    """An mTLS server speaking the agent protocol; serve(after) gives the entries to send."""

    def __init__(self, c, port, cert, key, serve):
        self.serve = serve
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.ctx.load_cert_chain(cert, key)
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.ctx.load_verify_locations("%s/ca.crt" % c.pki)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(8)
        self.sock.settimeout(0.5)
        self.pulls = 0
        self.stop = False
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(5)
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as s:
                    self.answer(s)
            except (OSError, EOFError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def answer(self, s):
        length, ftype = struct.unpack(">IB", recv_exact(s, 5))
        version, after, _ = struct.unpack(">BQI", recv_exact(s, length - 1))
        if ftype != PULL or version != 1:
            return
        self.pulls += 1
        entries = self.serve(after)
        for e in entries:
            s.sendall(frame(BATCH, e))
        seqs = [entry_seq(e) for e in entries]
        s.sendall(frame(END, struct.pack(">QQQBI", max(seqs, default=0), min(seqs, default=0),
                                         0, 0, 1000)))
        try:
            s.recv(1)     # wait for the node to close first
        except (OSError, ssl.SSLError):
            pass

    def close(self):
        self.stop = True
        self.sock.close()


class Once:
    """Serves one entry, once, to whoever asks after a lower sequence first."""

    def __init__(self, make):
        self.make = make        # after -> entry or None
        self.served = None

    def __call__(self, after):
        if self.served is not None:
            return []
        e = self.make(after)
        if e is None or entry_seq(e) <= after:
            return []
        self.served = entry_seq(e)
        return [e]


# ---- helpers ------------------------------------------------------------------------------

def write_agent_yaml(c, name, port, ca, cert, key):
    path = os.path.join(c.dir, "agent-%s.yaml" % name)
    with open(path, "w") as f:
        f.write("agent:\n  listen: 127.0.0.1:%d\n  interval: 1s\n"
                "buffer: {batches: 1000, size: 16MiB}\n"
                "tls: {ca: %s, cert: %s, key: %s}\ncollectors:\n  host: {filesystems: none}\n"
                % (port, ca, cert, key))
    return path


def start_agent(c, name, path):
    return c.spawn("agent-" + name, [lc.LBWATCH, "agent", "-c", path, "--log-level", "debug"])


def read_log(proc):
    with open(proc.log, errors="replace") as f:
        return f.read()


def agents_of(node):
    return {a["name"]: a for a in node.api("/api/v1/agents")["agents"]}


def owners(nodes):
    """{agent: owner id} if every node names the same owner for every agent, else None."""
    views = [{n: (a["owner"] or {}).get("id") for n, a in agents_of(x).items()} for x in nodes]
    if any(v != views[0] for v in views) or None in views[0].values():
        return None
    return views[0]


def rejected(node, reason):
    return node.cluster()["batches"]["rejected"][reason]


def load_points(node, agent):
    pts = lc.series_points(node, "node_load1", since="-10m")
    return {ts for ts, _ in pts.get('node_load1{probe="host",vantage="%s"}' % agent, [])}


def check_agent_cli(c, cert, key, node_cert, node_key):
    p = lc.run([lc.LBWATCH, "agent", "--help"])
    lc.check("--check-config" in p.stdout, "lbwatch agent --help prints no usage")
    bad = os.path.join(c.dir, "bad-agent.yaml")
    with open(bad, "w") as f:
        f.write("agent:\n  listen: 127.0.0.1:1\n  interval: 5 seconds\n"
                "tls: {ca: pki/ca.crt, cert: x, key: y}\n")
    p = lc.run([lc.LBWATCH, "agent", "-c", bad, "--check-config"], check_rc=False)
    lc.check(p.returncode == 2 and re.search(r"bad-agent\.yaml:3:13: agent\.interval", p.stderr),
             "bad interval: rc %d %r" % (p.returncode, p.stderr))
    with open(bad, "w") as f:
        f.write("agent: {listen: 127.0.0.1:1}\ntls: {ca: %s/ca.crt, cert: %s, key: %s}\n"
                "collectors: {host: {}, nonsense: {}}\n" % (c.pki, cert, key))
    p = lc.run([lc.LBWATCH, "agent", "-c", bad, "--check-config"], check_rc=False)
    lc.check(p.returncode == 2 and "unknown key 'nonsense' in 'collectors'" in p.stderr,
             "unknown collector: rc %d %r" % (p.returncode, p.stderr))
    with open(bad, "w") as f:
        f.write("agent: {listen: 127.0.0.1:1}\ntls: {ca: %s/ca.crt, cert: %s, key: %s}\n"
                % (c.pki, node_cert, node_key))
    p = lc.run([lc.LBWATCH, "agent", "-c", bad, "--check-config"], check_rc=False)
    lc.check(p.returncode == 2 and re.search(r":2:\d+: tls\.cert: .*not of an agent", p.stderr),
             "node certificate as the agent's: rc %d %r" % (p.returncode, p.stderr))
    lc.ok("lbwatch agent: --help, FILE:LINE:COL errors with exit 2 (bad interval, unknown "
          "collector, a node certificate)")


def check_agent_server(c, a1, port, mitm, evil_agent):
    """The real agent's server from outside: refusals and the protocol."""
    for cert, key, what in ((None, None, "no client certificate (no_certificate)"),
                            (evil_agent[0], evil_agent[1],
                             "not a node certificate (agent evil) (not_a_node)")):
        try:
            pull(c, port, 0, cert, key)
            lc.fail("agent a1 answered a pull with %s" % what)
        except (OSError, EOFError, ssl.SSLError):
            pass
        lc.wait_until("a1 logs the refusal: %s" % what, 10,
                      lambda: re.search(r"refused 127\.0\.0\.1:\d+: .*%s" % re.escape(what),
                                        read_log(a1)))
    frames = lc.wait_until("a1 buffers two batches", 15,
                           lambda: (lambda f: f if len(f) >= 3 else None)(
                               pull(c, port, 0, *mitm)))
    lc.check([t for t, _ in frames[:-1]] == [BATCH] * (len(frames) - 1) and frames[-1][0] == END,
             "pull from a1: frame types %r" % [t for t, _ in frames])
    seqs = [entry_seq(b) for _, b in frames[:-1]]
    newest, oldest, evicted, more, interval = struct.unpack(">QQQBI", frames[-1][1])
    lc.check(seqs == sorted(set(seqs)) and newest == seqs[-1] and oldest == seqs[0] and
             evicted == 0 and more == 0 and interval == 1000,
             "pull from a1: seqs %r END %r" % (seqs, (newest, oldest, evicted, more, interval)))
    again = pull(c, port, seqs[0], *mitm)
    lc.check(entry_seq(again[0][1]) == seqs[1], "a pull after the first seq starts at the second")
    err = pull(c, port, 0, *mitm, version=9)
    lc.check(err[0][0] == ERROR and b"unsupported protocol version 9" in err[0][1],
             "PULL version 9: %r" % err)
    lc.ok("agent server: refuses no certificate and an agent certificate (logged with address "
          "and reason); BATCH frames ascending, END with newest/oldest/interval; ERROR for "
          "an unknown version")


# ---- the test -----------------------------------------------------------------------------

def test(c):
    a1_cert, a1_key = c.issue("a1", 0, agent=True)
    evil_cert, evil_key = c.issue("evil", 0, agent=True)
    forger_cert, forger_key = c.issue("forger", 0, agent=True)
    mitm = c.issue("mitm", 60)                     # a node certificate, not a member
    imposter = c.issue("imposter", 61)             # a node certificate serving as "a3"
    other = os.path.join(c.dir, "other-pki")
    lc.run([lc.LBWATCH, "pki", "init", "--dir", other])
    a2_cert, a2_key = c.issue("a2", 0, pki=other, agent=True)
    check_agent_cli(c, a1_cert, a1_key, *mitm)

    forged = os.path.join(c.dir, "forged.entry")
    lc.run([lc.tool("inject_batch"), "--cert", mitm[0], "--key", mitm[1], "--mode",
            "forged-origin", "--as-agent", "forger", "--metric", "lbwatch_forged",
            "--write", forged])
    with open(forged, "rb") as f:
        forged_entry = f.read()

    ca = "%s/ca.crt" % c.pki
    a1 = start_agent(c, "a1", write_agent_yaml(c, "a1", AGENTS["a1"], ca, a1_cert, a1_key))
    a2 = start_agent(c, "a2", write_agent_yaml(c, "a2", AGENTS["a2"], "%s/ca.crt" % other,
                                               a2_cert, a2_key))
    evil_up = start_agent(c, "evil", write_agent_yaml(c, "evil", EVIL_UPSTREAM, ca, evil_cert,
                                                      evil_key))
    fakes = [FakeAgent(c, AGENTS["a3"], imposter[0], imposter[1], lambda after: []),
             FakeAgent(c, AGENTS["evil"], evil_cert, evil_key, Once(
                 lambda after: next((flip_last_payload_byte(b) for t, b in
                                     pull(c, EVIL_UPSTREAM, after, *mitm) if t == BATCH),
                                    None))),
             FakeAgent(c, AGENTS["forger"], forger_cert, forger_key,
                       Once(lambda after: forged_entry))]
    for p in (AGENTS["a1"], AGENTS["a2"], EVIL_UPSTREAM):
        lc.wait_until("agent on port %d listens" % p, 20, lambda: lc.port_open(p))
    check_agent_server(c, a1, AGENTS["a1"], mitm, (evil_cert, evil_key))

    c.start_all()
    nodes = c.bootstrap_nodes()
    c.wait_leader()
    own = lc.wait_until("every node names the same owner for every agent", 30,
                        lambda: owners(nodes))
    lc.check(len(set(own.values())) >= 2, "5 agents all on one node: %r" % own)
    lc.ok("one owner per agent, the same on every node, spread over %d nodes: %r"
          % (len(set(own.values())), own))

    key = 'node_load1{probe="host",vantage="a1"}'
    lc.wait_until("a1's samples on every node", 30, lambda: all(
        len(load_points(n, "a1")) >= 3 and
        n.metrics().get('lbwatch_agent_up{agent="a1",vantage="%s"}' % n.name) == 1
        for n in nodes))
    for n in nodes:
        m = n.metrics()
        lc.check(key in m and m.get('lbwatch_collector_success{probe="host",vantage="a1"}')
                 == 1, "%s /metrics lacks a1's samples" % n.name)
    lc.ok("a1's samples (vantage=a1) on every node's /api/v1/series and /metrics; "
          "lbwatch_agent_up{agent=a1} 1 everywhere")

    owner = c.node(own["a1"])
    mark = len(read_log(a1))
    lc.wait_until("a1 pulled 3 more times", 15,
                  lambda: len(PULLED_RE.findall(read_log(a1)[mark:])) >= 3)
    pullers = {name for name, _ in PULLED_RE.findall(read_log(a1)[mark:])}
    lc.check(pullers == {owner.name}, "a1 was pulled by %r; its owner is %s" % (pullers, owner))
    for n in nodes:
        a = agents_of(n)["a1"]
        lc.check(a["owned"] == (n is owner) and (a["pulls"]["succeeded"] > 0) == (n is owner),
                 "%s /api/v1/agents a1: %r" % (n.name, a))
    lc.ok("a1's log shows pulls by its owner %s only; only it reports pulls" % owner.name)

    for agent, reason, kind in (("a2", "not issued by the cluster CA", "untrusted"),
                                ("a3", "not an agent certificate", "not_an_agent")):
        holder = c.node(own[agent])
        lc.wait_until("%s counts the refusal of %s" % (holder.name, agent), 15,
                      lambda: agents_of(holder)[agent]["pulls"]["refused"] > 0)
        a = agents_of(holder)[agent]
        lc.check(reason in a["pulls"]["error"] and not a["up"] and a["last_seq"] == 0,
                 "%s: %r" % (agent, a))
        lc.check(re.search(r"refused agent %s at 127\.0\.0\.1:%d: .*%s.* \(%s\)"
                           % (agent, AGENTS[agent], reason, kind), open(holder.log).read()),
                 "%s's log lacks the refusal of %s" % (holder.name, agent))
        lc.check(not load_points(holder, agent), "%s stores samples of %s" % (holder, agent))
    lc.ok("a2 (another CA) refused as untrusted, a3 (a node certificate) as not_an_agent; "
          "logged, counted, nothing stored")

    for agent, reason in (("evil", "bad_signature"), ("forger", "forged")):
        lc.wait_until("every node refuses %s's batch as %s" % (agent, reason), 20,
                      lambda: all(rejected(n, reason) == 1 for n in nodes))
        for n in nodes:
            m = n.metrics()
            lc.check(m.get('lbwatch_fsm_rejected_total{reason="%s",vantage="%s"}'
                           % (reason, n.name)) == 1, "%s /metrics %s" % (n.name, reason))
            lc.check(not any('vantage="%s"' % agent in k for k in m),
                     "%s /metrics has samples of %s" % (n.name, agent))
            lc.check(agents_of(n)[agent]["last_seq"] == 0, "%s applied %s" % (n.name, agent))
    lc.check(not lc.series_points(nodes[0], "lbwatch_forged", since="-1h"),
             "the forged batch's metric is stored")
    lc.ok("a tampered batch (bad_signature) and a node-signed batch claiming an agent (forged) "
          "refused once on every replica, stored nowhere")

    # kill -9 the owner of a1: another node takes over without losing a buffered batch
    seq_before = agents_of(nodes[0])["a1"]["last_seq"]
    owner.kill()
    survivors = [n for n in nodes if n is not owner]
    c.wait_leader(survivors)
    new = lc.wait_until("the survivors agree on a new owner of a1", 30, lambda: (
        lambda o: o and o["a1"] != owner.id and o["a1"])(owners(survivors)))
    lc.note("a1 moved from %s to node%d" % (owner.name, new))
    made = {}

    def rounds():
        for ts, seq in ROUND_RE.findall(read_log(a1)):
            made[int(seq)] = int(ts)
        return made
    target = max(rounds())          # a round made after the new owner was named
    lc.wait_until("every survivor applied a1's batch %d" % target, 30, lambda: all(
        agents_of(n)["a1"]["last_seq"] >= target for n in survivors))
    lc.check(target > seq_before, "a1's sequence did not rise after the kill")
    wanted = {ts for seq, ts in rounds().items() if seq <= target}
    for n in survivors:
        have = load_points(n, "a1")
        lc.check(wanted <= have, "%s lacks a1's rounds at %r" % (n.name, sorted(wanted - have)))
        lc.check(n.metrics().get('lbwatch_agent_owner{agent="a1",vantage="%s"}' % n.name) == new,
                 "%s /metrics names another owner" % n.name)
    mark = len(read_log(a1))
    lc.wait_until("a1 pulled twice more", 15,
                  lambda: len(PULLED_RE.findall(read_log(a1)[mark:])) >= 2)
    lc.check({name for name, _ in PULLED_RE.findall(read_log(a1)[mark:])} == {"node%d" % new},
             "a1 pulled by others than node%d after the hand-over" % new)
    lc.ok("kill -9 of %s: node%d pulls a1, its sequence keeps rising, all %d rounds up to %d "
          "stored on every survivor" % (owner.name, new, len(wanted), target))
    for n in survivors:
        for reason in ("bad_signature", "forged"):
            lc.check(rejected(n, reason) == 1, "%s: %s counted again after the hand-over"
                     % (n.name, reason))

    for f in fakes:
        f.close()
    for p in (a1, a2, evil_up):
        p.p.terminate()
        lc.check(p.p.wait(timeout=10) == 0, "%s did not exit 0 on SIGTERM" % p.name)
        lc.check(not lc.SANITIZER_RE.search(read_log(p)), "sanitizer report in %s" % p.name)
    lc.ok("agents stopped cleanly on SIGTERM; no sanitizer reports")


lc.main(test, nodes=3, extra_config=EXTRA)
