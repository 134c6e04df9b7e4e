#!/usr/bin/env python3
"""The webhook receiver of make bench's gannet-events run: every POST is
answered 200 at once; the records are counted per path (each record has
one "uuid" field: counted without decoding the JSON) and, when a secret is
given, each request's X-Gannet-Signature is checked the way
docs/contract.md shows. GET /count answers {"PATH": records, ...,
"bad_signatures": N}.

    webhook_sink.py PORT [SECRET]

It shares the machine's cores with Gannet, the load generator and the SMTP
sink, so it costs as little CPU as it can: one thread, asyncio with a
hand-written HTTP/1.1 parser (keep-alive; Content-Length bodies, which is
what Gannet sends) instead of http.server's per-request header parsing
and a thread per connection, and the body hashed and counted where it
was received, not copied.
"""
import asyncio
import hashlib
import hmac
import json
import sys

PORT = int(sys.argv[1])
SECRET = sys.argv[2].encode() if len(sys.argv) > 2 else b""
counts = {}
bad = 0

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def handle(method, path, headers, buf, start, end):
    """Answers one request whose body is buf[start:end] (the response bytes)."""
    global bad
    if method == b"GET":
        out = json.dumps(dict(counts, bad_signatures=bad)).encode()
        return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(out), out)
    if SECRET:
        m = hmac.new(SECRET, headers.get(b"x-gannet-timestamp", b"") + b".", hashlib.sha256)
        with memoryview(buf) as mv:
            m.update(mv[start:end])
        want = b"v1=" + m.hexdigest().encode()
        if not hmac.compare_digest(want, headers.get(b"x-gannet-signature", b"")):
            bad += 1
    p = path.decode()
    counts[p] = counts.get(p, 0) + buf.count(b'"uuid":', start, end)
    return OK


class Conn(asyncio.Protocol):
    def connection_made(self, transport):
        self.t = transport
        self.buf = bytearray()

    def data_received(self, data):
        self.buf += data
        buf = self.buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(buf[:end]).split(b"\r\n")
            try:
                method, path, _ = lines[0].split(b" ", 2)
                headers = {}
                for line in lines[1:]:
                    k, _, v = line.partition(b":")
                    headers[k.strip().lower()] = v.strip()
                n = int(headers.get(b"content-length", b"0"))
            except ValueError:
                self.t.write(BAD_REQUEST)
                self.t.close()
                return
            if len(buf) < end + 4 + n:
                return  # the rest of the body is on its way
            self.t.write(handle(method, path, headers, buf, end + 4, end + 4 + n))
            if len(buf) == end + 4 + n:
                buf.clear()
                return
            del buf[:end + 4 + n]


async def main():
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(Conn, "127.0.0.1", PORT)
    async with srv:
        await srv.serve_forever()


asyncio.run(main())
