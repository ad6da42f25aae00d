#!/usr/bin/env bash
# services.sh - start/stop the backing services Custody needs on a developer machine or in CI:
# Redis, PostgreSQL (test profile only) and an S3 server (Ceph RGW, see deploy/rgw-up.sh).
#
#   deploy/services.sh up     test|embedded   start (idempotent), print `export VAR=value` lines
#   deploy/services.sh down   test|embedded   stop exactly what `up` started (pid files)
#   deploy/services.sh down   test --purge    ... and delete var/test
#   deploy/services.sh status test|embedded   one line per service; exit 0 only if all are up
#   deploy/services.sh rotate-secrets test|embedded   new S3 keys and Redis password, taken by the
#                                             running services at once; prints the new exports
#
# Typical use:   eval "$(deploy/services.sh up test)"
# stdout carries ONLY the export lines; every log line goes to stderr.
#
# Secrets: none are written in this file. The S3 keys and the Redis password are generated on the
# first `up` into <state>/secrets.env (0600, see deploy/secrets.sh) and printed in the export lines;
# Redis requires its password (requirepass, kept in a 0600 config file, not on a command line).
# Services left running by an older copy of this script (default keys, no Redis password) are
# brought to the generated values on the next `up`, without a restart.
#
# Overrides (a second, private copy, e.g. a test of this script): SERVICES_VAR (state root,
# default <repo>/var), SERVICES_REDIS_PORT, SERVICES_PG_PORT, SERVICES_RGW_PORT,
# SERVICES_RGW_MON_PORT, SERVICES_RGW_OSD_PORTS.
# Without overrides, the test profile moves aside for another checkout's test services: the first `up`
# of a fresh var/test takes the first set of ports (each default + k, k = 0-19) on which nothing
# listens, and keeps it in var/test/ports.env for every later call (see choose_test_ports).
#
# Profiles:
#   test      throwaway state under var/test: Redis :6390 without persistence, PostgreSQL :54329
#             tuned for speed (fsync off), RGW :7490 on memstore (RAM, wiped on restart).
#   embedded  the single-machine default: Redis :6380 with AOF, RGW :7480 on bluestore (a sparse
#             file that survives restarts); the database is SQLite, so no PostgreSQL.
# The two profiles use disjoint ports and folders and can run side by side.
#
# Only processes whose pid file we wrote, and whose command line or working folder proves they
# are ours, are ever signalled: never pkill/killall, which would hit another checkout's services.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
VAR=${SERVICES_VAR:-$ROOT/var}
# shellcheck source=deploy/secrets.sh
. "$HERE/secrets.sh"
TIMEOUT=${SERVICES_TIMEOUT:-60}
# State of an evidence archive is nobody else's business on a shared machine; the one exception
# (var/ and var/test must let the postgres user through, see do_up) is made explicitly.
umask 077

usage() {
  echo "usage: $0 up|down|status|rotate-secrets test|embedded   (down test --purge deletes var/test)" >&2
  exit 2
}
[ $# -ge 2 ] || usage
ACTION=$1 PROFILE=$2 PURGE=0
case "${3:-}" in
  "") ;;
  --purge) [ "$ACTION" = down ] || usage; PURGE=1 ;;
  *) usage ;;
esac

case "$PROFILE" in
  test)
    STATE=$VAR/test
    REDIS_PORT=${SERVICES_REDIS_PORT:-6390} REDIS_DIR=$STATE/redis REDIS_PERSIST=0
    WITH_PG=1 PG_PORT=${SERVICES_PG_PORT:-54329} PG_DATA=$STATE/pg
    export RGW_BASE=$STATE/rgw RGW_STORE=memstore RGW_PORT=${SERVICES_RGW_PORT:-7490} \
      RGW_MON_PORT=${SERVICES_RGW_MON_PORT:-13390} RGW_OSD_PORTS=${SERVICES_RGW_OSD_PORTS:-16900-16999}
    ;;
  embedded)
    # `--purge` here would delete evidence: make that a deliberate, manual act
    [ "$PURGE" = 0 ] || { echo "refusing --purge for embedded: it holds real data; remove var/ by hand" >&2; exit 2; }
    STATE=$VAR
    REDIS_PORT=${SERVICES_REDIS_PORT:-6380} REDIS_DIR=$STATE/redis REDIS_PERSIST=1
    WITH_PG=0 PG_PORT='' PG_DATA=''
    export RGW_BASE=$STATE/rgw RGW_STORE=bluestore RGW_PORT=${SERVICES_RGW_PORT:-7480} \
      RGW_MON_PORT=${SERVICES_RGW_MON_PORT:-13300} RGW_OSD_PORTS=${SERVICES_RGW_OSD_PORTS:-16800-16899}
    export RGW_BLOCK_BYTES=$((20 * 1024 * 1024 * 1024))
    ;;
  *) usage ;;
