#!/usr/bin/env bash
# Installs every Debian package pg_warden needs to build, test, demo and benchmark.
# Idempotent: packages already present are skipped, so a second run costs one dpkg query.
# Works as root or through sudo; never creates or starts the distribution's own cluster.
set -euo pipefail

PACKAGES=(
  # build
  build-essential g++ cmake make pkg-config
  # server, headers, PGXS, pg_regress/isolation and the TAP modules
  postgresql-15 postgresql-client-15 postgresql-server-dev-15 postgresql-15-cron
  postgresql-contrib
  # libraries
  libpq-dev zlib1g-dev libzstd-dev libssl-dev libfmt-dev libarchive-dev
  nlohmann-json3-dev libcli11-dev catch2
  # the dashboard: embedded HTTP(S) server and the charting library it serves
  libcpp-httplib-dev libjs-chart.js
  # test harness
  libipc-run-perl perl util-linux procps
  # the dashboard's browser test (tests/t/086): headless Chromium, a certificate, HTTPS
  chromium fonts-dejavu-core openssl libio-socket-ssl-perl curl
  # S3 repositories: libcurl (SigV4 signing) and libxml2; a Ceph RADOS Gateway for the tests
  libcurl4-openssl-dev libxml2-dev ceph-mon ceph-osd radosgw ceph-common
)

# Tools only the benchmarks compare against (make bench passes --bench).
BENCH_PACKAGES=(
  hyperfine nodejs pgbackrest
  # bench/health.sh: the check_postgres anchor
  check-postgres
)
# npm packages the benchmarks compare against, installed under build/bench-node.
BENCH_NPM_PACKAGES=(
  dbmate node-pg-migrate pg squawk-cli
)

if [ "${1:-}" = "--bench" ]; then PACKAGES+=("${BENCH_PACKAGES[@]}"); fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo" >&2; exit 1; }
  SUDO=(sudo)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# The headers must match the server: an upgraded -dev with an old server is a mismatch.
srv=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null || true)
dev=$(dpkg-query -W -f='${Version}' postgresql-server-dev-15 2>/dev/null || true)
if [ -n "$dev" ] && [ "$srv" != "$dev" ]; then missing+=(postgresql-15 postgresql-server-dev-15); fi

install_npm() {
  [ "${1:-}" = "--bench" ] && [ ${#BENCH_NPM_PACKAGES[@]} -gt 0 ] || return 0
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/build/bench-node"
  mkdir -p "$dir"
  (cd "$dir" && npm install --silent --no-audit --no-fund "${BENCH_NPM_PACKAGES[@]}" >/dev/null)
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  install_npm "${1:-}"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
# Debian's postgresql-common would create and start a 'main' cluster on port 5432;
# pg_warden's harness runs its own throwaway clusters, so switch that off.
"${SUDO[@]}" mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" | "${SUDO[@]}" tee /etc/postgresql-common/createcluster.d/pg_warden.conf >/dev/null
export DEBIAN_FRONTEND=noninteractive
# A fresh machine's own unattended updates may hold the package lock: wait for it.
apt_wait=(-o DPkg::Lock::Timeout=900)
"${SUDO[@]}" apt-get "${apt_wait[@]}" update -qq
"${SUDO[@]}" apt-get "${apt_wait[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
install_npm "${1:-}"
echo "install-deps: done"
