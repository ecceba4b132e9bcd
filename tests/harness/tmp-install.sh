#!/usr/bin/env bash
# tmp-install.sh DEST: a private copy of the PostgreSQL 15 installation under DEST with
# pg_warden installed into it (make install DESTDIR=DEST), like PostgreSQL's own
# "make check". The server finds its share and lib directories relative to its binary,
# so tests never touch the system installation and parallel checkouts don't collide.
# Prints the bin directory to use.
set -euo pipefail
dest=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}

bindir=$("$pg_config" --bindir)
pkglibdir=$("$pg_config" --pkglibdir)
sharedir=$("$pg_config" --sharedir)
for dir in "$bindir" "$pkglibdir" "$sharedir"; do
  mkdir -p "$dest$dir"
  cp -a "$dir/." "$dest$dir/"
done
make -C "$root" --no-print-directory -s install DESTDIR="$dest" PG_CONFIG="$pg_config" >/dev/null
echo "$dest$bindir"