esac
# the generated secrets of this profile (S3_ACCESS_KEY, S3_SECRET_KEY, REDIS_PASSWORD)
load_secrets() {
  secrets_load "$STATE" || die "cannot read or create the secrets in $STATE"
  export RGW_ACCESS_KEY=$S3_ACCESS_KEY RGW_SECRET_KEY=$S3_SECRET_KEY
}
REDIS_PIDFILE=$REDIS_DIR/redis.pid
REDIS_CONF=$REDIS_DIR/custody-redis.conf
REDIS_LOG=$REDIS_DIR/redis.log
PG_LOG=$PG_DATA/server.log       # written by the postgres user, so it lives in its folder
PG_SETUP_LOG=$STATE/pg-setup.log # initdb, pg_ctl and psql output (written by us)
RGW_PID_DIR=$RGW_BASE/run

log() { echo "[services $(date +%T)] $*" >&2; }

RGW_JOB=
die() {  # $1 = message, rest = log files whose tail explains it
  local f
  log "ERROR: $1"; shift
  for f in "$@"; do
    [ -f "$f" ] && { echo "--- tail $f" >&2; tail -n 20 "$f" >&2; }
  done
  # a half-started gateway would be left orphaned mid-setup: let it finish (or fail) first
  if [ -n "$RGW_JOB" ]; then wait "$RGW_JOB" 2>/dev/null || true; fi
  exit 1
}

# Start a daemon's launcher with only stdin/stdout/stderr open. Daemons keep every fd they inherit,
# and one holding the caller's pipe (the one `$(...)` or subprocess.run(capture_output=True) reads)
# keeps that caller waiting until the daemon exits.
spawn() {
  (
    for fd in "/proc/$BASHPID/fd/"*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
    done
    exec "$@"
  )
}

port_open() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }  # anything listening there?

