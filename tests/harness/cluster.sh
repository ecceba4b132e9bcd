#!/usr/bin/env bash
# cluster.sh start DIR | stop DIR: a throwaway PostgreSQL 15 cluster under DIR, with a
# private pg_warden installation, listening only on a unix socket in DIR/socket.
# When run as root, the server runs as the postgres OS account (it refuses root).
# `start` prints shell assignments for PGHOST, PGPORT, PGUSER, PGDATABASE and PATH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmd=$1 dir=$2

as_server_user() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
  mkdir -p "$dir"
  bindir=$("$here/tmp-install.sh" "$dir/install")
  mkdir -p "$dir/socket"
  [ "$(id -u)" -eq 0 ] && chown -R postgres: "$dir"
  as_server_user "$bindir/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log"
  cat "$here/test.conf" >>"$dir/data/postgresql.conf"
  # WARDEN_EXTRA_CONF: a file of settings appended last (benchmarks turn fsync back on).
  [ -n "${WARDEN_EXTRA_CONF:-}" ] && cat "$WARDEN_EXTRA_CONF" >>"$dir/data/postgresql.conf"
  port=${WARDEN_PORT:-$((20000 + RANDOM % 20000))}
  as_server_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-p $port -k $dir/socket -c listen_addresses=''" start >/dev/null
  echo "export PGHOST='$dir/socket' PGPORT=$port PGUSER=postgres PGDATABASE=postgres PATH='$bindir':\"\$PATH\""
  ;;
stop)
  "$here/stop-clusters.sh" "$dir"
  ;;
*)
  echo "usage: cluster.sh start|stop DIR" >&2; exit 2 ;;
esac
