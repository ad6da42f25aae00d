#!/usr/bin/env bash
# install.sh - make this machine able to develop, test and run Custody. Idempotent and quick when
# there is nothing to do, so CI and deploy/services.sh callers can run it every time.
#
#   deploy/install.sh                   Debian packages + .venv with the project and dev tools
#   deploy/install.sh --with-postgres   ... plus the PostgreSQL server (tests use a real one)
#
# Debian packages: Redis (Celery broker), ffmpeg (transcodes), Ceph (monitor, manager, OSDs, radosgw:
# the S3 engine, one node for tests and the embedded default, a 3-OSD cluster for the node-loss tests
# with haproxy in front of its gateways, deploy/cluster.sh), curl (S3 readiness checks), exiftool (writes the EXIF
# tags of the sample photo the tests generate), chromium (the review page's browser test drives it
# through Playwright; Playwright's own browser download is never used), fonts-noto-cjk (Chinese
# pages, exports and screenshots render characters instead of empty boxes), tzdata (the agency's
# zone, CUSTODY_TIMEZONE), softhsm2 (a PKCS#11 token: the tests keep a signing key in it, as
# production keeps one in an HSM). A fresh machine or CI has none of them, and whatever was installed
# by hand is gone on the next machine. The translation catalogs are compiled (.mo) on every run.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=$ROOT/.venv
STAMP=$VENV/.installed-stamp

log() { echo "[install $(date +%T)] $*" >&2; }

packages=(redis-server ffmpeg ceph-mon ceph-osd ceph-mgr radosgw ceph-common haproxy curl libimage-exiftool-perl
  chromium fonts-noto-cjk tzdata softhsm2)
case "${1:-}" in
  --with-postgres) packages+=(postgresql) ;;
  "") ;;
  *) echo "usage: $0 [--with-postgres]" >&2; exit 2 ;;
esac

# ---------- Debian packages ----------
missing=()
for pkg in "${packages[@]}"; do
  # "deinstall ok config-files" (removed, config kept) counts as missing
  if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]; then
    missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=()
  if [ "$(id -u)" != 0 ]; then sudo=(sudo); fi
  log "installing ${missing[*]}"
  # update only now: it costs ~10 s and the network, and the lists may never have been fetched
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
else
  log "Debian packages present"
fi

# ---------- Python virtualenv ----------
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
# reinstall only when the dependency list changed: pip takes ~10 s even when all is satisfied
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
  log "pip install -e '.[dev]'"
  (cd "$ROOT" && "$VENV/bin/pip" install -q -e '.[dev]') >&2
  touch "$STAMP"
else
  log "$VENV up to date"
fi

# ---------- translations ----------
# .mo files are build products (not in git): compile the catalogs for this checkout. (Without them
# archive.i18n compiles each .po in memory on first use; with them, start-up reads no .po.)
log "pybabel compile"
"$VENV/bin/pybabel" -q compile -D custody -d "$ROOT/archive/locale" >&2