# The test profile's ports. Its state is throwaway and its callers read the ports from the export
# lines, so a second checkout's test services on the defaults (a developer's second clone, a CI run
# on a machine where other test services are up) need not stop this one: the first `up` takes the
# first offset k at which the Redis, PostgreSQL, gateway and monitor ports are all free, and writes
# them to ports.env; every later call (up, down, status) reads that file, so they never wander.
# Services of ours started before ports.env existed keep the defaults. The OSDs bind any free port
# in their range, which two instances can share.
PORTS_FILE=$STATE/ports.env
choose_test_ports() {
  [ "$PROFILE" = test ] || return 0
  if [ -n "${SERVICES_REDIS_PORT:-}${SERVICES_PG_PORT:-}${SERVICES_RGW_PORT:-}${SERVICES_RGW_MON_PORT:-}" ]; then
    return 0  # ports given: used as given (and refused if taken)
  fi
  local k=0 ours=0 r=$REDIS_PORT p=$PG_PORT g=$RGW_PORT m=$RGW_MON_PORT
  if redis_ours || pg_ours || rgw_pid_ours mon.a; then ours=1; fi
  if [ -s "$PORTS_FILE" ]; then
    # shellcheck source=/dev/null
    . "$PORTS_FILE"
    export RGW_PORT RGW_MON_PORT
    # kept, unless nothing of ours runs and someone else has since taken one of them
    if [ $ours = 1 ] || ! { [ "$ACTION" = up ] || [ "$ACTION" = rotate-secrets ]; } ||
      ! { port_open "$REDIS_PORT" || port_open "$PG_PORT" || port_open "$RGW_PORT" || port_open "$RGW_MON_PORT"; }; then
      return 0
    fi
    REDIS_PORT=$r PG_PORT=$p RGW_PORT=$g RGW_MON_PORT=$m
  fi
  [ "$ACTION" = up ] || [ "$ACTION" = rotate-secrets ] || return 0
  if [ $ours = 0 ]; then
    for ((k = 0; k < 20; k++)); do
      if ! port_open $((REDIS_PORT + k)) && ! port_open $((PG_PORT + k)) &&
        ! port_open $((RGW_PORT + k)) && ! port_open $((RGW_MON_PORT + k)); then
        break
      fi
    done
    [ $k -lt 20 ] || die "no free set of test ports near :$REDIS_PORT :$PG_PORT :$RGW_PORT :$RGW_MON_PORT"
    if [ $k -gt 0 ]; then
      log "the default test ports are taken (another checkout's services?): this one uses default + $k"
    fi
  fi
  REDIS_PORT=$((REDIS_PORT + k)) PG_PORT=$((PG_PORT + k))
  export RGW_PORT=$((RGW_PORT + k)) RGW_MON_PORT=$((RGW_MON_PORT + k))
  printf 'REDIS_PORT=%s\nPG_PORT=%s\nRGW_PORT=%s\nRGW_MON_PORT=%s\n' \
    "$REDIS_PORT" "$PG_PORT" "$RGW_PORT" "$RGW_MON_PORT" >"$PORTS_FILE"
}

wait_for() {  # $1 = description, $2 = log file to show on timeout, rest = command
  local what=$1 logf=$2 deadline=$((SECONDS + TIMEOUT))
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timeout ($TIMEOUT s) waiting for $what" "$logf"
    sleep 0.1
  done
}

# pid from a pid file, alive, and its working folder is $2: Redis rewrites its command line (so
# we cannot look for our config there) and PostgreSQL keeps its data folder as working folder.
pid_ours_by_cwd() {  # $1 = pid file, $2 = expected cwd
  local p
  [ -s "$1" ] || return 1
  p=$(head -n 1 "$1")
  [[ $p =~ ^[0-9]+$ ]] || return 1
  kill -0 "$p" 2>/dev/null || return 1
  [ "$(readlink "/proc/$p/cwd" 2>/dev/null)" = "$2" ]
}

stop_pid() {  # $1 = name, $2 = pid, $3 = signal, $4 = grace seconds before SIGKILL
  local i
  kill "-$3" "$2" 2>/dev/null || return 0
  for ((i = 0; i < $4 * 10; i++)); do kill -0 "$2" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$2" 2>/dev/null; then
    log "$1 (pid $2) still running after $4 s, sending SIGKILL"
    kill -KILL "$2" 2>/dev/null || true
  fi
  log "stopped $1 (pid $2)"
}

# ---------------------------------------------------------------- Redis
redis_ours() { pid_ours_by_cwd "$REDIS_PIDFILE" "$REDIS_DIR"; }
# the password travels in the environment (REDISCLI_AUTH), never on a command line `ps` shows
redis_cli_as() {  # $1 = password ("" = none), rest = redis-cli arguments
  if [ -n "$1" ]; then
    REDISCLI_AUTH=$1 redis-cli --no-auth-warning -h 127.0.0.1 -p "$REDIS_PORT" "${@:2}"
  else
    env -u REDISCLI_AUTH redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "${@:2}"
  fi
}
redis_ping() { [ "$(redis_cli_as "$REDIS_PASSWORD" ping 2>/dev/null)" = PONG ]; }
# any answer (PONG, or NOAUTH from a server that wants another password) means it is up
redis_answers() { [ -n "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" ]; }

redis_write_conf() {  # the password lives here (0600), not in redis-server's arguments
  (umask 077 && printf 'requirepass %s\n' "$REDIS_PASSWORD" >"$REDIS_CONF")
}

