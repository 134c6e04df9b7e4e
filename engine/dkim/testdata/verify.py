#!/usr/bin/python3
"""Verify every DKIM signature of messages with dkimpy (Debian python3-dkim).

Usage: /usr/bin/python3 verify.py [NAME=RECORD...] [--] MESSAGE-FILE...

NAME is "<selector>._domainkey.<domain>" and RECORD the TXT value
("v=DKIM1; k=rsa; p=..."); arguments containing "=" before "--" (or before
the first that has none) are records. No DNS is used: dnsfunc answers from
the records. For each file it prints one line per signature
("FILE sig N: pass d=... s=... a=..." or "... fail REASON") and then
"FILE: pass" when the file has at least one signature and all verify, else
"FILE: fail". Exits 0 when every file passes, 1 otherwise, 2 on bad usage.
"""
import sys

import dkim


def verify_file(path, dnsfunc):
    with open(path, "rb") as f:
        msg = f.read()
    d = dkim.DKIM(msg, minkey=1024)
    n = sum(1 for k, _ in d.headers if k.lower() == b"dkim-signature")
    if n == 0:
        print("%s sig -: fail no DKIM-Signature" % path)
        return False
    ok = True
    for i in range(n):
        try:
            res = d.verify(idx=i, dnsfunc=dnsfunc)
            why = ""
        except dkim.DKIMException as e:
            res, why = False, str(e)
        sig = d.signature_fields if res else {}
        print("%s sig %d: %s d=%s s=%s a=%s %s" % (
            path, i, "pass" if res else "fail",
            sig.get(b"d", b"?").decode(), sig.get(b"s", b"?").decode(),
            sig.get(b"a", b"?").decode(), why))
        ok = ok and res
    return ok


def main(argv):
    args = argv[1:]
    records = {}
    while args and (args[0] == "--" or "=" in args[0]):
        arg = args.pop(0)
        if arg == "--":
            break
        name, _, value = arg.partition("=")
        records[name.lower().rstrip(".")] = value.encode()
    if not args:
        print(__doc__, file=sys.stderr)
        return 2

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        return records.get(name.lower().rstrip("."))

    all_ok = True
    for path in args:
        ok = verify_file(path, dnsfunc)
        print("%s: %s" % (path, "pass" if ok else "fail"))
        all_ok = all_ok and ok
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
