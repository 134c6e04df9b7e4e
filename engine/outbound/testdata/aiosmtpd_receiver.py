"""An aiosmtpd receiver with STARTTLS for the outbound tests.

Usage: aiosmtpd_receiver.py HOST PORT CERTFILE KEYFILE OUTDIR

Each accepted message is written to OUTDIR as N.eml (the content as
received, dot-unstuffed) and then N.json (envelope, TLS, MAIL parameters).
RCPT addresses starting with "reject" get 550, with "defer" 451. Prints
READY when listening; stops when stdin closes.
"""
import json
import os
import ssl
import sys

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, outdir):
        self.outdir = outdir
        self.n = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject"):
            return "550 5.1.1 no such user"
        if address.startswith("defer"):
            return "451 4.2.1 try later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        base = os.path.join(self.outdir, str(self.n))
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "tls": session.ssl is not None,
        }
        with open(base + ".tmp", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".tmp", base + ".json")
        return "250 2.0.0 OK stored"


def main():
    host, port, certfile, keyfile, outdir = sys.argv[1:6]
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certfile, keyfile)
    controller = Controller(
        Handler(outdir),
        hostname=host,
        port=int(port),
        tls_context=ctx,
        require_starttls=False,
        enable_SMTPUTF8=True,
        decode_data=False,
    )
    controller.start()
    print("READY", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