# A Redis of ours that does not take the current password (started by an older services.sh that
# set none, or before rotate-secrets): it gets the password now, without a restart.
redis_converge() {
  local old
  # (a server without a password answers PONG whatever password it is sent)
  if redis_ping && [ "$(redis_cli_as "" ping 2>/dev/null)" != PONG ]; then return 0; fi
  for old in "" "$(secrets_old_value REDIS_PASSWORD)"; do
    if [ "$(redis_cli_as "$old" ping 2>/dev/null)" = PONG ]; then
      # on stdin: CONFIG SET's argument would otherwise sit on redis-cli's command line
      printf 'CONFIG SET requirepass %s\n' "$REDIS_PASSWORD" | redis_cli_as "$old" >/dev/null || return 1
      log "redis on :$REDIS_PORT now requires the password in $SECRETS_FILE"
      redis_ping
      return
    fi
  done
  return 1
}

redis_up() {
  if ! redis_ours; then
    command -v redis-server >/dev/null || die "redis-server not installed (run deploy/install.sh)"
    if port_open "$REDIS_PORT"; then die "port $REDIS_PORT is taken by a process that is not ours (another checkout?)"; fi
    mkdir -p "$REDIS_DIR"
    redis_write_conf
    local persist=(--save '' --appendonly no)
    # embedded: the queue and schedule must survive a restart; default RDB snapshots stay on too
    if [ "$REDIS_PERSIST" = 1 ]; then persist=(--appendonly yes --appendfsync everysec); fi
    log "starting redis on 127.0.0.1:$REDIS_PORT ($REDIS_DIR)"
    # shellcheck disable=SC2094  # die reads the log only after the launcher has exited
    spawn redis-server "$REDIS_CONF" --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$REDIS_DIR" \
      --daemonize yes --pidfile "$REDIS_PIDFILE" --logfile "$REDIS_LOG" "${persist[@]}" \
      </dev/null >>"$REDIS_LOG" 2>&1 || die "redis-server failed to start" "$REDIS_LOG"
  fi
  wait_for "redis on :$REDIS_PORT" "$REDIS_LOG" redis_answers
  redis_ours || die "something else answers on :$REDIS_PORT" "$REDIS_LOG"
  redis_converge || die "redis on :$REDIS_PORT takes neither the current nor the previous password" "$REDIS_LOG"
  redis_write_conf  # a restart keeps the password the running server has now
}

redis_down() {
  if redis_ours; then
    # SIGTERM is Redis's clean shutdown (it writes its snapshot/AOF first)
    stop_pid redis "$(head -n 1 "$REDIS_PIDFILE")" TERM 20
  fi
  rm -f "$REDIS_PIDFILE"
}

# ---------------------------------------------------------------- PostgreSQL
PG_BIN=
pg_bin() {  # newest installed server version, as Debian lays them out
  [ -n "$PG_BIN" ] && return 0
  PG_BIN=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
  [ -x "$PG_BIN/postgres" ] || die "PostgreSQL server not installed (run deploy/install.sh --with-postgres)"
}

