#!/usr/bin/env python3
"""webhook_sink.py - an HTTP(S) server that records every request, for tests and benchmarks.

Serve (until SIGTERM/SIGINT):
    webhook_sink.py --port PORT --out FILE [--cert CRT --key KEY]
                    [--status CODE --fail-first N [--location URL]] [--delay SECONDS]

Listens on 127.0.0.1:PORT (HTTPS with --cert/--key) and, for every request of any method,
appends one JSON line to FILE *before* answering, so a client that has its response can read
its record:

    {"n": 1, "method": "POST", "path": "/hook?x=1", "query": {"x": ["1"]},
     "headers": {"content-type": "application/json", ...},   (names lower case)
     "body": "...", "body_base64": "...",
     "form": {...} (an application/x-www-form-urlencoded body, parsed),
     "json": ... (an application/json body, parsed, when it parses),
     "received": "2024-01-02T03:04:05.678Z", "received_ms": 1704164645678, "status": 200}

The first N requests (--fail-first) are answered with --status (default 500), the rest with
200; --location adds a Location header to those (a redirect when the status is 3xx).
--delay holds every answer that long (to exercise client timeouts).

Report:
    webhook_sink.py --report FILE
prints {"requests": N, "by_status": {...}, "keys": DISTINCT_IDEMPOTENCY_KEYS,
"duplicates": {KEY: COUNT, ...}, "without_key": N} for the records in FILE.
"""
import argparse
import base64
import json
import signal
import ssl
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def iso_ms(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


class Sink:
    def __init__(self, out, status, fail_first, delay, location):
        self.out = open(out, "a", encoding="utf-8")
        self.location = location
        self.status = status
        self.fail_first = fail_first
        self.delay = delay
        self.count = 0
        self.lock = threading.Lock()

    def record(self, rec):
        """Numbers the request, picks its status and writes its line. Returns the status."""
        with self.lock:
            self.count += 1
            rec["n"] = self.count
            rec["status"] = self.status if self.count <= self.fail_first else 200
            self.out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            self.out.flush()
            return rec["status"]


def read_body(handler):
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        data = b""
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return data
            data += handler.rfile.read(size)
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length > 0 else b""


def describe(handler, body):
    now = int(time.time() * 1000)
    text = body.decode("utf-8", errors="replace")
    ctype = handler.headers.get("Content-Type", "").split(";")[0].strip().lower()
    rec = {
        "method": handler.command,
        "path": handler.path,
        "query": parse_qs(urlsplit(handler.path).query, keep_blank_values=True),
        "headers": {k.lower(): v for k, v in handler.headers.items()},
        "body": text,
        "body_base64": base64.b64encode(body).decode("ascii"),
        "received": iso_ms(now),
        "received_ms": now,
    }
    if ctype == "application/x-www-form-urlencoded":
        rec["form"] = parse_qs(text, keep_blank_values=True)
    elif ctype == "application/json":
        try:
            rec["json"] = json.loads(text)
        except ValueError:
            pass
    return rec


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "webhook-sink"

    def handle_any(self):
        body = read_body(self)
        sink = self.server.sink
        status = sink.record(describe(self, body))
        if sink.delay > 0:
            time.sleep(sink.delay)
        reply = b"ok\n" if status < 300 else b"failing on purpose\n"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(reply)))
        if status != 200 and sink.location:
            self.send_header("Location", sink.location)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any

    def log_message(self, fmt, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    tls = None

    def finish_request(self, request, client_address):
        """The TLS handshake happens in the request's own thread, never in the accept loop."""
        if self.tls:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        print("webhook_sink: error with %s: %s" % (client_address, sys.exc_info()[1]),
              file=sys.stderr, flush=True)


def report(path):
    by_status, keys = Counter(), Counter()
    requests = without_key = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            requests += 1
            by_status[str(rec.get("status"))] += 1
            key = rec.get("headers", {}).get("idempotency-key")
            if key is None:
                without_key += 1
            else:
                keys[key] += 1
    print(json.dumps({
        "requests": requests,
        "by_status": dict(by_status),
        "keys": len(keys),
        "duplicates": {k: c for k, c in keys.items() if c > 1},
        "without_key": without_key,
    }, sort_keys=True))


def serve(args):
    sink = Sink(args.out, args.status, args.fail_first, args.delay, args.location)
    server = Server(("127.0.0.1", args.port), Handler)
    server.sink = sink
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(args.cert, args.key)
        server.tls = ctx
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print("webhook_sink: listening on 127.0.0.1:%d%s" % (args.port, " (TLS)" if args.cert else ""),
          flush=True)
    stop.wait()
    server.shutdown()
    server.server_close()


def main():
    p = argparse.ArgumentParser(description="HTTP(S) sink that records requests as JSON lines")
    p.add_argument("--port", type=int)
    p.add_argument("--out")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--status", type=int, default=500)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--location")
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--report", metavar="FILE")
    args = p.parse_args()
    if args.report:
        report(args.report)
        return 0
    if not args.port or not args.out or bool(args.cert) != bool(args.key):
        p.error("serving needs --port and --out (and --cert with --key)")
    serve(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
