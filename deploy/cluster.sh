#!/usr/bin/env bash
# cluster.sh - a small REAL Ceph cluster on loopback, to prove the archive on a distributed engine:
# 1 monitor, 1 manager, 3 OSD daemons (each its own CRUSH host: one failure domain apiece),
# replicated pools size 3 / min_size 2, 2 RADOS Gateways behind haproxy (the load balancer
# production puts in front of its gateways, see deploy/ceph/haproxy.cfg).
#
#   deploy/cluster.sh up               start (idempotent); prints `export VAR=value` lines on stdout
#   deploy/cluster.sh down [--purge]   stop everything it started (pid files); --purge deletes the state
#   deploy/cluster.sh status           `ceph -s`; exit 0 only when every daemon is up and S3 answers
#   deploy/cluster.sh stop  DAEMON     stop one daemon (osd.0 osd.1 osd.2 rgw.a rgw.b), as a node loss
#   deploy/cluster.sh start DAEMON     start it again
#   deploy/cluster.sh wait-clean       wait until HEALTH_OK and every placement group is active+clean
#   deploy/cluster.sh ceph ARGS...     the ceph CLI on this cluster (e.g. `ceph osd tree`)
#
# Ports and folders are disjoint from deploy/services.sh's `test` and `embedded` profiles, which run
# at the same time on the same machine: state in var/cluster, monitor :13490, daemons bind within
# 17000-17099, gateways :7590 and :7591, the load balancer (what clients use) :7599.
# OSD store: memstore (default: objects in RAM, written to the OSD's folder when it stops cleanly and
# read back when it starts, so a stopped OSD comes back as the same node; starts in ~13 s, rebuilt
# on every `up`) or bluestore on 8 GiB sparse files (CLUSTER_STORE=bluestore: survives `down`/`up`
# and SIGKILL, as production does; starts in ~25 s).
# Only processes whose pid file we wrote and whose command line names our config are signalled.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BASE=${CLUSTER_BASE:-$ROOT/var/cluster}
STORE=${CLUSTER_STORE:-memstore}
MON_PORT=${CLUSTER_MON_PORT:-13490}
PORT_MIN=${CLUSTER_PORT_MIN:-17000}
PORT_MAX=${CLUSTER_PORT_MAX:-17099}
RGW_A_PORT=${CLUSTER_RGW_A_PORT:-7590}
RGW_B_PORT=${CLUSTER_RGW_B_PORT:-7591}
LB_PORT=${CLUSTER_LB_PORT:-7599}
BLOCK_BYTES=${CLUSTER_BLOCK_BYTES:-$((8 * 1024 * 1024 * 1024))}
AK=${RGW_ACCESS_KEY:-}
SK=${RGW_SECRET_KEY:-}
TIMEOUT=${CLUSTER_TIMEOUT:-120}
CONF=$BASE/ceph.conf
RUN=$BASE/run
# Without CLUSTER_*_PORT overrides, a fresh `up` that finds the default ports taken (another checkout's
# cluster) moves its monitor, gateways and load balancer by 10 * k (k = 1-19) and keeps the choice in
# $BASE/ports.env for every later call; the daemons' range is shared (each binds any free port in it).
PORTS_FILE=$BASE/ports.env
PORTS_GIVEN=${CLUSTER_MON_PORT:-}${CLUSTER_RGW_A_PORT:-}${CLUSTER_RGW_B_PORT:-}${CLUSTER_LB_PORT:-}
DEFAULT_PORTS=("$MON_PORT" "$RGW_A_PORT" "$RGW_B_PORT" "$LB_PORT")
if [ -z "$PORTS_GIVEN" ] && [ -s "$PORTS_FILE" ]; then
  # shellcheck source=/dev/null
  . "$PORTS_FILE"
fi
OSDS=(0 1 2)
RGWS=(a b)
umask 077
# No default keys: unless given, the S3 user's keys are generated for the cluster's state folder
# (deploy/secrets.sh: "$BASE/secrets.env", 0600; a fresh memstore cluster gets new ones), as
# services.sh does for its profiles. Loaded where first needed, once "$BASE" exists.
keys() {
  if [ -z "$AK" ] || [ -z "$SK" ]; then
    # shellcheck source=deploy/secrets.sh
    . "$HERE/secrets.sh"
    secrets_load "$BASE"
    AK=$S3_ACCESS_KEY SK=$S3_SECRET_KEY
  fi
}

