#!/usr/bin/env bash
# server-suites.sh WORK BINDIR: the suites that need a server (regress, isolation, tap).
# Runs as a non-root account; appends "suite passed failed" lines to WORK/results.
set -uo pipefail
work=$1 bindir=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
pgxs=$(dirname "$(dirname "$("$bindir/pg_config" --pgxs)")")
conf="$root/tests/harness/test.conf"
rc=0

# Counts "... ok" and "... FAILED" lines of pg_regress-style output.
count_regress() {
  local out=$1 suite=$2
  local ok bad
  ok=$(grep -cE '\.\.\. ok|^ok ' "$out")
  bad=$(grep -cE '\.\.\. FAILED|^not ok ' "$out")
  echo "$suite $ok $bad" >>"$work/results"
}

# ONLY=regex narrows every suite to the tests whose names match (e.g. ONLY='ledger|bridge').
only=${ONLY:-.}
regress_tests=$(cd "$root/regress/sql" 2>/dev/null && ls *.sql 2>/dev/null | sed 's/\.sql$//' | grep -E "$only")
if [ -n "$regress_tests" ]; then
  echo "== pg_regress"
  mkdir -p "$work/regress"
  "$pgxs/test/regress/pg_regress" --temp-instance="$work/regress/instance" \
    --temp-config="$conf" --bindir="$bindir" --inputdir="$root/regress" \
    --outputdir="$work/regress" --dbname=regression $regress_tests 2>&1 | tee "$work/regress/out"
  if [ "${PIPESTATUS[0]}" -ne 0 ]; then
    rc=1
    [ -f "$work/regress/regression.diffs" ] && cat "$work/regress/regression.diffs"
  fi
  count_regress "$work/regress/out" regress
fi

specs=$(cd "$root/regress/specs" 2>/dev/null && ls *.spec 2>/dev/null | sed 's/\.spec$//' | grep -E "$only")
if [ -n "$specs" ]; then
  echo "== pg_isolation_regress"
  mkdir -p "$work/isolation"
  "$pgxs/test/isolation/pg_isolation_regress" --temp-instance="$work/isolation/instance" \
    --temp-config="$conf" --bindir="$bindir" --inputdir="$root/regress" \
    --outputdir="$work/isolation" --dbname=isolation_regression $specs 2>&1 | tee "$work/isolation/out"
  if [ "${PIPESTATUS[0]}" -ne 0 ]; then
    rc=1
    [ -f "$work/isolation/regression.diffs" ] && cat "$work/isolation/regression.diffs"
  fi
  count_regress "$work/isolation/out" isolation
fi

tap_files=$(cd "$root/tests/t" 2>/dev/null && ls *.pl 2>/dev/null | grep -E "$only" | sed "s|^|$root/tests/t/|")
if [ -n "$tap_files" ]; then
  echo "== TAP (prove)"
  mkdir -p "$work/tap"
  ( cd "$work/tap" &&
    PG_REGRESS="$pgxs/test/regress/pg_regress" TEMP_CONFIG="$conf" TESTDIR="$work/tap" \
    WARDEN_ROOT="$root" prove --timer -I "$pgxs/test/perl" -I "$root/tests/t" $tap_files ) \
    2>&1 | tee "$work/tap/out"
  tap_rc=${PIPESTATUS[0]}
  if [ "$tap_rc" -ne 0 ]; then
    rc=1
    for log in "$work"/tap/tmp_check/log/regress_log_*; do
      [ -f "$log" ] && { echo "---- $log (tail)"; tail -n 60 "$log"; }
    done
  fi
  total=$(sed -n 's/^Files=[0-9]*, Tests=\([0-9]*\),.*/\1/p' "$work/tap/out")
  bad=$(sed -n 's/.*Failed \([0-9]*\)\/[0-9]* subtests.*/\1/p' "$work/tap/out" | awk '{s += $1} END {print s + 0}')
  total=${total:-0} bad=${bad:-0}
  # prove failed without naming failed subtests (a script died): count it as one failure.
  [ "$tap_rc" -eq 0 ] || [ "$bad" -gt 0 ] || bad=1
  echo "tap $((total - bad)) $bad" >>"$work/results"
fi
exit $rc
