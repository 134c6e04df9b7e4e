#!/usr/bin/python3
"""An aiosmtpd receiver for Gannet's end-to-end tests.

It accepts mail on --listen HOST:PORT and saves every transaction into --dir as
two files: NAME.eml holds the message exactly as it arrived (dot-unstuffed,
envelope.original_content, no decoding) and NAME.json holds the envelope. The
JSON file is renamed into place after the .eml file, so a reader that sees
NAME.json can read NAME.eml whole.

Faults for retry and bounce tests:
  --tempfail-first "451 4.3.0 try later"  refuses the first RCPT of each
                                          (sender, recipient) pair, then accepts.
  --fail-rcpt "550 5.1.1 no such user"    refuses every RCPT.
STARTTLS is offered when --tls-cert and --tls-key are given.
  --requiretls                            offers REQUIRETLS (RFC 8689) once TLS
                                          is on and takes MAIL FROM ... REQUIRETLS
                                          there (kept in mail_options).

Run with Debian's /usr/bin/python3, which has the aiosmtpd module.
"""

import argparse
import asyncio
import itertools
import json
import os
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP


class SavingHandler:
    def __init__(self, outdir, tempfail_first, fail_rcpt, requiretls=False):
        self.outdir = outdir
        self.tempfail_first = tempfail_first
        self.fail_rcpt = fail_rcpt
        self.requiretls = requiretls
        self.seq = itertools.count(1)
        self.seen = set()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.requiretls and session.ssl is not None:
            responses.insert(len(responses) - 1, "250-REQUIRETLS")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.fail_rcpt:
            return self.fail_rcpt
        if self.tempfail_first:
            key = (envelope.mail_from, address)
            if key not in self.seen:
                self.seen.add(key)
                return self.tempfail_first
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        name = "%d-%06d" % (os.getpid(), next(self.seq))
        base = os.path.join(self.outdir, name)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(base + ".eml.tmp", base + ".eml")
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "peer": str(session.peer[0]) if session.peer else "",
            "helo": session.host_name or "",
            "tls": session.ssl is not None,
            "size": len(envelope.original_content),
        }
        with open(base + ".json.tmp", "w", encoding="utf-8") as f:
            json.dump(meta, f, ensure_ascii=False)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 2.0.0 OK saved " + name


class RequireTLSSMTP(SMTP):
    """SMTP that takes the REQUIRETLS parameter of MAIL under TLS."""

    def __init__(self, handler, **kwargs):
        super().__init__(handler, **kwargs)
        self.requiretls = getattr(handler, "requiretls", False)

    async def smtp_MAIL(self, arg):
        words = (arg or "").split()
        has = [w for w in words if w.upper() == "REQUIRETLS"]
        if not has or not self.requiretls:
            return await super().smtp_MAIL(arg)
        if self.session.ssl is None:
            return await self.push("530 5.7.10 REQUIRETLS needs TLS")
        rest = " ".join(w for w in words if w.upper() != "REQUIRETLS")
        await super().smtp_MAIL(rest)
        if self.envelope.mail_from is not None:
            self.envelope.mail_options.append("REQUIRETLS")


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--hostname", default="aiosmtpd.e2e.test")
    ap.add_argument("--tempfail-first", default="")
    ap.add_argument("--fail-rcpt", default="")
    ap.add_argument("--tls-cert", default="")
    ap.add_argument("--tls-key", default="")
    ap.add_argument("--requiretls", action="store_true")
    args = ap.parse_args()

    host, port = args.listen.rsplit(":", 1)
    handler = SavingHandler(args.dir, args.tempfail_first, args.fail_rcpt, args.requiretls)
    tls_context = None
    if args.tls_cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)

    def factory():
        return RequireTLSSMTP(
            handler,
            hostname=args.hostname,
            decode_data=False,
            enable_SMTPUTF8=True,
            data_size_limit=64 * 1024 * 1024,
            tls_context=tls_context,
            require_starttls=False,
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, host=host, port=int(port))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("READY " + args.listen, flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