log() { echo "[cluster $(date +%T)] $*" >&2; }
die() {
  log "ERROR: $*"
  local f
  for f in "$BASE"/log/setup.log "$BASE"/log/mon.a.log; do [ -f "$f" ] && { echo "--- tail $f" >&2; tail -n 8 "$f" >&2; }; done
  echo "(all logs: $BASE/log)" >&2
  exit 1
}
usage() { sed -n '2,22p' "$0" >&2; exit 2; }

rgw_port() { if [ "$1" = a ]; then echo "$RGW_A_PORT"; else echo "$RGW_B_PORT"; fi; }
C() { timeout 30 ceph -c "$CONF" "$@"; }

# Daemons started with `-c $CONF` (haproxy with `-f $BASE/haproxy.cfg`): a pid file naming a pid that
# was recycled by some other process is never trusted.
pidfile() {
  case "$1" in
    haproxy) echo "$RUN/haproxy.pid" ;;
    rgw.*) echo "$RUN/client.$1.pid" ;;
    *) echo "$RUN/$1.pid" ;;
  esac
}
ours_alive() {
  local f p
  f=$(pidfile "$1")
  [ -s "$f" ] || return 1
  p=$(head -n 1 "$f")
  [[ $p =~ ^[0-9]+$ ]] || return 1
  kill -0 "$p" 2>/dev/null || return 1
  tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -qxF -e "$CONF" -e "$BASE/haproxy.cfg"
}

spawn() {  # a daemon's launcher with only stdin/stdout/stderr open (see services.sh)
  (
    for fd in "/proc/$BASHPID/fd/"*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
    done
    exec "$@"
  ) </dev/null >>"$BASE/log/setup.log" 2>&1
}

wait_for() {  # $1 = description, rest = command
  local what=$1 deadline=$((SECONDS + TIMEOUT))
  shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timeout ($TIMEOUT s) waiting for $what"
    sleep 0.2
  done
}

s3curl() {  # SigV4; curl 7.88 needs x-amz-content-sha256 set explicitly
  keys
  curl -sf -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}
s3_ready() { s3curl -m 3 "http://127.0.0.1:$1/"; }
anon_ready() { curl -sf -m 3 -o /dev/null "http://127.0.0.1:$1/"; }

osds_up() {  # $1 = how many OSDs must be up
  [ "$(C osd dump -f json 2>/dev/null | grep -o '"up":1' | wc -l)" -ge "$1" ]
}

