#!/usr/bin/env python3
"""agent.py - benchmark: what a real agent costs on a load-balancer host, against Debian's
prometheus-node-exporter measured in the same run, and the traffic accounting rate, so that
one `make bench` prints every figure of issue 5.

Three processes run side by side for WINDOW_S (each is single-threaded or nearly idle between
rounds, so they barely compete on 2 cores; every figure is CPU time, not wall time):
  lbwatch-agent   the agent program next to $LBWATCH (build/lbwatch-agent, linked with only
                  the agent's libraries), and
  lbwatch agent   the same agent as a subcommand of the node's binary ($LBWATCH), each with the
                  host, processes (3 watches: lbwatch, haproxy, nginx) and sockets (a loopback
                  port with CONNS connections queued, and 443) collectors every INTERVAL and
                  the default buffer (360 batches), no node pulling. Over the window, after
                  WARMUP rounds: CPU per collection cycle - utime + stime of /proc/PID/stat,
                  and the scheduler's run time of its threads (/proc/PID/task/*/schedstat,
                  ns) - divided by the rounds its log counts (a cycle is the whole round:
                  collect, sign, buffer); samples and batch bytes per cycle. At the end, with
                  its buffer full (WINDOW_S / INTERVAL >= 360 rounds: the agent's steady
                  state, an hour of batches at the default 10 s), VmRSS, VmHWM (the peak),
                  anonymous and file-backed parts.
  node_exporter   /usr/bin/prometheus-node-exporter with its default collectors on a free
                  loopback port, scraped with urllib every INTERVAL: CPU per scrape (the same
                  clocks over the same window, divided by the scrapes), series per scrape, the
                  same memory figures.
Then bench/traffic (next to $LBWATCH, build/bench/traffic): packets/s of the traffic
accounting's offline driver.

Prints the figures, the ratios and issue 5's targets, each PASS or MISS: agent RSS <= 10 MiB
(VmHWM), agent CPU per cycle <= node_exporter's per scrape, pcap accounting >= 1 M
packets/s. Asserts nothing. Every process it starts is killed and its temp dir removed.
About 45 s.

usage: agent.py [--window S] [--interval S]
"""

import argparse
import atexit
import ctypes
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

LBWATCH = os.environ.get("LBWATCH", os.path.join(os.getcwd(), "build/lbwatch"))
AGENT_BIN = os.path.join(os.path.dirname(LBWATCH), "lbwatch-agent")
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
TRAFFIC_BENCH = os.path.join(os.path.dirname(LBWATCH), "bench", "traffic")
INTERVAL_S = 0.1
WINDOW_S = 38
WARMUP = 5
CONNS = 32
BUFFER_BATCHES = 360            # agent.yaml's default
RSS_TARGET_KB = 10 * 1024
PCAP_TARGET = 1e6
CLK_TCK = os.sysconf("SC_CLK_TCK")

_procs = []
_dirs = []


def die_with_parent():
    """In the child: SIGKILL when the bench goes away, however it goes."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for d in _dirs:
        shutil.rmtree(d, ignore_errors=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(what, timeout, fn, interval=0.05):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise RuntimeError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def spawn(args, log):
    with open(log, "ab") as f:
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                             preexec_fn=die_with_parent)
    _procs.append(p)
    return p


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# ---- what a process costs -----------------------------------------------------------------

def cpu(pid):
    """(utime + stime of the process in s, from /proc/PID/stat; its threads' run time in s,
    from their schedstat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])      # fields 14 and 15 of stat(5)
    run_ns = 0
    for path in glob.glob("/proc/%d/task/*/schedstat" % pid):
        try:
            with open(path) as f:
                run_ns += int(f.read().split()[0])
        except OSError:
            pass                                   # a thread that just exited
    return ticks / CLK_TCK, run_ns / 1e9


