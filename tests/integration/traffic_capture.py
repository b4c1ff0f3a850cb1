#!/usr/bin/env python3
"""traffic_capture.py - traffic accounting (probes/traffic, probes/capture) on real loopback
traffic, checked against tshark's reading of the same packets.

tests/tools/traffic_account captures on `lo` with the live driver (libpcap + libuv) and writes
every packet it accounted to a pcap file, while this script makes known traffic on
127.0.0.1 and ::1:
  - TLS handshakes with `openssl s_client` against `openssl s_server`: 2 x TLS 1.2 only,
    2 x TLS 1.3 only, 1 x default (offers 1.3 and 1.2);
  - TCP connections to an echo server (5 over IPv4, 2 over IPv6), 1000 bytes each way;
  - UDP datagrams to a receiver (5 over IPv4, 2 over IPv6) and 2 to a closed port (ICMP
    port unreachable);
  - 2 connections to a closed TCP port (SYN -> RST);
  - an ICMP and an ICMPv6 echo, if raw sockets are permitted.
Then the offline driver reads the file, and tshark reads it too. Checked:
  - the live engine's counts equal the offline engine's on the file it wrote (every series);
  - tshark's fields, put through the documented rules (direction on loopback by the service
    side, bytes from the IP length, watched ports, SYN/FIN/RST flags, handshake RTTs from
    SYN/SYN+ACK/ACK times, ClientHello versions from tls.handshake.*), give exactly the
    same counts, histogram buckets and RTT sums;
  - the known traffic is there: 2 TLS 1.2 and 3 TLS 1.3 hellos, the echo bytes on the echo
    port, resets from the closed port, a non-zero SYN-unanswered ratio.
On loopback both ends are local, so the direction is "to the service side": to a watched
port = in, from it = out, else toward the lower port; ICMP echo replies out.
Skips (exit 0 with a note) only when capturing on lo is not permitted."""
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import lbwcluster as lc  # noqa: E402

TIMEOUT_US = 3000000              # the engine's default handshake timeout
BUCKETS_US = [100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
              1000000]
BUCKETS_LE = ["0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
              "0.05", "0.1", "0.25", "0.5", "1"]
VERSIONS = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2",
            0x0304: "TLS 1.3"}
VERSION_ORDER = ["SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"]
TSHARK_FIELDS = ["frame.time_epoch", "ip.len", "ip.proto", "ipv6.plen", "ipv6.nxt",
                 "tcp.srcport", "tcp.dstport", "tcp.flags", "udp.srcport", "udp.dstport",
                 "icmp.type", "icmpv6.type", "tls.handshake.type", "tls.handshake.version",
                 "tls.handshake.extensions.supported_version", "ip.src", "ip.dst",
                 "ipv6.src", "ipv6.dst"]

procs = []
threads_stop = threading.Event()


def spawn(args, **kw):
    p = subprocess.Popen(args, preexec_fn=lc._die_with_parent, **kw)
    procs.append(p)
    return p


# --- servers and traffic ------------------------------------------------------------------

def bind_pair(kind):
    """A port bound on both 127.0.0.1 and ::1 (kind: SOCK_STREAM or SOCK_DGRAM)."""
    for _ in range(50):
        s4 = socket.socket(socket.AF_INET, kind)
        s4.bind(("127.0.0.1", 0))
        port = s4.getsockname()[1]
        s6 = socket.socket(socket.AF_INET6, kind)
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            s6.bind(("::1", port))
            return port, s4, s6
        except OSError:
            s4.close()
            s6.close()
    lc.fail("no port free on both 127.0.0.1 and ::1")


def echo_server(sock):
    sock.listen(16)
    sock.settimeout(0.2)
    while not threads_stop.is_set():
        try:
            c, _ = sock.accept()
        except socket.timeout:
            continue
        with c:
            c.settimeout(5)
            while True:
                d = c.recv(65536)
                if not d:
                    break
                c.sendall(d)


