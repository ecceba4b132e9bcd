# Step: stream WAL into a backup folder with `warden wal receive`, then check it.
bold "warden wal receive: WAL streamed from a permanent slot, compressed and checksummed"
backups=$(mktemp -d /tmp/pg_warden_demo_wal.XXXXXX)
"$WARDEN" wal receive --dir "$backups" --slot warden_demo 2>"$backups/receiver.log" &
receiver=$!
for _ in $(seq 50); do
  [ "$(psql -X -At -c "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'warden_demo' AND state = 'streaming'")" = 1 ] && break
  sleep 0.1
done
psql -X -q -c "CREATE TABLE demo_wal AS SELECT g AS id FROM generate_series(1, 100000) g" \
     -c "SELECT pg_switch_wal()" >/dev/null
sleep 1.5
psql -X -q -c "SELECT application_name, state, flush_lsn IS NOT NULL AS flushing FROM pg_stat_replication"
kill -TERM "$receiver"; wait "$receiver" || true
sed 's/^[0-9-]* [0-9:]* UTC //' "$backups/receiver.log"
(cd "$backups/wal" && ls | grep -v '\.sha256$' | sed 's/^/  /')

bold "warden wal verify: every checksum, no missing segment"
"$WARDEN" wal verify --dir "$backups" | sed -E 's/[0-9A-F]{24}/<segment>/g'
psql -X -q -c "SELECT pg_drop_replication_slot('warden_demo')" -c "DROP TABLE demo_wal" >/dev/null
rm -rf "$backups"
