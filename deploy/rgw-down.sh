#!/usr/bin/env bash
# rgw-down.sh - stop the Ceph/RGW cluster started by deploy/rgw-up.sh under $RGW_BASE.
# Only signals the PIDs recorded in $RGW_BASE/run/*.pid, and only if that process was started with
# our ceph.conf (a stale pid file may name a recycled pid; no pkill/killall, which would also hit
# another checkout's or another profile's cluster).
#   --purge   also delete $RGW_BASE (all data)
# Prints nothing on stdout. Exits 0 when nothing of ours runs any more.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BASE=${RGW_BASE:-$ROOT/var/rgw}
CONF=$BASE/ceph.conf
RUN=$BASE/run
log() { echo "[rgw-down $(date +%T)] $*" >&2; }

PURGE=0
case "${1:-}" in
  --purge) PURGE=1 ;;
  "") ;;
  *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
esac

is_ours() {  # $1 = pid
  kill -0 "$1" 2>/dev/null && tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qxF -- "$CONF"
}

stop_one() {  # $1 = daemon name; $2 = grace seconds before SIGKILL
  local f=$RUN/$1.pid p i
  [ -s "$f" ] || return 0
  p=$(cat "$f")
  if ! is_ours "$p"; then
    rm -f "$f"; return 0          # stale pid file / pid reused by something else
  fi
  kill -TERM "$p" 2>/dev/null || true
  for ((i = 0; i < $2 * 10; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then
    log "$1 (pid $p) ignored SIGTERM, sending SIGKILL"
    kill -KILL "$p" 2>/dev/null || true
  fi
  rm -f "$f"
  log "stopped $1 (pid $p)"
}

# memstore data is lost on stop anyway, so don't wait long for the osd; bluestore gets time to
# flush and unmount cleanly (a SIGKILLed bluestore OSD replays its journal on the next start)
grace_osd=15; grep -q '^osd_objectstore = memstore' "$CONF" 2>/dev/null && grace_osd=3
# gateway first (it is the client), monitor last (the others want to tell it they are leaving)
stop_one client.rgw.a 10
stop_one osd.0 "$grace_osd"
stop_one mon.a 10
if [ "$PURGE" = 1 ]; then rm -rf "$BASE"; log "purged $BASE"; fi
exit 0
