#!/usr/bin/env bash
# stop-clusters.sh DIR: stops every PostgreSQL server whose data directory lies under
# DIR (immediate shutdown, then SIGKILL if it lingers). Used by every trap, so a test run
# interrupted at any point leaves no server behind.
set -u
dir=$1
[ -d "$dir" ] || exit 0
while IFS= read -r pidfile; do
  pid=$(head -n 1 "$pidfile" 2>/dev/null)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || continue
  kill -QUIT "$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
done < <(find "$dir" -name postmaster.pid 2>/dev/null)
exit 0
