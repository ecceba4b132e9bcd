#!/usr/bin/env bash
# make bench: runs every bench/*.sh in name order; each prints one "ratio" line per
# comparison it makes (pg_warden against the peer named in its issue, in the same run).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rc=0
found=0
for b in "$here"/*.sh; do
  [ "$(basename "$b")" = run-all.sh ] && continue
  [ "$(basename "$b")" = lib.sh ] && continue
  found=1
  echo "== $(basename "$b")"
  bash "$b" || rc=1
done
[ "$found" -eq 1 ] || echo "no benchmarks yet"
exit $rc
