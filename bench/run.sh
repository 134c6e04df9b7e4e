#!/usr/bin/env bash
# bench/run.sh — the side-by-side benchmark behind `make bench`:
# Gannet vs a private Postfix vs the raw ceiling (client straight into a sink),
# on this machine, in one run. See bench/README.md for the scenarios, the
# knobs (BENCH_* environment variables) and how to read the table.
#
# Every process started here is stopped at the end, also on failure and on
# CTRL-C (trap). A system that fails (Gannet not yet relaying, say) gets
# "failed: <reason>" in its cells and the run goes on with the others.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
LIB=$ROOT/bench/lib
PY=/usr/bin/python3
# -S: no site-packages, half the start-up time; benchlib needs only the stdlib
# (dkimcheck, which needs python3-dkim, runs without -S).
BL() { "$PY" -S "$LIB/benchlib.py" "$@"; }
export BENCH_LIB=$LIB

# ---------------------------------------------------------------- knobs --
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
  d_conns=4 d_per=25 d_msgs=100 d_c_msgs=20 d_c_conns=4 d_rate=5 d_e=2000 d_ef=20000 d_f=300 d_fpf=20 d_to=30 d_eto=30 d_arep=1 d_qrep=3 d_qf=5000
  d_b2rate=20 d_irate=200 d_imsgs=1500 d_iwin=3
else
  d_conns=50 d_per=100 d_msgs=20000 d_c_msgs=5000 d_c_conns=50 d_rate=20 d_e=100000 d_ef=1000000 d_f=10000 d_fpf=200
  d_to=180 d_eto=300 d_arep=3 d_qrep=5 d_qf=100000 d_b2rate=50 d_irate=2000 d_imsgs=20000 d_iwin=5
fi
# gannet-lua: (b) once more, right after Gannet's, with the policy script on.
# gannet-query: (b) once more, with a pre-filled queue and a query a second.
# gannet-boring: (c) once more with bin/boring/gannet (GOEXPERIMENT=boringcrypto), when built;
# gannet-openssl: the same with bin/openssl/gannet (DKIM RSA on OpenSSL's libcrypto).
# gannet-events: (b) once more with two webhook [[event_sink]]s to a local receiver.
SYSTEMS=${BENCH_SYSTEMS:-"ceiling postfix gannet gannet-query gannet-lua gannet-events gannet-boring gannet-openssl"}
SCENARIOS=${BENCH_SCENARIOS:-"a b b2 c d e f g i"}
CONNS=${BENCH_CONNS:-$d_conns}           # (a)(b)(d): concurrent connections
PER_CONN=${BENCH_PER_CONN:-$d_per}       # messages per connection
MSGS=${BENCH_MSGS:-$d_msgs}              # total; a connection QUITs after PER_CONN
SIZE=${BENCH_SIZE:-2k}
A_REPEAT=${BENCH_A_REPEAT:-$d_arep}      # (a): ceiling + Gannet runs, interleaved, this many times
C_MSGS=${BENCH_C_MSGS:-$d_c_msgs}        # (c): 100 KB messages
C_CONNS=${BENCH_C_CONNS:-$d_c_conns}
C_SIZE=${BENCH_C_SIZE:-100k}
B2_CONNS=${BENCH_B2_CONNS:-$CONNS}       # (b2): smtp-source sessions (no pipelining, -d: each keeps its connection)
B2_MSGS=${BENCH_B2_MSGS:-$MSGS}          # (b2): messages, of SIZE
B2_PROBE_RATE=${BENCH_B2_PROBE_RATE:-$d_b2rate} # (b2): latency probe, messages/s over 2 smtpblast connections
G_MSGS=${BENCH_G_MSGS:-$MSGS}            # (g): messages, of SIZE, over CONNS connections (PER_CONN each)
D_RATE=${BENCH_D_RATE:-$d_rate}          # (d): transactional messages per second
I_RATE=${BENCH_I_RATE:-$d_irate}         # (i): the site's max_message_rate for the fleet of three, messages/s
I_MSGS=${BENCH_I_MSGS:-$d_imsgs}         # (i): messages per run, over CONNS connections spread on the nodes
I_WINDOW=${BENCH_I_WINDOW:-$d_iwin}      # (i): seconds the limited rate is measured at the sink, from 2 s into the load
E_QUEUED=${BENCH_E_QUEUED:-$d_e}         # (e): messages queued over SMTP behind a closed port
E_FILL=${BENCH_E_FILL:-$d_ef}            # (e): messages filled straight into a spool Gannet then loads
E_TIMEOUT=${BENCH_E_TIMEOUT:-$d_eto}     # (e): cap on queueing them, seconds
Q_REPS=${BENCH_Q_REPS:-$d_qrep}          # (e): each queue query this many times, median
Q_FILL=${BENCH_Q_FILL:-$d_qf}            # gannet-query: deferred messages filled into its spool first
F_CONNS=${BENCH_F_CONNS:-$d_f}           # (f): idle connections to Gannet
F_PF_CONNS=${BENCH_F_PF_CONNS:-$d_fpf}   # (f): idle connections to Postfix (a process each)
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-$d_to}  # cap per load run, seconds
PIPELINING=${BENCH_PIPELINING:-1}
EVENT_BATCH=${BENCH_EVENT_BATCH:-100}    # gannet-events: max_batch of its two webhook sinks
OUT_DIR=${BENCH_OUT:-$ROOT/bench/results}
KEEP=${BENCH_KEEP:-0}
# BENCH_PROFILE=1: every Gannet runs with -cpuprofile $WORK/NAME.cpu.pprof
# and -memprofile $WORK/NAME.mem.pprof (allocations since start; both
# written when it stops) and the temp dir is kept, for go tool pprof.
PROFILE=${BENCH_PROFILE:-0}
[ "$PROFILE" = 1 ] && KEEP=1
OPENDKIM=${BENCH_OPENDKIM:-/usr/sbin/opendkim} # (c): Postfix's signing milter
# Seconds a process is given to settle before its memory is read.
SETTLE=1 SETTLE_LONG=3
[ "$QUICK" = 1 ] && SETTLE=0.3 SETTLE_LONG=1

has_scen() { [[ " $SCENARIOS " == *" $1 "* ]]; }
has_sys() { [[ " $SYSTEMS " == *" $1 "* ]]; }
size_bytes() {
  local s=${1,,}
  case $s in *k) echo $((${s%k} * 1024)) ;; *m) echo $((${s%m} * 1048576)) ;; *) echo "$s" ;; esac
}
log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
# phase NAME: note the seconds since the previous phase ended (in the log and
# the report), to keep an eye on the run's length.
phase() {
  local now
  now=$(date +%s)
  PHASES="$PHASES $1=$((now - PHASE_T))s"
  log "phase $1 took $((now - PHASE_T))s ($((now - START))s so far)"
  PHASE_T=$now
}

# ------------------------------------------------------------- cleanup --
# The benchmark runs in a background job (main, at the end); this shell only
# waits for it, so that CTRL-C or SIGTERM reach the trap at once (bash defers
# traps while a foreground command runs). Every process the job starts is
# listed in $WORK/pids with its start time, every Postfix instance in
# $WORK/pfdirs, and the trap stops them all.
WORK=$(mktemp -d /tmp/gannet-bench.XXXXXX)
chmod 755 "$WORK" # the Postfix daemons run as user postfix
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
: >"$WORK/pids"
export BENCH_PIDS_FILE=$WORK/pids # benchlib.py spawn adds its children
: >"$WORK/pfdirs"

bench_descendants() { # PID: its descendants, children first
  local c
  for c in $(pgrep -P "$1" 2>/dev/null); do bench_descendants "$c"; echo "$c"; done
}
starttime() { cut -d')' -f2 "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }
# track PID: remember a process for the final cleanup.
track() { echo "$1 $(starttime "$1")" >>"$WORK/pids"; }
# alive PID: the process exists and is not a zombie.
alive() {
  local st
  st=$(cut -d')' -f2 "/proc/$1/stat" 2>/dev/null | cut -c2)
  [ -n "$st" ] && [ "$st" != Z ]
}
# stop_pid PID: SIGTERM, up to 10 s grace, then SIGKILL.
stop_pid() {
  local pid=$1 i
  alive "$pid" || { wait "$pid" 2>/dev/null; return 0; }
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 100); do alive "$pid" || break; sleep 0.1; done
  alive "$pid" && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}
