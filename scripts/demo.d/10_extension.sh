# Step: install the extension and show the foundation.
bold "CREATE EXTENSION pg_warden"
psql -X -q -c "CREATE EXTENSION IF NOT EXISTS pg_warden" \
     -c "SELECT warden.version() AS extension_version"
"$WARDEN" --version

bold "Roles pg_warden grants to (nothing goes to PUBLIC)"
psql -X -q -c "SELECT rolname, pg_has_role(rolname, 'pg_monitor', 'member') AS monitor
               FROM pg_roles WHERE rolname LIKE 'warden\_%' ORDER BY 1"

bold "The migration checksum rule: CRLF, LF and a BOM give one SHA-256"
psql -X -q -c "SELECT warden.checksum(E'CREATE TABLE t (id int);\n') AS lf,
                      warden.checksum(E'\uFEFFCREATE TABLE t (id int);\r\n') AS bom_crlf"

bold "C++ errors surface as ordinary PostgreSQL errors; the session carries on"
psql -X -q -c "SELECT warden._bridge_selftest('cxx')" -c "SELECT 'still connected' AS session" 2>&1 || true
