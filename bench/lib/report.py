#!/usr/bin/python3
"""Turns the JSON result lines of bench/run.sh into the Markdown report.

  report.py RESULTS.jsonl key=value...   (the run's parameters)

Each result line has "scen" (a-f), "sys" (ceiling-source, ceiling-blast,
postfix, gannet) and either the scenario's numbers or "error". The report
holds one table per kind of scenario, the ratios, and the issue's targets
with met / not met.
"""

import json
import platform
import sys
import time

SYSTEMS = [
    ("ceiling-source", "ceiling: smtp-source → smtp-sink"),
    ("ceiling-blast", "ceiling: smtpblast → smtpsink"),
    ("postfix", "Postfix (private instance)"),
    ("gannet", "Gannet"),
]
SYS_NAME = dict(SYSTEMS)
CEILING = "ceiling-blast"  # same client as the relays: the fair ceiling


def num(v):
    return v if isinstance(v, (int, float)) else None


def fmt(v, digits=1):
    if v is None:
        return "—"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def ratio(a, b):
    a, b = num(a), num(b)
    if a is None or not b:
        return None
    return a / b


def fmt_ratio(r):
    return "—" if r is None else f"{r:.2f}×"


def cpuinfo():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def main(argv):
    rows = []
    with open(argv[1]) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    meta = dict(kv.split("=", 1) for kv in argv[2:])
    by = {}
    for r in rows:
        by[(r["scen"], r["sys"])] = r

    out = []
    w = out.append
    quick = meta.get("quick") == "1"
    w(f"# Gannet benchmark — {time.strftime('%Y-%m-%d %H:%M %Z')} on {meta.get('host', '?')}")
    w("")
    if quick:
        w("**Quick mode (BENCH_QUICK=1): tiny counts that check the script, not the systems. "
          "Do not quote these numbers.**")
        w("")
    try:
        import os
        ncpu = os.cpu_count()
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    except (OSError, ValueError):
        ncpu, mem = "?", "?"
    w(f"Machine: {ncpu} × {cpuinfo()}, {mem} MiB RAM, kernel {platform.release()}; "
      f"Gannet at `{meta.get('gannet_rev', '?')}`; run took {meta.get('elapsed', '?')} s; "
      f"load average {meta.get('load_start', '?')} at the start, {meta.get('load_end', '?')} at the end. "
      "Load generator, relay and sink share the same cores, so absolute numbers drift between "
      "runs and machines; the ratios are what to compare.")
    w("")
    w(f"Load: (a)(b)(d) {meta.get('msgs')} messages of {meta.get('size')} over "
      f"{meta.get('conns')} connections ({meta.get('per_conn')} per connection, "
      f"{'PIPELINING' if meta.get('pipelining') == '1' else 'no pipelining'} from smtpblast; "
      f"smtp-source cannot pipeline); (c) {meta.get('c_msgs')} × {meta.get('c_size')} over "
      f"{meta.get('c_conns')} connections; (d) {meta.get('d_rate')} transactional messages/s during (b); "
      f"(e) {meta.get('e_queued')} queued messages; (f) {meta.get('f_conns')} idle connections "
      f"to Gannet, {meta.get('f_pf_conns')} to Postfix.")
    w("")

    # ------------------------------------------------------ throughput --
    titles = {
        "a": "(a) Acceptance — messages/s answered 250 (durable in the relay's spool)",
        "b": "(b) End to end — messages/s from the first byte in to the last message at the sink",
        "c": "(c) 100 KB messages end to end, Gannet with DKIM rsa-sha256 — messages/hour",
    }
    for scen in "abc":
        present = [s for s, _ in SYSTEMS if (scen, s) in by]
        if not present:
            continue
        unit = "msgs/hour" if scen == "c" else "msgs/s"
        w(f"## {titles[scen]}")
        w("")
        w(f"| system | messages | {unit} | CPU s / 1000 msgs | ÷ ceiling (smtpblast) | Gannet ÷ this | note |")
        w("|---|---:|---:|---:|---:|---:|---|")
        mult = 3600 if scen == "c" else 1
        g = by.get((scen, "gannet"), {})
        ceil = by.get((scen, CEILING), {})
        for s in present:
            r = by[(scen, s)]
            if r.get("error"):
                w(f"| {SYS_NAME[s]} | — | {r['error']} | — | — | — | {r.get('note') or ''} |")
                continue
            rate = num(r.get("rate"))
            shown = None if rate is None else rate * mult
            vs_ceil = "" if s.startswith("ceiling") else fmt_ratio(ratio(rate, ceil.get("rate")))
            vs_g = "" if s == "gannet" or g.get("error") else fmt_ratio(ratio(g.get("rate"), rate))
            w(f"| {SYS_NAME[s]} | {fmt(num(r.get('msgs')), 0)} | {fmt(shown)} | "
              f"{fmt(num(r.get('cpu')), 3)} | {vs_ceil} | {vs_g} | {r.get('note') or ''} |")
        w("")
    w("CPU is user+system time of the system under test only (for Postfix summed over master and "
      "all its children, reaped ones included; for the ceilings the sink's). In (a) it is counted up to the "
      "last 250, so it includes the deliveries done meanwhile; in (b) and (c) up to the last delivery.")
    w("")

    # --------------------------------------------------------- latency --
    d_rows = [(s, by[("d", s)]) for s, _ in SYSTEMS if ("d", s) in by]
    if d_rows:
        w("## (d) Transactional latency during (b) — from the 250 to arrival at the sink")
        w("")
        w("| system | sent | delivered | p50 ms | p99 ms | max ms |")
        w("|---|---:|---:|---:|---:|---:|")
        for s, r in d_rows:
            if r.get("error"):
                w(f"| {SYS_NAME[s]} | — | — | {r['error']} | — | — |")
                continue
            w(f"| {SYS_NAME[s]} | {r.get('sent')} | {r.get('delivered')} | {fmt(num(r.get('p50')))} | "
              f"{fmt(num(r.get('p99')))} | {fmt(num(r.get('max')))} |")
        w("")

    # ---------------------------------------------------------- memory --
    e = by.get(("e", "gannet"))
    e_kb = e_restart = e_restart_1m = None
    if e:
        w("## (e) Queued messages: memory and restart time (Gannet)")
        w("")
        if e.get("error"):
            w(f"Gannet: {e['error']}")
        else:
            q = num(e.get("queued")) or 0
            e_kb = ratio((num(e.get("rss1")) or 0) - (num(e.get("rss0")) or 0), q)
            e_restart = num(e.get("restart"))
            # The start-up of an empty spool is the fixed part; only the
            # rest grows with the queue.
            fixed = min(num(e.get("start_empty")) or 0.0, e_restart or 0.0)
            e_restart_1m = (None if e_restart is None or not q
                            else fixed + (e_restart - fixed) * max(1.0, 1_000_000 / q))
            e_kb2 = ratio((num(e.get("rss2")) or 0) - (num(e.get("rss0")) or 0), q)
            w("| queued | RSS empty KiB | RSS queued KiB | KiB per queued msg | queue depth metric | "
              "stop s | start, empty spool s | restart to SMTP s | RSS after restart KiB | KiB per msg after restart | "
              "depth after restart |")
            w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            w(f"| {fmt(q, 0)} | {fmt(num(e.get('rss0')), 0)} | {fmt(num(e.get('rss1')), 0)} | "
              f"{fmt(e_kb, 3)} | {e.get('depth1') if e.get('depth1') is not None else '—'} | "
              f"{fmt(num(e.get('stop')), 2)} | {fmt(num(e.get('start_empty')), 3)} | {fmt(e_restart, 3)} | {fmt(num(e.get('rss2')), 0)} | "
              f"{fmt(e_kb2, 3)} | "
              f"{e.get('depth2') if e.get('depth2') is not None else '—'} |")
            w("")
            if q and q < 1_000_000:
                w(f"Measured with {q:,} queued (BENCH_E_QUEUED); the 1M restart figure in the targets "
                  "scales the part of the restart above an empty-spool start linearly to 1M.")
            w("Postfix is not measured here: its queue is files on disk and its qmgr keeps at most "
              "qmgr_message_active_limit (20,000) messages in memory.")
        w("")

    f_rows = [(s, by[("f", s)]) for s, _ in SYSTEMS if ("f", s) in by]
    f_kb = None
    if f_rows:
        w("## (f) Idle inbound connections: memory per connection")
        w("")
        w("| system | connections held | memory before KiB | with connections KiB | KiB per connection | measured as |")
        w("|---|---:|---:|---:|---:|---|")
        for s, r in f_rows:
            if r.get("error"):
                w(f"| {SYS_NAME[s]} | — | — | — | {r['error']} | — |")
                continue
            kb = ratio((num(r.get("mem1")) or 0) - (num(r.get("mem0")) or 0), r.get("conns"))
            if s == "gannet":
                f_kb = kb
            kind = "VmRSS of the process" if r.get("memkind") == "rss" else "Pss summed over master and children"
            w(f"| {SYS_NAME[s]} | {r.get('conns')} | {fmt(num(r.get('mem0')), 0)} | {fmt(num(r.get('mem1')), 0)} | "
              f"{fmt(kb, 2)} | {kind} |")
        w("")

    # --------------------------------------------------------- targets --
    w("## Targets (from the issue)")
    w("")
    w("| target | measured | met |")
    w("|---|---|---|")

    def verdict(ok):
        return "—" if ok is None else ("met" if ok else "**not met**")

    def gval(scen, key="rate"):
        r = by.get((scen, "gannet"))
        if r is None:
            return None, "not run"
        if r.get("error"):
            return None, r["error"]
        return num(r.get(key)), None

    gb, eb = gval("b")
    rb = ratio(gb, by.get(("b", "postfix"), {}).get("rate")) if gb is not None else None
    w(f"| (b) end to end ≥ 10× Postfix | {eb or fmt_ratio(rb)} | {verdict(None if rb is None else rb >= 10)} |")
    ga, ea = gval("a")
    ra = ratio(ga, by.get(("a", CEILING), {}).get("rate")) if ga is not None else None
    w(f"| (a) acceptance ≥ ½ of the raw ceiling (smtpblast → smtpsink) | {ea or fmt_ratio(ra)} | "
      f"{verdict(None if ra is None else ra >= 0.5)} |")
    gc, ec = gval("c")
    cnote = by.get(("c", "gannet"), {}).get("note") or ""
    cval = None if gc is None else gc * 3600
    cverdict = verdict(None if cval is None else cval >= 3e6)
    dkim_on = "DKIM" in cnote and " on" in cnote
    if cval is not None and not dkim_on:
        cverdict += " (without DKIM)"
    w(f"| (c) 100 KB + DKIM ≥ 3M msgs/hour | {ec or (fmt(cval) + ' msgs/hour' + (f'; {cnote}' if cnote else ''))} | "
      f"{cverdict} |")
    gd, ed = gval("d", "p99")
    w(f"| (d) transactional p99 < 1 s | {ed or (fmt(gd) + ' ms')} | {verdict(None if gd is None else gd < 1000)} |")
    if e is None:
        w("| (e) < 1 KB RSS per queued message | not run | — |")
        w("| (e) restart with 1M queued < 10 s | not run | — |")
    elif e.get("error"):
        w(f"| (e) < 1 KB RSS per queued message | {e['error']} | — |")
        w(f"| (e) restart with 1M queued < 10 s | {e['error']} | — |")
    else:
        w(f"| (e) < 1 KB RSS per queued message | {fmt(e_kb, 3)} KiB | {verdict(None if e_kb is None else e_kb < 1)} |")
        q = num(e.get("queued")) or 0
        how = f"{fmt(e_restart, 2)} s with {q:,}" + (f" → {fmt(e_restart_1m, 2)} s scaled to 1M" if q < 1_000_000 else "")
        w(f"| (e) restart with 1M queued < 10 s | {how} | {verdict(None if e_restart_1m is None else e_restart_1m < 10)} |")
    gf = by.get(("f", "gannet"))
    if gf is None:
        w("| (f) < 10 KB RSS per idle connection | not run | — |")
    elif gf.get("error"):
        w(f"| (f) < 10 KB RSS per idle connection | {gf['error']} | — |")
    else:
        w(f"| (f) < 10 KB RSS per idle connection | {fmt(f_kb, 2)} KiB with {gf.get('conns')} | "
          f"{verdict(None if f_kb is None else f_kb < 10)} |")
    w("")
    if quick:
        w("Quick mode: the verdicts above come from tiny samples.")
        w("")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main(sys.argv)