MAIN_PID=""
cleanup() {
  local rc=$? p st d
  trap - EXIT INT TERM
  # The job and everything still under it (helpers included), then the
  # processes that outlived their parents (daemons, spawned relays).
  if [ -n "$MAIN_PID" ]; then
    for p in $(bench_descendants "$MAIN_PID") ; do kill -TERM "$p" 2>/dev/null; done
    stop_pid "$MAIN_PID"
  fi
  # Only a pid whose start time still matches is ours (pids get reused).
  while read -r p st; do
    [ -n "$p" ] && [ "$(starttime "$p")" = "$st" ] && stop_pid "$p"
  done <"$WORK/pids"
  while read -r d; do [ -n "$d" ] && pf_stop "$d"; done <"$WORK/pfdirs"
  if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted: stopping everything"; exit 130' INT TERM

source "$LIB/postfix.sh"
PF_SKELETON=$WORK/postfix-queue-skeleton # see pf_create

# bg NAME CMD...: start CMD in the background, output to $WORK/NAME.log; sets BG_PID.
bg() {
  local name=$1; shift
  "$@" >"$WORK/$name.log" 2>&1 &
  BG_PID=$!
  track "$BG_PID"
}
ports() { BL freeport "$1"; }
# run_fg CMD...: run CMD to completion (tracked, so that an interrupt stops it).
run_fg() {
  "$@" &
  local p=$!
  track "$p"
  wait "$p"
}

# ------------------------------------------------------------- sinks --
# start_sink NAME [extra smtpsink flags]: bin/smtpsink with /stats; sets
# SINK_PID SINK_PORT SINK_URL.
start_sink() {
  local name=$1; shift
  local sp hp
  read -r sp hp <<<"$(ports 2)"
  bg "$name-sink" bin/smtpsink -listen "127.0.0.1:$sp" -http "127.0.0.1:$hp" -quiet "$@"
  SINK_PID=$BG_PID SINK_PORT=$sp SINK_URL="http://127.0.0.1:$hp/stats"
  BL waitsmtp "127.0.0.1:$sp" 10 >/dev/null || { log "smtpsink did not start"; return 1; }
  BL waitsink "$SINK_URL" 0 5
}

# wait_sink URL COUNT TIMEOUT: wait until the sink has COUNT messages.
wait_sink() { BL waitsink "$@"; }

# start_psink NAME: Postfix's smtp-sink (the receiver of (b2) and of the
# smtp-source ceilings) with -c, whose running count on stdout (the log
# file) benchlib reads through SINK_URL=file:LOG; sets SINK_PID SINK_PORT.
start_psink() {
  local name=$1 sp sinkuser=()
  sp=$(ports 1)
  [ "$(id -u)" = 0 ] && sinkuser=(-u postfix) # it refuses to run as root
  bg "$name-smtp-sink" /usr/sbin/smtp-sink "${sinkuser[@]}" -c -4 "127.0.0.1:$sp" 1024
  SINK_PID=$BG_PID SINK_PORT=$sp SINK_URL="file:$WORK/$name-smtp-sink.log"
  BL waitsmtp "127.0.0.1:$sp" 10 >/dev/null || { log "smtp-sink did not start"; return 1; }
}

# run_source NAME PORT CONNS MSGS SIZE: smtp-source -d (each session keeps
# its connection; no pipelining, which it has not) sends MSGS messages of
# SIZE over CONNS sessions to 127.0.0.1:PORT. smtp-source reports no count
# of 250s: it sent MSGS unless it warned. Sets SRC_RATE (messages over wall
# time), SRC_ERR (failed: ...) and SRC_NOTE (its warnings).
run_source() {
  local name=$1 port=$2 conns=$3 msgs=$4 size=$5 t0 t1 rc warned
  t0=$(date +%s.%N)
  run_fg timeout "$RUN_TIMEOUT" /usr/sbin/smtp-source -4 -d -s "$conns" -m "$msgs" -l "$(size_bytes "$size")" \
    -f bench@example.test -t user@example.test -M source.example.test "127.0.0.1:$port" >"$WORK/$name.source.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  SRC_RATE=$(awk -v n="$msgs" -v a="$t1" -v b="$t0" 'BEGIN{printf "%.1f", n/(a-b)}')
  SRC_ERR="" SRC_NOTE=""
  [ $rc != 0 ] && SRC_ERR="failed: smtp-source exit $rc: $(tail -1 "$WORK/$name.source.log" | cut -c1-80)"
  warned=$(grep -c -E 'warning|fatal' "$WORK/$name.source.log")
  [ "$warned" != 0 ] && SRC_NOTE="smtp-source warned $warned times: $(grep -m1 -E 'warning|fatal' "$WORK/$name.source.log" | cut -c1-80)"
  return 0
}

# source_load NAME PORT CONNS MSGS SIZE: (b2)'s load. run_source, and
# meanwhile the latency probe: bin/smtpblast without PIPELINING on 2
# connections at B2_PROBE_RATE messages/s, timing each message from the end
# of its data (the "." sent) to the 250 (its dot_latency_ms), started just
# before smtp-source and stopped (SIGTERM: it prints its summary) when
# smtp-source is done. Sets what run_source sets, PROBE_ACKED and
# PROBE_P50 PROBE_P99 PROBE_N (milliseconds; the count timed).
source_load() {
  local name=$1 port=$2 conns=$3 msgs=$4 size=$5 pp
  bg "$name-probe" bin/smtpblast -server "127.0.0.1:$port" -connections 2 -rate "$B2_PROBE_RATE/s" -size "$size" \
    -duration "${RUN_TIMEOUT}s" -run-id "probe-$name" -progress 0 -json
  pp=$BG_PID
  run_source "$name" "$port" "$conns" "$msgs" "$size"
  stop_pid "$pp"
  # bg wrote the probe's stdout (its JSON summary) into its log.
  read -r PROBE_ACKED PROBE_P50 PROBE_P99 PROBE_N < <(BL jget "$WORK/$name-probe.log" acked dot_latency_ms.p50 \
    dot_latency_ms.p99 dot_latency_ms.count | tr '\n' ' ')
  [ "$PROBE_ACKED" = - ] && PROBE_ACKED=0
  return 0
}

# ------------------------------------------------------------ systems --
# Each start_* sets SYS_PORT (SMTP), SYS_PID (root of its process tree) and
# on failure FAIL (the reason) and returns 1.

start_postfix() { # NAME RELAYPORT [extra main.cf lines]
  local name=$1 relay=$2 extra=${3:-} dir=$WORK/$1
  SYS_PORT=$(ports 1)
  if ! pf_create "$dir" "$SYS_PORT" "$relay" "$extra" 2>"$WORK/$name.err"; then
    FAIL="postfix config: $(tail -1 "$WORK/$name.err")"; return 1
  fi
  echo "$dir" >>"$WORK/pfdirs"
  if ! pf_start "$dir" 2>>"$WORK/$name.err"; then FAIL="postfix start: $(tail -1 "$WORK/$name.err")"; return 1; fi
  SYS_PID=$(pf_master_pid "$dir")
  if ! BL waitsmtp "127.0.0.1:$SYS_PORT" 20 >/dev/null; then FAIL="postfix smtpd never answered"; return 1; fi
}

# gannet_config NAME RELAYPORT RETRY MAXQ MAXCONN [EXTRA]: writes $WORK/NAME/gannet.toml.
# G_LISTENER_TOML (more keys of the [[smtp_listener]]) and G_TLS_TOML (the
# [tls] keys; default mode = "disabled") change it for (g).
gannet_config() {
  local name=$1 relay=$2 retry=$3 maxq=$4 maxconn=$5 extra=${6:-} dir=$WORK/$1
  mkdir -p "$dir"
  read -r G_SMTP G_HTTP <<<"$(ports 2)"
  sed -e "s|@DIR@|$dir|g; s|@SMTPPORT@|$G_SMTP|; s|@HTTPPORT@|$G_HTTP|; s|@RELAYPORT@|$relay|" \
      -e "s|@RETRY@|$retry|; s|@MAXQ@|$maxq|; s|@MAXCONN@|$maxconn|" "$LIB/gannet.toml.tmpl" |
    awk -v extra="$extra" -v listener="${G_LISTENER_TOML:-}" -v tls="${G_TLS_TOML:-mode = \"disabled\"}" '
      $0 == "@EXTRA@" { print extra; next }
      $0 == "@LISTENER@" { print listener; next }
      $0 == "@TLS@" { print tls; next }
      { print }' >"$dir/gannet.toml"
}

# ------------------------------------------------------ policy script --
# The gannet-lua variant of (b) runs the reference script of docs/policy.md
# (engine/policy/lua/testdata/relay.lua) on. Its configuration calls
# (kumo.start_*, kumo.configure_*) would replace what they name in the bench
# TOML (its own listeners and ports, TLS 1.3 only, 1000 messages a minute
# per domain...), so policy_script drops them and keeps the rest: the hooks
# and the helper functions, whatever the reference script holds at the time.
POLICY_SRC=$ROOT/engine/policy/lua/testdata/relay.lua
POLICY_SCRIPT=$WORK/policy/relay-bench.lua
# The http_request hook of the script answers 401 without this API key: any
# HTTP call to the gannet-lua Gannet sends it (benchlib.py: BENCH_HTTP_AUTH).
POLICY_HTTP_AUTH="Bearer key-acme-1"

# policy_script: writes $POLICY_SCRIPT from $POLICY_SRC without its top-level
# kumo.start_* / kumo.configure_* calls, each from its first line to the line
# where its braces close (a one-line call is that line), and checks it with
# bin/gannet check-config; sets FAIL and returns 1 if it is refused.
policy_script() {
  local out
  mkdir -p "$(dirname "$POLICY_SCRIPT")"
  if [ ! -s "$POLICY_SRC" ]; then FAIL="no reference script at $POLICY_SRC"; return 1; fi
  {
    echo "-- Generated by bench/run.sh from $POLICY_SRC: its hooks and helper"
    echo "-- functions, without its kumo.start_* and kumo.configure_* calls."
    awk '
      !drop && /^kumo\.(start|configure)_/ { drop = 1; depth = 0 }
      drop {
        line = $0
        depth += gsub(/\{/, "", line) - gsub(/\}/, "", line)
        if (depth <= 0) drop = 0
        next
      }
      { print }' "$POLICY_SRC"
  } >"$POLICY_SCRIPT"
  if grep -qE '^kumo\.(start|configure)_' "$POLICY_SCRIPT"; then
    FAIL="a configuration call survived in $POLICY_SCRIPT"; return 1
  fi
  if ! out=$(bin/gannet check-config -config "$POLICY_SCRIPT" 2>&1); then
    FAIL="policy script refused: $(echo "$out" | head -1 | cut -c1-120)"; return 1
  fi
  log "policy script: $(grep -c '^kumo\.on(' "$POLICY_SCRIPT") hooks from $POLICY_SRC in $POLICY_SCRIPT"
}

# policy_toml: the [policy] table of the gannet-lua runs, and the script's
# API key as an [[api_key]]: past the script's http_request hook, Gannet's
# API checks a Bearer key itself (a trusted host without the header would
# pass the API but not the hook). No tenant: the bench defines none.
policy_toml() {
  cat <<EOF
[policy]
script = "$POLICY_SCRIPT"
hook_timeout = "100ms"

[[api_key]]
key = "${POLICY_HTTP_AUTH#Bearer }"
EOF
}

# events_toml: the two webhook [[event_sink]]s of the gannet-events run,
# batched as an ESP back-end would take them, to bench/lib/webhook_sink.py
# on $WH_PORT (which checks every signature).
events_toml() {
  local n
  for n in crm analytics; do
    cat <<EOF
[[event_sink]]
name = "$n"
kind = "webhook"
url = "http://127.0.0.1:$WH_PORT/$n"
secret = "bench-webhook-secret"
batch = true
max_batch = $EVENT_BATCH
max_delay = "1s"

EOF
  done
}

# start_gannet NAME: runs $G_BIN serve (bin/gannet; gannet-boring:
# bin/boring/gannet) with $WORK/NAME/gannet.toml.
G_BIN=bin/gannet
start_gannet() {
  local name=$1 dir=$WORK/$1 out
  if ! out=$("$G_BIN" check-config -config "$dir/gannet.toml" 2>&1); then
    FAIL="config refused: $(echo "$out" | head -1)"; return 1
  fi
  spawn_gannet "$name" "$dir/gannet.toml" "$G_SMTP" 30 || return 1
  SYS_PID=$SPAWN_PID SYS_PORT=$G_SMTP G_START_S=$SPAWN_S
}

# spawn_gannet NAME CONFIG PORT TIMEOUT: start bin/gannet serve, wait for its
# banner; sets SPAWN_PID, SPAWN_S (seconds from exec to the 220) and SPAWN_T0
# (epoch time of the exec), or FAIL.
spawn_gannet() {
  local name=$1 cfg=$2 port=$3 to=$4 out
  local prof=()
  [ "$PROFILE" = 1 ] && prof=(-cpuprofile "$WORK/$name.cpu.pprof" -memprofile "$WORK/$name.mem.pprof")
  out=$(BL spawn "$WORK/$name-gannet.log" "127.0.0.1:$port" "$to" "$G_BIN" serve "${prof[@]}" -config "$cfg")
  read -r SPAWN_PID SPAWN_S SPAWN_T0 <<<"$out"
  [ -n "$SPAWN_PID" ] && track "$SPAWN_PID"
  case $SPAWN_S in
    timeout) FAIL="SMTP port never answered in $to s"; return 1 ;;
    exited | "") FAIL="exited: $(grep -v '^\s*$' "$WORK/$name-gannet.log" | tail -1 | cut -c1-120)"; return 1 ;;
  esac
}

# probe ADDR SINKURL: one message through the relay must reach the sink.
probe() {
  local before
  before=$(BL sinkcount "$2")
  if ! BL send "$1" 1 >"$WORK/probe.err" 2>&1; then
    FAIL="probe refused: $(tail -1 "$WORK/probe.err" | cut -c1-100)"; return 1
  fi
  if ! wait_sink "$2" $((before + 1)) 30; then FAIL="probe message not delivered in 30 s"; return 1; fi
}

