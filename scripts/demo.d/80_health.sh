# Step: health checks, the JSON report's verdict, `warden health` and its exit code, metrics.
bold "Health checks with thresholds kept in the database (a sequence near its maximum)"
psql -X -q -c "CREATE SEQUENCE IF NOT EXISTS demo_ticket_seq MAXVALUE 1000" \
     -c "SELECT setval('demo_ticket_seq', 900)" >/dev/null
psql -X -q -c "CALL warden.health_snapshot()"
psql -X -q -c "SELECT check_name, status, value, warning, critical, left(detail, 60) AS detail
               FROM warden.health_check()
               WHERE status <> 'unknown' OR detail NOT LIKE 'component not installed%'
               ORDER BY array_position('{critical,warning,unknown,ok}'::text[], status), check_name
               LIMIT 12"

bold "Thresholds are rows: lower one and the check turns critical"
psql -X -q -c "UPDATE warden.health_thresholds SET warning = 50, critical = 80 WHERE check_name = 'sequences'" \
     -c "SELECT check_name, status, value FROM warden.health_check() WHERE check_name = 'sequences'" \
     -c "UPDATE warden.health_thresholds SET warning = 85, critical = 95 WHERE check_name = 'sequences'"

bold "warden health: a readable report and check_postgres exit codes (0 ok, 1 warning, 2 critical, 3 unknown)"
"$WARDEN" health --no-color | head -60
echo "exit code: ${PIPESTATUS[0]}"
"$WARDEN" health --json | grep -E '^  "status"'
"$WARDEN" health -d "host=/nonexistent-socket-dir" 2>&1
echo "exit code: $?"

bold "warden health --prometheus (excerpt)"
"$WARDEN" health --prometheus | grep -E '^(# (HELP|TYPE) warden_health_status|warden_health_status\{check="(sequences|connections)"|warden_connections|warden_health_response)' || true
psql -X -q -c "DROP SEQUENCE demo_ticket_seq"