write_conf() {
  local fsid store_conf
  fsid=$(cat /proc/sys/kernel/random/uuid)
  if [ "$STORE" = bluestore ]; then
    store_conf="osd_objectstore = bluestore
bluestore_block_path = $BASE/osd.\$id.block
bluestore_block_create = true
bluestore_block_size = $BLOCK_BYTES
bluestore_block_db_create = false
bluestore_block_wal_create = false
bluestore_fsck_on_mount = false
# three OSDs share 2 cores and some GB of RAM with everything else on the machine
osd_memory_target = 536870912
bluestore_cache_autotune = false
bluestore_cache_size = 134217728"
  else
    store_conf="osd_objectstore = memstore
memstore_device_bytes = $BLOCK_BYTES"
  fi
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon_host = v2:127.0.0.1:$MON_PORT
mon_initial_members = a
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_port_min = $PORT_MIN
ms_bind_port_max = $PORT_MAX
# private loopback cluster: no cephx (production: cephx on, see deploy/ceph/)
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc
client_mount_timeout = 20
run_dir = $RUN
admin_socket = $RUN/\$cluster-\$name.asok
pid_file = $RUN/\$name.pid
log_file = $BASE/log/\$name.log
keyring = /dev/null
# the production shape: three copies, one per host; writes go on with two
osd_pool_default_size = 3
osd_pool_default_min_size = 2
osd_crush_chooseleaf_type = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_allow_pool_delete = true
mon_data_avail_warn = 2
mon_warn_on_insecure_global_id_reclaim_allowed = false
mon_warn_on_insecure_global_id_reclaim = false
paxos_propose_interval = 0.1
# a stopped OSD is a node loss to ride out, not a disk to replace: never mark it out (that would
# start a backfill that has nowhere to go with three hosts and size 3)
mon_osd_down_out_interval = 0
mon_warn_on_osd_down_out_interval_zero = false
mon_osd_report_timeout = 30
osd_heartbeat_interval = 1
osd_heartbeat_grace = 5
mgr_stats_period = 1
mon_pg_warn_min_per_osd = 0
[mon]
mon_data = $BASE/mon.\$id
[mgr]
mgr_data = $BASE/mgr.\$id
[osd]
osd_data = $BASE/osd.\$id
$store_conf
osd_pool_default_pg_autoscale_mode = off
osd_op_num_shards = 1
osd_op_num_threads_per_shard = 2
# recover a returning OSD as fast as the machine allows (defaults sleep 0.1 s between HDD recovery
# ops and recover one PG at a time: ~1 PG a second, a minute for this small cluster)
osd_recovery_sleep = 0
osd_recovery_sleep_hdd = 0
osd_recovery_sleep_ssd = 0
osd_recovery_sleep_hybrid = 0
osd_recovery_max_active = 16
osd_max_backfills = 16
osd_client_message_cap = 1000
[osd.0]
crush_location = root=default host=node0
[osd.1]
crush_location = root=default host=node1
[osd.2]
crush_location = root=default host=node2
[client]
rgw_data = $BASE/rgw.\$id
rgw_gc_obj_min_wait = 30
rgw_gc_processor_period = 30
rgw_crypt_require_ssl = false
rgw_thread_pool_size = 64
[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:$RGW_A_PORT
[client.rgw.b]
rgw_frontends = beast endpoint=127.0.0.1:$RGW_B_PORT
EOF
}

write_haproxy() {
  # balance first: every request goes to gateway a while it is up, so a test that stops rgw.a
  # certainly stops the gateway the archive is talking to. Production balances roundrobin.
  cat >"$BASE/haproxy.cfg" <<EOF
global
    pidfile $RUN/haproxy.pid
    daemon
    maxconn 512
defaults
    mode http
    timeout connect 2s
    timeout client 300s
    timeout server 300s
    retries 3
    option redispatch
    option http-buffer-request
frontend s3
    bind 127.0.0.1:$LB_PORT
    default_backend rgw
backend rgw
    balance first
    option httpchk GET /
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions
    server rgw.a 127.0.0.1:$RGW_A_PORT check maxconn 256
    server rgw.b 127.0.0.1:$RGW_B_PORT check maxconn 256
EOF
}

start_osd() {  # $1 = id
  ours_alive "osd.$1" || spawn ceph-osd -c "$CONF" -i "$1" || die "ceph-osd $1 failed to start"
}
start_rgw() {  # $1 = a|b
  ours_alive "rgw.$1" || spawn radosgw -c "$CONF" -n "client.rgw.$1" || die "radosgw $1 failed to start"
}
start_haproxy() {
  ours_alive haproxy || spawn haproxy -f "$BASE/haproxy.cfg" || die "haproxy failed to start"
}

port_open() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports_free() {  # $1 = offset: are the monitor, gateway and balancer ports + offset all free?
  local port
  for port in "$MON_PORT" "$RGW_A_PORT" "$RGW_B_PORT" "$LB_PORT"; do
    if port_open $((port + $1)); then return 1; fi
  done
}

any_ours_alive() {  # a daemon of this cluster still up (its ports are ours, not another checkout's)
  local d
  for d in mon.a mgr.x osd.0 osd.1 osd.2 rgw.a rgw.b haproxy; do ours_alive "$d" && return 0; done
  return 1
}

all_running() {
  local d
  for d in mon.a mgr.x osd.0 osd.1 osd.2 rgw.a rgw.b haproxy; do ours_alive "$d" || return 1; done
  s3_ready "$LB_PORT"
}

print_env() {
  keys
  printf 'export %s=%q\n' \
    CUSTODY_CLUSTER_S3_ENDPOINT "127.0.0.1:$LB_PORT" \
    CUSTODY_CLUSTER_RGW_ENDPOINTS "127.0.0.1:$RGW_A_PORT,127.0.0.1:$RGW_B_PORT" \
    CUSTODY_CLUSTER_S3_ACCESS_KEY "$AK" \
    CUSTODY_CLUSTER_S3_SECRET_KEY "$SK" \
    CUSTODY_CLUSTER_CONF "$CONF"
}

do_up() {
  local t0=$SECONDS fresh=1 i
  if [ "${CLUSTER_FRESH:-0}" != 1 ] && all_running; then
    log "already running (S3 at 127.0.0.1:$LB_PORT)"
    return 0
  fi
  if ! any_ours_alive && ! ports_free 0; then
    if [ -n "$PORTS_GIVEN" ] || { [ "$STORE" = bluestore ] && [ -f "$BASE/.initialized" ]; }; then
      # (a kept bluestore cluster has its ports in its ceph.conf)
      die "a port of $MON_PORT $RGW_A_PORT $RGW_B_PORT $LB_PORT is taken by a process that is not ours"
    fi
    # offsets count from the defaults, not from a previous choice, so the ports never drift
    MON_PORT=${DEFAULT_PORTS[0]} RGW_A_PORT=${DEFAULT_PORTS[1]} RGW_B_PORT=${DEFAULT_PORTS[2]} LB_PORT=${DEFAULT_PORTS[3]}
    local k
    for ((k = 0; k < 20; k++)); do ports_free $((10 * k)) && break; done
    [ $k -lt 20 ] || die "no free ports near :$MON_PORT :$LB_PORT (other checkouts' clusters? their deploy/cluster.sh down)"
    if [ $k -gt 0 ]; then
      log "the cluster's ports are taken (another checkout's cluster?): this one moves them by $((10 * k))"
    fi
    MON_PORT=$((MON_PORT + 10 * k)) RGW_A_PORT=$((RGW_A_PORT + 10 * k))
    RGW_B_PORT=$((RGW_B_PORT + 10 * k)) LB_PORT=$((LB_PORT + 10 * k))
  fi
  command -v ceph-mgr >/dev/null || die "ceph-mgr not installed (run deploy/install.sh)"
  command -v haproxy >/dev/null || die "haproxy not installed (run deploy/install.sh)"
  if [ "${CLUSTER_FRESH:-0}" != 1 ] && [ "$STORE" = bluestore ] && [ -f "$BASE/.initialized" ] \
    && grep -q '^osd_objectstore = bluestore' "$CONF" 2>/dev/null; then
    fresh=0
  fi
  if [ $fresh = 1 ]; then
    if [ -d "$RUN" ]; then do_down; fi
    if [ -d "$BASE" ] && [ ! -f "$CONF" ] && [ -n "$(ls -A "$BASE")" ]; then
      die "refusing to wipe $BASE: not empty and has no ceph.conf"
    fi
    rm -rf "$BASE"
    mkdir -p "$BASE"/{run,log,mon.a,mgr.x,rgw.a,rgw.b} "$BASE"/osd.{0,1,2}
    if [ -z "$PORTS_GIVEN" ]; then
      printf 'MON_PORT=%s\nRGW_A_PORT=%s\nRGW_B_PORT=%s\nLB_PORT=%s\n' \
        "$MON_PORT" "$RGW_A_PORT" "$RGW_B_PORT" "$LB_PORT" >"$PORTS_FILE"
    fi
    write_conf
    write_haproxy
    log "new cluster in $BASE (store=$STORE)"
    monmaptool --create --fsid "$(sed -n 's/^fsid = //p' "$CONF")" --addv a "[v2:127.0.0.1:$MON_PORT]" \
      "$BASE/monmap" >/dev/null
    ceph-mon -c "$CONF" --mkfs -i a --monmap "$BASE/monmap" >>"$BASE/log/setup.log" 2>&1 || die "mon mkfs failed"
  fi
  ours_alive mon.a || spawn ceph-mon -c "$CONF" -i a || die "ceph-mon failed to start"
  wait_for "monitor" C mon stat
  ours_alive mgr.x || spawn ceph-mgr -c "$CONF" -i x || die "ceph-mgr failed to start"
  if [ $fresh = 1 ]; then
    local pids=()
    for i in "${OSDS[@]}"; do
      C osd new "$(cat /proc/sys/kernel/random/uuid)" "$i" >/dev/null 2>>"$BASE/log/setup.log" || die "osd new $i failed"
    done
    for i in "${OSDS[@]}"; do
      local uuid
      uuid=$(C osd dump -f json | python3 -c "import json,sys; print([o['uuid'] for o in json.load(sys.stdin)['osds'] if o['osd']==$i][0])")
      ceph-osd -c "$CONF" -i "$i" --mkfs --osd-uuid "$uuid" >>"$BASE/log/setup.log" 2>&1 &
      pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || die "osd mkfs failed"; done
  fi
  for i in "${OSDS[@]}"; do start_osd "$i"; done
  wait_for "3 OSDs up" osds_up 3
  for i in "${RGWS[@]}"; do start_rgw "$i"; done
  [ $fresh = 0 ] || write_haproxy
  start_haproxy
  for i in "${RGWS[@]}"; do wait_for "radosgw $i" anon_ready "$(rgw_port "$i")"; done
  if [ $fresh = 1 ]; then
    keys
    timeout 60 radosgw-admin -c "$CONF" user create --uid=custody --display-name="Custody" \
      --access-key="$AK" --secret-key="$SK" --max-buckets=100000 >>"$BASE/log/setup.log" 2>&1 || die "radosgw-admin user create failed"
  fi
  wait_for "S3 through the load balancer" s3_ready "$LB_PORT"
  if [ $fresh = 1 ]; then
    # the first bucket makes RGW create its index and data pools: pay that here, not in a test
    # (and its data pool on the first object)
    { s3curl -m 60 -X PUT "http://127.0.0.1:$LB_PORT/cluster-warmup" \
      && s3curl -m 60 -X PUT --data-binary warm "http://127.0.0.1:$LB_PORT/cluster-warmup/o" \
      && s3curl -m 30 -X DELETE "http://127.0.0.1:$LB_PORT/cluster-warmup/o" \
      && s3curl -m 30 -X DELETE "http://127.0.0.1:$LB_PORT/cluster-warmup"; } || log "warning: warm-up failed"
    touch "$BASE/.initialized"
  fi
  log "up in $((SECONDS - t0)) s: S3 at 127.0.0.1:$LB_PORT (gateways :$RGW_A_PORT :$RGW_B_PORT)"
}

stop_one() {  # $1 = daemon, $2 = grace seconds
  local f p i
  f=$(pidfile "$1")
  [ -s "$f" ] || return 0
  p=$(head -n 1 "$f")
  if ! ours_alive "$1"; then rm -f "$f"; return 0; fi
  kill -TERM "$p" 2>/dev/null || true
  for ((i = 0; i < $2 * 10; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then
    log "$1 (pid $p) ignored SIGTERM, sending SIGKILL"
    kill -KILL "$p" 2>/dev/null || true
  fi
  rm -f "$f"
  log "stopped $1 (pid $p)"
}

do_down() {
  stop_one haproxy 5
  stop_one rgw.a 10 &
  stop_one rgw.b 10
  wait
  local i
  for i in "${OSDS[@]}"; do stop_one "osd.$i" 20 & done
  wait
  stop_one mgr.x 10
  stop_one mon.a 10
}

wait_clean() {
  local deadline=$((SECONDS + TIMEOUT)) s
  while :; do
    s=$(C status -f json 2>/dev/null || true)
    if python3 - "$s" <<'PY'; then return 0; fi
import json, sys
try:
    s = json.loads(sys.argv[1])
except ValueError:
    sys.exit(1)
pgs = s["pgmap"]
states = {p["state_name"]: p["count"] for p in pgs.get("pgs_by_state", [])}
ok = (
    s["health"]["status"] == "HEALTH_OK"
    and s["osdmap"]["num_up_osds"] == s["osdmap"]["num_osds"] == 3
    and pgs["num_pgs"] > 0
    and states.get("active+clean", 0) == pgs["num_pgs"]
)
sys.exit(0 if ok else 1)
PY
    [ $SECONDS -lt $deadline ] || { C status >&2 || true; die "timeout ($TIMEOUT s) waiting for HEALTH_OK, all PGs active+clean"; }
    sleep 0.5
  done
}

case "${1:-}" in
  up) do_up >&2; print_env ;;
  down)
    do_down >&2
    if [ "${2:-}" = --purge ]; then rm -rf "$BASE"; log "purged $BASE"; fi
    ;;
  status)
    C -s || true
    all_running
    ;;
  stop)
    case "${2:-}" in osd.[012] | rgw.[ab] | mgr.x | haproxy) ;; *) usage ;; esac
    stop_one "$2" 20 >&2
    ;;
  start)
    case "${2:-}" in
      osd.[012]) start_osd "${2#osd.}"; wait_for "$2 up" osds_up 3 ;;
      rgw.[ab]) start_rgw "${2#rgw.}"; wait_for "$2" s3_ready "$(rgw_port "${2#rgw.}")" ;;
      mgr.x) ours_alive mgr.x || spawn ceph-mgr -c "$CONF" -i x ;;
      haproxy) start_haproxy ;;
      *) usage ;;
    esac
    ;;
  wait-clean) wait_clean ;;
  ceph) shift; C "$@" ;;
  *) usage ;;
esac