# ---------------------------------------------------------- load runs --
# relay_run SYSTEM SCEN SIZE CONNS PERCONN MSGS TRICKLE [GANNET_EXTRA]
# One load through a relay (postfix or gannet) into bin/smtpsink (SCEN b, c
# or g). Records end to end (first byte in to the last message at the sink),
# smtpblast's rate of 250s meanwhile and, with TRICKLE=1, transactional
# latency (d). In (c) both relays sign with DKIM: Gannet with GANNET_EXTRA's
# [[dkim]], Postfix through a private OpenDKIM milter (start_opendkim), whose
# CPU counts as Postfix's; if OpenDKIM is missing or fails, Postfix runs
# without DKIM and the note says why. SYSTEM gannet-lua is Gannet with
# GANNET_EXTRA's [policy] script (policy_toml), recorded under its own name;
# gannet-boring is bin/boring/gannet. In (b2) the load is smtp-source with
# its latency probe (source_load; PERCONN unused) into a relay delivering to
# smtp-sink; in (g) STARTTLS is on at both ends (tls_toml) and the
# handshakes are counted (tls_counts).
relay_run() {
  local sys=$1 scen=$2 size=$3 conns=$4 per=$5 msgs=$6 trickle=$7 gextra=${8:-}
  local name="$sys-$scen" FAIL="" note="" odk="" pfextra="" kind=$1 qfill=0
  case $sys in gannet-lua | gannet-query | gannet-events | gannet-boring | gannet-openssl) kind=gannet ;; esac
  [ "$sys" = gannet-query ] && qfill=$Q_FILL
  # gannet-boring: the BoringCrypto build; (g): TLS on both sides (tls_toml).
  local G_BIN=bin/gannet G_LISTENER_TOML="" G_TLS_TOML="" sinktls=() blasttls=()
  [ "$sys" = gannet-boring ] && G_BIN=bin/boring/gannet
  [ "$sys" = gannet-openssl ] && G_BIN=bin/openssl/gannet
  if [ "$scen" = g ]; then
    tls_toml
    sinktls=(-tls-cert "$TLS_DIR/sink.pem" -tls-key "$TLS_DIR/sink.key")
    blasttls=(-starttls -ca "$TLS_DIR/ca.pem")
  fi
  log "($scen) $sys: $msgs x $size over $conns connections${trickle:+, trickle=$trickle}"
  # The sink offers CHUNKING, as the large mailbox providers do: Gannet then
  # sends each message as one BDAT LAST chunk; Postfix's client uses DATA.
  # (b2) delivers into Postfix's smtp-sink (no CHUNKING) instead.
  if [ "$scen" = b2 ]; then
    start_psink "$name"
  else
    start_sink "$name" -chunking -ids "$WORK/$name.ids" "${sinktls[@]}"
  fi
  if [ $? != 0 ]; then
    BL record "$RESULTS" scen="$scen" sys="$sys" error="failed: sink did not start"; return
  fi
  local sinkpid=$SINK_PID sinkport=$SINK_PORT sinkurl=$SINK_URL
  if [ "$sys" = postfix ] && [ "$scen" = c ]; then
    if start_opendkim "$name"; then
      odk=$ODK_PID pfextra=$ODK_MILTER
    else
      log "($scen) postfix: $FAIL; Postfix runs without DKIM"
      note="DKIM off ($FAIL)" FAIL=""
    fi
  fi
  case $kind in
    postfix) start_postfix "$name" "$sinkport" "$pfextra" ;;
    gannet) gannet_config "$name" "$sinkport" 5m $((msgs * 2 + 100000 + qfill)) $((conns + 1000)) "$gextra" &&
      { [ "$sys" != gannet-query ] || query_fill "$name"; } &&
      start_gannet "$name" && { [ "$sys" != gannet-query ] || query_wait "$name"; } ;;
  esac
  local ok=$? gapi=""
  [ "$kind" = gannet ] && gapi="http://127.0.0.1:$G_HTTP"
  [ $ok = 0 ] && probe "127.0.0.1:$SYS_PORT" "$sinkurl"
  ok=$?
  if [ -n "$odk" ] && { [ $ok != 0 ] || [ -n "$FAIL" ]; }; then
    # Postfix with the milter failed: measure it without DKIM rather than not at all.
    log "($scen) postfix with the OpenDKIM milter failed ($FAIL): again without DKIM"
    note="DKIM off (Postfix with the OpenDKIM milter failed: $FAIL)"
    stop_relay postfix "$name"
    stop_pid "$odk"
    odk="" FAIL="" name="$name-nodkim"
    start_postfix "$name" "$sinkport" && probe "127.0.0.1:$SYS_PORT" "$sinkurl"
    ok=$?
  fi
  if [ $ok != 0 ] || [ -n "$FAIL" ]; then
    log "($scen) $sys failed: $FAIL"
    BL record "$RESULTS" scen="$scen" sys="$sys" error="failed: $FAIL" note="$note"
    [ "$trickle" = 1 ] && BL record "$RESULTS" scen=d sys="$sys" error="failed: $FAIL"
    stop_relay "$kind" "$name"
    [ -n "$odk" ] && stop_pid "$odk"
    stop_pid "$sinkpid"
    return
  fi
  if [ "$kind" = gannet ] && [ "$scen" = c ]; then dkim_probe "$name" "$gextra"; note=$DKIM_NOTE; fi
  if [ -n "$odk" ]; then pf_dkim_probe "$name"; note=$DKIM_NOTE; fi
  # The CPU of the system under test: the relay's process tree and, for
  # Postfix in (c), its signing milter (user+system time of all its threads).
  local base relaypid=$SYS_PID port=$SYS_PORT cpupids="$SYS_PID${odk:+ $odk}"
  base=$(BL sinkcount "$sinkurl")
  rm -f "$WORK/$name.target" "$WORK/$name.stop"
  bg "$name-watch" "$PY" -S "$LIB/benchlib.py" sinkwatch "$sinkurl" "$WORK/$name.target" $((RUN_TIMEOUT + 120)) "$WORK/$name.watch.json"
  local watchpid=$BG_PID trpid="" qpid="" tls0=()
  # (g): the sink's handshakes so far (the probe's), and Gannet's.
  [ "$scen" = g ] && read -r -a tls0 < <(tls_counts "$sinkurl" "$gapi" | tr '\n' ' ')
  if [ "$sys" = gannet-query ]; then
    # The query load: a group-by over the whole queue once a second, from
    # before the first message until the last one is at the sink.
    rm -f "$WORK/$name.qstop"
    bg "$name-qloop" "$PY" -S "$LIB/benchlib.py" qloop "$gapi/api/admin/queue/v1?group_by=domain" \
      "$WORK/$name.qstop" "$WORK/$name.qloop.json" 1
    qpid=$BG_PID
  fi
  if [ "$trickle" = 1 ]; then
    bg "$name-trickle" "$PY" -S "$LIB/benchlib.py" trickle "127.0.0.1:$port" "$D_RATE" "$WORK/$name.stop" \
      "$WORK/$name.ids" "$WORK/$name.trickle.json" 60
    trpid=$BG_PID
  fi
  local cpu0 cpu1 cpu_mid t0
  cpu0=$(BL cpu $cpupids)
  t0=$(date +%s.%N)
  # (b)'s messages are bulk mail of a campaign (X-Campaign), for every
  # system alike: the reference policy script then adds List-Unsubscribe.
  local hdr=() acked rate failed sent=0 i err="" probe=()
  [ "$scen" = b ] && hdr=(-header "X-Campaign: bench-b")
  if [ "$scen" = b2 ]; then
    # smtp-source, no pipelining, and the latency probe (its messages
    # count as delivered too).
    source_load "$name" "$port" "$conns" "$msgs" "$size"
    cpu_mid=$(BL cpu $cpupids)
    acked=$((msgs + PROBE_ACKED)) rate=$SRC_RATE failed=0 err=$SRC_ERR
    [ -n "$SRC_NOTE" ] && note="${note:+$note; }$SRC_NOTE"
    probe=(probe_acked="$PROBE_ACKED" dot_p50="$PROBE_P50" dot_p99="$PROBE_P99" dot_n="$PROBE_N")
  else
    run_fg bin/smtpblast -server "127.0.0.1:$port" -connections "$conns" -per-conn "$per" -messages "$msgs" \
      -size "$size" -duration "${RUN_TIMEOUT}s" "${BLAST_FLAGS[@]}" "${blasttls[@]}" "${hdr[@]}" -json \
      >"$WORK/$name.blast.json" 2>"$WORK/$name.blast.err"
    cpu_mid=$(BL cpu $cpupids)
    read -r acked rate failed < <(BL jget "$WORK/$name.blast.json" acked messages_per_second failed | tr '\n' ' ')
    [ "$acked" = - ] && acked=0
    [ "$acked" = 0 ] && err="failed: no message accepted ($(head -c 100 "$WORK/$name.blast.err" | tr '\n' ' '))"
  fi
  touch "$WORK/$name.stop"
  if [ -n "$trpid" ]; then
    for i in $(seq 300); do [ -s "$WORK/$name.trickle.json.sent" ] && break; sleep 0.1; done
    sent=$(cat "$WORK/$name.trickle.json.sent" 2>/dev/null || echo 0)
  fi
  echo $((base + acked + sent)) >"$WORK/$name.target"
  wait "$watchpid" 2>/dev/null
  local qrec=()
  if [ -n "$qpid" ]; then
    touch "$WORK/$name.qstop"
    wait "$qpid" 2>/dev/null
    local qq qfail qmed qmax qdepth
    read -r qq qfail qmed qmax < <(BL jget "$WORK/$name.qloop.json" queries failed median_s max_s | tr '\n' ' ')
    qdepth=$(BL metric "$gapi/metrics" gannet_queue_depth)
    qrec=(q_fill="$QF_N" q_queries="$qq" q_failed="$qfail" q_median="$qmed" q_max="$qmax" q_depth_end="$qdepth")
    note="${note:+$note; }$QF_NOTE$qq group-by queries (median ${qmed}s, max ${qmax}s$([ "$qfail" != 0 ] && echo ", $qfail failed")); depth at the end $qdepth"
  fi
  [ -n "$trpid" ] && wait "$trpid" 2>/dev/null
  cpu1=$(BL cpu $cpupids)
  local done_ts count timeout
  read -r done_ts count timeout < <(BL jget "$WORK/$name.watch.json" done_ts count timeout | tr '\n' ' ')
  [ "$count" = - ] && count=$base
  [[ "$sent" =~ ^[0-9]+$ ]] || sent=0
  local total=$((acked + sent))
  [ "$failed" != - ] && [ "$failed" != 0 ] && note="${note:+$note; }$failed refused"
  local e2e="" secs=""
  local delivered=$total
  if [ "$timeout" = True ]; then
    # Partial: the rate of what arrived up to the last arrival.
    delivered=$((count > base ? count - base : 0))
    note="${note:+$note; }partial: $delivered of $total delivered within the cap"
  fi
  if [ "$done_ts" != - ] && [ "$delivered" -gt 0 ]; then
    secs=$(awk -v a="$done_ts" -v b="$t0" 'BEGIN{printf "%.3f", a-b}')
    e2e=$(awk -v n="$delivered" -v s="$secs" 'BEGIN{ if (s>0) printf "%.1f", n/s }')
  fi
  [ "$sys" = gannet-lua ] && policy_note "$gapi"
  local cpu_acc cpu_e2e
  cpu_acc=$(awk -v a="$cpu_mid" -v b="$cpu0" -v n="$acked" 'BEGIN{ if (n>0) printf "%.3f", (a-b)*1000/n }')
  cpu_e2e=$(awk -v a="$cpu1" -v b="$cpu0" -v n="$delivered" 'BEGIN{ if (n>0) printf "%.3f", (a-b)*1000/n }')
  # accept_*: the rate of 250s in the same run, while the relay also
  # delivers (scenario (a) proper is accept_run, with delivery held).
  local tlsrec=()
  if [ "$scen" = g ]; then
    # Handshakes during the load: inbound (smtpblast's connections, each a
    # full handshake) and outbound (at the sink: all, resumed; Gannet's
    # gannet_tls_handshakes_total{direction="out"} says the same).
    local tls1=() conns_in
    read -r -a tls1 < <(tls_counts "$sinkurl" "$gapi" | tr '\n' ' ')
    conns_in=$(BL jget "$WORK/$name.blast.json" connects)
    tlsrec=(hs_in="$conns_in" hs_out=$((tls1[0] - tls0[0])) hs_out_resumed=$((tls1[1] - tls0[1])))
    [ "$kind" = gannet ] && [ "${tls1[2]}" != - ] && [ "${tls0[2]}" != - ] &&
      tlsrec+=(g_hs_full=$((tls1[2] - tls0[2])) g_hs_resumed=$((tls1[3] - tls0[3])))
  fi
  BL record "$RESULTS" scen="$scen" sys="$sys" msgs="$delivered" secs="$secs" rate="$e2e" cpu="$cpu_e2e" \
    accepted="$acked" accept_rate="$rate" accept_cpu="$cpu_acc" size="$size" conns="$conns" "${qrec[@]}" \
    "${probe[@]}" "${tlsrec[@]}" note="$note" error="$err"
  if [ -n "$trpid" ]; then
    local p50 p99 mx ts td
    read -r ts td p50 p99 mx < <(BL jget "$WORK/$name.trickle.json" sent delivered p50_ms p99_ms max_ms | tr '\n' ' ')
    BL record "$RESULTS" scen=d sys="$sys" sent="$ts" delivered="$td" p50="$p50" p99="$p99" max="$mx" \
      rate="$D_RATE" error="$([ "$td" = - ] && echo "failed: no trickle result")"
  fi
  log "($scen) $sys: accepted $acked at ${rate}/s; end to end ${e2e:-?}/s in ${secs:-?}s; cpu/1000 ${cpu_e2e:-?}"
  stop_relay "$kind" "$name"
  [ -n "$odk" ] && stop_pid "$odk"
  stop_pid "$sinkpid"
}

# query_fill NAME: the gannet-query run's spool gets Q_FILL deferred
# messages first (bench/crashtest -mode fill: due in an hour, so that none
# reaches the sink during the run although relay_to sends all mail there),
# for its queries to walk. Sets QF_N (messages filled) and QF_NOTE; a fill
# that fails leaves the run without a pre-filled queue, said in QF_NOTE.
query_fill() {
  local name=$1 filled
  QF_N=0 QF_NOTE="no pre-fill: "
  if [ "$Q_FILL" -le 0 ]; then QF_NOTE="no pre-fill (BENCH_Q_FILL=0); "; return 0; fi
  if [ ! -x "$WORK/crashtest" ]; then QF_NOTE="no pre-fill (bench/crashtest did not build); "; return 0; fi
  run_fg timeout 600 "$WORK/crashtest" -mode fill -n "$Q_FILL" -dir "$WORK/$name/spool" \
    >"$WORK/$name.fill.json" 2>"$WORK/$name.fill.err"
  filled=$(BL jget "$WORK/$name.fill.json" messages)
  if [ "$filled" = - ] || [ "$filled" = 0 ]; then
    QF_NOTE="no pre-fill (fill failed: $(tail -1 "$WORK/$name.fill.err" | cut -c1-80)); "
    rm -rf "$WORK/$name/spool"
    return 0
  fi
  QF_N=$filled QF_NOTE="$filled deferred pre-filled; "
  log "gannet-query: filled $filled deferred messages (due in an hour) into its spool"
}

# query_wait NAME: waits until the pre-filled queue is loaded (the listeners
# start first), so that the load meets the whole queue.
query_wait() {
  local s d
  [ "$QF_N" -gt 0 ] || return 0
  read -r s d < <(BL waitmetric "http://127.0.0.1:$G_HTTP/metrics" gannet_queue_depth "$QF_N" 120 "$(date +%s)")
  if [ "$s" = timeout ]; then FAIL="pre-filled queue not loaded: depth $d of $QF_N after 120 s"; return 1; fi
}

