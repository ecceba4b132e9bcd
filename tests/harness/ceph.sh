#!/usr/bin/env bash
# ceph.sh start|stop|kill-gateway|start-gateway DIR: a throwaway single-node Ceph cluster
# with the RADOS Gateway (S3) on loopback, from Debian's ceph-mon, ceph-osd and radosgw.
#
#   start          one monitor, one OSD on the memstore object store (nothing on disk but
#                  the monitor's small database), pool size 1, a radosgw with the beast
#                  frontend on 127.0.0.1, an S3 user and the bucket "warden". Prints shell
#                  assignments: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
#                  AWS_REGION, WARDEN_S3_BUCKET. Also writes them to DIR/env (mode 0600).
#   stop           stops every daemon started from DIR and removes DIR's data.
#   kill-gateway   SIGKILLs the gateway (an object store that goes away mid-request).
#   start-gateway  starts it again on the same port and waits until it answers.
#
# CEPH_TLS=1 start: the gateway serves HTTPS only, with a self-signed certificate for
# 127.0.0.1 (pgBackRest speaks only HTTPS to S3); AWS_CA_BUNDLE names the certificate.
#
# Runs as whatever account calls it (root or postgres); every file, log and socket stays
# under DIR. Authentication inside the cluster is off (loopback only, throwaway); the
# gateway's S3 user still signs every request (SigV4).
set -euo pipefail
cmd=${1:-} dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: ceph.sh start|stop|kill-gateway|start-gateway DIR" >&2; exit 2; }
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac
conf="$dir/ceph.conf"
ceph_() { timeout 30 ceph -c "$conf" "$@"; }


free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

# Polls a command until it succeeds, for up to $1 seconds.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  while [ "$SECONDS" -lt "$deadline" ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "ceph.sh: timed out waiting for: $*" >&2
  return 1
}

gateway_up() {
  if [ -f "$dir/rgw.crt" ]; then
    curl -s -o /dev/null --cacert "$dir/rgw.crt" "https://127.0.0.1:$(cat "$dir/rgw.port")/"
  else
    curl -s -o /dev/null "http://127.0.0.1:$(cat "$dir/rgw.port")/"
  fi
}

start_gateway() {
  radosgw -c "$conf" -n client.rgw.a
  wait_for 60 gateway_up
}

