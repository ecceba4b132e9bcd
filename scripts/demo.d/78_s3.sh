# Step: backups and WAL in an S3 bucket, on a throwaway Ceph RADOS Gateway (skipped when
# Ceph is not installed, or when the demo runs as an account that cannot start it).
command -v radosgw >/dev/null || { bold "S3 repository: skipped (Ceph is not installed)"; exit 0; }
bold "An S3 bucket: a single-node Ceph with the RADOS Gateway on 127.0.0.1"
ceph=$(mktemp -d /tmp/pg_warden_demo_ceph.XXXXXX)
trap '"$(dirname "$0")/../../tests/harness/ceph.sh" stop "$ceph" >/dev/null 2>&1; rm -rf "$ceph"' EXIT
t0=$(date +%s.%N)
eval "$("$(dirname "$0")/../../tests/harness/ceph.sh" start "$ceph")"
echo "  gateway at $AWS_ENDPOINT_URL after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s; keys in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
url="s3://$WARDEN_S3_BUCKET/demo"

bold "warden backup create --dir $url: made locally, uploaded, backup.json last"
psql -X -q -c "CREATE TABLE demo_s3 AS SELECT g AS id FROM generate_series(1, 100000) g"
id=$("$WARDEN" backup create --dir "$url" --quiet)
"$WARDEN" backup list --dir "$url" | cut -c1-100
"$WARDEN" backup verify --dir "$url" "$id"

bold "warden backup create --dir $url --incremental: the parent chosen from the bucket"
psql -X -q -c "UPDATE demo_s3 SET id = id + 1 WHERE id <= 1000"
inc=$("$WARDEN" backup create --dir "$url" --incremental --quiet)
"$WARDEN" backup list --dir "$url" | cut -c1-120
"$WARDEN" backup verify --dir "$url" "$inc"

bold "warden wal push into the bucket, then wal fetch it back (as restore_command would)"
seg=$(psql -X -At -c "SELECT pg_walfile_name(pg_current_wal_lsn())")
datadir=$(psql -X -At -c "SHOW data_directory")
psql -X -q -c "SELECT pg_switch_wal()" >/dev/null
if [ -r "$datadir/pg_wal/$seg" ]; then
  "$WARDEN" wal push --dir "$url" "$datadir/pg_wal/$seg" && echo "  pushed $seg"
  back=$(mktemp -d /tmp/pg_warden_demo_wal.XXXXXX)
  "$WARDEN" wal fetch --dir "$url" "$seg" "$back/$seg" &&
    cmp -s "$datadir/pg_wal/$seg" "$back/$seg" && echo "  fetched $seg back: identical"
  "$WARDEN" wal fetch --dir "$url" 000000010000000000000FFF "$back/missing" || echo "  a segment the bucket lacks: exit $? (recovery ends there)"
  rm -rf "$back"
fi
psql -X -q -c "DROP TABLE demo_s3"