# policy_note API: adds to relay_run's note what the policy script did in a
# gannet-lua run: the hook calls that failed or ran past hook_timeout
# (gannet_policy_errors_total, read over the metrics API with the script's
# API key). (b)'s messages carry X-Campaign, so the reference script's bulk
# path (List-Unsubscribe added, the campaign counted) runs for every message.
policy_note() {
  local m="relay.lua hooks on (configuration calls dropped); X-Campaign in the load: List-Unsubscribe added to every message"
  local depth errs
  depth=$(BENCH_HTTP_AUTH="$POLICY_HTTP_AUTH" BL metric "$1/metrics" gannet_queue_depth)
  if [ "$depth" = - ]; then
    m="$m; hook errors unknown (metrics unreadable with the API key)"
  else
    errs=$(BENCH_HTTP_AUTH="$POLICY_HTTP_AUTH" BL metric "$1/metrics" gannet_policy_errors_total)
    [ "$errs" = - ] && errs=0
    [ "$errs" != 0 ] && m="$m; $errs hook calls failed or timed out"
  fi
  note="${note:+$note; }$m"
}

stop_relay() { # SYSTEM NAME
  case $1 in
    postfix) pf_stop "$WORK/$2" ;;
    gannet) [ -n "${SYS_PID:-}" ] && stop_pid "$SYS_PID" ;;
  esac
  SYS_PID=""
}

# ------------------------------------------------- (a) acceptance only --
# accept_run SYSTEM GEN [REP]: scenario (a) proper. A fresh relay that delivers
# nothing takes the (a) load from one client and the rate of 250s is
# recorded with the relay's CPU. GEN is "blast" (bin/smtpblast, the flags of
# the ceiling's smtpblast run) or "source" (smtp-source, the flags of the
# ceiling's smtp-source run; it cannot pipeline). Delivery is held:
#   Gannet:  a probe message is delivered first, then the blast's and
#            smtp-source's recipient domain (example.test) is suspended
#            over the admin API until resumed;
#   Postfix: defer_transports = smtp relay, so qmgr moves each message to
#            the deferred queue instead of handing it to smtp (no probe).
# Both still relay into a sink, whose count must not move during the run.
# REP (default 1) numbers the repetition: it goes into the record and the
# names of the run's files and directories (each run gets a fresh spool).
accept_run() {
  local sys=$1 gen=$2 rep=${3:-1} FAIL="" note=""
  local name="$sys-a-$gen-r$rep"
  log "(a) $sys, acceptance only, by $gen (rep $rep): $MSGS x $SIZE over $CONNS connections"
  if ! start_sink "$name"; then
    BL record "$RESULTS" scen=a sys="$sys" gen="$gen" rep="$rep" error="failed: sink did not start"; return
  fi
  local sinkpid=$SINK_PID sinkurl=$SINK_URL ok=0
  case $sys in
    postfix) start_postfix "$name" "$SINK_PORT" "defer_transports = smtp relay" || ok=1 ;;
    gannet)
      { gannet_config "$name" "$SINK_PORT" 5m $((MSGS * 2 + 100000)) $((CONNS + 1000)) &&
        start_gannet "$name" && probe "127.0.0.1:$SYS_PORT" "$sinkurl" && suspend_gannet "$name"; } || ok=1 ;;
  esac
  if [ $ok != 0 ] || [ -n "$FAIL" ]; then
    log "(a) $sys by $gen failed: $FAIL"
    BL record "$RESULTS" scen=a sys="$sys" gen="$gen" rep="$rep" error="failed: $FAIL"
    stop_relay "$sys" "$name"; stop_pid "$sinkpid"; return
  fi
  local relaypid=$SYS_PID port=$SYS_PORT base cpu0 cpu1 acked rate failed err=""
  base=$(BL sinkcount "$sinkurl")
  cpu0=$(BL cpu "$relaypid")
  if [ "$gen" = blast ]; then
    run_fg bin/smtpblast -server "127.0.0.1:$port" -connections "$CONNS" -per-conn "$PER_CONN" -messages "$MSGS" \
      -size "$SIZE" -duration "${RUN_TIMEOUT}s" "${BLAST_FLAGS[@]}" -json >"$WORK/$name.blast.json" 2>"$WORK/$name.blast.err"
    cpu1=$(BL cpu "$relaypid")
    read -r acked rate failed < <(BL jget "$WORK/$name.blast.json" acked messages_per_second failed | tr '\n' ' ')
    [ "$acked" = - ] && acked=0
    [ "$acked" = 0 ] && err="failed: no message accepted ($(head -c 100 "$WORK/$name.blast.err" | tr '\n' ' '))"
    [ "$failed" != - ] && [ "$failed" != 0 ] && note="$failed refused"
  else
    run_source "$name" "$port" "$CONNS" "$MSGS" "$SIZE"
    cpu1=$(BL cpu "$relaypid")
    acked=$MSGS rate=$SRC_RATE err=$SRC_ERR note=$SRC_NOTE
  fi
  local cpu
  cpu=$(awk -v a="$cpu1" -v b="$cpu0" -v n="$acked" 'BEGIN{ if (n>0) printf "%.3f", (a-b)*1000/n }')
  # The hold must have held, and (Gannet) every 250 must be in the queue.
  sleep "$SETTLE"
  local after depth
  after=$(BL sinkcount "$sinkurl")
  [ "$after" -gt "$base" ] 2>/dev/null && note="${note:+$note; }$((after - base)) delivered despite the hold"
  if [ "$sys" = gannet ]; then
    # Held mail leaves the scheduler (and gannet_queue_depth): ask the queue summary.
    bin/gannet queue summary -json -api "http://127.0.0.1:$G_HTTP" >"$WORK/$name.summary.json" 2>&1
    depth=$(BL jget "$WORK/$name.summary.json" totals.messages)
    [ "$depth" != "$acked" ] && note="${note:+$note; }$depth messages queued after $acked accepted"
  fi
  BL record "$RESULTS" scen=a sys="$sys" gen="$gen" rep="$rep" msgs="$acked" rate="$rate" cpu="$cpu" size="$SIZE" \
    conns="$CONNS" note="$note" error="$err"
  log "(a) $sys by $gen (rep $rep): accepted $acked at $(printf '%.1f' "$rate" 2>/dev/null)/s; cpu/1000 ${cpu:-?}${note:+; $note}"
  stop_relay "$sys" "$name"
  stop_pid "$sinkpid"
}

# suspend_gannet NAME: suspend delivery to example.test (the load's
# recipient domain) until resumed, over the admin API of the Gannet that
# gannet_config NAME wrote.
suspend_gannet() {
  if ! bin/gannet suspend -domain example.test -duration 0 -reason "bench: acceptance only" \
    -api "http://127.0.0.1:$G_HTTP" >"$WORK/$1.suspend" 2>&1; then
    FAIL="suspend: $(tail -1 "$WORK/$1.suspend" | cut -c1-100)"; return 1
  fi
}

# ceiling_run SCEN SIZE CONNS PERCONN MSGS [REP]: the same load straight into
# a sink, with both tool pairs: smtpblast -> smtpsink and smtp-source ->
# smtp-sink. SCEN a records for (a) and (b) alike; REP (default 1) numbers
# the repetition in (a)'s interleaved block.
ceiling_run() {
  local scen=$1 size=$2 conns=$3 per=$4 msgs=$5 rep=${6:-1}
  local name="ceiling-$scen-r$rep"
  log "($scen) ceiling (rep $rep): $msgs x $size over $conns connections"
  if start_sink "$name"; then
    local c0 c1 acked rate
    c0=$(BL cpu "$SINK_PID")
    run_fg bin/smtpblast -server "127.0.0.1:$SINK_PORT" -connections "$conns" -per-conn "$per" -messages "$msgs" \
      -size "$size" -duration "${RUN_TIMEOUT}s" "${BLAST_FLAGS[@]}" -json >"$WORK/$name.blast.json" 2>/dev/null
    c1=$(BL cpu "$SINK_PID")
    read -r acked rate < <(BL jget "$WORK/$name.blast.json" acked messages_per_second | tr '\n' ' ')
    [ "$acked" = - ] && acked=0
    local cpu
    cpu=$(awk -v a="$c1" -v b="$c0" -v n="$acked" 'BEGIN{ if (n>0) printf "%.3f", (a-b)*1000/n }')
    for s in a b c; do
      if { [ "$scen" = c ] && [ $s = c ]; } || { [ "$scen" != c ] && [ $s != c ]; }; then
        BL record "$RESULTS" scen=$s sys=ceiling-blast rep="$rep" msgs="$acked" rate="$rate" cpu="$cpu" size="$size" conns="$conns" \
          error="$([ "$acked" = 0 ] && echo "failed: smtpblast")"
      fi
    done
    stop_pid "$SINK_PID"
  fi
  # smtp-source sends -l bytes of body after a few header lines, without
  # pipelining (it has none), -d keeps each session's connection open.
  source_ceiling "$scen" "$name" "$size" "$conns" "$msgs" "$rep"
}

# source_ceiling SCEN NAME SIZE CONNS MSGS REP: smtp-source -> smtp-sink,
# recorded as ceiling-source for SCEN (a: for (a) and (b)); in (b2) with its
# latency probe (source_load).
source_ceiling() {
  local scen=$1 name=$2 size=$3 conns=$4 msgs=$5 rep=$6 probe=()
  start_psink "$name" || return
  local pid=$SINK_PID c0 c1 cpu
  c0=$(BL cpu "$pid")
  if [ "$scen" = b2 ]; then
    source_load "$name" "$SINK_PORT" "$conns" "$msgs" "$size"
    probe=(probe_acked="$PROBE_ACKED" dot_p50="$PROBE_P50" dot_p99="$PROBE_P99" dot_n="$PROBE_N")
  else
    run_source "$name" "$SINK_PORT" "$conns" "$msgs" "$size"
  fi
  c1=$(BL cpu "$pid")
  cpu=$(awk -v a="$c1" -v b="$c0" -v n="$msgs" 'BEGIN{printf "%.3f", (a-b)*1000/n}')
  for s in a b c b2; do
    if [ "$scen" = $s ] || { [ "$scen" = a ] && [ $s = b ]; }; then
      BL record "$RESULTS" scen=$s sys=ceiling-source rep="$rep" msgs="$msgs" rate="$SRC_RATE" cpu="$cpu" size="$size" \
        conns="$conns" "${probe[@]}" note="$SRC_NOTE" error="$SRC_ERR"
    fi
  done
  log "($scen) ceiling smtp-source -> smtp-sink: ${SRC_RATE}/s${probe:+; probe: end of data to 250 p50 $PROBE_P50 ms, p99 $PROBE_P99 ms}"
  stop_pid "$pid"
}