def memory(pid):
    """{VmRSS, VmHWM, RssAnon, RssFile} in KiB from /proc/PID/status."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0])
    return out


# ---- the agents ---------------------------------------------------------------------------

ROUND_RE = re.compile(r"round (\d+) at \d+: (\d+) samples in batch \d+ \((\d+) bytes\); "
                      r"buffer \d+ batches, (\d+) bytes deflated")


class Agent:
    """One agent process, its config and log, and what it cost."""

    def __init__(self, d, name, argv, pki, sockets_port, interval):
        self.name = name
        self.log = os.path.join(d, name.replace(" ", "_") + ".log")
        config = os.path.join(d, name.replace(" ", "_") + ".yaml")
        with open(config, "w") as f:
            f.write("agent: {listen: '127.0.0.1:%d', interval: %dms, log_level: debug}\n"
                    "buffer: {batches: %d}\n"
                    "tls: {ca: %s/ca.crt, cert: %s/lb1.crt, key: %s/lb1.key}\n"
                    "collectors:\n"
                    "  host: {}\n"
                    "  processes: [{name: lbwatch}, {name: haproxy}, {name: nginx}]\n"
                    "  sockets: {ports: [%d, 443]}\n"
                    % (free_port(), round(interval * 1000), BUFFER_BATCHES, pki, pki, pki,
                       sockets_port))
        self.p = spawn(argv + ["-c", config], self.log)

    def rounds(self):
        """[(round, samples, bytes, bytes the buffer holds deflated)] from the log."""
        with open(self.log, errors="replace") as f:
            return [tuple(map(int, m)) for m in ROUND_RE.findall(f.read())]

    def start(self):
        self.r0 = len(self.rounds())
        self.t0 = cpu(self.p.pid)
        self.mem0 = memory(self.p.pid)

    def finish(self):
        if self.p.poll() is not None:
            with open(self.log, errors="replace") as f:
                tail = "".join(f.readlines()[-5:])
            raise RuntimeError("%s exited (%d):\n%s" % (self.name, self.p.returncode, tail))
        t1, rounds = cpu(self.p.pid), self.rounds()
        n = max(len(rounds) - self.r0, 1)
        self.cycles = len(rounds) - self.r0
        self.cpu = (t1[0] - self.t0[0]) / n
        self.run = (t1[1] - self.t0[1]) / n
        self.samples = rounds[-1][1] if rounds else 0
        self.batch_bytes = rounds[-1][2] if rounds else 0
        self.held = min(len(rounds), BUFFER_BATCHES)
        self.buffered = sum(r[2] for r in rounds[-BUFFER_BATCHES:])
        self.stored = rounds[-1][3] if rounds else 0
        self.mem = memory(self.p.pid)
        stop(self.p)


def loopback_load(n):
    """A listener on a free loopback port with n connections it never accepts (they wait in
    its queue: what the sockets collector reports)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(n + 8)
    port = listener.getsockname()[1]
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    return listener, conns, port


# ---- node_exporter ------------------------------------------------------------------------

class NodeExporter:
    def __init__(self, d):
        port = free_port()
        self.url = "http://127.0.0.1:%d/metrics" % port
        self.p = spawn([NODE_EXPORTER, "--web.listen-address=127.0.0.1:%d" % port],
                       os.path.join(d, "node_exporter.log"))
        self.n = 0
        self.series = 0

    def scrape(self):
        with urllib.request.urlopen(self.url, timeout=10) as r:
            body = r.read().decode(errors="replace")
        self.series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
        return self.series

    def answers(self):
        try:
            return self.scrape()
        except OSError:
            return 0

    def start(self):
        self.t0 = cpu(self.p.pid)
        self.n = 0

    def finish(self):
        t1 = cpu(self.p.pid)
        self.cpu = (t1[0] - self.t0[0]) / max(self.n, 1)
        self.run = (t1[1] - self.t0[1]) / max(self.n, 1)
        self.mem = memory(self.p.pid)
        stop(self.p)


# ---- the run ------------------------------------------------------------------------------

def make_pki(d):
    pki = os.path.join(d, "pki")
    for args in (["pki", "init", "--dir", pki],
                 ["pki", "issue", "--dir", pki, "--agent", "--name", "lb1", "--ip",
                  "127.0.0.1"]):
        subprocess.run([LBWATCH] + args, check=True, capture_output=True)
    return pki


def measure(d, window, interval):
    """Runs the agents and node_exporter side by side; returns (agents, node_exporter or
    None)."""
    pki = make_pki(d)
    listener, conns, port = loopback_load(CONNS)
    agents = []
    if os.access(AGENT_BIN, os.X_OK):
        agents.append(Agent(d, "lbwatch-agent", [AGENT_BIN], pki, port, interval))
    agents.append(Agent(d, "lbwatch agent", [LBWATCH, "agent"], pki, port, interval))
    ne = NodeExporter(d) if os.access(NODE_EXPORTER, os.X_OK) else None
    try:
        for a in agents:
            wait_until("%s's first %d rounds" % (a.name, WARMUP), 30,
                       lambda: len(a.rounds()) >= WARMUP)
        if ne:
            wait_until("node_exporter answers", 30, ne.answers)
            for _ in range(WARMUP):
                ne.scrape()
        for x in agents + ([ne] if ne else []):
            x.start()
        end = time.monotonic() + window
        while time.monotonic() < end:
            if ne:
                ne.scrape()
                ne.n += 1
            time.sleep(interval)
        for x in agents + ([ne] if ne else []):
            x.finish()
    finally:
        for s in conns + [listener]:
            s.close()
    return agents, ne


