#!/usr/bin/env bash
# rgw-up.sh - start a single-node Ceph cluster (1 mon, 1 osd, radosgw) on loopback: a real
# S3-compatible server for tests and for the embedded profile. Production runs a multi-host Ceph
# cluster (deploy/ceph/; deploy/cluster.sh is a 3-OSD one on loopback). The code only
# speaks S3 through the `minio` client, so both work. Usually called by deploy/services.sh.
#
# No systemd, no root needed (everything lives under $RGW_BASE), auth = none (loopback only).
# Idempotent: if the cluster under $RGW_BASE is already up, it does nothing.
# stdout stays empty unless --print-env is given (then: `export VAR=value` lines only), so
#     eval "$(deploy/rgw-up.sh --print-env)"
# works. Logs and progress go to stderr. Stop with deploy/rgw-down.sh (uses PID files).
#
# Knobs (env):
#   RGW_BASE        state dir            (default $ROOT/var/rgw; callers should set it)
#   RGW_STORE       memstore|bluestore   (default memstore; memstore is in RAM and is wiped on
#                   every (re)start; bluestore uses a sparse file and survives rgw-down/rgw-up)
#   RGW_PORT        S3 port              (default 7480)
#   RGW_MON_PORT    mon msgr2 port       (default 13300)
#   RGW_OSD_PORTS   osd port range       (default 16800-16899)
#   RGW_MEM_BYTES   memstore capacity    (default 8 GiB; RAM is only used as objects arrive)
#   RGW_BLOCK_BYTES bluestore sparse file size (default 20 GiB)
#   RGW_ACCESS_KEY / RGW_SECRET_KEY   keys of the S3 user "custody" (required: there is no default;
#                   deploy/services.sh generates them, see deploy/secrets.sh). On a cluster that is
#                   already running with other keys, the user is given these and loses the others.
#   RGW_TIMEOUT     seconds to wait for readiness (default 90)
#   RGW_FRESH=1     wipe existing state and start from scratch
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BASE=${RGW_BASE:-$ROOT/var/rgw}
STORE=${RGW_STORE:-memstore}
PORT=${RGW_PORT:-7480}
MON_PORT=${RGW_MON_PORT:-13300}
OSD_PORTS=${RGW_OSD_PORTS:-16800-16899}
MEM_BYTES=${RGW_MEM_BYTES:-8589934592}
BLOCK_BYTES=${RGW_BLOCK_BYTES:-21474836480}
AK=${RGW_ACCESS_KEY:-}
SK=${RGW_SECRET_KEY:-}
TIMEOUT=${RGW_TIMEOUT:-90}
CONF=$BASE/ceph.conf
RUN=$BASE/run
ENDPOINT=http://127.0.0.1:$PORT

PRINT_ENV=0
case "${1:-}" in
  --print-env) PRINT_ENV=1 ;;
  "") ;;
  *) echo "usage: $0 [--print-env]" >&2; exit 2 ;;
esac

case "$STORE" in memstore | bluestore) ;; *) echo "RGW_STORE must be memstore or bluestore" >&2; exit 2 ;; esac
if [ -z "$AK" ] || [ -z "$SK" ]; then
  echo "RGW_ACCESS_KEY and RGW_SECRET_KEY must be set (deploy/services.sh generates them)" >&2
  exit 2
fi

