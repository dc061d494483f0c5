#!/usr/bin/env bash
# Prepare this machine (Debian bookworm, as root) to run and test berth. Idempotent: every step first
# checks and does nothing when its result is already there, so a second run takes a few seconds.
#
#   scripts/setup.sh                  do the set-up, print one line per step
#   scripts/setup.sh --runtime-only   for a production node (docs/setup.md): packages, Node, runtime
#                                     npm dependencies (no devDependencies), dockerd; no egress guard,
#                                     no test image
#   scripts/setup.sh --print-env      print `export PATH=...` for the project's Node (does nothing else)
#   source scripts/setup.sh           do the set-up, then put the project's Node first on the caller's PATH
#
# Steps: Debian packages (docker.io iptables conntrack busybox-static iproute2 curl openssl) -> Node 24
# (the machine's node if it is >= 24, otherwise npm's node-linux-<arch>@24 under .tools/node) -> npm ci
# -> a running dockerd -> the DOCKER-USER egress guard -> the local test image berth-test/busybox:latest.
# Only Debian's archive and the npm registry are used.

# Sourced: run the set-up in a child shell (its `set -e` and `exit` must not leak into the caller),
# then export the PATH it chose.
if [[ ${BASH_SOURCE[0]} != "$0" ]]; then
  # (no "$@": a sourced file without arguments would see the caller's)
  bash "${BASH_SOURCE[0]}" || return $?
  # shellcheck source=scripts/lib.sh
  source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
  berth_use_node
  return 0
fi

set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
log() { berth_log "setup: $*"; }
die() { berth_die "setup: $*"; }

RUNTIME_ONLY=0
case ${1:-} in
  --print-env) berth_use_node; printf 'export PATH=%q\n' "$PATH"; exit 0 ;;
  --runtime-only) RUNTIME_ONLY=1 ;;
  '') ;;
  -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [--runtime-only | --print-env]" >&2; exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then exec sudo -n bash "$0" "$@"; fi
  die "run as root (dockerd, iptables and apt need it): sudo bash $0"
fi
: "${HOME:=/root}"; export HOME   # npm needs a HOME for its cache; CI runners sometimes unset it
# npm (Node) trusts only its bundled CA list; machines that reach the registry through a TLS proxy
# have that proxy's CA in the system store, so let Node trust the system store as well.
if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -s /etc/ssl/certs/ca-certificates.crt ]; then
  export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
fi
export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
T0=$SECONDS

# ---------------------------------------------------------------- Debian packages
APT_UPDATED=0
apt_install() { # PKG...
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    apt-get update -qq || die "apt-get update failed"
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "$@" >/dev/null || die "apt-get install $* failed"
}
have() { command -v "$1" >/dev/null 2>&1; }
deb_installed() { dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | grep -q '^ii'; }

