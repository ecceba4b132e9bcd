# Step: a verified physical backup, the catalog, a restore drill and retention.
backups=${DEMO_WORK:-$(mktemp -d /tmp/pg_warden_demo_backups.XXXXXX)}/backups

bold "warden backup create: the whole cluster over one replication connection"
psql -X -q -c "CREATE TABLE IF NOT EXISTS demo_orders AS SELECT g AS id, now() AS placed_at FROM generate_series(1, 10000) g"
id=$("$WARDEN" backup create --dir "$backups" --label demo)
echo "backup ID: $id"

bold "warden backup list: the catalog (backup.json in each backup's folder)"
"$WARDEN" backup list --dir "$backups"

bold "warden backup verify: every archive member against the server's backup_manifest"
"$WARDEN" backup verify --dir "$backups" "$id"

bold "What the database knows (warden.backups, for the health views)"
psql -X -q -c "SELECT id, kind, status, pg_size_pretty(stored_bytes) AS stored, verified_at IS NOT NULL AS verified
               FROM warden.backups ORDER BY finished_at"

bold "warden restore into a scratch directory (refuses a non-empty one)"
if [ -n "${DEMO_WORK:-}" ] && [ "$(id -u)" -ne 0 ]; then
  "$WARDEN" backup drill --dir "$backups" "$id"
else
  scratch=$(mktemp -d /tmp/pg_warden_demo_restore.XXXXXX)
  "$WARDEN" restore --dir "$backups" "$id" --target "$scratch/data" \
    $(psql -XAtc "SELECT '--tablespace-mapping=' || pg_tablespace_location(oid) || '=$scratch/ts_' || oid
                  FROM pg_tablespace WHERE pg_tablespace_location(oid) <> ''")
  "$WARDEN" restore --dir "$backups" "$id" --target "$scratch/data" 2>&1 || true
  rm -rf "$scratch"
fi

bold "warden backup prune --dry-run: each backup's keep/delete reason"
"$WARDEN" backup create --dir "$backups" --compress zstd --quiet >/dev/null
"$WARDEN" backup prune --dir "$backups" --keep-last 1 --dry-run
psql -X -q -c "DROP TABLE demo_orders"