log() { echo "[rgw-up $(date +%T)] $*" >&2; }
die() {
  log "ERROR: $*"
  for f in "$BASE"/log/*.log; do [ -f "$f" ] && { echo "--- tail $f" >&2; tail -n 15 "$f" >&2; }; done
  RGW_BASE=$BASE "$HERE/rgw-down.sh" >&2 || true   # don't leave half a cluster running (logs are kept)
  exit 1
}

print_env() {
  [ "$PRINT_ENV" = 1 ] || return 0
  printf 'export %s=%q\n' \
    CUSTODY_S3_ENDPOINT "127.0.0.1:$PORT" \
    CUSTODY_S3_ACCESS_KEY "$AK" \
    CUSTODY_S3_SECRET_KEY "$SK" \
    CUSTODY_S3_SECURE false
}

# pid alive AND really one of ours: after a reboot or crash the pid in a stale file may belong to
# any other process, and we must never signal or trust that one. Our daemons all get "-c $CONF".
ours_alive() {  # $1 = daemon name (mon.a | osd.0 | client.rgw.a)
  local f=$RUN/$1.pid p
  [ -s "$f" ] || return 1
  p=$(cat "$f")
  kill -0 "$p" 2>/dev/null || return 1
  tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -qxF -- "$CONF"
}

# SigV4-signed curl; curl 7.88 needs the x-amz-content-sha256 header set explicitly for S3. The keys
# reach curl as its config on stdin: a command line is readable by every local user.
s3curl() {
  printf 'user = "%s:%s"\n' "$AK" "$SK" |
    curl -K - -sf -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}
s3_ready() { s3curl -m 3 "$ENDPOINT/"; }  # authenticated ListBuckets succeeds
anon_ready() { curl -sf -m 3 -o /dev/null "$ENDPOINT/"; }

# The S3 user "custody" gets the keys $AK/$SK and loses every other key it had: a cluster started
# with other keys (an older rgw-up.sh's fixed defaults, or keys since rotated) takes the new ones
# without a restart or a wipe.
converge_keys() {
  local keys k
  # (and the bucket limit a new user gets: see user create below)
  timeout 60 radosgw-admin -c "$CONF" user modify --uid=custody --max-buckets=100000 >>"$BASE/log/setup.log" 2>&1 || return 1
  timeout 60 radosgw-admin -c "$CONF" key create --uid=custody --key-type=s3 \
    --access-key="$AK" --secret-key="$SK" >>"$BASE/log/setup.log" 2>&1 || return 1
  keys=$(timeout 60 radosgw-admin -c "$CONF" user info --uid=custody 2>>"$BASE/log/setup.log" |
    python3 -c 'import json, sys; print("\n".join(k["access_key"] for k in json.load(sys.stdin)["keys"]))') || return 1
  for k in $keys; do
    if [ "$k" != "$AK" ]; then
      timeout 60 radosgw-admin -c "$CONF" key rm --uid=custody --key-type=s3 --access-key="$k" \
        >>"$BASE/log/setup.log" 2>&1 || return 1
      log "removed a previous S3 key of user custody"
    fi
  done
}

wait_for() {  # $1 = description, rest = command
  local what=$1; shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timeout waiting for $what"
    sleep 0.2
  done
}

C() { timeout 30 ceph -c "$CONF" "$@"; }

# ---------- already up? ----------
if [ "${RGW_FRESH:-0}" != 1 ] && ours_alive mon.a && ours_alive osd.0 && ours_alive client.rgw.a; then
  if s3_ready; then
    log "already running at $ENDPOINT"
    print_env
    exit 0
  fi
  if anon_ready; then
    log "running with other S3 keys: giving user custody the keys of the secrets file"
    # a failure here must not stop a cluster others are using (die would): report and leave it
    converge_keys || { log "ERROR: could not set the S3 user's keys (see $BASE/log/setup.log)"; exit 1; }
    wait_for "authenticated S3 request" s3_ready
    print_env
    exit 0
  fi
fi

command -v ceph-mon >/dev/null || die "ceph-mon not installed (run deploy/install.sh)"
if ss -ltn 2>/dev/null | grep -qE "(127\.0\.0\.1|\*|0\.0\.0\.0|\[::\]):$PORT\b" && ! ours_alive client.rgw.a; then
  die "port $PORT already in use by someone else"
fi

# decide: reuse persistent state, or build from scratch (memstore has nothing worth reusing)
fresh=1
if [ "${RGW_FRESH:-0}" != 1 ] && [ "$STORE" = bluestore ] && [ -f "$BASE/.initialized" ] \
   && grep -q '^osd_objectstore = bluestore' "$CONF" 2>/dev/null; then
  fresh=0
fi

if [ $fresh = 1 ]; then
  # anything half-running from a previous attempt: stop it (ours only)
  if [ -d "$RUN" ]; then RGW_BASE=$BASE "$HERE/rgw-down.sh" >&2 || true; fi
  # a mistyped RGW_BASE must not cost someone a folder: only wipe what looks like ours
  if [ -d "$BASE" ] && [ ! -f "$CONF" ] && [ -n "$(ls -A "$BASE")" ]; then
    die "refusing to wipe $BASE: not empty and has no ceph.conf"
  fi
  rm -rf "$BASE"
  mkdir -p "$BASE"/{run,log,mon.a,osd.0,rgw}
  FSID=$(cat /proc/sys/kernel/random/uuid)
  if [ "$STORE" = bluestore ]; then
    # block file outside the OSD data folder: ceph-osd --mkfs wants that folder to itself
    OSD_STORE_CONF="osd_objectstore = bluestore
bluestore_block_path = $BASE/osd.0.block
bluestore_block_create = true
bluestore_block_size = $BLOCK_BYTES
bluestore_block_db_create = false
bluestore_block_wal_create = false
osd_memory_target = 1073741824
bluestore_fsck_on_mount = false"
  else
    OSD_STORE_CONF="osd_objectstore = memstore
memstore_device_bytes = $MEM_BYTES"
  fi
  cat >"$CONF" <<EOF
[global]
fsid = $FSID
mon_host = v2:127.0.0.1:$MON_PORT
mon_initial_members = a
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_port_min = ${OSD_PORTS%-*}
ms_bind_port_max = ${OSD_PORTS#*-}
# private loopback cluster: no cephx
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
# radosgw defaults to ms_mon_client_mode=secure, which cannot work without cephx (hangs 300 s)
ms_mon_client_mode = crc
client_mount_timeout = 20
# every path under \$RGW_BASE, so several clusters (test, embedded) never share a file
run_dir = $RUN
admin_socket = $RUN/\$cluster-\$name.asok
pid_file = $RUN/\$name.pid
log_file = $BASE/log/\$name.log
keyring = /dev/null
# single node
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_crush_chooseleaf_type = 0
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_allow_pool_delete = true
# the monitor shuts itself down below 5% free disk; warn late rather than nag on dev machines
mon_data_avail_warn = 2
mon_warn_on_insecure_global_id_reclaim_allowed = false
mon_warn_on_insecure_global_id_reclaim = false
# gateway start 9.5 s -> 1-2 s
paxos_propose_interval = 0.1
[mon]
mon_data = $BASE/mon.\$id
[osd]
osd_data = $BASE/osd.\$id
$OSD_STORE_CONF
[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:$PORT
rgw_data = $BASE/rgw
# SSE-C over plain http, SSE-KMS with a static test key (NOT for production)
rgw_crypt_require_ssl = false
rgw_crypt_s3_kms_backend = testing
rgw_crypt_s3_kms_encryption_keys = testkey-1=YmluCmJvb3N0CmJvb3N0LWJ1aWxkCmNlcGguY29uZgo=
# reclaim deleted objects' space quickly (default waits 2h) - matters for memstore
rgw_gc_obj_min_wait = 30
rgw_gc_processor_period = 30
EOF
  log "new cluster in $BASE (store=$STORE)"
  monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$BASE/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$BASE/monmap" >>"$BASE/log/setup.log" 2>&1 || die "mon mkfs failed"
fi

# ---------- mon ----------
if ! ours_alive mon.a; then
  ceph-mon -c "$CONF" -i a >>"$BASE/log/setup.log" 2>&1 || die "ceph-mon failed to start"
fi
wait_for "mon quorum" C mon stat

# ---------- osd ----------
if [ $fresh = 1 ]; then
  OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
  C osd new "$OSD_UUID" >/dev/null 2>>"$BASE/log/setup.log" || die "osd new failed"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" >>"$BASE/log/setup.log" 2>&1 || die "osd mkfs failed"
fi
if ! ours_alive osd.0; then
  ceph-osd -c "$CONF" -i 0 >>"$BASE/log/setup.log" 2>&1 || die "ceph-osd failed to start"
fi
osd_up() { C osd dump -f json 2>/dev/null | grep -q '"up":1'; }
wait_for "osd up" osd_up

# ---------- radosgw ----------
if ! ours_alive client.rgw.a; then
  radosgw -c "$CONF" -n client.rgw.a >>"$BASE/log/setup.log" 2>&1 || die "radosgw failed to start"
fi
wait_for "radosgw http" anon_ready

if [ $fresh = 1 ]; then
  # radosgw-admin talks to the cluster as client.admin; the S3 user is the only credential RGW checks.
  # Every test makes its own buckets and few delete them: the default limit of 1000 a user is met
  # after a few runs (TooManyBuckets)
  timeout 60 radosgw-admin -c "$CONF" user create --uid=custody --display-name="Custody" \
      --access-key="$AK" --secret-key="$SK" --max-buckets=100000 >>"$BASE/log/setup.log" 2>&1 || die "radosgw-admin user create failed"
elif ! s3_ready; then
  converge_keys || die "could not set the S3 user's keys"   # restarted with rotated keys
fi
wait_for "authenticated S3 request" s3_ready
if [ $fresh = 1 ]; then
  # warm up: the first bucket creation makes RGW create its index/data pools (~4 s); pay it here,
  # not in the first test
  if ! { s3curl -m 60 -X PUT "$ENDPOINT/rgw-up-warmup" && s3curl -m 30 -X DELETE "$ENDPOINT/rgw-up-warmup"; }; then
    log "warning: warm-up bucket failed"
  fi
  touch "$BASE/.initialized"
fi
log "ready at $ENDPOINT"
print_env
