# Step: encryption at rest for a logical backup and the WAL archive (one key file).
bold "warden backup create --logical --encrypt: pg_dump's output sealed on its way to disk"
backups=$(mktemp -d /tmp/pg_warden_demo_enc.XXXXXX)
key="$backups/backup.key"
openssl rand -hex 32 >"$key"; chmod 600 "$key"
db=$(psql -X -At -c "SELECT current_database()")
psql -X -q -c "CREATE TABLE demo_enc AS SELECT g AS id, 'card-' || g AS secret FROM generate_series(1, 50000) g"
id=$("$WARDEN" backup create --dir "$backups" --logical --database "$db" --encrypt --key-file "$key" --quiet)
echo "  $id/dump.enc starts with: $(head -c 8 "$backups/$id/dump.enc")"
grep -c 'card-' "$backups/$id/dump.enc" | sed 's/^/  rows readable in it: /' || true
"$WARDEN" backup verify --dir "$backups" "$id" 2>&1 | sed 's/^/  without the key: /' || true
"$WARDEN" backup verify --dir "$backups" "$id" --key-file "$key"

bold "warden wal push --encrypt: a sealed WAL archive, useless without the key"
seg=$(psql -X -At -c "SELECT pg_walfile_name(pg_current_wal_lsn())")
datadir=$(psql -X -At -c "SHOW data_directory")
psql -X -q -c "SELECT pg_switch_wal()" >/dev/null
if [ -r "$datadir/pg_wal/$seg" ]; then
  "$WARDEN" wal push --dir "$backups" --encrypt --key-file "$key" "$datadir/pg_wal/$seg" && echo "  pushed $seg"
  (cd "$backups/wal" && ls | sed 's/^/  /')
  "$WARDEN" wal push --dir "$backups" "$datadir/pg_wal/$seg" 2>&1 | sed 's/^/  push without the key: /' || true
  "$WARDEN" wal fetch --dir "$backups" "$seg" "$backups/back" 2>&1 | sed 's/^/  fetch without the key: /' || true
  "$WARDEN" wal fetch --dir "$backups" --key-file "$key" "$seg" "$backups/back" &&
    cmp -s "$datadir/pg_wal/$seg" "$backups/back" && echo "  fetched with --key-file: identical"
  "$WARDEN" wal verify --dir "$backups" --key-file "$key" | sed -E 's/[0-9A-F]{24}/<segment>/g'
fi
psql -X -q -c "DROP TABLE demo_enc"
rm -rf "$backups"
