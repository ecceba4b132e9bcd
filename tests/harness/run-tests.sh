#!/usr/bin/env bash
# run-tests.sh: every test suite, against throwaway clusters in one temporary directory
# that is removed on exit, failure or Ctrl-C. Expects `make` to have built everything.
#   unit       Catch2 through ctest (no server)
#   regress    pg_regress on regress/sql        (temporary instance, unix socket only)
#   isolation  pg_isolation_regress on regress/specs
#   tap        prove on tests/t/*.pl with PostgreSQL::Test::Cluster from the PGXS install
# Server suites run as the postgres OS account when started as root.
# Ends with one line: "summary: N passed, N failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

work=$(mktemp -d /tmp/pg_warden_test.XXXXXX)
cleanup() {
  "$root/tests/harness/stop-clusters.sh" "$work"
  mountpoint -q "$work/full-disk" 2>/dev/null && umount "$work/full-disk"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM
chmod 755 "$work"

echo "== install into $work/install"
bindir=$(tests/harness/tmp-install.sh "$work/install") || { echo "tmp install failed"; exit 1; }

echo "== unit tests (ctest)"
ctest_out=$(ctest --test-dir build --output-on-failure ${ONLY:+-R "$ONLY"} 2>&1)
ctest_rc=$?
echo "$ctest_out" | tail -n 20
unit_total=$(echo "$ctest_out" | sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p')
unit_failed=$(echo "$ctest_out" | sed -n 's/.* \([0-9]*\) tests failed out of.*/\1/p')
unit_total=${unit_total:-0} unit_failed=${unit_failed:-0}
[ "$ctest_rc" -eq 0 ] || [ "$unit_failed" -gt 0 ] || unit_failed=1
echo "unit $((unit_total - unit_failed)) $unit_failed" >"$work/results"

# A really full disk for the backup tests: a small tmpfs, which only root can mount
# (tests/t/073_backup_full_disk.pl skips without it).
full_disk=
if [ "$(id -u)" -eq 0 ]; then
  mkdir -p "$work/full-disk"
  mount -t tmpfs -o size=24m,mode=0755 tmpfs "$work/full-disk" 2>/dev/null && full_disk="$work/full-disk"
fi

if [ "$(id -u)" -eq 0 ]; then
  chown -R postgres: "$work"
  as_server_user=(runuser -u postgres --)
else
  as_server_user=()
fi
"${as_server_user[@]}" env PATH="$bindir:$PATH" ONLY="${ONLY:-}" WARDEN_BIN="$root/build/utility/warden" \
  WARDEN_FULL_DISK="$full_disk" \
  "$root/tests/harness/server-suites.sh" "$work" "$bindir"
suites_rc=$?

# Attacks that need root: `warden` run as root (crontab) against files that the server
# account owns. Only when the harness runs as root; the servers they start run as postgres.
root_tests=$(cd tests/root 2>/dev/null && ls *.pl 2>/dev/null | grep -E "${ONLY:-.}" | sed "s|^|$root/tests/root/|")
if [ "$(id -u)" -eq 0 ] && [ -n "$root_tests" ]; then
  echo "== TAP as root (prove)"
  mkdir -p "$work/root" && chmod 755 "$work/root"
  pgxs=$(dirname "$(dirname "$("$bindir/pg_config" --pgxs)")")
  ( cd "$work/root" && PATH="$bindir:$PATH" WARDEN_BIN="$root/build/utility/warden" \
    WARDEN_ROOT="$root" ROOT_TESTDIR="$work/root" TESTDIR="$work/root" \
    prove -I "$pgxs/test/perl" $root_tests ) 2>&1 | tee "$work/root/out"
  root_rc=${PIPESTATUS[0]}
  [ "$root_rc" -eq 0 ] || suites_rc=1
  total=$(sed -n 's/^Files=[0-9]*, Tests=\([0-9]*\),.*/\1/p' "$work/root/out")
  bad=$(sed -n 's/.*Failed \([0-9]*\)\/[0-9]* subtests.*/\1/p' "$work/root/out" | awk '{s += $1} END {print s + 0}')
  total=${total:-0} bad=${bad:-0}
  [ "$root_rc" -eq 0 ] || [ "$bad" -gt 0 ] || bad=1
  echo "root $((total - bad)) $bad" >>"$work/results"
fi

passed=0 failed=0
while read -r suite p f; do
  printf '   %-10s %4d passed, %d failed\n' "$suite" "$p" "$f"
  passed=$((passed + p)); failed=$((failed + f))
done <"$work/results"

cleanup
trap - EXIT
leftover=$(pgrep -f "$work" || true)
if [ -n "$leftover" ] || [ -e "$work" ]; then
  echo "harness: a server or the temporary directory was left behind"; failed=$((failed + 1))
fi
echo "summary: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$suites_rc" -eq 0 ]
