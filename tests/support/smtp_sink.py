#!/usr/bin/python3
"""smtp_sink.py - an SMTP server that records every message, for tests and benchmarks.

Needs Debian's python3-aiosmtpd: run it with /usr/bin/python3 (a pyenv python3 on PATH may
not have it).

    smtp_sink.py --port PORT --out FILE [--tls starttls|implicit|none --cert CRT --key KEY]
                 [--user USER --password PASSWORD]

Listens on 127.0.0.1:PORT until SIGTERM/SIGINT.
  --tls starttls  offers STARTTLS and refuses mail before it (require_starttls)
  --tls implicit  TLS from the first byte (smtps)
  --tls none      plain SMTP, no STARTTLS offered (the default)
  --user/--password  AUTH PLAIN and LOGIN with this one account; mail needs AUTH; AUTH is
                     offered only over TLS unless --tls none.
Every accepted message appends one JSON line to FILE before the 250 reply:

    {"n": 1, "mail_from": "a@b", "rcpt_tos": ["c@d"], "data": "<the raw message>",
     "tls": true, "tls_version": "TLSv1.3", "authenticated": true, "user": "USER",
     "received_ms": ...}
"""
import argparse
import json
import logging
import signal
import ssl
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Recorder:
    def __init__(self, out):
        self.out = open(out, "a", encoding="utf-8")
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or b""
        if isinstance(envelope.content, str) and not raw:
            raw = envelope.content.encode("utf-8")
        auth = session.auth_data
        # session.ssl is set after STARTTLS only; the transport knows for smtps as well.
        tls = server.transport.get_extra_info("ssl_object")
        rec = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "data": raw.decode("utf-8", errors="replace"),
            "tls": tls is not None,
            "tls_version": tls.version() if tls is not None else None,
            "authenticated": bool(session.authenticated),
            "user": auth.login.decode("utf-8", errors="replace")
            if isinstance(auth, LoginPassword) else None,
            "received_ms": int(time.time() * 1000),
        }
        with self.lock:
            self.count += 1
            rec["n"] = self.count
            self.out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            self.out.flush()
        return "250 Message accepted for delivery"


def authenticator_for(user, password):
    want = LoginPassword(user.encode("utf-8"), password.encode("utf-8"))

    def authenticate(server, session, envelope, mechanism, auth_data):
        if mechanism in ("PLAIN", "LOGIN") and auth_data == want:
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)  # aiosmtpd answers 535

    return authenticate


def make_controller(args):
    kwargs = {"hostname": "127.0.0.1", "port": args.port, "server_hostname": "localhost"}
    if args.tls != "none":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(args.cert, args.key)
        if args.tls == "starttls":
            kwargs.update(tls_context=ctx, require_starttls=True)
        else:
            kwargs.update(ssl_context=ctx)
    if args.user is not None:
        kwargs.update(authenticator=authenticator_for(args.user, args.password),
                      auth_required=True, auth_require_tls=args.tls != "none")
    return Controller(Recorder(args.out), **kwargs)


def main():
    p = argparse.ArgumentParser(description="SMTP sink that records messages as JSON lines")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tls", choices=("starttls", "implicit", "none"), default="none")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user")
    p.add_argument("--password")
    args = p.parse_args()
    if args.tls != "none" and not (args.cert and args.key):
        p.error("--tls %s needs --cert and --key" % args.tls)
    if (args.user is None) != (args.password is None):
        p.error("--user and --password go together")
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # quiet a deprecation warning per AUTH
    controller = make_controller(args)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    controller.start()
    print("smtp_sink: listening on 127.0.0.1:%d (tls %s, auth %s)"
          % (args.port, args.tls, "on" if args.user is not None else "off"), flush=True)
    stop.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