# ----------------------------------------------------------- (g) TLS --
# A test CA and two server certificates under $WORK/tls, made with openssl
# at the start of a run with (g): gannet.pem for Gannet's listener (what
# smtpblast -starttls -ca verifies: the address it dials, 127.0.0.1) and
# sink.pem for bin/smtpsink (what Gannet verifies: the host of relay_to,
# 127.0.0.1, as its ServerName; an MX host would be verified by its name,
# so both carry a .test name too). ECDSA P-256, valid two days.
TLS_DIR=$WORK/tls
make_tls_certs() {
  local n host
  mkdir -p "$TLS_DIR"
  (
    cd "$TLS_DIR" || exit 1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 \
      -subj "/CN=Gannet bench test CA" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" || exit 1
    for n in gannet:gannet.bench.example.test sink:sink.bench.example.test; do
      host=${n#*:} n=${n%%:*}
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$n.key" -out "$n.csr" -subj "/CN=$host" ||
        exit 1
      printf 'subjectAltName=DNS:%s,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
        "$host" >"$n.ext"
      openssl x509 -req -in "$n.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile "$n.ext" -out "$n.pem" ||
        exit 1
    done
  ) >"$WORK/tls-certs.log" 2>&1
}

# tls_toml: sets G_LISTENER_TOML and G_TLS_TOML (gannet_config) for (g):
# STARTTLS on Gannet's listener with gannet.pem; outbound TLS required,
# TLS 1.3, the certificate verified against the test CA ([tls] ca_file).
tls_toml() {
  G_LISTENER_TOML=$(printf 'tls_cert = "%s"\ntls_key = "%s"' "$TLS_DIR/gannet.pem" "$TLS_DIR/gannet.key")
  G_TLS_TOML=$(printf 'mode = "required"\nmin_version = "1.3"\nca_file = "%s"' "$TLS_DIR/ca.pem")
}

# tls_counts SINKURL [GANNET_API]: four lines, the sink's TLS handshakes and
# resumed ones, and Gannet's outbound full and resumed handshakes ("-"
# without GANNET_API or that metric).
tls_counts() {
  BL jurl "$1" tls_handshakes tls_resumed
  if [ -n "${2:-}" ]; then
    BL metric "$2/metrics" 'gannet_tls_handshakes_total{direction="out",resumed="false"}'
    BL metric "$2/metrics" 'gannet_tls_handshakes_total{direction="out",resumed="true"}'
  else
    printf -- '-\n-\n'
  fi
}

# tls_ceiling SIZE CONNS PERCONN MSGS: (g)'s ceiling, (b)'s smtpblast ->
# smtpsink with STARTTLS (smtpblast verifies sink.pem against the test CA).
tls_ceiling() {
  local size=$1 conns=$2 per=$3 msgs=$4 name=ceiling-g
  log "(g) ceiling: $msgs x $size over $conns connections, STARTTLS"
  if ! start_sink "$name" -chunking -tls-cert "$TLS_DIR/sink.pem" -tls-key "$TLS_DIR/sink.key"; then
    BL record "$RESULTS" scen=g sys=ceiling-blast error="failed: sink did not start"; return
  fi
  local c0 c1 acked rate conns_in cpu hs=()
  c0=$(BL cpu "$SINK_PID")
  run_fg bin/smtpblast -server "127.0.0.1:$SINK_PORT" -connections "$conns" -per-conn "$per" -messages "$msgs" \
    -size "$size" -duration "${RUN_TIMEOUT}s" "${BLAST_FLAGS[@]}" -starttls -ca "$TLS_DIR/ca.pem" -json \
    >"$WORK/$name.blast.json" 2>"$WORK/$name.blast.err"
  c1=$(BL cpu "$SINK_PID")
  read -r acked rate conns_in < <(BL jget "$WORK/$name.blast.json" acked messages_per_second connects | tr '\n' ' ')
  [ "$acked" = - ] && acked=0
  read -r -a hs < <(tls_counts "$SINK_URL" | tr '\n' ' ')
  cpu=$(awk -v a="$c1" -v b="$c0" -v n="$acked" 'BEGIN{ if (n>0) printf "%.3f", (a-b)*1000/n }')
  BL record "$RESULTS" scen=g sys=ceiling-blast msgs="$acked" rate="$rate" cpu="$cpu" size="$size" conns="$conns" \
    hs_in="$conns_in" hs_out="${hs[0]}" hs_out_resumed="${hs[1]}" \
    error="$([ "$acked" = 0 ] && echo "failed: smtpblast: $(head -c 100 "$WORK/$name.blast.err" | tr '\n' ' ')")"
  log "(g) ceiling: $acked at ${rate}/s, ${hs[0]} handshakes"
  stop_pid "$SINK_PID"
}

# ---------------------------------------------------------------- DKIM --
DKIM_KEY=$WORK/dkim/bench._domainkey.example.test.pem
make_dkim_key() {
  mkdir -p "$WORK/dkim"
  openssl genrsa -out "$DKIM_KEY" 2048 >/dev/null 2>&1
  openssl rsa -in "$DKIM_KEY" -pubout -outform DER 2>/dev/null | base64 -w0 >"$WORK/dkim/pub.b64"
}
dkim_toml() {
  cat <<EOF
[[dkim]]
domain = "example.test"
selector = "bench"
key_file = "$DKIM_KEY"
EOF
}
# dkim_probe NAME EXTRA: a separate Gannet with the same DKIM config sends
# one message to a dumping sink; sets DKIM_NOTE to what the sink got.
dkim_probe() {
  local name="$1-dkimprobe" FAIL="" saved_pid=$SYS_PID saved_port=$SYS_PORT
  DKIM_NOTE="DKIM unknown (probe failed)"
  mkdir -p "$WORK/$name.dump"
  if start_sink "$name" -dump "$WORK/$name.dump"; then
    local sp=$SINK_PID
    if gannet_config "$name" "$SINK_PORT" 5m 1000 100 "$2" && start_gannet "$name"; then
      local gp=$SYS_PID
      if BL send "127.0.0.1:$SYS_PORT" 1 >/dev/null 2>&1 && wait_sink "$SINK_URL" 1 20; then
        dkim_verdict "$WORK/$name.dump" ""
      fi
      stop_pid "$gp"
    fi
    stop_pid "$sp"
  fi
  SYS_PID=$saved_pid SYS_PORT=$saved_port
}
# dkim_verdict DUMPDIR HOW: sets DKIM_NOTE to what python3-dkim says of the
# first message in DUMPDIR, checked against $WORK/dkim/pub.b64; HOW (" via
# OpenDKIM milter" or empty) names the signer.
dkim_verdict() {
  local eml v
  eml=$(ls "$1"/*.eml 2>/dev/null | head -1)
  if [ -z "$eml" ]; then DKIM_NOTE="DKIM unknown (the sink dumped no message)"; return; fi
  v=$("$PY" "$LIB/benchlib.py" dkimcheck "$eml" "$WORK/dkim/pub.b64" 2>&1 | tail -1)
  case $v in
    absent) DKIM_NOTE="DKIM off (no DKIM-Signature at the sink)" ;;
    verified) DKIM_NOTE="DKIM rsa-sha256 on$2 (signature verified)" ;;
    *) DKIM_NOTE="DKIM on$2 ($v)" ;;
  esac
}

# start_opendkim NAME: a private OpenDKIM milter (Debian's opendkim) for
# Postfix in (c), signing as Gannet does there: rsa-sha256, relaxed/relaxed,
# d=example.test, s=bench, the same key. Mode s signs mail from InternalHosts
# (the loopback net the load comes from) whose From: domain is in Domain, and
# verifies nothing. It runs in the foreground (-f; tracked, so the trap stops
# it) as root, with its own config under $WORK, on a free loopback port.
# RequireSafeKeys is off because the key lies under /tmp, which everyone may
# write (opendkim refuses such a path otherwise; the key file itself is 0600).
# Sets ODK_PID and ODK_MILTER (the main.cf lines that hook it into Postfix),
# or FAIL.
start_opendkim() {
  local name=$1 port conf=$WORK/$1-opendkim.conf
  ODK_PID="" ODK_MILTER=""
  if [ ! -x "$OPENDKIM" ]; then FAIL="opendkim not installed"; return 1; fi
  if [ ! -s "$DKIM_KEY" ]; then FAIL="no DKIM key for opendkim"; return 1; fi
  port=$(ports 1)
  cat >"$conf" <<EOF
Mode                s
Domain              example.test
Selector            bench
KeyFile             $DKIM_KEY
RequireSafeKeys     no
Canonicalization    relaxed/relaxed
SignatureAlgorithm  rsa-sha256
InternalHosts       127.0.0.0/8
Socket              inet:$port@127.0.0.1
Background          no
Syslog              no
EOF
  bg "$name-opendkim" "$OPENDKIM" -f -x "$conf"
  ODK_PID=$BG_PID
  local waited why
  waited=$(BL waitport "127.0.0.1:$port" 10 "$ODK_PID")
  if [ "$waited" = exited ] || [ "$waited" = timeout ] || ! alive "$ODK_PID"; then
    why=$(grep -v '^\s*$' "$WORK/$name-opendkim.log" | tail -1 | cut -c1-100)
    [ "$waited" = timeout ] && why="port $port never answered in 10 s${why:+: $why}"
    FAIL="opendkim did not start: ${why:-it exited without a word}"
    stop_pid "$ODK_PID"
    ODK_PID=""
    return 1
  fi
  # tempfail: should the milter fail, Postfix answers 4xx instead of relaying
  # the message unsigned, so no unsigned message is counted as sent.
  ODK_MILTER=$(printf '%s\n' "smtpd_milters = inet:127.0.0.1:$port" 'non_smtpd_milters = $smtpd_milters' \
    'milter_default_action = tempfail' 'milter_protocol = 6')
}

# pf_dkim_probe NAME: a second Postfix with the same milter lines (so the
# same opendkim) relays one message to a dumping sink; sets DKIM_NOTE.
pf_dkim_probe() {
  local name="$1-dkimprobe" FAIL="" saved_pid=$SYS_PID saved_port=$SYS_PORT
  DKIM_NOTE="DKIM unknown (probe through Postfix + OpenDKIM failed)"
  mkdir -p "$WORK/$name.dump"
  if start_sink "$name" -dump "$WORK/$name.dump"; then
    local sp=$SINK_PID
    if start_postfix "$name" "$SINK_PORT" "$ODK_MILTER"; then
      if BL send "127.0.0.1:$SYS_PORT" 1 >"$WORK/$name.send.err" 2>&1 && wait_sink "$SINK_URL" 1 20; then
        dkim_verdict "$WORK/$name.dump" " via OpenDKIM milter"
      else
        DKIM_NOTE="DKIM unknown (probe through Postfix + OpenDKIM: $(tail -1 "$WORK/$name.send.err" | cut -c1-80))"
      fi
    else
      DKIM_NOTE="DKIM unknown (probe Postfix: $FAIL)"
    fi
    pf_stop "$WORK/$name"
    stop_pid "$sp"
  fi
  SYS_PID=$saved_pid SYS_PORT=$saved_port
}

# ---------------------------------------------------- (e) queued memory --
# scenario_e_smtp: E_QUEUED messages over SMTP into a Gannet that cannot
# deliver (relay_to a closed port, retry in an hour): RSS while it holds
# them, then a stop and a restart on the same spool.
scenario_e_smtp() {
  local name=gannet-e FAIL="" closed
  log "(e) gannet: $E_QUEUED messages queued behind a closed port"
  closed=$(ports 1) # nothing listens there: every delivery fails fast
  gannet_config "$name" "$closed" 1h $((E_QUEUED * 2 + 100000)) 1000
  if ! start_gannet "$name"; then
    BL record "$RESULTS" scen=e sys=gannet error="failed: $FAIL"; return
  fi
  local pid=$SYS_PID port=$SYS_PORT metrics="http://127.0.0.1:$G_HTTP/metrics" start_empty=$G_START_S
  sleep "$SETTLE"
  local rss0 rss1 rss2 acked rate
  rss0=$(BL rss "$pid")
  run_fg bin/smtpblast -server "127.0.0.1:$port" -connections "$CONNS" -messages "$E_QUEUED" -size "$SIZE" \
    -duration "${E_TIMEOUT}s" "${BLAST_FLAGS[@]}" -json >"$WORK/$name.blast.json" 2>/dev/null
  read -r acked rate < <(BL jget "$WORK/$name.blast.json" acked messages_per_second | tr '\n' ' ')
  [ "$acked" = - ] && acked=0
  if [ "$acked" = 0 ]; then
    BL record "$RESULTS" scen=e sys=gannet error="failed: no message accepted"; stop_pid "$pid"; return
  fi
  sleep "$SETTLE_LONG" # first delivery attempts fail and are rescheduled
  rss1=$(BL rss "$pid")
  local depth1 t0 t1 stop_s
  depth1=$(BL metric "$metrics" gannet_queue_depth)
  t0=$(date +%s.%N)
  stop_pid "$pid"
  t1=$(date +%s.%N)
  stop_s=$(awk -v a="$t1" -v b="$t0" 'BEGIN{printf "%.2f", a-b}')
  # Restart on the same spool: time from exec to the SMTP port answering.
  local restart
  if ! spawn_gannet "$name-restart" "$WORK/$name/gannet.toml" "$port" 120; then
    BL record "$RESULTS" scen=e sys=gannet queued="$acked" rss0="$rss0" rss1="$rss1" error="failed: restart: $FAIL"
    [ -n "$SPAWN_PID" ] && stop_pid "$SPAWN_PID"
    return
  fi
  pid=$SPAWN_PID restart=$SPAWN_S
  sleep "$SETTLE_LONG"
  rss2=$(BL rss "$pid")
  local depth2
  depth2=$(BL metric "$metrics" gannet_queue_depth)
  BL record "$RESULTS" scen=e sys=gannet queued="$acked" accept_rate="$rate" rss0="$rss0" rss1="$rss1" rss2="$rss2" \
    depth1="$depth1" depth2="$depth2" restart="$restart" start_empty="$start_empty" stop="$stop_s"
  log "(e) gannet: $acked queued; RSS $rss0 -> $rss1 KiB; restart ${restart}s (RSS $rss2 KiB, depth $depth2)"
  stop_pid "$pid"
}

# scenario_e_fill: (e) at its real size. bench/crashtest -mode fill writes
# E_FILL deferred messages (one recipient at one of 1000 domains, due in an
# hour) straight into a spool; then bin/gannet serve starts on it with
# relay_to a closed port. Measured: seconds from the exec to the SMTP
# banner, seconds until gannet_queue_depth reaches E_FILL (the queue is
# loaded after the listeners start; polled every 0.1 s), VmRSS once loaded,
# and VmRSS of an empty-spool start of the same config.
scenario_e_fill() {
  local name=gannet-e-fill FAIL="" closed n=$E_FILL maxq=$((E_FILL * 2 + 100000))
  log "(e) gannet: fill a spool with $n deferred messages, then start on it"
  if [ ! -x "$WORK/crashtest" ]; then
    BL record "$RESULTS" scen=e-fill sys=gannet error="failed: bench/crashtest did not build"; return
  fi
  closed=$(ports 1)
  # The same config on an empty spool: the baseline.
  gannet_config "$name-empty" "$closed" 1h "$maxq" 1000
  if ! start_gannet "$name-empty"; then
    BL record "$RESULTS" scen=e-fill sys=gannet error="failed: empty start: $FAIL"; return
  fi
  local pid=$SYS_PID start_empty=$G_START_S rss_empty
  sleep "$SETTLE_LONG"
  rss_empty=$(BL rss "$pid")
  stop_pid "$pid"
  gannet_config "$name" "$closed" 1h "$maxq" 1000
  run_fg timeout $((E_TIMEOUT + 600)) "$WORK/crashtest" -mode fill -n "$n" -dir "$WORK/$name/spool" \
    >"$WORK/$name.fill.json" 2>"$WORK/$name.fill.err"
  local filled fill_s
  read -r filled fill_s < <(BL jget "$WORK/$name.fill.json" messages seconds | tr '\n' ' ')
  if [ "$filled" = - ] || [ "$filled" = 0 ]; then
    BL record "$RESULTS" scen=e-fill sys=gannet error="failed: fill: $(tail -1 "$WORK/$name.fill.err" | cut -c1-100)"
    return
  fi
  log "(e) gannet: filled $filled in ${fill_s}s; starting on them"
  if ! spawn_gannet "$name" "$WORK/$name/gannet.toml" "$G_SMTP" "$E_TIMEOUT"; then
    BL record "$RESULTS" scen=e-fill sys=gannet queued="$filled" fill_s="$fill_s" error="failed: start: $FAIL"
    [ -n "$SPAWN_PID" ] && stop_pid "$SPAWN_PID"
    return
  fi
  pid=$SPAWN_PID
  local smtp_s=$SPAWN_S load_s depth note="" err=""
  read -r load_s depth < <(BL waitmetric "http://127.0.0.1:$G_HTTP/metrics" gannet_queue_depth "$filled" \
    "$E_TIMEOUT" "$SPAWN_T0")
  if [ "$load_s" = timeout ]; then
    load_s=""
    err="failed: queue depth $depth of $filled after $E_TIMEOUT s"
  fi
  sleep "$SETTLE_LONG"
  local rss_loaded peak took t0 t1 stop_s
  rss_loaded=$(BL rss "$pid")
  peak=$(BL hwm "$pid")
  # Gannet's own figure for the load, from its "queue loaded" log record.
  took=$(grep -m1 'queue loaded' "$WORK/$name-gannet.log" | grep -o 'took[=":]*[0-9.]*[a-zµ]*' | head -1 |
    sed 's/took[=":]*//')
  # Queue queries on the loaded queue, over the admin API (the trusted host
  # needs no key): each Q_REPS times one after the other; the median wall
  # time of the HTTP GET (connect to the last byte of the answer).
  local qapi="http://127.0.0.1:$G_HTTP/api/admin/queue/v1" q_dom q_rcpt q_grp
  q_dom=$(BL qtime "$qapi?domain=d7.example&limit=100" "$Q_REPS")
  q_rcpt=$(BL qtime "$qapi?recipient=user4242@&limit=100" "$Q_REPS")
  q_grp=$(BL qtime "$qapi?group_by=domain" "$Q_REPS")
  local qd_s qd_max qd_match qd_n qr_s qr_max qr_match qr_n qg_s qg_max qg_match qg_n
  read -r qd_s qd_max qd_match qd_n <<<"$q_dom"
  read -r qr_s qr_max qr_match qr_n <<<"$q_rcpt"
  read -r qg_s qg_max qg_match qg_n <<<"$q_grp"
  log "(e) gannet: queries at depth $depth (median of $Q_REPS): domain+limit 100 ${qd_s}s ($qd_n of $qd_match)," \
    "recipient substring ${qr_s}s ($qr_n of $qr_match), group-by domain ${qg_s}s ($qg_n groups of $qg_match)"
  t0=$(date +%s.%N)
  stop_pid "$pid"
  t1=$(date +%s.%N)
  stop_s=$(awk -v a="$t1" -v b="$t0" 'BEGIN{printf "%.2f", a-b}')
  BL record "$RESULTS" scen=e-fill sys=gannet queued="$filled" fill_s="$fill_s" start_empty="$start_empty" \
    rss_empty="$rss_empty" smtp_s="$smtp_s" load_s="$load_s" depth="$depth" rss_loaded="$rss_loaded" hwm="$peak" \
    took="$took" stop="$stop_s" q_reps="$Q_REPS" \
    q_dom_s="$qd_s" q_dom_max="$qd_max" q_dom_matched="$qd_match" q_dom_n="$qd_n" \
    q_rcpt_s="$qr_s" q_rcpt_max="$qr_max" q_rcpt_matched="$qr_match" q_rcpt_n="$qr_n" \
    q_grp_s="$qg_s" q_grp_max="$qg_max" q_grp_matched="$qg_match" q_grp_n="$qg_n" note="$note" error="$err"
  log "(e) gannet: $filled filled; SMTP after ${smtp_s}s, depth $depth after ${load_s:-?}s (log: ${took:-?});" \
    "RSS empty $rss_empty KiB, loaded $rss_loaded KiB (peak $peak); stop ${stop_s}s"
}

# ---------------------------------------------------- (f) idle conns --
# idle_run SYSTEM N: RSS (Gannet: VmRSS; Postfix: summed Pss of its process
# tree, as smtpd is a process per connection) before and with N idle clients.
idle_run() {
  local sys=$1 n=$2 name="$1-f" FAIL="" m0 m1
  log "(f) $sys: $n idle connections"
  case $sys in
    postfix) PF_PROCLIMIT=$((n + 100)) start_postfix "$name" "$(ports 1)" ;;
    gannet) gannet_config "$name" "$(ports 1)" 1h 1000 $((n + 100)) && start_gannet "$name" ;;
  esac
  if [ $? != 0 ]; then
    BL record "$RESULTS" scen=f sys="$sys" error="failed: $FAIL"; stop_relay "$sys" "$name"; return
  fi
  local pid=$SYS_PID port=$SYS_PORT mem
  [ "$sys" = postfix ] && mem=pss || mem=rss
  sleep "$SETTLE"
  m0=$(BL $mem "$pid")
  rm -f "$WORK/$name.ready" "$WORK/$name.ready.stop"
  bg "$name-idle" "$PY" -S "$LIB/benchlib.py" idle "127.0.0.1:$port" "$n" "$WORK/$name.ready" 600
  local ip=$BG_PID i
  for i in $(seq 1800); do [ -s "$WORK/$name.ready" ] || ! kill -0 "$ip" 2>/dev/null && break; sleep 0.1; done
  sleep "$SETTLE_LONG"
  m1=$(BL $mem "$pid")
  local held failed
  read -r held failed < <(BL jget "$WORK/$name.ready" held failed | tr '\n' ' ')
  BL record "$RESULTS" scen=f sys="$sys" conns="$held" refused="$failed" mem0="$m0" mem1="$m1" memkind="$mem" \
    error="$([ "$held" = - ] || [ "$held" = 0 ] && echo "failed: no connection held")"
  log "(f) $sys: $held held ($failed failed); $mem $m0 -> $m1 KiB"
  touch "$WORK/$name.ready.stop"
  stop_pid "$ip"
  stop_relay "$sys" "$name"
}

