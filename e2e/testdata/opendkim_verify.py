#!/usr/bin/python3
"""Verify a message's DKIM signatures with libopendkim (Debian libopendkim11).

Usage: /usr/bin/python3 opendkim_verify.py < MESSAGE

This drives the library behind opendkim and opendkim-testmsg through ctypes
(dkim_verify, dkim_header per field, dkim_eoh, dkim_body, dkim_eom), because
Debian 12's opendkim-testmsg (2.11.0~beta2) answers "dkim_chunk(): Syntax
error" to every message, signed or not. Keys are looked up by the library
with the system resolver (libresolv, /etc/resolv.conf): the e2e test runs
this in a private mount namespace whose /etc/resolv.conf names the test
dnsmasq. Prints "pass" and exits 0 when libopendkim accepts the message,
otherwise prints the stage and the library's error and exits 1.
"""
import ctypes
import sys


def main():
    lib = ctypes.CDLL("libopendkim.so.11")
    lib.dkim_init.restype = ctypes.c_void_p
    lib.dkim_verify.restype = ctypes.c_void_p
    lib.dkim_verify.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
    for f in ("dkim_header", "dkim_body"):
        getattr(lib, f).argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.dkim_eoh.argtypes = [ctypes.c_void_p]
    lib.dkim_eom.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.dkim_getresultstr.restype = ctypes.c_char_p
    lib.dkim_geterror.restype = ctypes.c_char_p
    lib.dkim_geterror.argtypes = [ctypes.c_void_p]

    msg = sys.stdin.buffer.read()
    head, _, body = msg.partition(b"\r\n\r\n")
    fields = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    handle = lib.dkim_init(None, None)
    st = ctypes.c_int()
    d = lib.dkim_verify(handle, b"e2e", None, ctypes.byref(st))
    if not d:
        print("dkim_verify failed", st.value)
        return 1

    def check(stage, status):
        if status != 0:
            print(stage, lib.dkim_getresultstr(status).decode(), (lib.dkim_geterror(d) or b"").decode())
            sys.exit(1)

    for h in fields:
        check("dkim_header", lib.dkim_header(d, h, len(h)))
    check("dkim_eoh", lib.dkim_eoh(d))
    check("dkim_body", lib.dkim_body(d, body, len(body)))
    check("dkim_eom", lib.dkim_eom(d, None))
    print("pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
