#!/usr/bin/python3
"""Scenario (h) of bench/run.sh: provider personas for bin/smtpsink.

  personas.py gen MSGS DIR PORT SEED SCALE [GREYLIST]
      writes DIR/personas.toml (50 [[persona]] tables on 127.0.10.1-50:PORT),
      DIR/domains.txt (10,000 "domain:weight" for smtpblast -domains @FILE)
      and DIR/plan.json (each persona's hidden limits, its share of the mail
      and the lower bound that share gives for MSGS messages); prints
      "PERSONAS DOMAINS BOUND_S TOTAL_RATE". SCALE multiplies every hidden
      rate (1: 20-400 messages/s a persona); GREYLIST 0: no persona
      greylists.
  personas.py watch STATSURL TARGETFILE TIMEOUT PLAN OUT
      polls smtpsink's /stats every 0.25 s until its personas have accepted
      or refused as unknown (5xx) as many messages as the number written to
      TARGETFILE (the messages injected, written when the injection ends),
      or TIMEOUT seconds pass; writes OUT (JSON): done_ts (the epoch time the
      count last moved), timeout, the totals (accepted, unknown, deferred by
      reason, breaches), ts90 and ts99 (the epoch times 90% and 99% of the
      target were done), the personas' own counters, and the lower bound of the run — for each persona the
      messages it got (accepted + unknown) over its hidden rate, plus its
      greylisting wait; the largest, and which persona it is.

The personas: hidden rates from 400/s down to 20/s (a geometric series,
times SCALE), connection limits from 20 down to 2, four kinds of replies
past the rate (421 4.7.28 at MAIL, 451 4.7.0 at RCPT, 451 4.7.650 after the
data, 421 4.7.0 at MAIL), a refusing 421 greeting past the connections,
deferral bursts at five personas (3 s of 421 every 40 s), greylisting at
four (5 or 10 s), 1-3% unknown users everywhere. Each persona's share of the
mail is its rate times a factor from 0.6 to 1 (1 for one of them, drawn
with SEED): the bigger providers get more mail, and the persona with factor
1 is the one that bounds the run. Its domains (zipf-like: a few large, many
small) share its mail, also zipf-like. Stdlib only, every loop bounded.
"""

import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import _http_get, read_count  # noqa: E402

PERSONAS = 50
DOMAINS = 10000
WEIGHT_TOTAL = 10_000_000  # smtpblast weights are integers

RATE_REPLIES = [
    ("mail", "421 4.7.28 Our system has detected an unusual rate of mail from your IP, try again later"),
    ("rcpt", "451 4.7.0 Rate limit exceeded, try again later"),
    ("dot", "451 4.7.650 The mail server has been temporarily rate limited"),
    ("mail", "421 4.7.0 Too many messages, slow down"),
]
CONN_REPLIES = [
    "421 4.7.0 Too many concurrent SMTP connections from this IP",
    "421 4.7.28 Too many connections, try again later",
]


def _q(s):
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(s)


def plan(msgs, port, seed, scale, greylist=True):
    rng = random.Random(seed)
    ps = []
    for i in range(PERSONAS):
        rate = max(1.0, round(400 * (20 / 400) ** (i / (PERSONAS - 1)) * scale, 1))
        conns = max(2, round(20 - 18 * i / (PERSONAS - 1) + rng.choice((-1, 0, 1))))
        stage, reply = RATE_REPLIES[i % len(RATE_REPLIES)]
        p = {
            "name": f"p{i + 1:02d}",
            "listen": f"127.0.10.{i + 1}:{port}",
            "rate": rate,
            "max_conns": min(conns, 20),
            "rate_stage": stage,
            "rate_reply": reply,
            "conn_reply": CONN_REPLIES[i % len(CONN_REPLIES)],
            "unknown_users": round(rng.uniform(0.01, 0.03), 3),
            "greylist_s": 5 * (1 + i % 2) if greylist and i % 12 == 5 else 0,
            "bursts": i % 10 == 3,
            "factor": rng.uniform(0.6, 1.0),
        }
        ps.append(p)
    ps[rng.randrange(PERSONAS)]["factor"] = 1.0
    weight = [p["rate"] * p["factor"] for p in ps]
    total = sum(weight)
    for p, wt in zip(ps, weight):
        p["share"] = wt / total
        p["expected_msgs"] = msgs * p["share"]
        p["bound_s"] = p["expected_msgs"] / p["rate"] + p["greylist_s"]
    # Domains: about the share of the mail, at least 20 a persona; the
    # largest persona takes what rounding leaves.
    counts = [max(20, round(DOMAINS * p["share"])) for p in ps]
    big = max(range(PERSONAS), key=lambda i: counts[i])
    counts[big] += DOMAINS - sum(counts)
    domains, k = [], 0
    for p, n in zip(ps, counts):
        harm = sum(1 / (j + 1) for j in range(n))
        p["domains"] = []
        for j in range(n):
            k += 1
            d = f"d{k:05d}.h.example"
            p["domains"].append(d)
            domains.append((d, max(1, round(WEIGHT_TOTAL * p["share"] / (j + 1) / harm))))
    return ps, domains