# -------------------------------------------------------- (i) cluster --
# (i): a cluster of three Gannet nodes (distinct ports, spools and node
# ids) sharing one private redis-server, delivering into one bin/smtpsink.
# The load is three bin/smtpblast runs side by side, one per node, with a
# third of the connections and messages each. i1 ("limit"): the site
# (example.test) has a max_message_rate of I_RATE for the fleet
# (limit_scope cluster): the sink's rate is measured over I_WINDOW s from
# 2 s into the load (past the lease burst of an idle limit), with the
# Redis round trips per 1,000 messages (gannet_cluster_redis_calls_total
# summed over the nodes). i2 ("fleet"): no limit, the fleet's end to end
# rate, against one node without a cluster ("one") taking the same load
# into the same kind of sink just before.

# start_redis: a private redis-server on a free loopback port, no
# persistence; sets REDIS_PORT and REDIS_PID, or FAIL.
start_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then FAIL="no redis-server (scripts/install-test-peers.sh)"; return 1; fi
  REDIS_PORT=$(ports 1)
  mkdir -p "$WORK/redis"
  bg redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK/redis" --save "" --appendonly no \
    --daemonize no --loglevel warning
  REDIS_PID=$BG_PID
  local w
  w=$(BL waitport "127.0.0.1:$REDIS_PORT" 10 "$REDIS_PID")
  case $w in timeout | exited) FAIL="redis-server did not start: $(tail -1 "$WORK/redis.log" | cut -c1-80)"; return 1 ;; esac
}

# cluster_toml RUN ID [RATE]: the [cluster] table of node ID of run RUN
# (each run its own key prefix), and with RATE the site's shared limit.
cluster_toml() {
  printf '[cluster]\nredis = "redis://127.0.0.1:%s/0"\nnode_id = "%s"\nkey_prefix = "bench-%s:"\n' "$REDIS_PORT" "$2" "$1"
  [ -n "${3:-}" ] && printf '\n[shaping."example.test"]\nmax_message_rate = "%s/s"\nlimit_scope = "cluster"\n' "$3"
  return 0
}

# fleet_run RUN NODES [RATE]: one run of (i). NODES Gannets (a cluster on
# $REDIS_PORT when more than one) deliver into a fresh sink and take
# I_MSGS messages; records scen=i sys=gannet-RUN.
fleet_run() {
  local run=$1 n=$2 rate=${3:-} FAIL="" pids=() smtp=() https=() k name extra
  log "(i) $run: $n node(s), $I_MSGS x $SIZE over $CONNS connections${rate:+, site limit $rate/s for the fleet}"
  if ! start_sink "i-$run"; then BL record "$RESULTS" scen=i sys="gannet-$run" error="failed: sink did not start"; return; fi
  local sinkpid=$SINK_PID sinkurl=$SINK_URL sinkport=$SINK_PORT
  for ((k = 0; k < n; k++)); do
    name="i-$run-n$k" extra=""
    [ "$n" -gt 1 ] && extra=$(cluster_toml "$run" "bench-node-$k" "$rate")
    gannet_config "$name" "$sinkport" 5m $((I_MSGS * 2 + 10000)) $((CONNS + 1000)) "$extra" && start_gannet "$name" || break
    pids+=("$SYS_PID") smtp+=("$SYS_PORT") https+=("$G_HTTP")
  done
  [ -z "$FAIL" ] && probe "127.0.0.1:${smtp[0]}" "$sinkurl"
  if [ -n "$FAIL" ]; then
    log "(i) $run failed: $FAIL"
    BL record "$RESULTS" scen=i sys="gannet-$run" error="failed: $FAIL"
    for k in "${pids[@]}"; do stop_pid "$k"; done
    stop_pid "$sinkpid"; return
  fi
  local base cpu0 cpu1 t0 blasts=() conns=$(((CONNS + n - 1) / n)) per=$(((I_MSGS + n - 1) / n))
  base=$(BL sinkcount "$sinkurl")
  rm -f "$WORK/i-$run.target"
  bg "i-$run-watch" "$PY" -S "$LIB/benchlib.py" sinkwatch "$sinkurl" "$WORK/i-$run.target" $((RUN_TIMEOUT + 120)) "$WORK/i-$run.watch.json"
  local watchpid=$BG_PID
  cpu0=$(BL cpu "${pids[@]}")
  t0=$(date +%s.%N)
  for ((k = 0; k < n; k++)); do
    bg "i-$run-blast$k" bin/smtpblast -server "127.0.0.1:${smtp[$k]}" -connections "$conns" -per-conn "$PER_CONN" \
      -messages "$per" -size "$SIZE" -duration "${RUN_TIMEOUT}s" "${BLAST_FLAGS[@]}" -progress 0 -json
    blasts+=("$BG_PID")
  done
  # The limited rate at the sink over a window, once the lease burst is past.
  local c0 c1 w0 w1 win=""
  if [ -n "$rate" ]; then
    sleep 2
    c0=$(BL sinkcount "$sinkurl") w0=$(date +%s.%N)
    sleep "$I_WINDOW"
    c1=$(BL sinkcount "$sinkurl") w1=$(date +%s.%N)
    win=$(awk -v a="$c1" -v b="$c0" -v x="$w1" -v y="$w0" 'BEGIN{ printf "%.1f", (a-b)/(x-y) }')
  fi
  for k in "${blasts[@]}"; do wait "$k" 2>/dev/null; done
  local acked=0 failed=0 a f
  for ((k = 0; k < n; k++)); do
    read -r a f < <(BL jget "$WORK/i-$run-blast$k.log" acked failed | tr '\n' ' ')
    [[ "$a" =~ ^[0-9]+$ ]] && acked=$((acked + a))
    [[ "$f" =~ ^[0-9]+$ ]] && failed=$((failed + f))
  done
  echo $((base + acked)) >"$WORK/i-$run.target"
  wait "$watchpid" 2>/dev/null
  cpu1=$(BL cpu "${pids[@]}")
  local done_ts count timeout secs="" e2e="" delivered=$acked note="" calls="" per1k="" err="" cpu
  read -r done_ts count timeout < <(BL jget "$WORK/i-$run.watch.json" done_ts count timeout | tr '\n' ' ')
  if [ "$timeout" = True ]; then
    delivered=$((count > base ? count - base : 0))
    note="partial: $delivered of $acked delivered within the cap"
  fi
  [ "$failed" != 0 ] && note="${note:+$note; }$failed refused"
  [ "$acked" = 0 ] && err="failed: no message accepted"
  if [ "$done_ts" != - ] && [ "$delivered" -gt 0 ]; then
    secs=$(awk -v a="$done_ts" -v b="$t0" 'BEGIN{printf "%.3f", a-b}')
    e2e=$(awk -v n="$delivered" -v s="$secs" 'BEGIN{ if (s>0) printf "%.1f", n/s }')
  fi
  local leases="" lease1k=""
  if [ "$n" -gt 1 ]; then
    # Every round trip, by op over the nodes; the leases of the rate's
    # tokens (op="rate") get their own column, the rest go in the note.
    local op byop=""
    calls=0
    for op in rate conn rules heartbeat other; do
      f=0
      for k in "${https[@]}"; do
        a=$(BL metric "http://127.0.0.1:$k/metrics" "gannet_cluster_redis_calls_total{op=\"$op\"}")
        [[ "$a" =~ ^[0-9]+$ ]] && f=$((f + a))
      done
      calls=$((calls + f))
      [ "$op" = rate ] && leases=$f
      [ "$delivered" -gt 0 ] && byop="$byop, $op $(awk -v c="$f" -v n="$delivered" 'BEGIN{printf "%.1f", c*1000/n}')"
    done
    if [ "$delivered" -gt 0 ]; then
      per1k=$(awk -v c="$calls" -v n="$delivered" 'BEGIN{printf "%.1f", c*1000/n}')
      lease1k=$(awk -v c="$leases" -v n="$delivered" 'BEGIN{printf "%.1f", c*1000/n}')
      note="${note:+$note; }Redis calls / 1000 msgs by op: ${byop#, }"
    fi
  fi
  cpu=$(awk -v a="$cpu1" -v b="$cpu0" -v n="$delivered" 'BEGIN{ if (n>0) printf "%.3f", (a-b)*1000/n }')
  BL record "$RESULTS" scen=i sys="gannet-$run" nodes="$n" msgs="$delivered" secs="$secs" rate="$e2e" cpu="$cpu" \
    limit="$rate" window_rate="$win" window_s="$I_WINDOW" redis_calls="$calls" redis_per_1000="$per1k" \
    redis_rate_per_1000="$lease1k" \
    size="$SIZE" conns="$CONNS" note="$note" error="$err"
  log "(i) $run: end to end ${e2e:-?}/s in ${secs:-?}s${win:+; ${win}/s at the sink against a limit of $rate/s}${per1k:+; $per1k Redis calls / 1000 msgs}"
  for k in "${pids[@]}"; do stop_pid "$k"; done
  stop_pid "$sinkpid"
}

