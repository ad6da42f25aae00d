#!/usr/bin/env bash
# pools.sh - after `ceph orch apply -i deploy/ceph/cluster-spec.yaml`: the RGW pools for Custody, the
# S3 user the application uses, and the two buckets (originals with Object Lock: S3 can turn it on
# only when a bucket is created).
#
#   DATA_POOL=replicated deploy/ceph/pools.sh    # size 3, min_size 2 (3+ OSD hosts)       [default]
#   DATA_POOL=ec42       deploy/ceph/pools.sh    # erasure coded 4+2 data, 1.5x raw (6+ OSD hosts)
#
# Run on a host with the admin keyring (the cephadm shell). Idempotent where Ceph is.
set -euo pipefail
ZONE=${ZONE:-site-a}
DATA_POOL=${DATA_POOL:-replicated}
PG_DATA=${PG_DATA:-256}   # data pool PGs: ~100 PGs per OSD across all pools; the autoscaler adjusts

ceph config set global osd_pool_default_size 3
ceph config set global osd_pool_default_min_size 2
ceph config set global mon_osd_down_out_interval 600   # an OSD down 10 min is rebuilt elsewhere

# Metadata and index pools stay replicated (small, latency-bound, omap needs replication).
for p in .rgw.root "$ZONE.rgw.control" "$ZONE.rgw.meta" "$ZONE.rgw.log" "$ZONE.rgw.buckets.index" \
  "$ZONE.rgw.buckets.non-ec"; do
  ceph osd pool create "$p" 32 32 replicated 2>/dev/null || true
  ceph osd pool set "$p" size 3
  ceph osd pool set "$p" min_size 2
  ceph osd pool application enable "$p" rgw 2>/dev/null || true
done

case "$DATA_POOL" in
  replicated)
    ceph osd pool create "$ZONE.rgw.buckets.data" "$PG_DATA" "$PG_DATA" replicated 2>/dev/null || true
    ceph osd pool set "$ZONE.rgw.buckets.data" size 3
    ceph osd pool set "$ZONE.rgw.buckets.data" min_size 2
    ;;
  ec42)
    # k=4 data + m=2 coding chunks on 6 different hosts: survives 2 hosts down, 1.5x raw capacity;
    # min_size k+1 = 5: writes pause rather than land with no redundancy left.
    ceph osd erasure-code-profile set custody-ec42 k=4 m=2 crush-failure-domain=host 2>/dev/null || true
    ceph osd pool create "$ZONE.rgw.buckets.data" "$PG_DATA" "$PG_DATA" erasure custody-ec42 2>/dev/null || true
    ceph osd pool set "$ZONE.rgw.buckets.data" min_size 5
    ;;
  *) echo "DATA_POOL must be replicated or ec42" >&2; exit 2 ;;
esac
ceph osd pool application enable "$ZONE.rgw.buckets.data" rgw 2>/dev/null || true
ceph osd pool set "$ZONE.rgw.buckets.data" pg_autoscale_mode on

# The application's S3 user (keys go to CUSTODY_S3_ACCESS_KEY / CUSTODY_S3_SECRET_KEY, nowhere else).
radosgw-admin user info --uid=custody >/dev/null 2>&1 \
  || radosgw-admin user create --uid=custody --display-name="Custody archive" >/dev/null
echo "S3 keys of user custody: radosgw-admin user info --uid=custody (keys[0])" >&2
echo "Buckets: the API creates custody-originals (Object Lock) and custody-derived on first start" >&2
echo "(archive.storage.MinioStore.ensure_buckets), or make them now with any S3 client, e.g.:" >&2
echo "  aws s3api create-bucket --bucket custody-originals --object-lock-enabled-for-bucket" >&2