def gen(msgs, outdir, port, seed, scale, greylist="1"):
    msgs, port, seed, scale = int(msgs), int(port), int(seed), float(scale)
    ps, domains = plan(msgs, port, seed, scale, greylist != "0")
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "personas.toml"), "w") as f:
        f.write("# Generated by bench/lib/personas.py for scenario (h).\n")
        for p in ps:
            f.write(f"\n[[persona]]\nname = {_q(p['name'])}\nlisten = {_q(p['listen'])}\n"
                    f"rate = {p['rate']}\nmax_conns = {p['max_conns']}\n"
                    f"rate_stage = {_q(p['rate_stage'])}\nrate_reply = {_q(p['rate_reply'])}\n"
                    f"conn_reply = {_q(p['conn_reply'])}\nunknown_users = {p['unknown_users']}\n")
            if p["greylist_s"]:
                f.write(f"greylist = \"{p['greylist_s']}s\"\n")
            if p["bursts"]:
                f.write("defer_every = \"40s\"\ndefer_for = \"3s\"\n")
            f.write("domains = [" + ", ".join(_q(d) for d in p["domains"]) + "]\n")
    with open(os.path.join(outdir, "domains.txt"), "w") as f:
        for d, wt in domains:
            f.write(f"{d}:{wt}\n")
    with open(os.path.join(outdir, "plan.json"), "w") as f:
        json.dump({"msgs": msgs, "personas": ps}, f)
    bound = max(p["bound_s"] for p in ps)
    print(len(ps), len(domains), f"{bound:.1f}", f"{sum(p['rate'] for p in ps):.0f}")


def _totals(stats, plan_doc):
    rates = {p["name"]: p for p in plan_doc["personas"]}
    tot = {"accepted": 0, "unknown": 0, "breaches": 0, "rate": 0, "conns": 0, "burst": 0, "greylist": 0}
    bound, who, worst_breach = 0.0, None, None
    for p in stats.get("personas") or []:
        tot["accepted"] += p["accepted"]
        tot["unknown"] += p["unknown"]
        tot["breaches"] += p["breaches"]
        for k, v in (p.get("deferred") or {}).items():
            tot[k] = tot.get(k, 0) + v
        pl = rates.get(p["name"])
        if pl:
            b = (p["accepted"] + p["unknown"]) / pl["rate"] + pl["greylist_s"]
            if b > bound:
                bound, who = b, p["name"]
        if worst_breach is None or p["breaches"] > worst_breach[1]:
            worst_breach = (p["name"], p["breaches"])
    tot["deferred"] = tot["rate"] + tot["conns"] + tot["burst"] + tot["greylist"]
    tot["bound_s"] = round(bound, 2)
    tot["bound_persona"] = who
    tot["most_breaches"] = worst_breach[0] if worst_breach else None
    return tot


def watch(url, targetfile, timeout, plan_path, out):
    with open(plan_path) as f:
        plan_doc = json.load(f)
    deadline = time.time() + float(timeout)
    last, last_ts, target, stats, timed_out = -1, None, None, {}, False
    samples = []  # (time, count) at each change, for the 90% and 99% times
    while True:
        now = time.time()
        try:
            stats = json.loads(_http_get(url))
            ps = stats.get("personas") or []
            n = sum(p["accepted"] + p["unknown"] for p in ps)
        except (OSError, ValueError):
            n = last
        if n != last:
            last, last_ts = n, now
            samples.append((now, n))
        if target is None:
            target = read_count(targetfile)
        if target is not None and last >= target:
            break
        if now > deadline:
            timed_out = True
            break
        time.sleep(0.25)
    res = {"done_ts": last_ts, "count": last, "target": target, "timeout": timed_out}
    for pct in (90, 99):
        hit = [t for t, n in samples if target and n >= target * pct / 100]
        res[f"ts{pct}"] = hit[0] if hit else None
    res.update(_totals(stats, plan_doc))
    res["personas"] = stats.get("personas") or []
    with open(out + ".tmp", "w") as f:
        json.dump(res, f)
    os.rename(out + ".tmp", out)


def leftover(summary_path, plan_path):
    """Prints where the mail still queued at the cap is: the personas with
    the most, their share of what they were to get and the rate Gannet
    allows their site now (from `gannet queue summary -json`)."""
    try:
        with open(summary_path) as f:
            summ = json.load(f)
        with open(plan_path) as f:
            plan_doc = json.load(f)
    except (OSError, ValueError):
        print("-")
        return
    owner = {d: p for p in plan_doc["personas"] for d in p["domains"]}
    left = {}
    for row in summ.get("domains") or []:
        p = owner.get(row.get("domain"))
        if p:
            left[p["name"]] = left.get(p["name"], 0) + row.get("messages", 0)
    rate = {}
    for row in summ.get("sites") or []:
        name = row.get("site", "").split(".")[0]  # mxN.personas.example
        if name.startswith("mx") and name[2:].isdigit():
            rate[f"p{int(name[2:]):02d}"] = row.get("effective_rate")
    by_name = {p["name"]: p for p in plan_doc["personas"]}
    parts = []
    for name, n in sorted(left.items(), key=lambda kv: -kv[1])[:5]:
        p = by_name[name]
        what = f"greylisting {p['greylist_s']}s, " if p["greylist_s"] else ""
        r = rate.get(name)
        allowed = "" if r is None else (f", site allowed {r:.2f}/s" if r else ", site unlimited")
        parts.append(f"{name} {n:,} ({what}hidden {p['rate']}/s{allowed})")
    rest = sum(left.values()) - sum(n for _, n in sorted(left.items(), key=lambda kv: -kv[1])[:5])
    print("; ".join(parts) + (f"; others {rest:,}" if rest else "") if parts else "-")


def main(argv):
    cmds = {"gen": gen, "watch": watch, "leftover": leftover}
    if len(argv) < 2 or argv[1] not in cmds:
        print(__doc__, file=sys.stderr)
        return 2
    return cmds[argv[1]](*argv[2:]) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
