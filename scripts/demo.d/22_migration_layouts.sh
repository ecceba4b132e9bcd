# Step: real migration histories: every folder layout detected, a Flyway history adopted,
# four application instances migrating at once.
root="$(cd "$(dirname "$0")/../.." && pwd)"
layouts="$root/migrations/layouts"
psql -X -q -c 'DROP DATABASE IF EXISTS layouts_demo' -c 'CREATE DATABASE layouts_demo'
psql -X -q -d layouts_demo -c 'CREATE EXTENSION pg_warden'
db=layouts_demo

bold "warden migrate status on a suffixed folder: postgres files win, mysql/sqlite3/cockroach ones are ignored"
ls "$layouts/suffixed" | head -n 8
"$WARDEN" migrate status -d "$db" --dir "$layouts/suffixed"

bold "up, down to zero, up again: .autocommit. files run outside a transaction (CREATE/DROP INDEX CONCURRENTLY)"
"$WARDEN" migrate up -d "$db" --dir "$layouts/suffixed"
"$WARDEN" migrate down -d "$db" --dir "$layouts/suffixed" --target 0 | tail -n 1
"$WARDEN" migrate up -d "$db" --dir "$layouts/suffixed"

bold "A Flyway folder: versions 1.2 < 1.10, ordered part by part"
psql -X -q -c 'DROP DATABASE IF EXISTS layouts_demo' -c 'CREATE DATABASE layouts_demo'
psql -X -q -d layouts_demo -c 'CREATE EXTENSION pg_warden'
"$WARDEN" migrate status -d "$db" --dir "$layouts/flyway"

bold "Adopting Flyway's own history: what it applied is recorded, its table untouched"
psql -X -q -d "$db" <<SQL
CREATE TABLE flyway_schema_history (installed_rank int PRIMARY KEY, version varchar(50),
  description varchar(200) NOT NULL, type varchar(20) NOT NULL, script varchar(1000) NOT NULL,
  checksum int, installed_by varchar(100) NOT NULL, installed_on timestamp NOT NULL DEFAULT now(),
  execution_time int NOT NULL, success boolean NOT NULL);
\i $layouts/flyway/V1__init.sql
\i $layouts/flyway/V1.1__add_email.sql
INSERT INTO flyway_schema_history VALUES
  (1, '1', 'init', 'SQL', 'V1__init.sql', 0, 'flyway', now(), 3, true),
  (2, '1.1', 'add email', 'SQL', 'V1.1__add_email.sql', 0, 'flyway', now(), 2, true);
SQL
"$WARDEN" migrate adopt --from flyway -d "$db" --dir "$layouts/flyway"
"$WARDEN" migrate up -d "$db" --dir "$layouts/flyway"

bold "Four instances running warden migrate up at once over CREATE INDEX CONCURRENTLY: one applies, the others wait and skip"
psql -X -q -c 'DROP DATABASE IF EXISTS layouts_demo' -c 'CREATE DATABASE layouts_demo'
psql -X -q -d layouts_demo -c 'CREATE EXTENSION pg_warden' \
  -c 'CREATE TABLE big AS SELECT g AS id FROM generate_series(1, 200000) g'
concurrent=$(mktemp -d)
printf -- '-- warden:no-transaction\nCREATE INDEX CONCURRENTLY big_id ON big (id);\n' >"$concurrent/001_big_id.up.sql"
printf 'CREATE TABLE after_index (id int);\n' >"$concurrent/002_after.up.sql"
for i in 1 2 3 4; do "$WARDEN" migrate up -d "$db" --dir "$concurrent" | sed "s/^/instance $i: /" & done
wait
psql -X -q -d "$db" -c "SELECT version, name, state FROM warden.migration_status"
rm -rf "$concurrent"
psql -X -q -c 'DROP DATABASE layouts_demo'
