#!/usr/bin/python3
"""Helpers for bench/run.sh: ports, process CPU and memory, waiting, the
transactional trickle of scenario (d) and the idle connections of (f).

Only the standard library is used, so Debian's /usr/bin/python3 runs it on a
fresh machine. Every loop is bounded in count or time. Sub-commands:

  freeport N                       print N free TCP ports on 127.0.0.1
  cpu PID...                       CPU seconds of the process trees rooted at PIDs
  rss PID                          VmRSS of one process in KiB
  hwm PID                          VmHWM (peak RSS) of one process in KiB
  pss PID...                       summed Pss (KiB) of the process trees
  waitsmtp HOST:PORT TIMEOUT [SINCE]
                                   wait for a 220 banner; print seconds waited
                                   (or since the epoch time SINCE)
  waitport HOST:PORT TIMEOUT [PID] wait until a TCP connect succeeds (a milter,
                                   which sends no banner); print seconds waited,
                                   or "timeout" / "exited" (PID ended first)
  spawn LOG HOST:PORT TIMEOUT CMD...
                                   start CMD, wait for its 220; print PID SECONDS
                                   START (START: the epoch time of the exec)
  sinkwatch URL TARGETFILE TIMEOUT OUT
                                   poll smtpsink /stats until the count reaches
                                   the number written to TARGETFILE
  sinkcount URL                    print the sink's message count (URL: smtpsink's
                                   /stats, or file:PATH, smtp-sink -c's output)
  waitsink URL N TIMEOUT           wait until smtpsink has N messages
  trickle HOST:PORT RATE STOPFILE IDSFILE OUT GRACE
                                   send "X-Type: transactional" mail at RATE/s
                                   until STOPFILE exists, and time each from
                                   its 250 to its line in the sink's ids file
  idle HOST:PORT N READYFILE HOLD  open N connections, read each banner, write
                                   READYFILE, hold them HOLD seconds at most
  send HOST:PORT COUNT [HEADER]    send COUNT small messages on one connection
  record FILE KEY=VALUE...         append a JSON result line to FILE
  jget FILE KEY...                 print values (dotted keys) of a JSON file
  jurl URL KEY...                  the same of the JSON at an http:// URL
  dkimcheck EML PUBKEYFILE         is the message DKIM signed, and does it verify?
  metric URL NAME                  print the summed samples of a Prometheus metric
  qtime URL REPS                   time REPS queue queries (admin API): "MEDIAN_S MAX_S MATCHED RETURNED"
  qloop URL STOPFILE OUT [INTERVAL] query every INTERVAL s (1) until STOPFILE exists; JSON to OUT
  waitmetric URL NAME N TIMEOUT SINCE
                                   poll the metric every 0.1 s until it reaches N;
                                   print "SECONDS LAST" (seconds since the epoch
                                   time SINCE) or "timeout LAST"
"""

import json
import os
import socket
import statistics
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def freeport(n):
    socks, ports = [], []
    for _ in range(int(n)):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    print(" ".join(map(str, ports)))


def _stat(pid):
    """Returns (ppid, utime+stime+cutime+cstime ticks) of pid, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    # Fields after the command: state(3) ppid(4) ... utime(14) stime(15)
    # cutime(16) cstime(17); rest[0] is field 3.
    return int(rest[1]), sum(int(x) for x in rest[11:15])


def _tree(roots):
    """Returns the pids of roots and all their live descendants."""
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(name)
            if st:
                children.setdefault(st[0], []).append(int(name))
    out, todo = [], [int(r) for r in roots]
    while todo:
        p = todo.pop()
        if p in out:
            continue
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu(*pids):
    # A reaped child's time is added to its parent's cutime/cstime, so the sum
    # of all four fields over the live tree counts processes that have exited
    # too (Postfix's smtpd, cleanup and smtp come and go).
    total = 0
    for p in _tree(pids):
        st = _stat(p)
        if st:
            total += st[1]
    print(f"{total / CLK_TCK:.2f}")


def _status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss(pid):
    print(_status_kb(pid, "VmRSS"))


def hwm(pid):
    print(_status_kb(pid, "VmHWM"))


def pss(*pids):
    total = 0
    for p in _tree(pids):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    print(total)


def _addr(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def waitsmtp(addr, timeout, since=None):
    """Waits for a 220 banner and prints the seconds waited, or the seconds
    since the epoch time since (a process's launch, taken by the caller
    before this interpreter started)."""
    start = time.time() if since is None else float(since)
    deadline = time.time() + float(timeout)
    while time.time() < deadline:
        try:
            with socket.create_connection(_addr(addr), timeout=1) as c:
                c.settimeout(max(0.1, deadline - time.time()))
                if c.recv(512).startswith(b"220"):
                    c.sendall(b"QUIT\r\n")
                    print(f"{time.time() - start:.3f}")
                    return 0
        except OSError:
            pass
        time.sleep(0.01)
    print("timeout")
    return 1


def _exited(pid):
    """Reports whether process pid is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def waitport(addr, timeout, pid=None):
    """Waits until addr accepts a TCP connection (no banner expected: an
    OpenDKIM milter speaks only after the MTA's first packet), giving up
    early when the process pid (the one meant to listen there) ends."""
    start = time.time()
    deadline = start + float(timeout)
    while time.time() < deadline:
        if pid is not None and _exited(pid):
            print("exited")
            return 1
        try:
            with socket.create_connection(_addr(addr), timeout=1):
                print(f"{time.time() - start:.3f}")
                return 0
        except OSError:
            pass
        time.sleep(0.02)
    print("timeout")
    return 1


