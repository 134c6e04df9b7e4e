#!/usr/bin/python3
"""Verify every DKIM signature of messages with dkimpy (Debian python3-dkim).

Usage: /usr/bin/python3 dkim_verify.py NAMESERVER_IP PORT MESSAGE-FILE...

Key records are looked up in DNS over UDP at NAMESERVER_IP:PORT (the e2e
dnsmasq) with dnspython, through dkimpy's dnsfunc hook. Prints one JSON
line per file: {"file": ..., "sigs": [{"d": ..., "s": ..., "a": ...,
"h": ..., "ok": bool, "err": ...}]}.
"""
import json
import sys

import dkim
import dns.resolver


def main(argv):
    ip, port, files = argv[1], int(argv[2]), argv[3:]
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = [ip]
    res.port = port
    res.lifetime = 5

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        try:
            ans = res.resolve(name, "TXT")
        except Exception:
            return None
        return b"".join(b"".join(r.strings) for r in ans)

    for path in files:
        with open(path, "rb") as f:
            msg = f.read()
        d = dkim.DKIM(msg)
        n = sum(1 for k, _ in d.headers if k.lower() == b"dkim-signature")
        sigs = []
        for i in range(n):
            err = ""
            try:
                ok = d.verify(idx=i, dnsfunc=dnsfunc)
            except dkim.DKIMException as e:
                ok, err = False, str(e)
            f = d.signature_fields or {}
            sigs.append({k: f.get(k.encode(), b"").decode() for k in ("d", "s", "a", "h")} | {"ok": bool(ok), "err": err})
        print(json.dumps({"file": path, "sigs": sigs}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
