# Step: a custom check, `warden health --html`, and the read-only web dashboard.
bold "Custom checks: your own query, judged like the built-in checks (run as warden_monitor)"
psql -X -q -c "CREATE TABLE IF NOT EXISTS public.demo_outbox (id int PRIMARY KEY, sent boolean NOT NULL)" \
     -c "INSERT INTO public.demo_outbox SELECT g, g > 30 FROM generate_series(1, 100) g ON CONFLICT DO NOTHING" \
     -c "GRANT SELECT ON public.demo_outbox TO warden_monitor" \
     -c "SELECT warden.add_check('outbox_unsent',
           \$\$SELECT count(*), count(*) || ' messages not sent' FROM public.demo_outbox WHERE NOT sent\$\$,
           25, 100, unit => 'messages')" >/dev/null
psql -X -q -c "SELECT check_name, status, value, warning, critical, detail
               FROM warden.health_check() WHERE check_name = 'outbox_unsent'"
"$WARDEN" health --prometheus | grep 'check="outbox_unsent"'

bold "warden health --html: the overview and charts as one self-contained file"
dir=${DEMO_WORK:-$(mktemp -d /tmp/pg_warden_demo_html.XXXXXX)}
psql -X -q -c "CALL warden.health_snapshot()"
"$WARDEN" health --html "$dir/health.html" >/dev/null
echo "exit code: $? ; $(wc -c <"$dir/health.html") bytes in $dir/health.html (Chart.js inlined)"

bold "warden dashboard: read-only pages on loopback, as a warden_monitor member"
conn=""
if [ -n "${DEMO_WORK:-}" ]; then
  psql -X -q -c "DO \$\$BEGIN CREATE ROLE demo_watcher LOGIN IN ROLE warden_monitor;
                 EXCEPTION WHEN duplicate_object THEN NULL; END\$\$"
  conn="user=demo_watcher"
fi
"$WARDEN" dashboard --listen 0.0.0.0:8080 -d "$conn" 2>&1
echo "exit code: $?"
port=$((20000 + RANDOM % 20000))
"$WARDEN" dashboard --listen "127.0.0.1:$port" -d "$conn" >"$dir/dashboard.out" 2>"$dir/dashboard.log" &
pid=$!
for _ in $(seq 1 100); do grep -q serving "$dir/dashboard.out" 2>/dev/null && break; sleep 0.1; done
cat "$dir/dashboard.out"
for page in / /charts /tables /migrations /backups /jobs /security; do
  curl -s -o "$dir/page.html" -w "GET $page %{http_code} %{size_download} bytes  " "http://127.0.0.1:$port$page"
  grep -o '<title>[^<]*</title>' "$dir/page.html"
done
curl -s -o /dev/null -w "POST / %{http_code} (read-only)\n" -X POST "http://127.0.0.1:$port/"
kill "$pid"; wait "$pid" 2>/dev/null
psql -X -q -c "SELECT warden.drop_check('outbox_unsent')" -c "DROP TABLE public.demo_outbox" >/dev/null
[ -n "${DEMO_WORK:-}" ] || rm -rf "$dir"
