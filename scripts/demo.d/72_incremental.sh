# Step: block-level incremental backups: only changed blocks stored, the chain restored
# and verified as one, prune keeping the parents a kept backup needs.
backups=${DEMO_WORK:-$(mktemp -d /tmp/pg_warden_demo_incr.XXXXXX)}/incremental

bold "warden backup create --incremental: only the blocks changed since the parent"
psql -X -q -c "CREATE TABLE IF NOT EXISTS demo_ledger AS SELECT g AS id, 0 AS balance FROM generate_series(1, 200000) g"
full=$("$WARDEN" backup create --dir "$backups" --label "demo full")
psql -X -q -c "UPDATE demo_ledger SET balance = balance + 1 WHERE id <= 5000"
inc=$("$WARDEN" backup create --dir "$backups" --incremental --label "demo incremental")
"$WARDEN" backup list --dir "$backups"
echo "incremental.json of $inc lists $(grep -o '"path"' "$backups/$inc/incremental.json" | wc -l) relation files patched block by block"

bold "warden backup verify: the incremental and its whole chain, every block"
"$WARDEN" backup verify --dir "$backups" "$inc"

bold "warden restore of the chain (the full backup, then each link's blocks)"
scratch=$(mktemp -d /tmp/pg_warden_demo_chain.XXXXXX)
if [ -z "$(psql -XAtc "SELECT 1 FROM pg_tablespace WHERE pg_tablespace_location(oid) <> '' LIMIT 1")" ]; then
  "$WARDEN" restore --dir "$backups" "$inc" --target "$scratch/data"
fi
rm -rf "$scratch"

bold "warden backup create --encrypt: AES-256-GCM archives; the catalog still lists them without the key"
key=$(dirname "$backups")/demo.key
(umask 077; openssl rand -hex 32 >"$key")
enc=$("$WARDEN" backup create --dir "$backups" --incremental --encrypt --key-file "$key" --label "demo encrypted")
head -c 8 "$backups/$enc/blocks.tar.gz"; echo "  <- the sealed file header of $enc/blocks.tar.gz"
"$WARDEN" backup verify --dir "$backups" "$enc" 2>&1 || true
"$WARDEN" backup verify --dir "$backups" "$enc" --key-file "$key"

bold "warden backup prune --dry-run: a parent stays while a kept backup needs it"
"$WARDEN" backup prune --dir "$backups" --keep-last 1 --dry-run
psql -X -q -c "DROP TABLE demo_ledger"
