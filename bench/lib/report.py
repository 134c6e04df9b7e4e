#!/usr/bin/python3
"""Turns the JSON result lines of bench/run.sh into the Markdown report.

  report.py RESULTS.jsonl key=value...   (the run's parameters)
  report.py compare OLD.md NEW.md        (bench-quick: ratios that dropped)

Each result line has "scen" (a-f, e-fill), "sys" (ceiling-source,
ceiling-blast, postfix, gannet; in (b) and (d) also gannet-lua: Gannet with
the reference policy script's hooks on, and gannet-query: Gannet with a
pre-filled queue and a group-by query once a second, both shown in the (b)
table only), for the relays' (a) runs "gen" (blast:
bin/smtpblast, source: smtp-source), for the (a) runs and the ceilings
"rep" (the repetition: run.sh interleaves the ceiling and Gannet's (a) runs
BENCH_A_REPEAT times) and either the scenario's numbers or "error". Where a
(scen, sys[, gen]) was run more than once, the report shows its median run
by rate (with that run's CPU), and Gannet ÷ ceiling in (a) is the median of
the per-rep ratios, each rep's Gannet run over the ceiling measured just
before it. The report holds one table per kind of scenario, the ratios, and
the issue's targets with met / not met.
"""

import json
import platform
import statistics
import sys
import time

SYSTEMS = [
    ("ceiling-source", "ceiling: smtp-source → smtp-sink"),
    ("ceiling-blast", "ceiling: smtpblast → smtpsink"),
    ("postfix", "Postfix (private instance)"),
    ("gannet", "Gannet"),
]
# (b) also has Gannet with the policy script on (run.sh: relay_run gannet-lua),
# judged against Gannet's own (b) run of the same bench run.
B_SYSTEMS = SYSTEMS + [("gannet-query", "Gannet + group-by query once a second (pre-filled queue)"),
                       ("gannet-lua", "Gannet + policy script (relay.lua hooks)"),
                       ("gannet-events", "Gannet + two webhook event sinks (batches of 100)")]
# (c) also has Gannet's BoringCrypto build (run.sh: relay_run gannet-boring).
C_SYSTEMS = SYSTEMS + [("gannet-boring", "Gannet, BoringCrypto build (GOEXPERIMENT=boringcrypto)"),
                       ("gannet-openssl", "Gannet, OpenSSL RSA build (make build-openssl)")]
# The builds with a faster RSA, each compared with the standard build in (c).
FAST_BUILDS = [("gannet-boring", "BoringCrypto build (`make build-boring`: bin/boring/gannet, GOEXPERIMENT=boringcrypto)"),
               ("gannet-openssl", "OpenSSL RSA build (`make build-openssl`: bin/openssl/gannet, DKIM RSA on libcrypto)")]
SYS_NAME = dict(B_SYSTEMS + C_SYSTEMS)
# Issue #21: (b2) smtp-source (no pipelining) into the relay delivering to
# smtp-sink: ≥ 15× Postfix and ≥ 0.6× smtp-source → smtp-sink; (g) (b) with
# STARTTLS on both sides ≥ 60% of plaintext (b).
B2_POSTFIX_TARGET = 15
B2_CEILING_TARGET = 0.6
G_PLAIN_TARGET = 0.6
# Issue #21's targets for (a), (b) and (c).
A_TARGET = {True: 0.70, False: 0.50}  # (a) ÷ its ceiling: smtp-source (the issue's), smtpblast
B_POSTFIX_TARGET = 20
B_CEILING_TARGET = 0.30
B_CPU_TARGET = 0.10    # CPU ms (= CPU s / 1000 msgs) per message
C_RATE_TARGET = 4e6    # msgs/hour
C_CPU_TARGET = 1.2
POLICY_TARGET = 0.85  # the issue: end to end with the script ≥ 85% of the rate without it
EVENTS_TARGET = 0.90  # issue #23: end to end with two webhook sinks ≥ 90% of the rate without
# Issue #19: querying once a second costs < 5% of end to end throughput
# (gannet-query ÷ gannet in (b)); a filtered list of 100 and a group-by < 1 s.
QUERY_COST_TARGET = 0.05
QUERY_S_TARGET = 1.0
# The queries of (e) (run.sh scenario_e_fill): record key prefix, what was asked.
E_QUERIES = [
    ("q_dom", "list of 100, one domain", "`?domain=d7.example&limit=100`"),
    ("q_rcpt", "list, recipient substring", "`?recipient=user4242@&limit=100`"),
    ("q_grp", "group-by domain, whole queue", "`?group_by=domain`"),
]
CEILING = "ceiling-blast"  # the ceiling of the (b)/(c) tables: the relays' client there
# (a) is measured with both clients; each is compared with its own ceiling.
GENS = [
    ("blast", "smtpblast (PIPELINING)", "ceiling-blast"),
    ("source", "smtp-source (no pipelining)", "ceiling-source"),
]
ISSUE_GEN = "source"  # the issue's (a): smtp-source → smtp-sink is the ceiling


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