# ----------------------------------------------- (h) provider personas --
# Issue #22: a mailing to many providers that each push back in their own
# way. bench/lib/personas.py makes 50 personas for bin/smtpsink (-persona:
# hidden rate and connection limit, their replies, deferral bursts,
# greylisting, unknown users) on 127.0.10.1-50, and 10,000 domains over
# them; the sink serves their MX records (-dns). Gannet delivers by MX
# lookup ([resolver] nameservers = the sink's DNS, [delivery] smtp_port =
# the personas' port, no relay_to), configured three ways (h_shaping_toml).
# Knobs: BENCH_H_MSGS (1000000; quick 30000), BENCH_H_SCALE (times every
# hidden rate: 1, 20-400/s a persona; quick 0.25), BENCH_H_MODES ("static
# backoff tune"), BENCH_H_TIMEOUT (cap per mode, s; default 3x the planned
# lower bound, at least 60), BENCH_H_CONNS (injecting connections, 20),
# BENCH_H_TUNE_WINDOW (tune_window of the tune mode, "5s"), BENCH_H_GREYLIST
# (0: no persona greylists).
if [ "$QUICK" = 1 ]; then d_h_msgs=30000 d_h_scale=0.25; else d_h_msgs=1000000 d_h_scale=1; fi
H_MSGS=${BENCH_H_MSGS:-$d_h_msgs}
H_SCALE=${BENCH_H_SCALE:-$d_h_scale}
H_MODES=${BENCH_H_MODES:-"static backoff tune"}
H_TIMEOUT=${BENCH_H_TIMEOUT:-}
H_CONNS=${BENCH_H_CONNS:-20}
H_TUNE_WINDOW=${BENCH_H_TUNE_WINDOW:-5s}
H_GREYLIST=${BENCH_H_GREYLIST:-1} # 0: no persona greylists
H_DIR=$WORK/personas
BL_PERSONAS() { "$PY" -S "$LIB/personas.py" "$@"; }

# h_shaping_toml MODE: the [shaping.default] (and rules) of a mode (no
# backslashes: gannet_config passes it through awk -v, which eats them). static:
# every site gets the same guessed limits (Gannet's adaptive [backoff] cut on
# 421s, on by default, stays on in every mode); backoff: the same, and a
# site enters backoff mode on a rate-limit reply or over 10% deferrals;
# tune: self-tuning under a ceiling of 500/s, with a short tune_window for a
# run of minutes (BENCH_H_TUNE_WINDOW, in seconds: "5s").
h_shaping_toml() {
  printf '[shaping.default]\nconnection_limit = 10\nmax_deliveries_per_connection = 100\n'
  case $1 in
    static) echo 'max_message_rate = "100/s"' ;;
    backoff)
      cat <<'TOML'
max_message_rate = "100/s"
backoff_on_deferral_rate = 0.1
backoff_window = "30s"
backoff_min_attempts = 50
backoff_rate = "20/s"
backoff_retry_after = "5s"
backoff_to_normal_after = "60s"

[[shaping_rule]]
regex = '4[.]7[.]28|[Rr]ate limit'
action = "backoff"
TOML
      ;;
    tune)
      # tune_min_attempts scaled with the window (the defaults: 20 in 30 s),
      # else a site tuned under 20 / tune_window never has a window that
      # counts again, and stays there.
      local win=${H_TUNE_WINDOW%s}
      printf 'max_message_rate = "500/s"\ntune = true\ntune_window = "%s"\ntune_min_attempts = %d\n' "$H_TUNE_WINDOW" \
        "$(awk -v w="$win" 'BEGIN{n=int(20*w/30+0.999); if (n<2) n=2; print n}')"
      ;;
  esac
}

# h_plan: the personas, the domains and the planned lower bound (H_BOUND).
h_plan() {
  local out
  H_PORT=$(ports 1)
  out=$(BL_PERSONAS gen "$H_MSGS" "$H_DIR" "$H_PORT" 22 "$H_SCALE" "$H_GREYLIST") || return 1
  read -r H_NP H_ND H_BOUND H_RATE <<<"$out"
  log "(h) $H_NP personas on 127.0.10.1-$H_NP:$H_PORT, $H_ND domains; hidden rates $H_RATE/s in all;" \
    "planned lower bound ${H_BOUND}s for $H_MSGS messages"
}

# h_run MODE: one mode of (h). A fresh sink (its personas' counters and
# buckets start over) and a fresh Gannet; smtpblast injects H_MSGS messages
# as fast as Gannet takes them while it delivers; done when every injected
# message is accepted by its persona or refused as an unknown user, or at
# the cap (then "not finished").
h_run() {
  local mode=$1 name="gannet-h-$1" FAIL="" hp url dns cap
  cap=${H_TIMEOUT:-$(awk -v b="$H_BOUND" 'BEGIN{c=3*b; if (c<60) c=60; printf "%d", c}')}
  log "(h) $mode: $H_MSGS messages to $H_ND domains behind $H_NP personas (cap ${cap}s)"
  hp=$(ports 1)
  # Not -quiet: its log ends with a line per persona (BENCH_KEEP=1 keeps it).
  bg "$name-sink" bin/smtpsink -persona "$H_DIR/personas.toml" -dns -http "127.0.0.1:$hp"
  local sinkpid=$BG_PID
  url="http://127.0.0.1:$hp/stats"
  if ! BL waitsink "$url" 0 10; then
    BL record "$RESULTS" scen=h sys=gannet mode="$mode" \
      error="failed: persona sink did not start: $(tail -1 "$WORK/$name-sink.log" | cut -c1-80)"
    stop_pid "$sinkpid"; return
  fi
  dns=$(curl -s "http://127.0.0.1:$hp/dns")
  gannet_config "$name" 1 5s $((H_MSGS * 2 + 100000)) 1000 "$(h_shaping_toml "$mode")"
  # MX delivery through the sink's DNS to the personas' port; retries
  # compressed to the bench's time scale (5 s, doubling up to 20 s; a
  # greylisted first attempt after 12 s, past the personas' 5 or 10 s).
  sed -i -e "s|^relay_to = .*|relay_to = \"\"\nsmtp_port = $H_PORT|" -e "s|^nameservers = .*|nameservers = [\"$dns\"]|" \
    -e 's|^max_retry_interval = .*|max_retry_interval = "20s"\ngreylist_retry = "12s"|' "$WORK/$name/gannet.toml"
  if [ -z "$dns" ] || ! start_gannet "$name"; then
    BL record "$RESULTS" scen=h sys=gannet mode="$mode" error="failed: ${FAIL:-no DNS address from the sink}"
    stop_relay gannet "$name"; stop_pid "$sinkpid"; return
  fi
  rm -f "$WORK/$name.target"
  bg "$name-watch" "$PY" -S "$LIB/personas.py" watch "$url" "$WORK/$name.target" "$cap" "$H_DIR/plan.json" \
    "$WORK/$name.watch.json"
  local watchpid=$BG_PID cpu0 cpu1 t0 t1 acked rate failed
  cpu0=$(BL cpu "$SYS_PID")
  t0=$(date +%s.%N)
  run_fg bin/smtpblast -server "127.0.0.1:$SYS_PORT" -connections "$H_CONNS" -per-conn 1000 -messages "$H_MSGS" \
    -domains "@$H_DIR/domains.txt" -size "$SIZE" -duration "${cap}s" "${BLAST_FLAGS[@]}" -progress 0 -json \
    >"$WORK/$name.blast.json" 2>"$WORK/$name.blast.err"
  t1=$(date +%s.%N)
  read -r acked rate failed < <(BL jget "$WORK/$name.blast.json" acked messages_per_second failed | tr '\n' ' ')
  [ "$acked" = - ] && acked=0
  echo "$acked" >"$WORK/$name.target"
  wait "$watchpid" 2>/dev/null
  cpu1=$(BL cpu "$SYS_PID")
  local done_ts timeout count bound who acc unk brk b_rate b_conns defd d_burst d_grey most depth ts90 ts99
  read -r done_ts timeout count bound who acc unk brk b_rate b_conns defd d_burst d_grey most ts90 ts99 < <(BL jget \
    "$WORK/$name.watch.json" done_ts timeout count bound_s bound_persona accepted unknown breaches rate conns \
    deferred burst greylist most_breaches ts90 ts99 | tr '\n' ' ')
  depth=$(BL metric "http://127.0.0.1:$G_HTTP/metrics" gannet_queue_depth)
  local secs inject_s cpu note=""
  secs=$(awk -v a="$done_ts" -v b="$t0" 'BEGIN{ if (a != "-") printf "%.1f", a-b }')
  ts90=$(awk -v a="$ts90" -v b="$t0" 'BEGIN{ if (a != "-") printf "%.1f", a-b }')
  ts99=$(awk -v a="$ts99" -v b="$t0" 'BEGIN{ if (a != "-") printf "%.1f", a-b }')
  inject_s=$(awk -v a="$t1" -v b="$t0" 'BEGIN{printf "%.1f", a-b}')
  cpu=$(awk -v a="$cpu1" -v b="$cpu0" -v n="$acked" 'BEGIN{ if (n>0) printf "%.3f", (a-b)*1000/n }')
  [ "$failed" != - ] && [ "$failed" != 0 ] && note="$failed refused at injection"
  if [ "$timeout" = True ]; then
    # Where the mail still queued is: by persona, with its site's rate now.
    bin/gannet queue summary -json -api "http://127.0.0.1:$G_HTTP" >"$WORK/$name.summary.json" 2>&1
    note="${note:+$note; }queued at the cap: $(BL_PERSONAS leftover "$WORK/$name.summary.json" "$H_DIR/plan.json")"
  fi
  BL record "$RESULTS" scen=h sys=gannet mode="$mode" msgs="$acked" inject_s="$inject_s" inject_rate="$rate" \
    secs="$secs" secs90="$ts90" secs99="$ts99" finished="$([ "$timeout" = True ] && echo 0 || echo 1)" cap="$cap" delivered="$acc" unknown="$unk" \
    count="$count" bound="$bound" bound_persona="$who" planned_bound="$H_BOUND" breaches="$brk" breach_rate="$b_rate" \
    breach_conns="$b_conns" deferred="$defd" def_burst="$d_burst" def_grey="$d_grey" most_breaches="$most" \
    depth_end="$depth" personas="$H_NP" domains="$H_ND" scale="$H_SCALE" hidden_rate="$H_RATE" cpu="$cpu" \
    tune_window="$H_TUNE_WINDOW" greylist="$H_GREYLIST" note="$note"
  log "(h) $mode: $acked injected in ${inject_s}s; $acc delivered + $unk unknown in ${secs:-?}s (lower bound" \
    "${bound}s, $who)$([ "$timeout" = True ] && echo ", NOT FINISHED at the cap"); deferrals $defd, breaches $brk"
  stop_relay gannet "$name"
  stop_pid "$sinkpid"
}

