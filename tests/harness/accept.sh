#!/usr/bin/env bash
# accept.sh TEST...: runs pg_regress for the named tests and prints their results, so
# that a developer can read them before copying them to regress/expected (never blindly).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/pg_warden_accept.XXXXXX)
trap '"$root/tests/harness/stop-clusters.sh" "$work"; rm -rf "$work"' EXIT
chmod 755 "$work"
bindir=$("$root/tests/harness/tmp-install.sh" "$work/install")
mkdir -p "$work/out"
[ "$(id -u)" -eq 0 ] && chown -R postgres: "$work" && as=(runuser -u postgres --) || as=()
pgxs=$(dirname "$(dirname "$("$bindir/pg_config" --pgxs)")")
"${as[@]}" "$pgxs/test/regress/pg_regress" --temp-instance="$work/out/instance" \
  --temp-config="$root/tests/harness/test.conf" --bindir="$bindir" --inputdir="$root/regress" \
  --outputdir="$work/out" --dbname=regression "$@" >/dev/null 2>&1 || true
mkdir -p "$root/build/results"
for t in "$@"; do cp "$work/out/results/$t.out" "$root/build/results/$t.out"; echo "build/results/$t.out"; done
