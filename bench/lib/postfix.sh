# Private Postfix instance for the benchmark (sourced by bench/run.sh).
#
# Each instance lives in one directory: etc/ (main.cf, master.cf), queue/,
# data/ and maillog. It listens on 127.0.0.1:<port> only and relays
# everything for 127.0.0.0/8 to [127.0.0.1]:<relay port>. It never touches
# /etc/postfix or /var/spool/postfix, and is started and stopped with
# the master daemon directly, as "postfix -c DIR/etc start|stop" would do
# after its (slow) checks (as root: master drops to mail_owner).

BENCH_LIB=${BENCH_LIB:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}

# pf_create DIR SMTP_PORT RELAY_PORT [EXTRA_MAIN_CF_LINES]
# The first instance is set up by "postfix check", which creates the queue
# directories with their owners and modes but takes seconds; later ones copy
# its empty queue directory instead (PF_SKELETON).
pf_create() {
  local dir=$1 port=$2 relay=$3 extra=${4:-}
  mkdir -p "$dir/etc" "$dir/data"
  sed -e "s|@DIR@|$dir|g" -e "s|@RELAYPORT@|$relay|g" \
      -e "s|@PROCLIMIT@|${PF_PROCLIMIT:-300}|g" \
      "$BENCH_LIB/postfix-main.cf.tmpl" | awk -v extra="$extra" '{ if ($0 == "@EXTRA@") print extra; else print }' \
      >"$dir/etc/main.cf"
  sed -e "s|@SMTPD_LISTEN@|127.0.0.1:$port|" "$BENCH_LIB/postfix-master.cf.tmpl" >"$dir/etc/master.cf"
  # master runs as root and hands the data directory to mail_owner.
  chown postfix "$dir/data"
  if [ -n "${PF_SKELETON:-}" ] && [ -d "$PF_SKELETON" ]; then
    cp -a "$PF_SKELETON" "$dir/queue"
    return 0
  fi
  mkdir -p "$dir/queue"
  if ! postfix -c "$dir/etc" check >/dev/null 2>&1; then
    # Postfix reports fatal errors of its commands to syslog only, unless
    # stderr is a terminal: run it once more under script(1) to show them.
    script -qc "postfix -c $dir/etc check" /dev/null | tail -3 >&2
    return 1
  fi
  if [ -n "${PF_SKELETON:-}" ]; then
    cp -a "$dir/queue" "$PF_SKELETON"
    rm -rf "$PF_SKELETON/pid"/* 2>/dev/null || true
  fi
}

# pf_start DIR: start master (what "postfix start" does after its checks,
# which pf_create has done) and wait until its pid file exists.
pf_start() {
  local dir=$1 i
  local master
  master=$(postconf -c "$dir/etc" -xh daemon_directory)/master
  rm -f "$dir/queue/pid/master.pid"
  if ! "$master" -c "$dir/etc" -w >"$dir/start.log" 2>&1; then
    cat "$dir/start.log" >&2
    tail -3 "$dir/maillog" >&2 2>/dev/null
    return 1
  fi
  for i in $(seq 100); do
    [ -s "$dir/queue/pid/master.pid" ] && return 0
    sleep 0.1
  done
  echo "postfix: master did not write its pid file" >&2
  return 1
}

# pf_master_pid DIR
pf_master_pid() { tr -d ' \n' <"$1/queue/pid/master.pid" 2>/dev/null; }

# pf_stop DIR: stop the instance (postfix stop, then SIGKILL stragglers).
pf_stop() {
  local dir=$1 pid i
  [ -f "$dir/etc/main.cf" ] || return 0
  pid=$(pf_master_pid "$dir")
  # Already stopped (the pid file outlives master): nothing to do.
  if [ -z "$pid" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != master ]; then return 0; fi
  # What "postfix stop" does: SIGTERM to master, which stops its children.
  kill -TERM "$pid" 2>/dev/null
  if [ -n "$pid" ]; then
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = master ]; then
      # Kill the whole tree of this master only.
      kill -9 $(bench_descendants "$pid") "$pid" 2>/dev/null || true
    fi
  fi
}