def median_run(runs):
    """The median run by rate of those without an error (the lower middle
    one of an even count, so that it is a real run with its own CPU); the
    last run when every one failed."""
    ok = sorted((r for r in runs if not r.get("error") and num(r.get("rate")) is not None),
                key=lambda r: r["rate"])
    if not ok:
        return dict(runs[-1], runs=len(runs), ok_runs=0)
    m = dict(ok[(len(ok) - 1) // 2])
    m["runs"] = len(runs)
    m["ok_runs"] = len(ok)
    return m


def rep_ratios(runs, ceilings):
    """Per rep, in rep order: (rep, run ÷ the ceiling of the same rep, or
    None when either failed or is missing)."""
    ceil = {r.get("rep"): r for r in ceilings}
    out = []
    for r in sorted(runs, key=lambda r: (r.get("rep") is None, r.get("rep") or 0)):
        c = ceil.get(r.get("rep"), {})
        rr = None if r.get("error") or c.get("error") else ratio(r.get("rate"), c.get("rate"))
        out.append((r.get("rep"), rr))
    return out


def median_ratio(pairs):
    vals = [rr for _, rr in pairs if rr is not None]
    return statistics.median(vals) if vals else None


def fmt_reps(pairs):
    return ", ".join("—" if rr is None else f"{rr:.2f}" for _, rr in pairs)


def variant_line(plain, other, quick, what, without, target, how):
    """The (b) line of a Gannet variant (policy script, event sinks): its
    end-to-end rate ÷ plain Gannet's, both runs of the same bench run,
    against target; what names the variant ("policy script on"), without
    what plain Gannet lacks ("the script"), how describes the variant."""
    head = f"{what}: {{}} of the rate without {without[1]} (target ≥ {target:.0%})"
    why = None
    if plain is None:
        why = f"Gannet without {without[0]} not run (BENCH_SYSTEMS)"
    elif plain.get("error"):
        why = f"Gannet without {without[0]} {plain['error']}"
    elif other.get("error"):
        why = f"Gannet with {without[0]} {other['error']}"
    r = None if why else ratio(other.get("rate"), plain.get("rate"))
    if r is None:
        return head.format("—") + f": not computed ({why or 'no rate'})."
    verdict = "met" if r >= target else "**not met**"
    if quick:
        verdict += " (quick mode: a tiny sample, it swings both ways)"
    return (head.format(f"{r:.0%}") + f": {verdict} — {fmt(num(other.get('rate')))} ÷ "
            f"{fmt(num(plain.get('rate')))} msgs/s end to end, the two Gannet runs of (b) above, one "
            "right after the other. " + how)


def policy_line(plain, lua, quick=False):
    """The (b) line of the policy script (gannet-lua)."""
    return variant_line(plain, lua, quick, "policy script on", ("the script", "it"), POLICY_TARGET,
                        "\"Gannet + policy script\" runs the hooks and helper functions of "
                        "the reference script of docs/policy.md (engine/policy/lua/testdata/relay.lua) with its "
                        "configuration calls (kumo.start_*, kumo.configure_*) dropped, so that it runs the bench's "
                        "listener, delivery and queue settings.")


def events_line(plain, ev, quick=False):
    """The (b) line of the event sinks (gannet-events)."""
    return variant_line(plain, ev, quick, "two webhook event sinks on", ("sinks", "them"), EVENTS_TARGET,
                        "Every log record (Reception, Delivery, …) goes to two `[[event_sink]]` "
                        "webhooks, `batch = true`, `max_batch = 100`, received on the same machine by "
                        "bench/lib/webhook_sink.py, which checks each signature.")


def query_cost(plain, q):
    """(cost, why): 1 − (gannet-query's end to end rate ÷ Gannet's), or
    None and the reason it is not computed."""
    why = None
    if plain is None:
        why = "Gannet without queries not run (BENCH_SYSTEMS)"
    elif plain.get("error"):
        why = f"Gannet without queries {plain['error']}"
    elif q.get("error"):
        why = f"Gannet with queries {q['error']}"
    r = None if why else ratio(q.get("rate"), plain.get("rate"))
    if r is None:
        return None, why or "no rate"
    return 1 - r, None


def query_line(plain, q, quick=False):
    """The (b) line of gannet-query: what querying once a second costs."""
    head = f"querying once a second costs {{}} of end to end throughput (target < {QUERY_COST_TARGET:.0%})"
    cost, why = query_cost(plain, q)
    if cost is None:
        return head.format("—") + f": not computed ({why})."
    verdict = "met" if cost < QUERY_COST_TARGET else "**not met**"
    if quick:
        verdict += " (quick mode: a short run with a query or two; it swings both ways)"
    nq = q.get("q_queries")
    filled = num(q.get("q_fill")) or 0
    return (head.format(f"{cost:.1%}") + f": {verdict} — {fmt(num(q.get('rate')))} ÷ "
            f"{fmt(num(plain.get('rate')))} msgs/s end to end, the two Gannet runs of (b) above, one right "
            f"after the other. \"Gannet + group-by query\" had {filled:,.0f} deferred messages "
            "(bench/crashtest -mode fill, due in an hour, so none reaches the sink during the run) "
            "pre-filled in its spool and loaded before the load started, and a client asked "
            "`GET /api/admin/queue/v1?group_by=domain` once a second from the first message in to the last "
            f"at the sink ({nq if nq is not None else '?'} queries, median "
            f"{fmt(num(q.get('q_median')), 3)} s, max {fmt(num(q.get('q_max')), 3)} s). One pair of runs: "
            "the run-to-run drift of this shared machine can be as large as the target. Plain Gannet's queue "
            "holds only the load, so the cost counts the large queue as well as the queries.")


def build_line(plain, other, what):
    """The (c) line of a build with a faster RSA (FAST_BUILDS): its rate and
    CPU beside the standard build's, both runs of the same bench run."""
    if plain is None or plain.get("error") or other.get("error"):
        why = "the standard build not run" if plain is None else (plain.get("error") or other.get("error"))
        return f"{what}: not compared ({why})."
    r = ratio(other.get("rate"), plain.get("rate"))
    return (f"{what}: "
            f"{fmt_ratio(r)} the standard build's rate, {fmt(num(other.get('cpu')), 3)} against "
            f"{fmt(num(plain.get('cpu')), 3)} CPU s / 1000 messages; the same config, load and DKIM key, "
            "one run after the other.")


def ok_rows(rows, ceiling_name, dashes, w):
    """Yields (system, its name, record) of the (system, record) rows of a
    (b2) or (g) table that have numbers; writes a row of the others, the
    error in the rate's column and dashes in the next ones. The ceiling's
    row is named ceiling_name."""
    for s, r in rows:
        name = ceiling_name if s.startswith("ceiling") else SYS_NAME[s]
        if r.get("error"):
            w(f"| {name} | — | {r['error']} |" + " — |" * dashes + f" {r.get('note') or ''} |")
            continue
        yield s, name, r


def b2_section(by, meta, w):
    """(b2): smtp-source (no pipelining) into each relay delivering to
    smtp-sink, with the latency probe's end of data → 250 times."""
    rows = [(s, by[("b2", s)]) for s in ("ceiling-source", "postfix", "gannet") if ("b2", s) in by]
    if not any(s != "ceiling-source" for s, _ in rows):
        return
    w("## (b2) End to end without pipelining — smtp-source into the relay, delivering to smtp-sink")
    w("")
    w(f"smtp-source -d (no pipelining; each of {meta.get('b2_conns')} sessions keeps its connection) sends "
      f"{meta.get('b2_msgs')} messages of {meta.get('size')} into the relay, which delivers them to Postfix's "
      "smtp-sink (PIPELINING, no CHUNKING: Gannet sends DATA), the way application libraries submit mail; "
      "the ceiling is smtp-source → smtp-sink with the same flags. msgs/s is end to end: messages over the time "
      "from the first byte in to the last message at the sink (smtp-sink -c's count); for the ceiling, "
      "smtp-source's wall time. End of data → 250 is measured by a probe beside the load, as smtp-source "
      f"reports no latency: bin/smtpblast on 2 more connections, without PIPELINING, at "
      f"{meta.get('b2_probe_rate')} messages/s, timing each message from the \".\" line sent to the reply "
      "(its `dot_latency_ms`), from just before smtp-source starts until it ends; its messages are delivered "
      "and counted with the load's.")
    w("")
    w("| system | messages | msgs/s | CPU s / 1000 msgs | ÷ ceiling (smtp-source) | Gannet ÷ this | "
      "end of data → 250 p50 ms | p99 ms | timed | note |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    g = by.get(("b2", "gannet"), {})
    ceil = by.get(("b2", "ceiling-source"), {})
    for s, name, r in ok_rows(rows, "ceiling: smtp-source → smtp-sink", 6, w):
        rate = num(r.get("rate"))
        vs_ceil = "" if s == "ceiling-source" else fmt_ratio(ratio(rate, ceil.get("rate")))
        vs_g = "" if s == "gannet" or g.get("error") else fmt_ratio(ratio(g.get("rate"), rate))
        w(f"| {name} | {fmt(num(r.get('msgs')), 0)} | {fmt(rate)} | {fmt(num(r.get('cpu')), 3)} | {vs_ceil} | "
          f"{vs_g} | {fmt(num(r.get('dot_p50')), 2)} | {fmt(num(r.get('dot_p99')), 2)} | "
          f"{fmt(num(r.get('dot_n')), 0)} | {r.get('note') or ''} |")
    w("")


def g_section(by, meta, w):
    """(g): (b) with STARTTLS on both sides."""
    rows = [(s, by[("g", s)]) for s in ("ceiling-blast", "gannet") if ("g", s) in by]
    if not rows:
        return
    w("## (g) End to end with STARTTLS on both sides — (b) over TLS")
    w("")
    w(f"(b)'s load ({meta.get('g_msgs')} messages of {meta.get('size')}, {meta.get('conns')} connections, "
      f"{meta.get('per_conn')} per connection, PIPELINING) with `smtpblast -starttls`, which verifies Gannet's "
      "certificate against a test CA made at the start of the run (openssl, ECDSA P-256); Gannet delivers to "
      "bin/smtpsink with STARTTLS: `[tls] mode = \"required\"`, `min_version = \"1.3\"`, `ca_file` the test CA, "
      "so the sink's certificate is verified (for `relay_to = \"127.0.0.1:PORT\"` against its IP address; an "
      "MX host would be verified by its name). The ceiling is smtpblast → smtpsink with STARTTLS. Handshakes "
      "per 1,000 messages: inbound, smtpblast's connections (each a full handshake); outbound, the sink's "
      "count of STARTTLS handshakes, and how many of them resumed an earlier session (TLS 1.3 tickets). "
      "\"÷ plaintext (b)\" is this rate over the same system's (b) rate in this run.")
    w("")
    w("| system | messages | msgs/s | CPU s / 1000 msgs | ÷ ceiling (TLS) | ÷ plaintext (b) | "
      "handshakes in / 1000 msgs | out / 1000 msgs | of which resumed | note |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    ceil = by.get(("g", "ceiling-blast"), {})
    for s, name, r in ok_rows(rows, "ceiling: smtpblast → smtpsink, STARTTLS", 6, w):
        rate, n = num(r.get("rate")), num(r.get("msgs")) or num(r.get("accepted"))
        plain = by.get(("b", s), {})
        vs_plain = None if plain.get("error") else ratio(rate, plain.get("rate"))
        per1k = (lambda k: fmt(ratio(num(r.get(k)), n / 1000), 1) if n else "—")
        note = r.get("note") or ""
        if s == "gannet" and num(r.get("g_hs_full")) is not None:
            note = (note + "; " if note else "") + (f"Gannet's gannet_tls_handshakes_total{{direction=\"out\"}}: "
                                                    f"{r.get('g_hs_full')} full, {r.get('g_hs_resumed')} resumed")
        w(f"| {name} | {fmt(n, 0)} | {fmt(rate)} | {fmt(num(r.get('cpu')), 3)} | "
          f"{'' if s == 'ceiling-blast' else fmt_ratio(ratio(rate, ceil.get('rate')))} | {fmt_ratio(vs_plain)} | "
          f"{per1k('hs_in')} | {per1k('hs_out')} | {fmt(num(r.get('hs_out_resumed')), 0)} of "
          f"{fmt(num(r.get('hs_out')), 0)} | {note} |")
    w("")


def i_section(by, meta, w):
    """(i): three Gannet nodes sharing one Redis, with a site limit for the
    fleet (i1) and without (i2), against one node alone."""
    one, lim, fleet = (by.get(("i", s), {}) for s in ("gannet-one", "gannet-limit", "gannet-fleet"))
    if not (one or lim or fleet):
        return
    w("## (i) Cluster — three Gannet nodes sharing one Redis")
    w("")
    w(f"Three Gannet processes (own ports, spools and node ids; `[cluster]` on one private redis-server) "
      f"deliver to one bin/smtpsink; the load, {meta.get('i_msgs')} messages of {meta.get('size')}, is three "
      f"smtpblast runs side by side, one per node, each with a third of the {meta.get('conns')} connections. "
      f"i1: `max_message_rate = \"{meta.get('i_rate')}/s\"` for `example.test`, shared by the fleet "
      f"(`limit_scope = \"cluster\"`); the rate at the sink is measured over {meta.get('i_window')} s "
      "from 2 s into the load (past the two lease batches an idle limit lets through at once). "
      "i2: no limit. One node: the same load into one Gannet without `[cluster]`, just before. "
      "Redis calls: `gannet_cluster_redis_calls_total` summed over the nodes, per 1,000 messages delivered "
      "in the run: every round trip (leases of tokens, heartbeats, the rules' reconciliation, new "
      "connections to Redis), and of those the leases of the rate's tokens (`op=\"rate\"`).")
    w("")
    w("| run | nodes | messages | end to end msgs/s | CPU s / 1000 msgs | ÷ one node | limit msgs/s | "
      "at the sink msgs/s | limit error | Redis calls / 1000 msgs | of which rate leases | note |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    names = {"gannet-one": "one node, no cluster", "gannet-limit": "i1: fleet, site limit",
             "gannet-fleet": "i2: fleet, no limit"}
    for s, r in (("gannet-one", one), ("gannet-limit", lim), ("gannet-fleet", fleet)):
        if not r:
            continue
        if r.get("error"):
            w(f"| {names[s]} | — | — | {r['error']} |" + " — |" * 7 + f" {r.get('note') or ''} |")
            continue
        limit, got = num(r.get("limit")), num(r.get("window_rate"))
        err = f"{100 * (got - limit) / limit:+.1f}%" if limit and got is not None else ""
        vs = "" if s == "gannet-one" or one.get("error") else fmt_ratio(ratio(r.get("rate"), one.get("rate")))
        w(f"| {names[s]} | {r.get('nodes')} | {fmt(num(r.get('msgs')), 0)} | {fmt(num(r.get('rate')))} | "
          f"{fmt(num(r.get('cpu')), 3)} | {vs} | {fmt(limit, 0) if limit else ''} | "
          f"{fmt(got) if got is not None else ''} | {err} | {fmt(num(r.get('redis_per_1000')))} | "
          f"{fmt(num(r.get('redis_rate_per_1000')))} | {r.get('note') or ''} |")
    w("")
    w("The three nodes share this machine's cores with the load generator and the sink: \"÷ one node\" "
      "shows what three processes and the cluster cost (or gain) on these cores, not what three machines "
      "would give.")
    w("")


# RATIOS_MARK starts the HTML comment that carries the ratios as JSON, for
# bench/quick.sh to compare with the committed report's.
RATIOS_MARK = "<!-- bench-ratios: "


# (h) provider personas (issue #22): the run's time against the lower bound
# its hidden limits allow, per shaping mode.
H_MODES = [("static", "static shaping (100/s, 10 connections a site)"),
           ("backoff", "backoff mode (static + [[shaping_rule]] backoff, 10% deferrals)"),
           ("tune", "self-tuning (tune = true, ceiling 500/s)")]
H_RATIO_TARGET = 1.3  # self-tuning within 1.3x the lower bound


def h_rows(rows):
    """The (h) records by mode (the last of each)."""
    return {r.get("mode"): r for r in rows if r.get("scen") == "h" and r.get("mode")}


def h_ratio(r, machine):
    """Seconds ÷ the lower bound (the personas' or the machine's, the larger)."""
    bound = max(num(r.get("bound")) or 0, machine or 0)
    return ratio(num(r.get("secs")), bound) if bound else None


def h_section(rows, by, meta, w):
    hs = h_rows(rows)
    if not hs and not any(r.get("scen") == "h" for r in rows):
        return
    w("## (h) A mailing to 50 provider personas")
    w("")
    first = next(iter(hs.values()), {})
    w(f"{meta.get('h_msgs')} messages of 2 KB injected with smtpblast into Gannet while it delivers, to "
      f"{first.get('domains') or '?'} domains behind {first.get('personas') or '?'} persona MX sites of "
      "bin/smtpsink on 127.0.0.x (found through the sink's DNS), each with a hidden rate and connection "
      f"limit (hidden rates {first.get('hidden_rate') or '?'}/s in all), its own throttling replies, "
      "deferral bursts, greylisting, 1-3% unknown users. Time: from the first message injected to the "
      "last one accepted or refused as unknown. Lower bound: for each persona, the messages it got over "
      "its hidden rate (plus its greylisting wait), the largest — or, when (b) ran, the messages over "
      "Gannet's (b) end-to-end rate if that is larger. A breach is a pushback of a hidden limit (rate or "
      "connections). Retries every 5 s doubling to 20 s (the bench's time scale); the tune mode uses "
      f"tune_window = {first.get('tune_window') or '?'}."
      + (" **No persona greylists in this run (BENCH_H_GREYLIST=0).**" if first.get("greylist") == 0 else ""))
    w("")
    gb = by.get(("b", "gannet"), {})
    brate = None if gb.get("error") else num(gb.get("rate"))
    w("| mode | injected | injection s | 90% / 99% done s | time to deliver all s | lower bound s | ÷ bound "
      "| deferrals / delivered | breaches (rate + conns) | breaches / 1000 delivered | unknown (5xx) | CPU s / 1000 | note |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for mode, what in H_MODES:
        r = hs.get(mode)
        if r is None:
            continue
        if r.get("error"):
            w(f"| {what} | — | — | — | {r['error']} | — | — | — | — | — | — | — | |")
            continue
        machine = ratio(num(r.get("msgs")), brate) if brate else None
        bound = max(num(r.get("bound")) or 0, machine or 0)
        rr = h_ratio(r, machine)
        done = r.get("finished") == 1
        delivered = num(r.get("delivered")) or 0
        secs = f"{fmt(num(r.get('secs')))}" if done else f"not finished in {r.get('cap')} s"
        notes = [f"bound: {r.get('bound_persona')}" + (" (machine)" if machine and machine > (num(r.get('bound')) or 0) else "")]
        if r.get("note"):
            notes.append(r["note"])
        if not done:
            notes.append(f"{num(r.get('count')) or 0:,.0f} of {num(r.get('msgs')) or 0:,.0f} done at the cap")
        notes.append(f"most breaches: {r.get('most_breaches')}")
        w(f"| {what} | {num(r.get('msgs')) or 0:,.0f} | {fmt(num(r.get('inject_s')))} | "
          f"{fmt(num(r.get('secs90')))} / {fmt(num(r.get('secs99')))} | {secs} | {fmt(bound)} | "
          f"{fmt_ratio(rr) if done else '> ' + fmt_ratio(ratio(num(r.get('cap')), bound))} | "
          f"{fmt(ratio(num(r.get('deferred')), delivered), 3)} | "
          f"{num(r.get('breaches')) or 0:,.0f} ({num(r.get('breach_rate')) or 0:,.0f} + {num(r.get('breach_conns')) or 0:,.0f}) | "
          f"{fmt(ratio(1000 * (num(r.get('breaches')) or 0), delivered), 1)} | {num(r.get('unknown')) or 0:,.0f} | "
          f"{fmt(num(r.get('cpu')), 3)} | {'; '.join(notes)} |")
    w("")


def h_targets(rows, by, w, verdict):
    hs = h_rows(rows)
    t, st = hs.get("tune"), hs.get("static")
    if t is None:
        return
    if t.get("error"):
        w(f"| (h) self-tuning within {H_RATIO_TARGET}× the lower bound | {t['error']} | — |")
        return
    gb = by.get(("b", "gannet"), {})
    brate = None if gb.get("error") else num(gb.get("rate"))
    rr = h_ratio(t, ratio(num(t.get("msgs")), brate) if brate else None)
    if t.get("finished") != 1:
        w(f"| (h) self-tuning within {H_RATIO_TARGET}× the lower bound | not finished in {t.get('cap')} s | **not met** |")
    else:
        w(f"| (h) self-tuning within {H_RATIO_TARGET}× the lower bound | {fmt_ratio(rr)} | "
          f"{verdict(None if rr is None else rr <= H_RATIO_TARGET)} |")
    if st is not None and not st.get("error"):
        tb, sb = num(t.get("breaches")), num(st.get("breaches"))
        w(f"| (h) self-tuning breaches fewer hidden limits than static shaping | {tb:,.0f} vs {sb:,.0f} | "
          f"{verdict(None if tb is None or sb is None else tb < sb)} |")


def ratios(by, acc, a_ratio):
    """The ratios bench-quick guards, by name: each relay against its
    ceiling and Gannet against Postfix, as the tables above show them."""
    def rate(key):
        r = by.get(key)
        return None if r is None or r.get("error") else num(r.get("rate"))

    def arate(key):
        r = acc.get(key)
        return None if r is None or r.get("error") else num(r.get("rate"))

    out = {
        "(a) smtp-source → Gannet ÷ its ceiling": a_ratio.get("source"),
        "(a) smtpblast → Gannet ÷ its ceiling": a_ratio.get("blast"),
        "(a) Gannet ÷ Postfix, smtp-source": ratio(arate(("gannet", "source")), arate(("postfix", "source"))),
        "(a) Gannet ÷ Postfix, smtpblast": ratio(arate(("gannet", "blast")), arate(("postfix", "blast"))),
        "(b) Gannet ÷ ceiling (smtpblast)": ratio(rate(("b", "gannet")), rate(("b", CEILING))),
        "(b) Gannet ÷ Postfix": ratio(rate(("b", "gannet")), rate(("b", "postfix"))),
        "(b2) Gannet ÷ ceiling (smtp-source)": ratio(rate(("b2", "gannet")), rate(("b2", "ceiling-source"))),
        "(b2) Gannet ÷ Postfix": ratio(rate(("b2", "gannet")), rate(("b2", "postfix"))),
        "(c) Gannet ÷ ceiling (smtpblast)": ratio(rate(("c", "gannet")), rate(("c", CEILING))),
        "(c) Gannet ÷ Postfix": ratio(rate(("c", "gannet")), rate(("c", "postfix"))),
        "(g) Gannet ÷ ceiling (TLS)": ratio(rate(("g", "gannet")), rate(("g", CEILING))),
        "(g) Gannet ÷ plaintext (b)": ratio(rate(("g", "gannet")), rate(("b", "gannet"))),
    }
    return {k: round(v, 4) for k, v in out.items() if v is not None}


def ratios_section(by, acc, a_ratio, w):
    """The ratios `make bench-quick` compares, as a table and as JSON in an
    HTML comment (invisible when rendered)."""
    rs = ratios(by, acc, a_ratio)
    if not rs:
        return
    w("## Ratios (what `make bench-quick` compares with the committed quick report)")
    w("")
    w("| ratio | value |")
    w("|---|---:|")
    for k, v in rs.items():
        w(f"| {k} | {v:.2f}× |")
    w("")
    w(RATIOS_MARK + json.dumps(rs, ensure_ascii=False) + " -->")
    w("")


def cpuinfo():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def read_ratios(path):
    """The ratios a report carries (ratios_section), {} when it has none."""
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith(RATIOS_MARK):
                    return json.loads(line[len(RATIOS_MARK):].rsplit("-->", 1)[0])
    except (OSError, ValueError):
        pass
    return {}


def compare(old_path, new_path, drop=0.15):
    """bench-quick: prints each ratio of the new report beside the old
    one's, and a WARNING line for each that dropped by more than drop."""
    old, new = read_ratios(old_path), read_ratios(new_path)
    if not new:
        print("bench-quick: the new report has no ratios (did the run fail?)")
        return
    if not old:
        print("bench-quick: the committed bench/results/latest-quick.md has no ratios to compare with "
              "(none yet, or an older format); commit this run's as the reference.")
    warned = 0
    for k, v in new.items():
        o = old.get(k)
        if o is None:
            print(f"  {k}: {v:.2f}× (new)")
            continue
        change = v / o - 1 if o else 0.0
        print(f"  {k}: {v:.2f}× (was {o:.2f}×, {change:+.0%})")
        if change < -drop:
            warned += 1
            print(f"WARNING: {k} dropped by {-change:.0%}: {o:.2f}× → {v:.2f}×")
    if old and not warned:
        print(f"bench-quick: no ratio dropped by more than {drop:.0%}.")


def main(argv):
    if len(argv) == 4 and argv[1] == "compare":
        compare(argv[2], argv[3])
        return
    rows = []
    with open(argv[1]) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    meta = dict(kv.split("=", 1) for kv in argv[2:])
    by_all = {}  # (scen, sys) -> every run
    acc_all = {}  # (a): (sys, gen) -> every run
    for r in rows:
        if r["scen"] == "a" and r.get("gen"):
            acc_all.setdefault((r["sys"], r["gen"]), []).append(r)
        else:
            by_all.setdefault((r["scen"], r["sys"]), []).append(r)
    for gen, _, ceil in GENS:
        if ("a", ceil) in by_all:
            acc_all[("ceiling", gen)] = by_all[("a", ceil)]
    # The median run of each; the ceilings of (b) are (a)'s, so the same.
    by = {k: median_run(v) for k, v in by_all.items()}
    acc = {k: median_run(v) for k, v in acc_all.items()}
    # Gannet ÷ ceiling per rep, and their median: the judged (a) figure.
    a_reps = {gen: rep_ratios(acc_all.get(("gannet", gen), []), acc_all.get(("ceiling", gen), []))
              for gen, _, _ in GENS}

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
      f"(e) {meta.get('e_fill')} messages filled into a spool, and {meta.get('e_queued')} queued over SMTP; "
      f"(f) {meta.get('f_conns')} idle connections to Gannet, {meta.get('f_pf_conns')} to Postfix; "
      f"(i) {meta.get('i_msgs')} messages per run into one node and into a cluster of three, "
      f"with a site limit of {meta.get('i_rate')}/s for the fleet and without.")
    w("")
    if meta.get("phases"):
        w(f"Time per phase: {meta['phases']}.")
        w("")

    # ------------------------------------------------------ acceptance --
    a_sys = [("ceiling", "ceiling (straight into the sink)"), ("postfix", SYS_NAME["postfix"]),
             ("gannet", SYS_NAME["gannet"])]
    a_present = [(s, n) for s, n in a_sys if any((s, g) in acc for g, _, _ in GENS)]
    a_ratio = {}  # gen -> Gannet ÷ that generator's ceiling
    if a_present:
        w("## (a) Acceptance only — messages/s answered 250 (durable in the relay's spool), nothing delivered")
        w("")
        nrep = meta.get("a_repeat") or "1"
        w("Each relay runs twice, fresh each time, with delivery held (Gannet: `example.test` suspended over "
          "the admin API after a delivery probe; Postfix: `defer_transports = smtp relay`), once per client; "
          "each client is compared with itself straight into a sink: smtpblast → smtpsink and "
          "smtp-source → smtp-sink (the issue's ceiling). "
          f"Postfix runs once per client; the ceilings and Gannet run interleaved, {nrep} "
          f"time{'s' if nrep != '1' else ''} (BENCH_A_REPEAT): ceiling, Gannet by smtpblast, Gannet by "
          "smtp-source, again. Rates and CPU are each system's median run by rate; Gannet's \"÷ its "
          "ceiling\" is the median of its per-rep ratios (each Gannet run ÷ the ceiling measured just "
          "before it, listed below the table), Postfix's is over the median ceiling.")
        w("")
        head = "| system |"
        rule = "|---|"
        for _, gname, _ in GENS:
            head += f" {gname}: msgs/s | CPU s / 1000 | ÷ its ceiling |"
            rule += "---:|---:|---:|"
        w(head + " note |")
        w(rule + "---|")
        for s, sname in a_present:
            cells, notes = [], []
            for gen, _, _ in GENS:
                r = acc.get((s, gen))
                if r is None:
                    cells += ["not run", "—", "—"]
                    continue
                if r.get("error"):
                    cells += [r["error"], "—", "—"]
                    continue
                rate = num(r.get("rate"))
                c = acc.get(("ceiling", gen), {})
                rr = None if s == "ceiling" else ratio(rate, c.get("rate"))
                if s == "gannet":
                    rr = median_ratio(a_reps[gen])
                    if rr is None and not c.get("error"):
                        rr = ratio(rate, c.get("rate"))  # no rep with both: the medians' ratio
                    a_ratio[gen] = rr
                cells += [fmt(rate), fmt(num(r.get("cpu")), 3), "" if s == "ceiling" else fmt_ratio(rr)]
                if r.get("note"):
                    notes.append(f"{gen}: {r['note']}")
                n, nok = r.get("runs", 1), r.get("ok_runs", 1)
                if nok < n:
                    notes.append(f"{gen}: {n - nok} of {n} runs failed, median of the rest")
            # Notes of runs other than the median one (a refusal in one rep, say).
            for gen, _, _ in GENS:
                runs = acc_all.get((s, gen), [])
                shown = acc.get((s, gen), {})
                for x in runs:
                    if len(runs) > 1 and x.get("rep") != shown.get("rep") and (x.get("note") or x.get("error")):
                        notes.append(f"{gen} rep {x.get('rep')}: {x.get('error') or x.get('note')}")
            w(f"| {sname} | " + " | ".join(cells) + f" | {'; '.join(notes)} |")
        per_rep = [f"{gname.split()[0]} {fmt_reps(a_reps[gen])} (median {fmt_ratio(median_ratio(a_reps[gen]))})"
                   for gen, gname, _ in GENS if a_reps[gen]]
        if any(len(a_reps[gen]) > 1 for gen, _, _ in GENS):
            w("")
            w(f"Gannet ÷ ceiling per rep (rep 1, 2, …): {'; '.join(per_rep)}.")
        gp = []
        for gen, gname, _ in GENS:
            g, p = acc.get(("gannet", gen), {}), acc.get(("postfix", gen), {})
            if not g.get("error") and not p.get("error"):
                r = ratio(g.get("rate"), p.get("rate"))
                if r is not None:
                    gp.append(f"{fmt_ratio(r)} by {gname.split()[0]}")
        w("")
        if gp:
            w(f"Gannet ÷ Postfix: {', '.join(gp)}.")
            w("")
        w("CPU is user+system time of the system under test during the load (Postfix: master and all its "
          "children, reaped ones included, so qmgr's deferring is counted; the ceiling: the sink). "
          "smtp-source reports no count of its 250s: its rate is messages sent over wall time, and a "
          "refusal shows as a note.")
        w("")

    # ------------------------------------------------------ throughput --
    titles = {
        "b": "(b) End to end — messages/s from the first byte in to the last message at the sink",
        "c": "(c) 100 KB messages end to end, DKIM rsa-sha256 (Gannet signs itself, Postfix through an "
             "OpenDKIM milter) — messages/hour",
    }
    for scen in "bc":
        present = [s for s, _ in (B_SYSTEMS if scen == "b" else C_SYSTEMS) if (scen, s) in by]
        if not any(not s.startswith("ceiling") for s in present):
            continue
        unit = "msgs/hour" if scen == "c" else "msgs/s"
        w(f"## {titles[scen]}")
        w("")
        w(f"| system | messages | {unit} | CPU s / 1000 msgs | ÷ ceiling (smtpblast) | Gannet ÷ this | "
          f"250s/s meanwhile | note |")
        w("|---|---:|---:|---:|---:|---:|---:|---|")
        mult = 3600 if scen == "c" else 1
        g = by.get((scen, "gannet"), {})
        ceil = by.get((scen, CEILING), {})
        for s in present:
            r = by[(scen, s)]
            if r.get("error"):
                w(f"| {SYS_NAME[s]} | — | {r['error']} | — | — | — | — | {r.get('note') or ''} |")
                continue
            rate = num(r.get("rate"))
            shown = None if rate is None else rate * mult
            vs_ceil = "" if s.startswith("ceiling") else fmt_ratio(ratio(rate, ceil.get("rate")))
            vs_g = "" if s.startswith("gannet") or g.get("error") else fmt_ratio(ratio(g.get("rate"), rate))
            acc_rate = "" if s.startswith("ceiling") else fmt(num(r.get("accept_rate")))
            w(f"| {SYS_NAME[s]} | {fmt(num(r.get('msgs')), 0)} | {fmt(shown)} | "
              f"{fmt(num(r.get('cpu')), 3)} | {vs_ceil} | {vs_g} | {acc_rate} | {r.get('note') or ''} |")
        w("")
        if scen == "b" and ("b", "gannet-query") in by:
            w(query_line(by.get(("b", "gannet")), by[("b", "gannet-query")], quick))
            w("")
        if scen == "b" and ("b", "gannet-lua") in by:
            w(policy_line(by.get(("b", "gannet")), by[("b", "gannet-lua")], quick))
            w("")
        if scen == "b" and ("b", "gannet-events") in by:
            w(events_line(by.get(("b", "gannet")), by[("b", "gannet-events")], quick))
            w("")
        for fsys, what in FAST_BUILDS if scen == "c" else []:
            if ("c", fsys) in by:
                w(build_line(by.get(("c", "gannet")), by[("c", fsys)], what))
                w("")
    if any(("b", s) in by or ("c", s) in by for s in ("postfix", "gannet", "gannet-lua")):
        w("CPU is user+system time of the system under test only (for Postfix summed over master and "
          "all its children, reaped ones included, and in (c) its OpenDKIM milter; for the ceilings the "
          "sink's), up to the last delivery. "
          "\"250s/s meanwhile\" is smtpblast's rate of 250 replies in the same run, while the relay also "
          "delivers (not scenario (a), which holds delivery).")
        w("")

    b2_section(by, meta, w)
    g_section(by, meta, w)
    i_section(by, meta, w)
    h_section(rows, by, meta, w)

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
    ef = by.get(("e-fill", "gannet"))
    e = by.get(("e", "gannet"))
    if ef or e:
        w("## (e) Queued messages: memory and restart time (Gannet)")
        w("")
        w("Postfix is not measured here: its queue is files on disk and its qmgr keeps at most "
          "qmgr_message_active_limit (20,000) messages in memory.")
        w("")
    # The targets' figures: from the filled spool when it was measured.
    ef_kb = ef_kb_abs = ef_load = ef_load_1m = None
    ef_n = 0
    if ef:
        w("### Loaded from a filled spool (the targets' figures)")
        w("")
        w("`bench/crashtest -mode fill` writes N deferred messages (one recipient at one of 1000 domains, "
          "due in an hour) straight into a spool; `bin/gannet serve` then starts on it, `relay_to` a closed "
          "port. \"Loaded\" is the moment `gannet_queue_depth` reached N (polled every 0.1 s; the listeners "
          "start before the load); RSS is VmRSS after a further settle; the baseline is an empty-spool "
          "start of the same config.")
        w("")
        if ef.get("error") and not num(ef.get("rss_loaded")):
            w(f"Gannet: {ef['error']}")
        else:
            if ef.get("error"):
                w(f"**{ef['error']}**")
                w("")
            ef_n = num(ef.get("queued")) or 0
            rl, re_ = num(ef.get("rss_loaded")), num(ef.get("rss_empty"))
            ef_kb = ratio((rl or 0) - (re_ or 0), ef_n) if rl is not None and re_ is not None else None
            ef_kb_abs = ratio(rl, ef_n)
            ef_load = num(ef.get("load_s"))
            fixed = min(num(ef.get("start_empty")) or 0.0, ef_load or 0.0)
            if ef_load is not None and ef_n:
                ef_load_1m = ef_load if ef_n >= 1_000_000 else fixed + (ef_load - fixed) * 1_000_000 / ef_n
            w("| queued | fill s | empty spool: start to SMTP s | RSS KiB | loaded spool: start to SMTP s | "
              "to queue loaded s | Gannet's own load time | RSS loaded KiB | peak RSS KiB | "
              "(loaded − empty) / N KiB | loaded / N KiB | depth | stop s |")
            w("|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
            w(f"| {fmt(ef_n, 0)} | {fmt(num(ef.get('fill_s')), 1)} | {fmt(num(ef.get('start_empty')), 3)} | "
              f"{fmt(re_, 0)} | {fmt(num(ef.get('smtp_s')), 3)} | {fmt(ef_load, 2)} | {ef.get('took') or '—'} | "
              f"{fmt(rl, 0)} | {fmt(num(ef.get('hwm')), 0)} | {fmt(ef_kb, 3)} | {fmt(ef_kb_abs, 3)} | "
              f"{ef.get('depth') if ef.get('depth') is not None else '—'} | {fmt(num(ef.get('stop')), 2)} |")
        w("")
        if any(ef.get(k + "_s") is not None for k, _, _ in E_QUERIES):
            w(f"Queue queries on the loaded queue ({fmt(ef_n, 0)} queued, nothing flowing), over the admin API "
              f"(`GET /api/admin/queue/v1`), each {ef.get('q_reps') or '?'} times in a row: wall time of the "
              "HTTP request, connect to the last byte of the answer.")
            w("")
            w("| query | asked | median s | max s | matched | returned |")
            w("|---|---|---:|---:|---:|---:|")
            for k, what, asked in E_QUERIES:
                if num(ef.get(k + "_s")) is None:
                    w(f"| {what} | {asked} | failed: {ef.get(k + '_n') or '?'} | — | — | — |")
                    continue
                w(f"| {what} | {asked} | {fmt(num(ef.get(k + '_s')), 3)} | {fmt(num(ef.get(k + '_max')), 3)} | "
                  f"{fmt(num(ef.get(k + '_matched')), 0)} | {fmt(num(ef.get(k + '_n')), 0)} |")
            w("")
    e_kb = e_restart = e_restart_1m = None
    if e:
        w("### Received over SMTP behind a closed port, then restarted")
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
            w("RSS queued is read while Gannet holds the messages it received (first delivery attempts "
              "failed and rescheduled); \"restart to SMTP\" is exec to the 220 banner, which comes before "
              "the queue is loaded (see the table above for the time to a loaded queue).")
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

    # (a) as the issue defines it: the same client (smtp-source) into Gannet
    # against smtp-source → smtp-sink; smtpblast's ratio is shown beside it.
    for gen, gname, _ in sorted(GENS, key=lambda g: g[0] != ISSUE_GEN):
        r = acc.get(("gannet", gen))
        client = gname.split()[0]
        if r is None:
            shown, ok = "not run", None
        elif r.get("error"):
            shown, ok = r["error"], None
        elif acc.get(("ceiling", gen), {}).get("error") or ("ceiling", gen) not in acc:
            shown, ok = "no ceiling measured", None
        else:
            ra = a_ratio.get(gen)
            reps = a_reps.get(gen) or []
            how = (f"median of per-rep {fmt_reps(reps)}; " if len(reps) > 1 else "") + \
                ("median rates " if len(reps) > 1 else "")
            shown = (f"{fmt_ratio(ra)} ({how}{fmt(num(r.get('rate')))} ÷ "
                     f"{fmt(num(acc[('ceiling', gen)].get('rate')))} msgs/s)")
            ok = None if ra is None else ra >= A_TARGET[gen == ISSUE_GEN]
        sink = "smtp-sink" if gen == ISSUE_GEN else "smtpsink"
        w(f"| (a) acceptance ≥ {A_TARGET[gen == ISSUE_GEN]:.2f}× its ceiling: {client} → Gannet ÷ "
          f"{client} → {sink} | {shown} | {verdict(ok)} |")
    gb, eb = gval("b")
    rb = ratio(gb, by.get(("b", "postfix"), {}).get("rate")) if gb is not None else None
    w(f"| (b) end to end ≥ {B_POSTFIX_TARGET}× Postfix | {eb or fmt_ratio(rb)} | "
      f"{verdict(None if rb is None else rb >= B_POSTFIX_TARGET)} |")
    cb = by.get(("b", "ceiling-blast"), {})
    rbc = None if gb is None or cb.get("error") or not cb else ratio(gb, cb.get("rate"))
    w(f"| (b) end to end ≥ {B_CEILING_TARGET}× the smtpblast → smtpsink ceiling | "
      f"{eb or (fmt_ratio(rbc) if cb else 'ceiling not run')} | "
      f"{verdict(None if rbc is None else rbc >= B_CEILING_TARGET)} |")
    bcpu = None if gb is None else num(by[("b", "gannet")].get("cpu"))
    w(f"| (b) ≤ {B_CPU_TARGET} CPU ms per message | {eb or (fmt(bcpu, 3) + ' ms')} | "
      f"{verdict(None if bcpu is None else bcpu <= B_CPU_TARGET)} |")
    if any(("b2", s) in by for s in ("postfix", "gannet")):
        g2, e2 = gval("b2")
        p2, c2 = by.get(("b2", "postfix"), {}), by.get(("b2", "ceiling-source"), {})
        r2p = None if g2 is None or p2.get("error") else ratio(g2, p2.get("rate"))
        r2c = None if g2 is None or c2.get("error") else ratio(g2, c2.get("rate"))
        w(f"| (b2) end to end without pipelining (smtp-source) ≥ {B2_POSTFIX_TARGET}× Postfix | "
          f"{e2 or (fmt_ratio(r2p) if p2 else 'Postfix not run')} | "
          f"{verdict(None if r2p is None else r2p >= B2_POSTFIX_TARGET)} |")
        w(f"| (b2) ≥ {B2_CEILING_TARGET}× smtp-source → smtp-sink in the same run | "
          f"{e2 or (fmt_ratio(r2c) if c2 else 'ceiling not run')} | "
          f"{verdict(None if r2c is None else r2c >= B2_CEILING_TARGET)} |")
        gr = by.get(("b2", "gannet"), {})
        lat = "; ".join(f"{SYS_NAME[s] if s != 'ceiling-source' else 'ceiling'} "
                        f"{fmt(num(by[('b2', s)].get('dot_p50')), 2)} / {fmt(num(by[('b2', s)].get('dot_p99')), 2)} ms"
                        for s in ("gannet", "postfix", "ceiling-source")
                        if ("b2", s) in by and not by[("b2", s)].get("error"))
        w(f"| (b2) end of data → 250 p50 / p99 at that load (reported; probe of {meta.get('b2_probe_rate')} msgs/s "
          f"without pipelining) | {e2 or lat or '—'} | — |")
    if ("g", "gannet") in by:
        gg, eg = gval("g")
        pb = by.get(("b", "gannet"), {})
        rg = None if gg is None or pb.get("error") else ratio(gg, pb.get("rate"))
        shown = eg or (f"{fmt_ratio(rg)} ({fmt(gg)} ÷ {fmt(num(pb.get('rate')))} msgs/s)" if pb else
                       "plaintext (b) not run")
        w(f"| (g) STARTTLS both sides ≥ {G_PLAIN_TARGET:.0%} of plaintext (b) | {shown} | "
          f"{verdict(None if rg is None else rg >= G_PLAIN_TARGET)} |")
    gc, ec = gval("c")
    cnote = by.get(("c", "gannet"), {}).get("note") or ""
    cval = None if gc is None else gc * 3600
    cverdict = verdict(None if cval is None else cval >= C_RATE_TARGET)
    dkim_on = "DKIM" in cnote and " on" in cnote
    if cval is not None and not dkim_on:
        cverdict += " (without DKIM)"
    w(f"| (c) 100 KB + DKIM ≥ {C_RATE_TARGET / 1e6:g}M msgs/hour | "
      f"{ec or (fmt(cval) + ' msgs/hour' + (f'; {cnote}' if cnote else ''))} | {cverdict} |")
    ccpu = None if gc is None else num(by[("c", "gannet")].get("cpu"))
    w(f"| (c) ≤ {C_CPU_TARGET} CPU ms per message | {ec or (fmt(ccpu, 3) + ' ms')} | "
      f"{verdict(None if ccpu is None else ccpu <= C_CPU_TARGET)} |")
    # The builds with a faster RSA (the issue allows one, beside a working
    # standard build): the same two targets.
    for fsys, what in FAST_BUILDS:
        fr = by.get(("c", fsys))
        if fr is None:
            continue
        fe = fr.get("error")
        frate = None if fe else num(fr.get("rate"))
        fval = None if frate is None else frate * 3600
        fcpu = None if fe else num(fr.get("cpu"))
        short = what.split(" (")[0]
        w(f"| (c) {short}: ≥ {C_RATE_TARGET / 1e6:g}M msgs/hour | {fe or (fmt(fval) + ' msgs/hour')} | "
          f"{verdict(None if fval is None else fval >= C_RATE_TARGET)} |")
        w(f"| (c) {short}: ≤ {C_CPU_TARGET} CPU ms per message | {fe or (fmt(fcpu, 3) + ' ms')} | "
          f"{verdict(None if fcpu is None else fcpu <= C_CPU_TARGET)} |")
    gd, ed = gval("d", "p99")
    w(f"| (d) transactional p99 < 1 s | {ed or (fmt(gd) + ' ms')} | {verdict(None if gd is None else gd < 1000)} |")
    if ef is not None and not (ef.get("error") and ef_kb is None and ef_load is None):
        at = f"with {ef_n:,} filled" + ("" if ef_n >= 1_000_000 else " (not 1M: BENCH_E_FILL)")
        kb_ok = None if ef_kb is None else ef_kb < 1
        also = ""
        if ef_kb_abs is not None and kb_ok is not None and (ef_kb_abs < 1) != kb_ok:
            also = f"; counting the whole RSS it is {'met' if ef_kb_abs < 1 else 'not met'}"
        w(f"| (e) < 1 KB RSS per queued message | {fmt(ef_kb, 3)} KiB (RSS loaded − empty) / N, "
          f"{fmt(ef_kb_abs, 3)} KiB RSS loaded / N, {at}{also} | {verdict(kb_ok)} |")
        if ef_load is None:
            how = ef.get("error") or "queue never loaded"
        else:
            how = (f"{fmt(ef_load, 2)} s from exec to a loaded queue (SMTP after "
                   f"{fmt(num(ef.get('smtp_s')), 2)} s) {at}")
            if ef_n < 1_000_000:
                how += f" → {fmt(ef_load_1m, 2)} s scaled to 1M"
        w(f"| (e) restart with 1M queued < 10 s | {how} | {verdict(None if ef_load_1m is None else ef_load_1m < 10)} |")
        if e is not None and not e.get("error"):
            w(f"| (e) while receiving over SMTP (not the target's figure) | {fmt(e_kb, 3)} KiB per message with "
              f"{num(e.get('queued')) or 0:,} queued | — |")
    elif e is None:
        w("| (e) < 1 KB RSS per queued message | not run | — |")
        w("| (e) restart with 1M queued < 10 s | not run | — |")
    elif e.get("error"):
        w(f"| (e) < 1 KB RSS per queued message | {e['error']} | — |")
        w(f"| (e) restart with 1M queued < 10 s | {e['error']} | — |")
    else:
        # Without a filled spool: the SMTP run's figures, scaled.
        why = f" (filled spool: {ef['error']})" if ef is not None and ef.get("error") else ""
        w(f"| (e) < 1 KB RSS per queued message | {fmt(e_kb, 3)} KiB while receiving over SMTP{why} | "
          f"{verdict(None if e_kb is None else e_kb < 1)} |")
        q = num(e.get("queued")) or 0
        how = (f"{fmt(e_restart, 2)} s to SMTP with {q:,}"
               + (f" → {fmt(e_restart_1m, 2)} s scaled to 1M" if q < 1_000_000 else "") + why)
        w(f"| (e) restart with 1M queued < 10 s | {how} | {verdict(None if e_restart_1m is None else e_restart_1m < 10)} |")
    # Issue #19, fast at scale: the (e) queries and the cost of querying in (b).
    gq = by.get(("b", "gannet-query"))
    if ef is not None and any(num(ef.get(k + "_s")) is not None for k, _, _ in E_QUERIES):
        at = f"at {ef_n:,} queued" + ("" if ef_n >= 1_000_000 else " (not 1M: BENCH_E_FILL)")
        for k, what, asked in E_QUERIES:
            qs = num(ef.get(k + "_s"))
            label = (f"queue {what} {at} < 1 s" if k != "q_grp" else f"group-by domain over the queue {at} < 1 s")
            if qs is None:
                w(f"| {label} | failed: {ef.get(k + '_n') or '?'} | — |")
                continue
            shown = f"{fmt(qs, 3)} s median of {ef.get('q_reps') or '?'} ({asked}, max {fmt(num(ef.get(k + '_max')), 3)} s)"
            if k == "q_grp" and gq and not gq.get("error") and num(gq.get("q_median")) is not None:
                shown += (f"; while (b)'s mail flows with {num(gq.get('q_fill')) or 0:,.0f} queued: median "
                          f"{fmt(num(gq.get('q_median')), 3)} s, max {fmt(num(gq.get('q_max')), 3)} s")
            w(f"| {label} | {shown} | {verdict(qs < QUERY_S_TARGET)} |")
    elif ef is not None:
        w(f"| queue list of 100 / group-by < 1 s | {ef.get('error') or 'not measured'} | — |")
    if gq is not None:
        cost, why = query_cost(by.get(("b", "gannet")), gq)
        shown = why if cost is None else (f"{cost:.1%} ({fmt(num(gq.get('rate')))} ÷ "
                                         f"{fmt(num(by[('b', 'gannet')].get('rate')))} msgs/s end to end)")
        w(f"| querying once a second costs < {QUERY_COST_TARGET:.0%} of end to end throughput | {shown} | "
          f"{verdict(None if cost is None else cost < QUERY_COST_TARGET)} |")
    gf = by.get(("f", "gannet"))
    if gf is None:
        w("| (f) < 10 KB RSS per idle connection | not run | — |")
    elif gf.get("error"):
        w(f"| (f) < 10 KB RSS per idle connection | {gf['error']} | — |")
    else:
        w(f"| (f) < 10 KB RSS per idle connection | {fmt(f_kb, 2)} KiB with {gf.get('conns')} | "
          f"{verdict(None if f_kb is None else f_kb < 10)} |")
    h_targets(rows, by, w, verdict)
    w("")
    if quick:
        w("Quick mode: the verdicts above come from tiny samples.")
        w("")
    ratios_section(by, acc, a_ratio, w)
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main(sys.argv)