# PostgreSQL refuses to run as root; on our root-run machines it runs as the `postgres` user.
AS_PG=()
if [ "$(id -u)" = 0 ]; then AS_PG=(runuser -u postgres --); fi
as_pg() { "${AS_PG[@]}" "$@"; }
pg_ours() { pid_ours_by_cwd "$PG_DATA/postmaster.pid" "$PG_DATA"; }
# as postgres: a role-less probe works too but logs a FATAL on every try
pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres; }
psql_admin() { "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres; }

pg_prepare() {  # first run: a cluster in $PG_DATA owned by the postgres user
  local owner=()
  if [ "$(id -u)" = 0 ]; then owner=(-o postgres -g postgres); fi
  if [ -s "$PG_DATA/PG_VERSION" ]; then
    local have want
    have=$(cat "$PG_DATA/PG_VERSION")
    want=$(basename "$(dirname "$PG_BIN")")
    [ "$have" = "$want" ] || die "$PG_DATA was made by PostgreSQL $have, server is $want: run '$0 down test --purge'"
    return 0
  fi
  # no PG_VERSION: nothing or a half-finished initdb; either way there is nothing to keep
  rm -rf "$PG_DATA"
  install -d -m 0700 "${owner[@]}" "$PG_DATA"
  as_pg test -w "$PG_DATA" || die "the postgres user cannot reach $PG_DATA (a parent folder is closed to it)"
  log "initdb $PG_DATA ($PG_BIN)"
  as_pg "$PG_BIN/initdb" -D "$PG_DATA" --auth=trust -U postgres -E UTF8 --locale=C.UTF-8 \
    </dev/null >>"$PG_SETUP_LOG" 2>&1 || die "initdb failed" "$PG_SETUP_LOG"
  # our settings live in a file we own and rewrite on every start (see pg_up)
  # plain include, not include_if_exists: without it postgres would quietly take port 5432
  echo "include = 'custody.conf'" >>"$PG_DATA/postgresql.conf"
}

pg_write_conf() {
  local conf=$PG_DATA/custody.conf
  cat >"$conf" <<EOF
# Written by deploy/services.sh on every start; edits here are lost.
listen_addresses = '127.0.0.1'
port = $PG_PORT
# socket inside the data folder: nothing else on the machine (a system cluster) is disturbed
unix_socket_directories = '$PG_DATA'
# throwaway test database: durability buys nothing, speed does (a crash means --purge)
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$conf"; fi
  chmod 0600 "$conf"
}

pg_up() {
  pg_bin
  if ! pg_ours; then
    if port_open "$PG_PORT"; then die "port $PG_PORT is taken by a process that is not ours (another checkout?)"; fi
    pg_prepare
    pg_write_conf
    # a postmaster.pid whose pid is not our postmaster is stale (crash, reboot); postgres would
    # refuse to start if that pid now belongs to some other live process
    rm -f "$PG_DATA/postmaster.pid"
    log "starting postgres on 127.0.0.1:$PG_PORT ($PG_DATA)"
    spawn "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -s -w -t "$TIMEOUT" start \
      </dev/null >>"$PG_SETUP_LOG" 2>&1 || die "postgres failed to start" "$PG_SETUP_LOG" "$PG_LOG"
  fi
  wait_for "postgres on :$PG_PORT" "$PG_LOG" pg_ready
  # idempotent: runs on every `up`, so a dropped role or database comes back
  psql_admin >>"$PG_SETUP_LOG" 2>&1 <<'SQL' || die "creating role/database failed" "$PG_SETUP_LOG"
SELECT 'CREATE ROLE custody LOGIN CREATEDB' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'custody')
\gexec
SELECT 'CREATE DATABASE custody_test OWNER custody' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'custody_test')
\gexec
SQL
}

pg_down() {
  [ -d "$PG_DATA" ] || return 0
  if pg_ours; then
    local p
    p=$(head -n 1 "$PG_DATA/postmaster.pid")
    pg_bin
    # fast = roll back open sessions and shut down cleanly; pg_ctl signals the pid we just checked
    if as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -s -m fast -w -t 30 stop </dev/null >>"$PG_SETUP_LOG" 2>&1; then
      log "stopped postgres (pid $p)"
    else
      stop_pid postgres "$p" QUIT 5   # immediate shutdown
    fi
  fi
}

# ---------------------------------------------------------------- S3 (Ceph RGW)
rgw_pid_ours() {  # $1 = daemon name; same check as rgw-up.sh (started with -c our ceph.conf)
  local f=$RGW_PID_DIR/$1.pid p
  [ -s "$f" ] || return 1
  p=$(cat "$f")
  kill -0 "$p" 2>/dev/null && tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -qxF -- "$RGW_BASE/ceph.conf"
}
s3_ready() {  # authenticated ListBuckets; curl 7.88 needs x-amz-content-sha256 set explicitly
  # the keys reach curl as its config on stdin: a command line is readable by every local user
  printf 'user = "%s:%s"\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" |
    curl -K - -sf -m 3 -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" \
      -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "http://127.0.0.1:$RGW_PORT/"
}
rgw_running() { rgw_pid_ours mon.a && rgw_pid_ours osd.0 && rgw_pid_ours client.rgw.a && s3_ready; }

