#!/usr/bin/python3
"""A customer's webhook endpoint for Gannet's event sinks, written from
docs/contract.md ("Event sinks") alone: it checks X-Gannet-Signature with
the verify() the contract gives, answers 400 to records of tenant
"reject" (Gannet must drop them), 204 otherwise, and appends one JSON line
per request to OUT: {"status", "key", "uuids", "types"}.

usage: webhook_receiver.py PORT SECRET OUT
"""
import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


# As in docs/contract.md.
def verify(secret: bytes, headers, body: bytes) -> bool:
    ts = headers["X-Gannet-Timestamp"]
    want = "v1=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, headers["X-Gannet-Signature"]) and abs(time.time() - int(ts)) < 300


PORT, SECRET, OUT = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        entry = {"key": self.headers.get("Idempotency-Key", "")}
        if not verify(SECRET, self.headers, body):
            entry["status"] = 401
        else:
            doc = json.loads(body)
            recs = doc if isinstance(doc, list) else [doc]
            entry["uuids"] = [r["uuid"] for r in recs]
            entry["types"] = [r["type"] for r in recs]
            entry["status"] = 400 if any(r.get("tenant") == "reject" for r in recs) else 204
        with open(OUT, "a") as f:
            f.write(json.dumps(entry) + "\n")
        self.send_response(entry["status"])
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