# scenario_h: the personas once, then each mode on a fresh sink and Gannet.
scenario_h() {
  local m
  if ! has_sys gannet; then log "(h): gannet not in BENCH_SYSTEMS: not run"; return; fi
  if ! h_plan; then BL record "$RESULTS" scen=h sys=gannet error="failed: personas.py gen"; return; fi
  for m in $H_MODES; do h_run "$m"; done
}

# ---------------------------------------------------------------- main --
main() {
  log "work dir $WORK; quick=$QUICK systems='$SYSTEMS' scenarios='$SCENARIOS' a_repeat=$A_REPEAT"
  if ! bash scripts/install-test-peers.sh >"$WORK/peers.log" 2>&1; then
    cat "$WORK/peers.log" >&2
    log "install-test-peers failed; going on with what is installed"
  fi
  for t in bin/smtpblast bin/smtpsink bin/gannet /usr/sbin/smtp-source /usr/sbin/smtp-sink /usr/sbin/postfix "$PY" openssl; do
    if ! command -v "$t" >/dev/null 2>&1 && [ ! -x "$t" ]; then
      log "missing tool $t (run 'make build' and scripts/install-test-peers.sh)"
      exit 1
    fi
  done
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  NOFILE=$(ulimit -n)
  if has_scen f && [ "$NOFILE" -lt $((F_CONNS + 200)) ]; then
    F_CONNS=$((NOFILE - 200))
    log "open file limit $NOFILE: (f) uses $F_CONNS connections"
  fi
  BLAST_FLAGS=()
  [ "$PIPELINING" = 1 ] && BLAST_FLAGS+=(-pipelining)
  if ! [[ "$A_REPEAT" =~ ^[0-9]+$ ]] || [ "$A_REPEAT" -lt 1 ]; then
    log "BENCH_A_REPEAT=$A_REPEAT is not a positive count: using 1"
    A_REPEAT=1
  fi
  A_REPEAT=$((10#$A_REPEAT)) # "08" is eight, not a bad octal number

  # ----------------------------------------------------------------- run --
  START=$(date +%s)
  LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
  PHASES="" PHASE_T=$START
  if has_scen c && { has_sys gannet || has_sys postfix || has_sys gannet-boring || has_sys gannet-openssl; }; then make_dkim_key; fi
  if has_scen g && ! make_tls_certs; then
    log "(g): making the test certificates failed: $(tail -1 "$WORK/tls-certs.log")"
    BL record "$RESULTS" scen=g sys=gannet error="failed: test certificates: $(tail -1 "$WORK/tls-certs.log" | cut -c1-80)"
    SCENARIOS=" $SCENARIOS "
    SCENARIOS=${SCENARIOS/ g / }
  fi
  if { has_scen e && has_sys gannet; } || { { has_scen b || has_scen d; } && has_sys gannet-query; }; then
    # (e) and gannet-query fill spools with bench/crashtest (built with the Makefile's GOFLAGS).
    if ! GOFLAGS="-buildvcs=false -tags=pebblegozstd" "${GO:-go}" build -o "$WORK/crashtest" ./bench/crashtest \
      >"$WORK/crashtest-build.log" 2>&1; then
      log "building bench/crashtest failed: $(tail -1 "$WORK/crashtest-build.log")"
    fi
    phase build
  fi
  if has_scen a; then
    # Postfix's (a) runs (about a minute each at full size) once each; then
    # the ceiling and Gannet's runs interleaved, A_REPEAT times, so that each
    # Gannet run is compared with a ceiling measured seconds before it (the
    # CPU speed of a shared VM drifts within minutes). report.py takes the
    # median run of each and the median of the per-rep ratios. The ceiling
    # runs also stand as (b)'s ceiling.
    if has_sys postfix; then
      accept_run postfix blast
      accept_run postfix source
      phase a-postfix
    fi
    if has_sys ceiling || has_sys gannet; then
      for ((rep = 1; rep <= A_REPEAT; rep++)); do
        rep_t0=$(date +%s)
        has_sys ceiling && ceiling_run a "$SIZE" "$CONNS" "$PER_CONN" "$MSGS" "$rep"
        if has_sys gannet; then
          accept_run gannet blast "$rep"
          accept_run gannet source "$rep"
        fi
        log "(a) rep $rep of $A_REPEAT took $(($(date +%s) - rep_t0))s"
      done
      phase "a-ceiling+gannet-x$A_REPEAT"
    fi
  elif has_scen b || has_scen d; then
    has_sys ceiling && ceiling_run a "$SIZE" "$CONNS" "$PER_CONN" "$MSGS"
    phase ceiling
  fi
  if has_scen b || has_scen d; then
    tr=""; has_scen d && tr=1
    has_sys postfix && relay_run postfix b "$SIZE" "$CONNS" "$PER_CONN" "$MSGS" "$tr"
    has_sys gannet && relay_run gannet b "$SIZE" "$CONNS" "$PER_CONN" "$MSGS" "$tr"
    # gannet-query: the same load right after, with Q_FILL deferred messages
    # pre-filled and a group-by domain query once a second (issue #19).
    has_sys gannet-query && relay_run gannet-query b "$SIZE" "$CONNS" "$PER_CONN" "$MSGS" "$tr"
    if has_sys gannet-lua; then
      # The same load with the reference policy script's hooks on, right
      # after the plain run so that the two see the same machine.
      FAIL=""
      if policy_script; then
        relay_run gannet-lua b "$SIZE" "$CONNS" "$PER_CONN" "$MSGS" "$tr" "$(policy_toml)"
      else
        log "(b) gannet-lua failed: $FAIL"
        BL record "$RESULTS" scen=b sys=gannet-lua error="failed: $FAIL"
        [ "$tr" = 1 ] && BL record "$RESULTS" scen=d sys=gannet-lua error="failed: $FAIL"
      fi
    fi
    if has_sys gannet-events; then
      # The same load with two webhook event sinks on, right after the plain
      # run (issue #23: at least 90% of its rate end to end).
      WH_PORT=$(ports 1)
      bg webhook-sink /usr/bin/python3 "$LIB/webhook_sink.py" "$WH_PORT" bench-webhook-secret
      WH_PID=$BG_PID
      for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$WH_PORT/count" && break; sleep 0.1; done
      local whcpu0
      whcpu0=$(BL cpu "$WH_PID")
      relay_run gannet-events b "$SIZE" "$CONNS" "$PER_CONN" "$MSGS" "" "$(events_toml)"
      # The receiver shares the 2 cores: its CPU is part of the price.
      log "(b) gannet-events: records the webhook receiver took by the end of the run: $(curl -s "http://127.0.0.1:$WH_PORT/count"); its CPU: $(awk -v a="$(BL cpu "$WH_PID")" -v b="$whcpu0" 'BEGIN{ printf "%.2f", a-b }') s"
      stop_pid "$WH_PID"
    fi
    phase "b+d"
  fi
  if has_scen b2; then
    # smtp-source (no pipelining) into each relay delivering to smtp-sink;
    # its own ceiling right before the relays, with the same latency probe.
    has_sys ceiling && source_ceiling b2 ceiling-b2 "$SIZE" "$B2_CONNS" "$B2_MSGS" 1
    has_sys postfix && relay_run postfix b2 "$SIZE" "$B2_CONNS" 0 "$B2_MSGS" ""
    has_sys gannet && relay_run gannet b2 "$SIZE" "$B2_CONNS" 0 "$B2_MSGS" ""
    phase b2
  fi
  if has_scen g; then
    # (b) with STARTTLS on both sides; compared with (b)'s plain Gannet run.
    has_sys ceiling && tls_ceiling "$SIZE" "$CONNS" "$PER_CONN" "$G_MSGS"
    has_sys gannet && relay_run gannet g "$SIZE" "$CONNS" "$PER_CONN" "$G_MSGS" ""
    phase g
  fi
  if has_scen c; then
    cper=$(((C_MSGS + C_CONNS - 1) / C_CONNS))
    has_sys ceiling && ceiling_run c "$C_SIZE" "$C_CONNS" "$cper" "$C_MSGS"
    has_sys postfix && relay_run postfix c "$C_SIZE" "$C_CONNS" "$cper" "$C_MSGS" ""
    has_sys gannet && relay_run gannet c "$C_SIZE" "$C_CONNS" "$cper" "$C_MSGS" "" "$(dkim_toml)"
    # The BoringCrypto build (make build-boring), when there is one.
    if has_sys gannet-boring; then
      if [ -x bin/boring/gannet ]; then
        relay_run gannet-boring c "$C_SIZE" "$C_CONNS" "$cper" "$C_MSGS" "" "$(dkim_toml)"
      else
        log "(c) gannet-boring: no bin/boring/gannet (make build-boring): not run"
      fi
    fi
    # The OpenSSL RSA build (make build-openssl), when there is one.
    if has_sys gannet-openssl; then
      if [ -x bin/openssl/gannet ]; then
        relay_run gannet-openssl c "$C_SIZE" "$C_CONNS" "$cper" "$C_MSGS" "" "$(dkim_toml)"
      else
        log "(c) gannet-openssl: no bin/openssl/gannet (make build-openssl): not run"
      fi
    fi
    phase c
  fi
  if has_scen e && has_sys gannet; then
    scenario_e_smtp
    scenario_e_fill
    phase e
  fi
  if has_scen f; then
    has_sys postfix && idle_run postfix "$F_PF_CONNS"
    has_sys gannet && idle_run gannet "$F_CONNS"
    phase f
  fi
  if has_scen i && has_sys gannet; then
    # One node, then the fleet of three with the site limit (i1) and
    # without (i2), one run right after the other.
    fleet_run one 1
    FAIL=""
    if start_redis; then
      fleet_run limit 3 "$I_RATE"
      fleet_run fleet 3
      stop_pid "$REDIS_PID"
    else
      log "(i) $FAIL"
      BL record "$RESULTS" scen=i sys=gannet-limit error="failed: $FAIL"
      BL record "$RESULTS" scen=i sys=gannet-fleet error="failed: $FAIL"
    fi
    phase i
  fi
  if has_scen h; then
    scenario_h
    phase h
  fi
  ELAPSED=$(($(date +%s) - START))
  log "timing: ${PHASES# } (total ${ELAPSED}s)"

  # -------------------------------------------------------------- report --
  mkdir -p "$OUT_DIR"
  HOST=$(hostname -s 2>/dev/null || hostname)
  STAMP=$(date +%Y-%m-%d-%H%M)
  OUT="$OUT_DIR/$STAMP-$HOST.md" LATEST="$OUT_DIR/latest.md"
  # A quick run checks the script; it does not replace the latest real table.
  [ "$QUICK" = 1 ] && OUT="$OUT_DIR/$STAMP-$HOST-quick.md" LATEST="$OUT_DIR/latest-quick.md"
  "$PY" "$LIB/report.py" "$RESULTS" \
    quick="$QUICK" host="$HOST" elapsed="$ELAPSED" conns="$CONNS" per_conn="$PER_CONN" msgs="$MSGS" size="$SIZE" a_repeat="$A_REPEAT" \
    c_msgs="$C_MSGS" c_conns="$C_CONNS" c_size="$C_SIZE" d_rate="$D_RATE" e_queued="$E_QUEUED" e_fill="$E_FILL" \
    b2_conns="$B2_CONNS" b2_msgs="$B2_MSGS" b2_probe_rate="$B2_PROBE_RATE" g_msgs="$G_MSGS" \
    i_rate="$I_RATE" i_msgs="$I_MSGS" i_window="$I_WINDOW" \
    phases="${PHASES# }" \
    f_conns="$F_CONNS" f_pf_conns="$F_PF_CONNS" pipelining="$PIPELINING" h_msgs="$H_MSGS" h_modes="$H_MODES" \
    load_start="$LOAD_START" load_end="$(cut -d' ' -f1-3 /proc/loadavg)" \
    gannet_rev="$(git rev-parse --short HEAD 2>/dev/null || echo ?)" >"$OUT"
  cp "$OUT" "$LATEST"
  cat "$OUT"
  log "wrote $OUT and $LATEST in ${ELAPSED}s"
}

main &
MAIN_PID=$!
wait "$MAIN_PID"