def udp_sink(sock):
    sock.settimeout(0.2)
    while not threads_stop.is_set():
        try:
            sock.recvfrom(65536)
        except socket.timeout:
            continue


def tcp_exchange(family, host, port, nbytes):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect((host, port))
        s.sendall(b"x" * nbytes)
        s.shutdown(socket.SHUT_WR)
        got = 0
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += len(d)
        lc.check(got == nbytes, "echo returned %d of %d bytes" % (got, nbytes))


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return
    lc.fail("port %d should be closed" % port)


def icmp_checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    s += s >> 16
    return ~s & 0xffff


def ping(family):
    """One echo request to the loopback address; False when raw sockets are not permitted."""
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    etype = 8 if family == socket.AF_INET else 128
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    try:
        s = socket.socket(family, socket.SOCK_RAW, proto)
    except PermissionError:
        return False
    with s:
        body = struct.pack("!HH", os.getpid() & 0xffff, 1) + b"lbwatch-traffic"
        hdr = struct.pack("!BBH", etype, 0, 0)
        if family == socket.AF_INET:
            hdr = struct.pack("!BBH", etype, 0, icmp_checksum(hdr + body))
        s.sendto(hdr + body, (host, 0))
        s.settimeout(2)
        try:
            while True:     # the raw socket sees the request and the reply
                if s.recv(2048)[20 if family == socket.AF_INET else 0] in (0, 129):
                    break
        except socket.timeout:
            lc.fail("no echo reply from %s" % host)
    return True


def s_client(port, flag, tmp):
    args = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "www.test"]
    if flag:
        args.append(flag)
    r = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=15)
    want = {"-tls1_2": "TLSv1.2", "-tls1_3": "TLSv1.3", None: "TLSv1.3"}[flag]
    lc.check(r.returncode == 0 and ("New, %s" % want) in r.stdout,
             "s_client %s: rc %d\n%s%s" % (flag, r.returncode, r.stdout[-800:], r.stderr[-400:]))


def make_traffic(ports, tmp):
    for flag in ("-tls1_2", "-tls1_2", "-tls1_3", "-tls1_3", None):
        s_client(ports["tls"], flag, tmp)
    for _ in range(5):
        tcp_exchange(socket.AF_INET, "127.0.0.1", ports["echo"], 1000)
    for _ in range(2):
        tcp_exchange(socket.AF_INET6, "::1", ports["echo"], 1000)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u4, \
            socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as u6:
        for i in range(5):
            u4.sendto(b"d" * (100 + i), ("127.0.0.1", ports["udp"]))
        for i in range(2):
            u6.sendto(b"e" * (200 + i), ("::1", ports["udp"]))
        for _ in range(2):
            u4.sendto(b"nobody", ("127.0.0.1", ports["closed_udp"]))
            time.sleep(0.05)
    for _ in range(2):
        refused(ports["closed_tcp"])
    pinged = ping(socket.AF_INET) and ping(socket.AF_INET6)
    if not pinged:
        lc.note("raw ICMP sockets not permitted: no ping")
    return pinged


# --- the tool -------------------------------------------------------------------------------

def parse_samples(text):
    out = {}
    for line in text.splitlines():
        key, _, value = line.rpartition(" ")
        out[key] = float(value)
    return out


def account_file(tool, path, watched):
    args = [tool, "--file", path, "--local", "127.0.0.0/8", "--local", "::1"]
    for p in watched:
        args += ["--port", str(p)]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    lc.check(r.returncode == 0, "offline run failed: %s" % r.stderr)
    return parse_samples(r.stdout)


# --- tshark and the documented rules ----------------------------------------------------------

def first(v):
    return v.split(",")[0] if v else ""


def epoch_us(s):
    sec, _, frac = s.partition(".")
    return int(sec) * 1000000 + int((frac + "000000")[:6])