def spawn(logfile, addr, timeout, *cmd):
    """Starts cmd (stdout and stderr to logfile), waits for its SMTP banner
    at addr and prints "PID SECONDS START" (from the exec to the 220; START
    is the epoch time just before the exec), or "PID timeout START" /
    "PID exited START". The process outlives this helper; the
    caller owns it. Timing here, not in the shell, keeps this interpreter's
    own start-up out of the figure."""
    import subprocess

    with open(logfile, "ab") as log:
        start = time.time()
        p = subprocess.Popen(list(cmd), stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    # Tell run.sh's cleanup about the child at once, before anything can
    # interrupt this helper.
    pids = os.environ.get("BENCH_PIDS_FILE")
    if pids:
        try:
            with open(f"/proc/{p.pid}/stat") as fh:
                st = fh.read().rsplit(")", 1)[1].split()[19]
            with open(pids, "a") as fh:
                fh.write(f"{p.pid} {st}\n")
        except (OSError, IndexError):
            pass
    deadline = start + float(timeout)
    host, port = _addr(addr)
    while time.time() < deadline:
        if p.poll() is not None:
            print(p.pid, "exited", f"{start:.6f}")
            return 1
        try:
            with socket.create_connection((host, port), timeout=1) as c:
                c.settimeout(max(0.1, deadline - time.time()))
                if c.recv(512).startswith(b"220"):
                    took = time.time() - start
                    c.sendall(b"QUIT\r\n")
                    print(p.pid, f"{took:.3f}", f"{start:.6f}")
                    return 0
        except OSError:
            pass
        time.sleep(0.005)
    print(p.pid, "timeout", f"{start:.6f}")
    return 1


def _http_get(url, timeout=5):
    """GETs an http://host:port/path URL with HTTP/1.0 and returns the body.
    (urllib would double the start-up time of every call on a busy box.)
    BENCH_HTTP_AUTH, when set, is sent as the Authorization header (the
    policy script of the gannet-lua runs refuses requests without its key)."""
    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    auth = os.environ.get("BENCH_HTTP_AUTH", "")
    extra = f"Authorization: {auth}\r\n" if auth else ""
    with socket.create_connection(_addr(hostport), timeout=timeout) as c:
        c.sendall(f"GET /{path} HTTP/1.0\r\nHost: {hostport}\r\n{extra}\r\n".encode())
        chunks = []
        while True:
            b = c.recv(65536)
            if not b:
                break
            chunks.append(b)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or head[9:12] != b"200":
        raise OSError("HTTP " + head[:40].decode(errors="replace"))
    return body


def _sink_messages(url):
    """The message count of a sink: bin/smtpsink's /stats at an http:// URL,
    or, at file:PATH, Postfix's smtp-sink -c, whose stdout (PATH) gets
    "sess=N quit=N mesg=N\r" at each message: the last such line counts."""
    if url.startswith("file:"):
        try:
            with open(url[5:], "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 256))
                tail = f.read()
        except OSError:
            return 0
        i = tail.rfind(b"mesg=")
        if i < 0:
            return 0
        digits = tail[i + 5:].split(b"\r", 1)[0].split(b"\n", 1)[0].strip()
        return int(digits) if digits.isdigit() else 0
    try:
        return int(json.loads(_http_get(url)).get("messages", 0))
    except ValueError as e:
        raise OSError(str(e))


def waitsink(url, want, timeout):
    """Waits until the sink has at least want messages; exit status 1 on timeout."""
    deadline = time.time() + float(timeout)
    while time.time() < deadline:
        try:
            if _sink_messages(url) >= int(want):
                return 0
        except OSError:
            pass
        time.sleep(0.05)
    return 1


def sinkcount(url):
    print(_sink_messages(url))


def read_count(path):
    """The number written to path, or None while there is none."""
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return int(f.read().strip() or "0")
    except (OSError, ValueError):
        return None


def sinkwatch(url, targetfile, timeout, out):
    """Polls the sink every 10 ms. The run's end is the moment the count
    reached its final value, so the poller must watch from the start, before
    the target is known."""
    deadline = time.time() + float(timeout)
    last, last_ts, target = -1, None, None
    result = {}
    while True:
        now = time.time()
        try:
            n = _sink_messages(url)
        except OSError:
            n = last
        if n != last:
            last, last_ts = n, now
        if target is None:
            target = read_count(targetfile)
        if target is not None and last >= target:
            result = {"count": last, "target": target, "done_ts": last_ts, "timeout": False}
            break
        if now > deadline:
            result = {"count": last, "target": target, "done_ts": last_ts, "timeout": True}
            break
        time.sleep(0.01)
    with open(out + ".tmp", "w") as f:
        json.dump(result, f)
    os.rename(out + ".tmp", out)


def _smtp_cmd(f, sock, line):
    if line is not None:
        sock.sendall(line)
    while True:
        reply = f.readline()
        if not reply:
            raise OSError("connection closed")
        if reply[3:4] != b"-":
            return reply


def _connect(addr):
    sock = socket.create_connection(_addr(addr), timeout=30)
    f = sock.makefile("rb")
    if not _smtp_cmd(f, sock, None).startswith(b"220"):
        raise OSError("no 220 banner")
    if not _smtp_cmd(f, sock, b"EHLO trickle.example.test\r\n").startswith(b"250"):
        raise OSError("EHLO refused")
    return sock, f


def _send_one(sock, f, key, extra_header):
    body = (
        f"From: <app@example.test>\r\nTo: <user@example.test>\r\n"
        f"Subject: {key}\r\nMessage-ID: <{key}@example.test>\r\n"
        f"X-Blast-Id: {key}\r\n{extra_header}"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n\r\n"
        "Your one-time code is 123456.\r\n"
    ).encode()
    for cmd in (b"MAIL FROM:<app@example.test>\r\n", b"RCPT TO:<user@example.test>\r\n"):
        r = _smtp_cmd(f, sock, cmd)
        if not r.startswith(b"250"):
            raise OSError(r.decode(errors="replace").strip())
    if not _smtp_cmd(f, sock, b"DATA\r\n").startswith(b"354"):
        raise OSError("DATA refused")
    r = _smtp_cmd(f, sock, body + b".\r\n")
    if not r.startswith(b"250"):
        raise OSError(r.decode(errors="replace").strip())


def send(addr, count, header=""):
    sock, f = _connect(addr)
    for i in range(int(count)):
        _send_one(sock, f, f"probe-{os.getpid()}-{i}", header + "\r\n" if header else "")
    _smtp_cmd(f, sock, b"QUIT\r\n")
    sock.close()


def _pct(sorted_vals, p):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[i]


def trickle(addr, rate, stopfile, idsfile, out, grace):
    import threading

    rate, grace = float(rate), float(grace)
    sent = {}  # key -> time of the 250
    arrived = {}  # key -> time the key appeared in the sink's ids file
    lock = threading.Lock()
    stop_tail = threading.Event()
    prefix = f"txn-{os.getpid()}-"

    def tail():
        pos, buf = 0, b""
        while not stop_tail.is_set():
            try:
                with open(idsfile, "rb") as fh:
                    fh.seek(pos)
                    chunk = fh.read()
            except OSError:
                chunk = b""
            now = time.time()
            if chunk:
                pos += len(chunk)
                buf += chunk
                lines = buf.split(b"\n")
                buf = lines.pop()
                with lock:
                    for ln in lines:
                        k = ln.decode(errors="replace").strip()
                        if k.startswith(prefix) and k not in arrived:
                            arrived[k] = now
            time.sleep(0.005)

    t = threading.Thread(target=tail, daemon=True)
    t.start()
    errors = []
    sock = f = None
    i = 0
    next_at = time.time()
    hard_stop = time.time() + 3600
    while not os.path.exists(stopfile) and time.time() < hard_stop:
        now = time.time()
        if now < next_at:
            time.sleep(min(0.05, next_at - now))
            continue
        next_at = max(next_at + 1.0 / rate, now - 1.0)
        key = f"{prefix}{i}"
        i += 1
        try:
            if sock is None:
                sock, f = _connect(addr)
            _send_one(sock, f, key, "X-Type: transactional\r\n")
            with lock:
                sent[key] = time.time()
        except OSError as e:
            errors.append(str(e))
            if sock is not None:
                sock.close()
            sock = f = None
            if len(errors) > 50:
                break
    with open(out + ".sent", "w") as fh:
        fh.write(str(len(sent)))
    if sock is not None:
        try:
            _smtp_cmd(f, sock, b"QUIT\r\n")
        except OSError:
            pass
        sock.close()
    deadline = time.time() + grace
    while time.time() < deadline:
        with lock:
            if all(k in arrived for k in sent):
                break
        time.sleep(0.02)
    stop_tail.set()
    t.join()
    with lock:
        lat = sorted(arrived[k] - sent[k] for k in sent if k in arrived)
        res = {
            "sent": len(sent),
            "delivered": len(lat),
            "p50_ms": None if not lat else round(_pct(lat, 50) * 1000, 1),
            "p99_ms": None if not lat else round(_pct(lat, 99) * 1000, 1),
            "max_ms": None if not lat else round(lat[-1] * 1000, 1),
            "errors": errors[:5],
        }
    with open(out, "w") as fh:
        json.dump(res, fh)


def idle(addr, n, readyfile, hold):
    """Opens n connections (non-blocking, a few hundred in flight at a time),
    reads each 220 banner and holds the sockets open."""
    import selectors

    n, hold = int(n), float(hold)
    host, port = _addr(addr)
    sel = selectors.DefaultSelector()
    held, failed, opened = [], 0, 0
    pending = {}
    deadline = time.time() + max(60.0, n / 100.0)
    while (opened < n or pending) and time.time() < deadline:
        while opened < n and len(pending) < 500:
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect_ex((host, port))
            except OSError:
                failed += 1
                s.close()
                opened += 1
                continue
            pending[s] = b""
            sel.register(s, selectors.EVENT_READ)
            opened += 1
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                data = s.recv(512)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                failed += 1
                sel.unregister(s)
                del pending[s]
                s.close()
                continue
            pending[s] += data
            if b"\n" in pending[s]:
                sel.unregister(s)
                ok = pending.pop(s).startswith(b"220")
                if ok:
                    held.append(s)
                else:
                    failed += 1
                    s.close()
    for s in list(pending):
        failed += 1
        s.close()
    with open(readyfile + ".tmp", "w") as fh:
        json.dump({"held": len(held), "failed": failed}, fh)
    os.rename(readyfile + ".tmp", readyfile)
    end = time.time() + hold
    while time.time() < end:
        time.sleep(0.2)
        if os.path.exists(readyfile + ".stop"):
            break
    for s in held:
        s.close()


def record(path, *kvs):
    """Appends one JSON object built from key=value pairs to path; values
    that parse as numbers are stored as numbers, "" and "-" as null."""
    rec = {}
    for kv in kvs:
        k, _, v = kv.partition("=")
        if v in ("", "-"):
            rec[k] = None
            continue
        try:
            rec[k] = int(v)
        except ValueError:
            try:
                rec[k] = float(v)
            except ValueError:
                rec[k] = v
    with open(path, "a") as fh:
        fh.write(json.dumps(rec) + "\n")


def jget(path, *keys):
    """Prints the values at the dotted keys of a JSON file, one per line
    ("-" when missing)."""
    try:
        with open(path) as fh:
            doc = json.load(fh)
    except (OSError, ValueError):
        doc = {}
    _print_keys(doc, keys)


def jurl(url, *keys):
    """Prints the values at the dotted keys of the JSON an http:// URL
    answers (smtpsink's /stats), one per line ("-" when missing)."""
    try:
        doc = json.loads(_http_get(url))
    except (OSError, ValueError):
        doc = {}
    _print_keys(doc, keys)


def _print_keys(doc, keys):
    for key in keys:
        v = doc
        for part in key.split("."):
            v = v.get(part) if isinstance(v, dict) else None
        print("-" if v is None else v)


def _metric(url, name):
    """Returns the sum of the samples of one Prometheus metric, or None."""
    try:
        text = _http_get(url).decode()
    except OSError:
        return None
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
            seen = True
    return total if seen else None


def _num(v):
    """Formats a metric value: integral values without exponent or point."""
    if v is None:
        return "-"
    return str(int(v)) if v == int(v) else repr(v)


def metric(url, name):
    """Prints the sum of the samples of one Prometheus metric ("-" if none)."""
    print(_num(_metric(url, name)))


def waitmetric(url, name, want, timeout, since):
    """Polls a metric every 0.1 s until its summed value reaches want; the
    seconds are counted from since (the epoch time a process was started)
    to the answer of the poll that saw the value (an upper bound, by at
    most one poll interval plus one scrape)."""
    want, since = float(want), float(since)
    deadline = time.time() + float(timeout)
    last = None
    while True:
        asked = time.time()
        v = _metric(url, name)
        got = time.time()
        if v is not None:
            last = v
        if last is not None and last >= want:
            print(f"{got - since:.3f}", _num(last))
            return 0
        if time.time() > deadline:
            print("timeout", _num(last))
            return 1
        time.sleep(max(0.0, 0.1 - (time.time() - asked)))


def dkimcheck(emlfile, pubkey_b64file):
    """Prints "absent" when the message has no DKIM-Signature header, else
    "verified" or "fails" as checked by python3-dkim against the given
    public key (base64 DER, the p= value) instead of DNS."""
    with open(emlfile, "rb") as fh:
        msg = fh.read()
    head = msg.split(b"\r\n\r\n", 1)[0].lower()
    if b"\ndkim-signature:" not in b"\n" + head:
        print("absent")
        return
    with open(pubkey_b64file) as fh:
        p = fh.read().strip()
    try:
        import dkim
    except ImportError:
        print("present (python3-dkim missing, not verified)")
        return
    txt = f"v=DKIM1; k=rsa; p={p}".encode()
    ok = dkim.verify(msg, dnsfunc=lambda name, timeout=5: txt)
    print("verified" if ok else "fails")

def _timed_get(url):
    """GETs url; returns (seconds, parsed JSON body)."""
    t0 = time.monotonic()
    body = _http_get(url, 120)
    dt = time.monotonic() - t0
    return dt, json.loads(body)


def qtime(url, reps):
    """Times reps GETs of a queue query (the admin API's
    /api/admin/queue/v1?...), one after the other, and prints one line:
    "MEDIAN_S MAX_S MATCHED RETURNED", RETURNED the messages (or, with
    group_by, the groups) of the first answer. "- - - error" on failure."""
    times, first = [], None
    try:
        for _ in range(int(reps)):
            dt, ans = _timed_get(url)
            times.append(dt)
            if first is None:
                first = ans
    except (OSError, ValueError) as e:
        print("- - -", str(e).replace(" ", "_")[:80])
        return 1
    got = len(first.get("groups") or []) if first.get("group_by") else len(first.get("messages") or [])
    print(f"{statistics.median(times):.4f} {max(times):.4f} {first.get('matched', '-')} {got}")
    return 0


def qloop(url, stopfile, out, interval="1"):
    """Runs a queue query every interval seconds (from the start of one to
    the start of the next) until stopfile exists, then writes a JSON object
    to out: queries, failed, median_s, max_s."""
    iv = float(interval)
    times, failed = [], 0
    nxt = time.monotonic()
    while not os.path.exists(stopfile):
        try:
            dt, _ = _timed_get(url)
            times.append(dt)
        except (OSError, ValueError):
            failed += 1
        nxt += iv
        while time.monotonic() < nxt and not os.path.exists(stopfile):
            time.sleep(min(0.05, max(0.0, nxt - time.monotonic())))
    res = {"queries": len(times), "failed": failed,
           "median_s": round(statistics.median(times), 4) if times else None,
           "max_s": round(max(times), 4) if times else None}
    with open(out, "w") as f:
        json.dump(res, f)
    return 0


def main(argv):
    cmds = {
        "freeport": freeport, "cpu": cpu, "rss": rss, "hwm": hwm, "pss": pss,
        "waitsmtp": waitsmtp, "sinkwatch": sinkwatch, "sinkcount": sinkcount,
        "waitsink": waitsink, "spawn": spawn, "waitport": waitport,
        "trickle": trickle, "idle": idle, "send": send, "record": record,
        "jget": jget, "jurl": jurl, "metric": metric, "waitmetric": waitmetric, "dkimcheck": dkimcheck,
        "qtime": qtime, "qloop": qloop,
    }
    if len(argv) < 2 or argv[1] not in cmds:
        print(__doc__, file=sys.stderr)
        return 2
    rc = cmds[argv[1]](*argv[2:])
    return rc or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