ensure_packages() {
  local missing=()
  { have dockerd && have docker; } || missing+=(docker.io)
  { have iptables && have iptables-restore; } || missing+=(iptables)
  have conntrack || missing+=(conntrack)
  have nft || missing+=(nftables) # --proxy-mode nftables
  # the static build specifically: the test image is a bare busybox binary with no libc beside it
  deb_installed busybox-static || missing+=(busybox-static)
  have ip || missing+=(iproute2)
  have curl || missing+=(curl)
  have openssl || missing+=(openssl)
  # tests only: a real Prometheus scrapes berth's /metrics/cadvisor (test/integration/cadvisor-prometheus.test.ts)
  [ "$RUNTIME_ONLY" = 1 ] || have prometheus || missing+=(prometheus)
  if [ ${#missing[@]} -eq 0 ]; then log "ok: Debian packages present"; return 0; fi
  apt_install "${missing[@]}"
}

# ---------------------------------------------------------------- Node 24
ensure_node() {
  local major sys
  major=$(berth_node_major "$BERTH_TOOLS_BIN/node")
  if [ -x "$BERTH_TOOLS_BIN/node" ] && [ "${major:-0}" -ge "$BERTH_NODE_MAJOR" ]; then
    berth_use_node
  else
    sys=$(command -v node || true)
    major=""; [ -z "$sys" ] || major=$(berth_node_major "$sys")
    if [ "${major:-0}" -lt "$BERTH_NODE_MAJOR" ]; then
      log "machine's node is ${sys:-missing}${major:+ (v$major)}; installing Node $BERTH_NODE_MAJOR into $BERTH_TOOLS_NODE"
      install_node
      berth_use_node
    fi
  fi
  have npm || die "no npm next to $(command -v node)"
  log "ok: node $(node --version) ($(command -v node)), npm $(npm --version)"
}

# npm's node-linux-<arch> packages carry the official Node binary (bin/node) and headers (include/node).
# The npm CLI is installed beside it, so the project never depends on the machine's npm after this.
install_node() {
  local arch
  case $(uname -m) in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) die "no node-linux package for $(uname -m)" ;;
  esac
  # something to run npm with, once: the machine's npm, else Debian's (Node 18, only to bootstrap)
  have npm || apt_install npm
  mkdir -p "$BERTH_TOOLS_NODE"
  cat >"$BERTH_TOOLS_NODE/package.json" <<EOF
{
  "private": true,
  "description": "Node.js $BERTH_NODE_MAJOR and npm for berth, installed by scripts/setup.sh",
  "dependencies": { "node-linux-$arch": "$BERTH_NODE_MAJOR", "npm": "11" }
}
EOF
  (cd "$BERTH_TOOLS_NODE" && npm install --no-audit --no-fund --loglevel=error >/dev/null) \
    || die "npm install node-linux-$arch@$BERTH_NODE_MAJOR failed"
  if [ ! -x "$BERTH_TOOLS_BIN/node" ] || [ ! -x "$BERTH_TOOLS_BIN/npm" ]; then die "$BERTH_TOOLS_BIN has no node/npm after install"; fi
}

# ---------------------------------------------------------------- npm dependencies
# node-gyp (ssh2's optional cpu-features) must compile against the headers of the node that runs
# berth; node-linux-* ships them, and nodejs.org (where node-gyp would fetch them) is not reachable.
node_headers_env() {
  local prefix
  prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  [ -f "$prefix/include/node/common.gypi" ] && export npm_config_nodedir=$prefix
  return 0
}

# The stamp records what node_modules was installed for: the lock file's hash and whether dev
# dependencies are in (changed -> npm ci) and the Node ABI (changed -> npm rebuild of native add-ons).
ensure_npm_deps() {
  local nm=$BERTH_REPO/node_modules lock=$BERTH_REPO/package-lock.json ci_flags=()
  local stamp=$BERTH_REPO/node_modules/.berth-setup-stamp lock_hash abi old_lock="" old_abi="" reason=""
  [ -f "$lock" ] || die "$lock is missing"
  lock_hash=$(sha256sum <"$lock" | cut -d' ' -f1)
  if [ "$RUNTIME_ONLY" = 1 ]; then lock_hash="$lock_hash+omit-dev"; ci_flags=(--omit=dev); fi
  abi=$(node -p process.versions.modules)
  if [ -f "$stamp" ]; then
    old_lock=$(sed -n 's/^lock=//p' "$stamp"); old_abi=$(sed -n 's/^abi=//p' "$stamp")
  fi
  if [ ! -f "$nm/.package-lock.json" ]; then reason="node_modules is missing"
  elif [ -n "$old_lock" ] && [ "$old_lock" != "$lock_hash" ]; then reason="package-lock.json or --runtime-only changed"
  elif [ -z "$old_lock" ] && [ "$lock" -nt "$nm/.package-lock.json" ]; then reason="package-lock.json is newer than node_modules"
  fi
  node_headers_env
  if [ -n "$reason" ]; then
    log "npm ci${ci_flags[*]:+ ${ci_flags[*]}} ($reason)"
    local t=$SECONDS
    (cd "$BERTH_REPO" && npm ci "${ci_flags[@]}" --no-audit --no-fund --loglevel=error) || die "npm ci failed"
    log "npm ci done in $((SECONDS - t))s"
  elif [ "$old_abi" != "$abi" ]; then
    # node_modules is current but was installed by (or for) another Node: rebuild native add-ons in
    # place rather than wiping node_modules. Only optional add-ons exist, so a failure is a warning.
    log "npm rebuild (node_modules was installed for Node ABI ${old_abi:-unknown}, now $abi)"
    (cd "$BERTH_REPO" && npm rebuild --loglevel=error >/dev/null 2>&1) \
      || log "warning: npm rebuild failed; optional native add-ons (cpu-features) stay unavailable"
  else
    log "ok: node_modules matches package-lock.json"
  fi
  printf 'lock=%s\nabi=%s\n' "$lock_hash" "$abi" >"$stamp"
}

# ---------------------------------------------------------------- Docker
DOCKER_SOCK=/var/run/docker.sock
docker_answers() { curl -s --max-time 5 --unix-socket "$DOCKER_SOCK" http://localhost/_ping 2>/dev/null | grep -qx OK; }
dockerd_running() { grep -qx dockerd /proc/[0-9]*/comm 2>/dev/null; }

ensure_docker() {
  if docker_answers; then
    log "ok: docker $(docker version -f '{{.Server.Version}}' 2>/dev/null) answers on $DOCKER_SOCK"
    return 0
  fi
  if [ -d /run/systemd/system ] && have systemctl; then
    log "starting docker.service"
    systemctl start docker.service || log "warning: systemctl start docker.service failed"
  elif dockerd_running; then
    log "a dockerd process exists but $DOCKER_SOCK does not answer yet; waiting for it"
  else
    log "starting dockerd (log: /var/log/berth-dockerd.log)"
    # own session, no inherited stdio: a CI runner that waits for its pipes to close must not wait for it
    setsid dockerd >>/var/log/berth-dockerd.log 2>&1 </dev/null &
  fi
  local i
  for i in $(seq 120); do
    if docker_answers && docker version >/dev/null 2>&1; then
      log "docker $(docker version -f '{{.Server.Version}}') answers after $((i / 2))s"
      return 0
    fi
    sleep 0.5
  done
  [ -f /var/log/berth-dockerd.log ] && tail -n 20 /var/log/berth-dockerd.log >&2
  die "no Docker daemon answers on $DOCKER_SOCK after 60s (see /var/log/berth-dockerd.log or journalctl -u docker)"
}

# ---------------------------------------------------------------- egress guard
# Containers started by the tests may reach only the Docker bridge subnet (other containers / pods)
# and this host, never the outside world. Traffic from a container to any of the host's own
# addresses (docker0's gateway address included) is delivered locally through INPUT and never
# enters FORWARD, so it is not affected by these rules; the bridge subnet is let through explicitly;
# everything else a container sends out through docker0 (internet, LAN, other hosts) is rejected.
# Replies of connections opened from outside (published ports) still pass (ESTABLISHED).
# Service traffic keeps working: kube-proxy's DNAT (nat PREROUTING) runs before FORWARD, so a
# ClusterIP connection is checked against its pod endpoint, inside the subnet.
# DOCKER-USER is the chain Docker reserves for such rules (jumped to first from FORWARD, never
# flushed by dockerd). IPv4 only: Docker's default bridge has no IPv6.
GUARD_TAG=berth-egress-guard
ensure_egress_guard() {
  local bridge subnet
  bridge=$(docker network inspect bridge -f '{{index .Options "com.docker.network.bridge.name"}}' 2>/dev/null || true)
  subnet=$(docker network inspect bridge -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' 2>/dev/null | tr ' ' '\n' | grep -m1 '\.' || true)
  bridge=${bridge:-docker0}
  [ -n "$subnet" ] || die "cannot read the subnet of Docker's default bridge network"
  iptables -w -S DOCKER-USER >/dev/null 2>&1 || die "iptables chain DOCKER-USER is missing (Docker creates it when it starts; is dockerd running with --iptables=false?)"
  # shellcheck disable=SC2054  # RELATED,ESTABLISHED is one argument
  local est=(-i "$bridge" -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "$GUARD_TAG" -j RETURN)
  local rej=(-i "$bridge" ! -d "$subnet" -m comment --comment "$GUARD_TAG" -j REJECT --reject-with icmp-port-unreachable)
  local rules tagged
  rules=$(iptables -w -S DOCKER-USER)
  tagged=$(grep -n -e "--comment $GUARD_TAG" <<<"$rules" || true)
  # in place = exactly our two rules, both as wanted now (subnet may change), ESTABLISHED first
  if [ "$(grep -c . <<<"$tagged")" = 2 ] && [[ $(head -n1 <<<"$tagged") == *"-j RETURN" ]] \
      && iptables -w -C DOCKER-USER "${est[@]}" 2>/dev/null && iptables -w -C DOCKER-USER "${rej[@]}" 2>/dev/null; then
    log "ok: DOCKER-USER egress guard in place ($bridge may reach only $subnet and this host)"
    return 0
  fi
  # missing, partial, out of order or for an old subnet: remove ours (only lines carrying our tag)
  local line
  while IFS= read -r line; do
    line=${line#*:-A DOCKER-USER }
    # shellcheck disable=SC2086  # iptables -S output is word-split back into arguments on purpose
    [ -n "$line" ] && iptables -w -D DOCKER-USER $line
  done <<<"$tagged"
  iptables -w -I DOCKER-USER 1 "${rej[@]}"
  iptables -w -I DOCKER-USER 1 "${est[@]}"
  log "added DOCKER-USER egress guard: $bridge may reach only $subnet and this host"
}

# ---------------------------------------------------------------- local test image
# No registry is reachable, so the image pods run is made here from Debian's static busybox: one binary,
# a symlink per applet, a minimal /etc/passwd and /etc/group (root, nobody) and a world-writable /tmp.
# test/integration/helpers/docker-images.ts builds the same image (same name, same file tree) when it
# is missing; keep the two in step.
ensure_test_image() {
  if docker image inspect "$BERTH_TEST_IMAGE" >/dev/null 2>&1; then
    log "ok: image $BERTH_TEST_IMAGE present"
    return 0
  fi
  local tmp applet
  tmp=$(mktemp -d)
  mkdir -p "$tmp/root/bin" "$tmp/root/sbin" "$tmp/root/usr/bin" "$tmp/root/etc" "$tmp/root/tmp" "$tmp/root/root" "$tmp/root/var"
  chmod 1777 "$tmp/root/tmp"; chmod 700 "$tmp/root/root"
  cp /bin/busybox "$tmp/root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$tmp/root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$tmp/root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$tmp/root/etc/group"
  tar -C "$tmp/root" --numeric-owner --owner=0 --group=0 -cf "$tmp/rootfs.tar" .
  docker import --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["sh"]' --change 'LABEL io.berth.test-image=true' \
    --message "berth test image: Debian busybox-static $(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null)" \
    "$tmp/rootfs.tar" "$BERTH_TEST_IMAGE" >/dev/null || { rm -rf "$tmp"; die "docker import $BERTH_TEST_IMAGE failed"; }
  rm -rf "$tmp"
  log "built image $BERTH_TEST_IMAGE from /bin/busybox ($(docker image inspect -f '{{.Size}}' "$BERTH_TEST_IMAGE") bytes)"
}

# The daemon's bundle (dist/cli/main.mjs, see scripts/build.ts): ~40 MiB less RSS than running the
# TypeScript sources; bin/berth falls back to the sources whenever the bundle is older than them.
ensure_bundle() {
  if (cd "$BERTH_REPO" && node scripts/build.ts --check); then log "ok: bundle dist/cli/main.mjs is current"; return 0; fi
  local out
  out=$(cd "$BERTH_REPO" && node scripts/build.ts 2>&1) || die "bundle build failed (node scripts/build.ts): $out"
  log "$out"
}

ensure_packages
ensure_node
ensure_npm_deps
ensure_bundle
ensure_docker
if [ "$RUNTIME_ONLY" = 0 ]; then
  ensure_egress_guard
  ensure_test_image
fi
log "done in $((SECONDS - T0))s"
