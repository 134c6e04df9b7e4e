#!/usr/bin/python3
"""Sends messages with Python's smtplib for Gannet's end-to-end tests.

Reads one JSON object on stdin:
  {"server": "127.0.0.1:2525", "starttls": false,
   "messages": [{"from": "a@x.test", "to": ["b@d1.test"],
                 "mail_options": ["BODY=8BITMIME"], "data_b64": "..."}]}
and writes a JSON list with one result per message on stdout:
  [{"mail": "250 ...", "rcpt": ["250 ..."], "data": "250 2.0.0 OK id=..."}]
Every message goes over the same connection, with RSET after a refusal.
smtplib dot-stuffs the data and adds a final CRLF when it is missing.
"""

import base64
import json
import smtplib
import sys


def reply(code, text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return "%d %s" % (code, text)


def main():
    spec = json.load(sys.stdin)
    host, port = spec["server"].rsplit(":", 1)
    results = []
    with smtplib.SMTP(host, int(port), local_hostname="smtplib.e2e.test", timeout=60) as s:
        s.ehlo()
        if spec.get("starttls"):
            s.starttls()
            s.ehlo()
        for m in spec["messages"]:
            res = {"mail": "", "rcpt": [], "data": ""}
            results.append(res)
            code, text = s.mail(m["from"], m.get("mail_options", []))
            res["mail"] = reply(code, text)
            if code != 250:
                s.rset()
                continue
            accepted = 0
            for rcpt in m["to"]:
                code, text = s.rcpt(rcpt)
                res["rcpt"].append(reply(code, text))
                if code in (250, 251):
                    accepted += 1
            if accepted == 0:
                s.rset()
                continue
            try:
                code, text = s.data(base64.b64decode(m["data_b64"]))
                res["data"] = reply(code, text)
            except smtplib.SMTPDataError as e:
                res["data"] = reply(e.smtp_code, e.smtp_error)
                s.rset()
        s.quit()
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
