#!/usr/bin/env python3
"""The webhook receiver of make bench's gannet-events run: every POST is
answered 200 at once; the records are counted per path (each record has
one "uuid" field: counted without decoding the JSON, so that the receiver,
which shares the machine, costs little CPU) and, when a secret is given,
each request's X-Gannet-Signature is checked the way docs/contract.md
shows. GET /count answers {"PATH": records, ..., "bad_signatures": N}.

    webhook_sink.py PORT [SECRET]
"""
import hashlib
import hmac
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
SECRET = sys.argv[2].encode() if len(sys.argv) > 2 else b""
counts = {}
bad = 0
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        global bad
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        ok = True
        if SECRET:
            ts = self.headers.get("X-Gannet-Timestamp", "")
            want = "v1=" + hmac.new(SECRET, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
            ok = hmac.compare_digest(want, self.headers.get("X-Gannet-Signature", ""))
        n = body.count(b'"uuid":')
        with lock:
            counts[self.path] = counts.get(self.path, 0) + n
            if not ok:
                bad += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        with lock:
            doc = dict(counts, bad_signatures=bad)
        out = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