def bench_pcap():
    """bench/traffic's output and its offline driver's rate (packets/s), or (text, None)."""
    if not os.access(TRAFFIC_BENCH, os.X_OK):
        return "%s is not built (make bench builds it)" % TRAFFIC_BENCH, None
    p = subprocess.run([TRAFFIC_BENCH], capture_output=True, text=True, timeout=300)
    m = re.search(r"offline driver \(account\): +([\d.]+) M packets/s", p.stdout)
    return p.stdout + p.stderr, float(m.group(1)) * 1e6 if m else None


# ---- report -------------------------------------------------------------------------------

def mib(kb):
    return "%.1f MiB" % (kb / 1024)


def verdict(ok):
    return "PASS" if ok else "MISS"


def memory_text(mem):
    return "RSS %s, peak %s (anon %s, file %s)" % (mib(mem["VmRSS"]), mib(mem["VmHWM"]),
                                                   mib(mem["RssAnon"]), mib(mem["RssFile"]))


def report(agents, ne, pps, pcap_out):
    for a in agents:
        print("%-25s %4d cycles  cpu %5.2f ms/cycle (run time %6.3f ms)  %d samples, %.1f KiB "
              "per batch" % (a.name, a.cycles, a.cpu * 1e3, a.run * 1e3, a.samples,
                             a.batch_bytes / 1024))
        print("%-25s after %d rounds: %s" % ("", a.r0, memory_text(a.mem0)))
        print("%-25s buffer %d batches, %s held in %s: %s"
              % ("", a.held, mib(a.buffered / 1024), mib(a.stored / 1024), memory_text(a.mem)))
    if ne:
        print("%-25s %4d scrapes cpu %5.2f ms/scrape (run time %6.3f ms)  %d series"
              % ("prometheus-node-exporter", ne.n, ne.cpu * 1e3, ne.run * 1e3, ne.series))
        print("%-25s %s" % ("", memory_text(ne.mem)))
    else:
        print("prometheus-node-exporter: %s not installed (apt-get install "
              "prometheus-node-exporter): no baseline" % NODE_EXPORTER)
    print("pcap accounting (bench/traffic):")
    for line in pcap_out.splitlines():
        print("  " + line)

    a = agents[0]
    print("ratios and targets (%s):" % a.name)
    if ne:
        print("  agent / node_exporter: cpu %.2f (run time %.2f), RSS %.2f, peak %.2f, "
              "samples / series %.2f" % (a.cpu / ne.cpu, a.run / ne.run,
                                         a.mem["VmRSS"] / ne.mem["VmRSS"],
                                         a.mem["VmHWM"] / ne.mem["VmHWM"],
                                         a.samples / max(ne.series, 1)))
    print("  agent RSS after %d rounds (buffer %d batches) %s <= 10 MiB: %s"
          % (a.r0, min(a.r0, BUFFER_BATCHES), mib(a.mem0["VmRSS"]),
             verdict(a.mem0["VmRSS"] <= RSS_TARGET_KB)))
    print("  agent peak RSS with a full buffer (%d batches, %s) %s <= 10 MiB: %s"
          % (a.held, mib(a.buffered / 1024), mib(a.mem["VmHWM"]),
             verdict(a.mem["VmHWM"] <= RSS_TARGET_KB)))
    if ne:
        print("  agent cpu per cycle %.3f ms <= node_exporter per scrape %.3f ms (run time): %s"
              % (a.run * 1e3, ne.run * 1e3, verdict(a.run <= ne.run)))
    if pps is not None:
        print("  pcap accounting %.2f M packets/s >= 1 M/s: %s"
              % (pps / 1e6, verdict(pps >= PCAP_TARGET)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--window", type=float, default=WINDOW_S)
    ap.add_argument("--interval", type=float, default=INTERVAL_S)
    args = ap.parse_args()
    atexit.register(cleanup)
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: sys.exit(1))
    d = tempfile.mkdtemp(prefix="lbw-bench-agent.", dir=os.environ.get("TMPDIR"))
    _dirs.append(d)
    print("agents: host + processes (3 watches) + sockets (2 ports, %d connections queued) "
          "every %g s, node_exporter scraped every %g s, side by side for %g s"
          % (CONNS, args.interval, args.interval, args.window))
    agents, ne = measure(d, args.window, args.interval)
    pcap_out, pps = bench_pcap()
    report(agents, ne, pps, pcap_out)


if __name__ == "__main__":
    main()