def tshark_frames(path, tls_port):
    args = ["tshark", "-r", path, "-n", "-d", "tcp.port==%d,tls" % tls_port, "-T", "fields",
            "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in TSHARK_FIELDS:
        args += ["-e", f]
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    lc.check(r.returncode == 0, "tshark failed: %s" % r.stderr[-500:])
    frames = []
    for line in r.stdout.splitlines():
        cols = line.split("\t")
        cols += [""] * (len(TSHARK_FIELDS) - len(cols))
        frames.append(dict(zip(TSHARK_FIELDS, cols)))
    return frames


class Expected:
    """The engine's documented rules applied to tshark's fields."""

    def __init__(self, watched):
        self.watched = watched
        self.v = {}
        self.hs = {}
        self.now = 0            # latest TCP packet time: the handshake tracker's clock
        self.last = 0           # latest packet time: the offline driver expires at it
        self.rtt = {"server": [], "client": []}
        self.outcomes = {"completed": 0, "reset": 0, "timeout": 0}

    def add(self, key, n=1):
        self.v[key] = self.v.get(key, 0) + n

    def frame(self, f):
        self.last = max(self.last, epoch_us(f["frame.time_epoch"]))
        v6 = f["ipv6.nxt"] != ""
        proto = int(first(f["ipv6.nxt"] if v6 else f["ip.proto"]))
        size = int(first(f["ipv6.plen"])) + 40 if v6 else int(first(f["ip.len"]))
        pname = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp"}.get(proto, "other")
        sport = dport = None
        if pname in ("tcp", "udp"):
            sport, dport = int(first(f[pname + ".srcport"])), int(first(f[pname + ".dstport"]))
            if dport in self.watched:
                d = "in"
            elif sport in self.watched:
                d = "out"
            else:
                d = "in" if dport <= sport else "out"
        elif pname == "icmp":
            t = int(first(f["icmpv6.type"] if proto == 58 else f["icmp.type"]))
            d = "out" if (proto == 1 and t == 0) or (proto == 58 and t == 129) else "in"
        else:
            d = "in"
        self.add(("bytes", d, pname), size)
        self.add(("packets", d, pname))
        if sport is not None:
            local = dport if d == "in" else sport
            if local in self.watched:
                self.add(("port_bytes", d, local), size)
                self.add(("port_packets", d, local))
        if pname == "tcp":
            self.tcp(f, v6, sport, dport)

    def tcp(self, f, v6, sport, dport):
        flags = int(first(f["tcp.flags"]), 16)
        self.add("syn", (flags & 0x12) == 0x02)
        self.add("fin", (flags & 0x01) != 0)
        self.add("rst", (flags & 0x04) != 0)
        src = first(f["ipv6.src"] if v6 else f["ip.src"])
        dst = first(f["ipv6.dst"] if v6 else f["ip.dst"])
        self.now = max(self.now, epoch_us(f["frame.time_epoch"]))
        self.handshake(flags & 0x16, (src, sport, dst, dport))
        if dport in self.watched and "1" in f["tls.handshake.type"].split(","):
            self.hello(f)

    def hello(self, f):
        offered = set()
        for sv in filter(None, f["tls.handshake.extensions.supported_version"].split(",")):
            w = int(sv, 16)
            if not ((w & 0x0f0f) == 0x0a0a and (w >> 8) == (w & 0xff)):   # GREASE
                offered.add(VERSIONS.get(w, "other"))
        if not f["tls.handshake.extensions.supported_version"]:
            offered.add(VERSIONS.get(int(first(f["tls.handshake.version"]), 16), "other"))
        known = [v for v in VERSION_ORDER if v in offered]
        self.add(("hello", known[-1] if known else "other"))
        for v in offered:
            self.add(("offered", v))

    def lookup(self, key):
        e = self.hs.get(key)
        if e and self.now - (e["t_syn"] if e["have_syn"] else e["t_synack"]) > TIMEOUT_US:
            self.finish(key, "timeout")
            return None
        return e

    def finish(self, key, outcome):
        if self.hs.pop(key)["have_syn"]:
            self.outcomes[outcome] += 1

    def handshake(self, f, tup):
        src, sport, dst, dport = tup
        fwd, rev = (src, sport, dst, dport), (dst, dport, src, sport)
        if f & 0x04:
            for k in (fwd, rev):
                if self.lookup(k):
                    self.finish(k, "reset")
                    break
        elif f == 0x02:
            e = self.lookup(fwd)
            if e:
                e["syn_retx"] = True
            else:
                self.hs[fwd] = {"have_syn": True, "t_syn": self.now, "synack": False,
                                "syn_retx": False, "sa_retx": False}
        elif f == 0x12:
            e = self.lookup(rev)
            if not e:
                self.hs[rev] = {"have_syn": False, "t_synack": self.now, "synack": True,
                                "syn_retx": False, "sa_retx": False}
            elif e["synack"]:
                e["sa_retx"] = True
            else:
                if not e["syn_retx"]:       # the client (loopback) is local
                    self.rtt["client"].append(self.now - e["t_syn"])
                e["synack"], e["t_synack"] = True, self.now
        elif f == 0x10:
            e = self.lookup(fwd)
            if e:
                if e["synack"] and not e["sa_retx"]:
                    self.rtt["server"].append(self.now - e["t_synack"])
                self.finish(fwd, "completed")

    def end(self):
        self.now = max(self.now, self.last)
        for k in list(self.hs):
            self.lookup(k)


def expected_samples(frames, watched):
    x = Expected(watched)
    for f in frames:
        x.frame(f)
    x.end()
    lab = lambda **kw: "{" + ",".join('%s="%s"' % (k, v) for k, v in sorted(
        dict(kw, vantage="test").items())) + "}"
    out = {}
    for d in ("in", "out"):
        for p in ("tcp", "udp", "icmp", "other"):
            for what in ("bytes", "packets"):
                out["lbwatch_traffic_%s_total" % what + lab(direction=d, proto=p)] = \
                    x.v.get((what, d, p), 0)
        for port in watched:
            out["lbwatch_traffic_port_bytes_total" + lab(direction=d, port=port)] = \
                x.v.get(("port_bytes", d, port), 0)
            out["lbwatch_traffic_port_packets_total" + lab(direction=d, port=port)] = \
                x.v.get(("port_packets", d, port), 0)
    for k in ("syn", "fin", "rst"):
        out["lbwatch_tcp_%s_total" % k + lab()] = x.v.get(k, 0)
    for side, rtts in x.rtt.items():
        for i, le in enumerate(BUCKETS_LE):
            out["lbwatch_tcp_handshake_rtt_seconds_bucket" + lab(le=le, side=side)] = \
                sum(1 for r in rtts if r <= BUCKETS_US[i])
        out["lbwatch_tcp_handshake_rtt_seconds_bucket" + lab(le="+Inf", side=side)] = len(rtts)
        out["lbwatch_tcp_handshake_rtt_seconds_count" + lab(side=side)] = len(rtts)
        out["lbwatch_tcp_handshake_rtt_seconds_sum" + lab(side=side)] = sum(rtts) / 1e6
    for o, n in x.outcomes.items():
        out["lbwatch_tcp_handshakes_total" + lab(outcome=o)] = n
    decided = sum(x.outcomes.values())
    out["lbwatch_tcp_syn_unanswered_ratio" + lab()] = \
        (x.outcomes["reset"] + x.outcomes["timeout"]) / decided if decided else 0
    for v in VERSION_ORDER + ["other"]:
        out["lbwatch_tls_client_hello_total" + lab(version=v)] = x.v.get(("hello", v), 0)
        out["lbwatch_tls_client_hello_offered_total" + lab(version=v)] = \
            x.v.get(("offered", v), 0)
    # every frame tshark read is well-formed IP: nothing skipped, cut or malformed
    for reason in ("not_ip", "truncated", "malformed", "linktype"):
        out["lbwatch_traffic_skipped_packets_total" + lab(reason=reason)] = 0
    out["lbwatch_traffic_l4_truncated_packets_total" + lab()] = 0
    out["lbwatch_tls_client_hello_malformed_total" + lab()] = 0
    out["lbwatch_traffic_flows" + lab()] = len(x.hs)
    out["lbwatch_traffic_flow_capacity" + lab()] = 65536
    out["lbwatch_traffic_flow_evictions_total" + lab()] = 0
    return out


def compare(got, want, what):
    bad = []
    for k, v in sorted(want.items()):
        g = got.get(k)
        if g is None or abs(g - v) > (1e-9 if "_sum" in k or "ratio" in k else 0):
            bad.append("%s: engine %s, %s %s" % (k, g, what, v))
    lc.check(not bad, "engine and %s disagree:\n  %s" % (what, "\n  ".join(bad)))


# --- the test -----------------------------------------------------------------------------------

def test(tmp):
    tool = lc.tool("traffic_account")
    crt, key = os.path.join(tmp, "www.crt"), os.path.join(tmp, "www.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=www.test", "-days", "1",
                    "-keyout", key, "-out", crt], check=True, capture_output=True, timeout=30)
    echo, e4, e6 = bind_pair(socket.SOCK_STREAM)
    udp, u4, u6 = bind_pair(socket.SOCK_DGRAM)
    tls, closed_tcp = lc.free_ports(2)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        closed_udp = s.getsockname()[1]
    ports = {"tls": tls, "echo": echo, "udp": udp, "closed_tcp": closed_tcp,
             "closed_udp": closed_udp}
    watched = [tls, echo, udp]
    for fn, s in ((echo_server, e4), (echo_server, e6), (udp_sink, u4), (udp_sink, u6)):
        threading.Thread(target=fn, args=(s,), daemon=True).start()
    spawn(["openssl", "s_server", "-accept", str(tls), "-cert", crt, "-key", key, "-quiet"],
          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lc.wait_until("s_server listening", 10, lambda: lc.port_open(tls))

    cap = os.path.join(tmp, "lo.pcap")
    flt = "tcp port %d or tcp port %d or tcp port %d or udp port %d or udp port %d or icmp " \
          "or icmp6" % (tls, echo, closed_tcp, udp, closed_udp)
    args = [tool, "--live", "lo", "--filter", flt, "--write", cap]
    for p in watched:
        args += ["--port", str(p)]
    live = spawn(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first_line = live.stderr.readline().strip()
    if live.poll() is not None or first_line != "capturing":
        live.wait(10)
        if live.returncode == 77:
            lc.note("SKIP: capturing on lo is not permitted here: %s" % first_line)
            return
        lc.fail("capture did not start (rc %s): %s %s" % (live.returncode, first_line,
                                                         live.stderr.read()))
    lc.ok("live capture on lo running (filter: %s)" % flt)

    pinged = make_traffic(ports, tmp)
    time.sleep(0.5)
    live.send_signal(signal.SIGINT)
    out, err = live.communicate(timeout=30)
    lc.check(live.returncode == 0, "live capture exited %d: %s" % (live.returncode, err))
    lc.check(not lc.SANITIZER_RE.search(err), "sanitizer report from the live run:\n" + err)
    live_s = parse_samples(out)
    npackets = int(live_s.pop("packets"))
    lc.check(live_s.pop('lbwatch_traffic_capture_up{vantage="test"}') == 1, "capture not up")
    lc.check(live_s.pop('lbwatch_traffic_capture_packets_total{vantage="test"}') == npackets,
             "capture packet count")
    drops = {k: live_s.pop(k) for k in [k for k in live_s if "capture_dropped" in k]}
    lc.ok("live engine accounted %d packets (drops: %s)" % (npackets, sorted(drops.values())))

    off = account_file(tool, cap, watched)
    lc.check(int(off.pop("packets")) == npackets, "the file holds another number of packets")
    diff = sorted(k for k in set(live_s) | set(off) if live_s.get(k) != off.get(k))
    lc.check(not diff, "live and offline engines disagree on %s" %
             ["%s: %s vs %s" % (k, live_s.get(k), off.get(k)) for k in diff])
    lc.ok("offline driver on the recorded file: the same %d series as the live engine" % len(off))

    frames = tshark_frames(cap, tls)
    lc.check(len(frames) == npackets, "tshark read %d frames, the engine %d" %
             (len(frames), npackets))
    lc.check(any(f["ipv6.nxt"] for f in frames), "no IPv6 frame captured")
    lc.check(all(f["ip.proto"] or f["ipv6.nxt"] for f in frames), "a frame tshark saw is not IP")
    want = expected_samples(frames, watched)
    lc.check(set(want) == set(off), "series not compared with tshark: %s" %
             sorted(set(off) ^ set(want)))
    compare(off, want, "tshark")
    lc.ok("tshark agrees on every one of the %d series (bytes, packets, ports, SYN/FIN/RST, "
          "RTT buckets and sums, outcomes, ratio, ClientHello versions, nothing skipped)"
          % len(want))

    lab = lambda **kw: "{" + ",".join('%s="%s"' % (k, v) for k, v in sorted(
        dict(kw, vantage="test").items())) + "}"
    g = lambda name, **kw: off[name + lab(**kw)]
    lc.check(g("lbwatch_tls_client_hello_total", version="TLS 1.2") == 2 and
             g("lbwatch_tls_client_hello_total", version="TLS 1.3") == 3 and
             g("lbwatch_tls_client_hello_offered_total", version="TLS 1.2") == 3 and
             g("lbwatch_tls_client_hello_offered_total", version="TLS 1.3") == 3,
             "ClientHello counts are not the 2 x 1.2 + 3 x 1.3 made")
    lc.check(g("lbwatch_traffic_port_bytes_total", direction="in", port=echo) >= 7 * 1000 and
             g("lbwatch_traffic_port_bytes_total", direction="out", port=echo) >= 7 * 1000,
             "echo port bytes below the 7 x 1000 each way sent")
    lc.check(g("lbwatch_traffic_port_packets_total", direction="in", port=udp) >= 7,
             "fewer than 7 datagrams to the UDP port")
    lc.check(g("lbwatch_tcp_rst_total") >= 2 and g("lbwatch_tcp_syn_total") >= 14 and
             g("lbwatch_tcp_handshakes_total", outcome="completed") >= 12 and
             g("lbwatch_tcp_handshakes_total", outcome="reset") >= 2,
             "SYN/RST/handshake counts below the connections made")
    lc.check(g("lbwatch_tcp_syn_unanswered_ratio") > 0, "refused SYNs do not show in the ratio")
    lc.check(g("lbwatch_tcp_handshake_rtt_seconds_count", side="server") >= 12 and
             g("lbwatch_tcp_handshake_rtt_seconds_count", side="client") >= 12,
             "loopback handshakes not measured on both sides")
    lc.check(g("lbwatch_traffic_packets_total", direction="in", proto="icmp") >= 1,
             "no ICMP (port unreachable) counted")
    if pinged:
        lc.check(g("lbwatch_traffic_packets_total", direction="out", proto="icmp") >= 2,
                 "echo replies not counted out")
    lc.ok("the known traffic is there: hellos 2 x TLS 1.2 + 3 x TLS 1.3, echo and UDP "
          "bytes, resets, ratio %.3f, ICMP%s" % (g("lbwatch_tcp_syn_unanswered_ratio"),
                                                   " incl. echo" if pinged else ""))


def main():
    tmp = tempfile.mkdtemp(prefix="lbw-traffic.")
    rc = 0
    try:
        test(tmp)
    except lc.Failure as e:
        print("FAIL: %s" % e, file=sys.stderr, flush=True)
        rc = 1
    except Exception:  # noqa: BLE001 - any error is a failed test, with its traceback
        traceback.print_exc()
        print("FAIL: unexpected error (traceback above)", file=sys.stderr, flush=True)
        rc = 1
    finally:
        threads_stop.set()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(rc)


if __name__ == "__main__":
    main()