# TERM to every daemon started from DIR, then KILL to what is left.
stop_daemons() {
  local f pid i
  for f in "$dir"/run/*.pid; do
    [ -e "$f" ] || continue
    kill -TERM "$(cat "$f")" 2>/dev/null || true
  done
  for f in "$dir"/run/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$f"
  done
}

# 0 when the OSD is up, 1 while it is starting, 2 when its process is gone.
osd_state() {
  local pid
  pid=$(cat "$dir/run/osd.0.pid" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null || return 2
  ceph_ osd stat 2>/dev/null | grep -q '1 up' || return 1
}

# The monitor and the OSD. Fails when the OSD exits during start (now and then the
# monitor refuses its first commands with "wrong fsid" and it gives up): the caller
# starts afresh.
start_rados() {
  local fsid mon_port uuid id i rc
  rm -rf "$dir/mon" "$dir/osd" "$dir/keyring" "$dir/monmap"
  mkdir -p "$dir/run" "$dir/log" "$dir/mon" "$dir/osd"
  fsid=$(cat /proc/sys/kernel/random/uuid)
  mon_port=$(free_port)
  cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$mon_port
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
ms bind ipv6 = false
ms bind msgr2 = false
public network = 127.0.0.0/8
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
mon cluster log to file = false
mon data = $dir/mon/\$id
osd data = $dir/osd/\$id
keyring = $dir/keyring
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
osd objectstore = memstore
memstore device bytes = 2147483648
osd memory target = 268435456
[client.rgw.a]
rgw frontends = $frontend
rgw data = $dir/rgw
CONF
  ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
  ceph-mon -c "$conf" -i a --mkfs --monmap "$dir/monmap" --keyring "$dir/keyring"
  ceph-mon -c "$conf" -i a
  wait_for 60 ceph_ mon stat || return 1
  uuid=$(cat /proc/sys/kernel/random/uuid)
  id=$(ceph_ osd new "$uuid")
  mkdir -p "$dir/osd/$id"
  ceph-osd -c "$conf" -i "$id" --mkfs --osd-uuid "$uuid" >/dev/null 2>&1
  ceph-osd -c "$conf" -i "$id" 2>/dev/null
  for ((i = 0; i < 300; i++)); do
    rc=0
    osd_state || rc=$?
    [ "$rc" = 0 ] && return 0
    [ "$rc" = 2 ] && { echo "ceph.sh: the OSD exited during start; starting again" >&2; return 1; }
    sleep 0.2
  done
  echo "ceph.sh: timed out waiting for the OSD" >&2
  return 1
}

case "$cmd" in
start)
  for b in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool ceph-authtool curl; do
    command -v "$b" >/dev/null || { echo "ceph.sh: $b is not installed (scripts/install-deps.sh)" >&2; exit 3; }
  done
  mkdir -p "$dir"
  rgw_port=$(free_port)
  echo "$rgw_port" >"$dir/rgw.port"
  frontend="beast endpoint=127.0.0.1:$rgw_port"
  scheme=http
  if [ "${CEPH_TLS:-0}" = 1 ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
      -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout "$dir/rgw.key" -out "$dir/rgw.crt" 2>/dev/null
    chmod 644 "$dir/rgw.crt"
    frontend="beast ssl_endpoint=127.0.0.1:$rgw_port ssl_certificate=$dir/rgw.crt ssl_private_key=$dir/rgw.key"
    scheme=https
  fi
  for attempt in 1 2 3; do
    start_rados && break
    stop_daemons
    [ "$attempt" = 3 ] && { echo "ceph.sh: the cluster did not come up" >&2; exit 1; }
  done
  mkdir -p "$dir/rgw"
  start_gateway
  access=$(head -c 10 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
  secret=$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n' | head -c 40)
  radosgw-admin -c "$conf" user create --uid=warden --display-name=warden \
    --access-key="$access" --secret-key="$secret" >/dev/null
  endpoint="$scheme://127.0.0.1:$rgw_port"
  ca=""
  cacert=()
  if [ "$scheme" = https ]; then
    ca=" AWS_CA_BUNDLE='$dir/rgw.crt'"
    cacert=(--cacert "$dir/rgw.crt")
  fi
  (umask 077 && cat >"$dir/env" <<ENV
export AWS_ENDPOINT_URL='$endpoint' AWS_ACCESS_KEY_ID='$access' AWS_SECRET_ACCESS_KEY='$secret' AWS_REGION='default' WARDEN_S3_BUCKET='warden'$ca
ENV
  )
  # The bucket, created with a signed request as any S3 client would (keys on stdin).
  printf 'user = "%s:%s"\n' "$access" "$secret" |
    curl -sf "${cacert[@]}" -K - -X PUT --aws-sigv4 "aws:amz:default:s3" \
      -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$endpoint/warden" >/dev/null
  cat "$dir/env"
  ;;
kill-gateway)
  pid=$(cat "$dir/run/client.rgw.a.pid" 2>/dev/null || true)
  if [ -n "$pid" ]; then
    kill -KILL "$pid" 2>/dev/null || true
    wait_for 30 sh -c "! kill -0 $pid 2>/dev/null"
  fi
  ;;
start-gateway)
  start_gateway
  ;;
stop)
  stop_daemons
  rm -rf "$dir/mon" "$dir/osd" "$dir/rgw"
  ;;
*)
  echo "usage: ceph.sh start|stop|kill-gateway|start-gateway DIR" >&2; exit 2 ;;
esac