# ---------------------------------------------------------------- actions
print_env() {
  printf 'export %s=%q\n' \
    CUSTODY_REDIS_URL "redis://:$REDIS_PASSWORD@127.0.0.1:$REDIS_PORT/0" \
    CUSTODY_S3_ENDPOINT "127.0.0.1:$RGW_PORT" \
    CUSTODY_S3_ACCESS_KEY "$S3_ACCESS_KEY" \
    CUSTODY_S3_SECRET_KEY "$S3_SECRET_KEY" \
    CUSTODY_S3_SECURE false
  if [ "$PROFILE" = test ]; then
    printf 'export %s=%q\n' CUSTODY_TEST_DATABASE_URL "postgresql+psycopg://custody@127.0.0.1:$PG_PORT/custody_test"
  else
    printf 'export %s=%q\n' CUSTODY_DATA_DIR "$VAR"
  fi
}

make_state_dirs() {
  # 0711: the postgres user must pass through to its data folder (it cannot list these). Set even when
  # the folder exists: `make test` starts deploy/cluster.sh at the same moment, and when it creates
  # var/ first (for var/cluster, under umask 077) var/ is 0700 and initdb's user is shut out.
  local d
  for d in "$VAR" "$STATE"; do
    mkdir -p "$d"  # (-p: cluster.sh may create var/ between a test and a plain mkdir)
    if [ -O "$d" ]; then chmod 0711 "$d"; fi
  done
}

do_up() {
  # the gateway is the slowest (3-7 s), so it starts first and the others come up meanwhile
  if ! rgw_running; then
    command -v curl >/dev/null || die "curl not installed (run deploy/install.sh)"
    spawn "$HERE/rgw-up.sh" </dev/null >&2 &
    RGW_JOB=$!
  fi
  redis_up
  if [ "$WITH_PG" = 1 ]; then pg_up; fi
  if [ -n "$RGW_JOB" ]; then
    local job=$RGW_JOB
    RGW_JOB=
    wait "$job" || die "S3 gateway (Ceph RGW) failed to start; its logs are in $RGW_BASE/log"
  fi
  s3_ready || die "S3 gateway not answering on :$RGW_PORT" "$RGW_BASE/log/client.rgw.a.log"
  log "profile $PROFILE is up"
}

do_down() {
  # all three are independent; stop them together so `down` is as quick as the slowest
  "$HERE/rgw-down.sh" </dev/null >&2 &
  local rgw=$!
  redis_down
  if [ "$WITH_PG" = 1 ]; then pg_down; fi
  wait "$rgw" || log "warning: rgw-down.sh reported a problem"
  if [ "$PURGE" = 1 ]; then
    rm -rf "$STATE"
    log "purged $STATE"
  fi
}

do_status() {
  local ok=0
  line() { printf '%-9s %-5s %s\n' "$1" "$2" "$3"; }
  if redis_ours && redis_ping; then line redis up "127.0.0.1:$REDIS_PORT"; else line redis down "127.0.0.1:$REDIS_PORT"; ok=1; fi
  if [ "$WITH_PG" = 1 ]; then
    if pg_ours && pg_bin && pg_ready; then line postgres up "127.0.0.1:$PG_PORT"; else line postgres down "127.0.0.1:$PG_PORT"; ok=1; fi
  fi
  if rgw_running; then line s3 up "127.0.0.1:$RGW_PORT"; else line s3 down "127.0.0.1:$RGW_PORT"; ok=1; fi
  return $ok
}

case "$ACTION" in
  # the work runs with stdout on stderr, so nothing but print_env can reach a caller's `eval`
  up) make_state_dirs; choose_test_ports; load_secrets; do_up >&2; print_env ;;
  rotate-secrets)
    make_state_dirs
    choose_test_ports
    secrets_rotate "$STATE"
    load_secrets
    do_up >&2
    rm -f "$STATE/secrets.env.old"
    print_env
    ;;
  down) choose_test_ports; do_down >&2 ;;
  status)
    choose_test_ports
    if [ -s "$STATE/secrets.env" ]; then load_secrets; fi
    do_status
    ;;
  *) usage ;;
esac
