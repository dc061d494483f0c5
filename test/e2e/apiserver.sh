#!/usr/bin/env bash
# berth's end-to-end cluster: a real kube-apiserver (v1.20.2, built from Debian bookworm's
# `kubernetes` source package with Debian's Go 1.19) + Debian's etcd 3.4, on loopback only.
# Needs nothing but Debian's archive: packages, the source (`apt-get source`, a deb-src entry is
# added when missing) and kubectl all come from it. Built binaries are cached in $BERTH_E2E_DIR/bin
# (fresh machine: about 4 minutes on 2 cores; afterwards `start` takes a few seconds).
# scripts/test.sh runs `start` with RIG_CONTROLLERS=1 RIG_SA_ADMISSION=0 and RIG_NODES including this host.
#
#   apiserver.sh [start]   install deps, build or reuse $BERTH_E2E_DIR/bin/kube-apiserver,
#                          start etcd + kube-apiserver in the background (idempotent; restarts
#                          kube-apiserver only when new node identities were added, or with
#                          RIG_RESTART_ON_CHANGE=1 when its flags changed)
#   apiserver.sh stop      stop the processes this script started (by saved PID only)
#   apiserver.sh status    show PIDs / readiness
#   apiserver.sh smoke     exercise node-agent API flows as node-1 (node, pods, watch, status, lease)
#   apiserver.sh reset     stop, then wipe the etcd data dir (next start = empty cluster)
#   apiserver.sh pki       only (re)create PKI/tokens/kubeconfigs for RIG_NODES, start nothing.
#                          New node x509 client certs ($PKI/<node>-client.crt) work at once; new
#                          node *tokens* only after the next apiserver start (static token file).
#
# Outputs (after start), $BERTH_E2E_DIR defaulting to /var/lib/berth-e2e:
#   endpoint            https://127.0.0.1:6443
#   $BERTH_E2E_DIR/admin.kubeconfig    user "admin", group system:masters (static token)
#   $BERTH_E2E_DIR/node-1.kubeconfig   user system:node:node-1, group system:nodes (static token)
#   $BERTH_E2E_DIR/admin.token, $BERTH_E2E_DIR/node-1.token   raw bearer tokens (for curl)
#   $BERTH_E2E_DIR/pki/ca.crt          CA for the serving cert (and all client certs below)
#   $BERTH_E2E_DIR/pki/node-1-client.{crt,key}   x509 client cert alternative for node-1
#   $BERTH_E2E_DIR/pki/kubelet-node-1.{crt,key}  serving cert a kubelet on 127.0.0.1:10250 may use
#   $BERTH_E2E_DIR/bin/kubectl         Debian's kubectl 1.20.2 (extracted, see note below)
#   $BERTH_E2E_DIR/run/*.log, *.pid    logs and PIDs
#
# Environment knobs:
#   BERTH_E2E_DIR=/var/lib/berth-e2e           state: binaries, PKI, kubeconfigs, etcd data, logs
#   BERTH_E2E_SRC=/var/cache/berth-e2e/src     Debian kubernetes source tree and its build inputs
#   RIG_NODES="node-1 node-2"   node identities to create tokens/kubeconfigs for (default node-1);
#                               identities created by earlier runs are kept (the token file only grows)
#   RIG_PORT=6443               secure port
#   RIG_ETCD_PORT=2379          etcd client port (peer and metrics: the next two)
#   RIG_KCM_PORT=10257 RIG_SCHED_PORT=10259   controller-manager / scheduler secure ports
#   RIG_ETCD_DATA=$BERTH_E2E_DIR/etcd
#   RIG_RESTART_ON_CHANGE=0     1 = restart a running kube-apiserver whose flags differ from the
#                               wanted ones (default: warn only)
#   RIG_SA_ADMISSION=0          1 = keep the ServiceAccount admission plugin enabled (then pods
#                               need a ServiceAccount object, which nothing creates without
#                               kube-controller-manager); default 0 = disabled so bare pods work
#   RIG_EXTRA_APISERVER_FLAGS   appended verbatim to the kube-apiserver command line
#   RIG_NODE_PROXIER=1          (default) bind ClusterRole system:node-proxier to group system:nodes
#                               so node users may list/watch services, endpoints, endpointslices
#                               (stock 1.20 Node authorizer/system:node role: services only; 0 = skip)
#   RIG_CONTROLLERS=1           also build + run kube-controller-manager and kube-scheduler
#                               (same source/version; ~1 extra min of build with a warm cache).
#                               Gives SA/token controllers, endpoint(slice) controllers, node
#                               lifecycle (NotReady/taints/eviction), GC, namespace deletion,
#                               scheduling of pods without nodeName. Default 0 = etcd+apiserver only.
#                               With RIG_CONTROLLERS=1, RIG_SA_ADMISSION defaults to 1.
#   RIG_PROFILE=default         bound-token = what every current (>= 1.22) API server gives each pod: ServiceAccount
#                               admission on, kube-apiserver with --feature-gates=BoundServiceAccountTokenVolume=true
#                               (alpha in 1.20) and --api-audiences, so every pod gets a projected `kube-api-access-*`
#                               volume (TokenRequest token, `kube-root-ca.crt` ConfigMap, namespace). The ConfigMap
#                               comes from kube-controller-manager's root-ca-cert-publisher (feature RootCAConfigMap,
#                               beta and on by default in 1.20), the default ServiceAccounts from its SA controller,
#                               so this profile implies RIG_CONTROLLERS=1 and RIG_SA_ADMISSION=1. Switching profile
#                               restarts kube-apiserver (needs RIG_RESTART_ON_CHANGE=1): other users of the rig
#                               see it go away for a few seconds. The running profile: $RUN/kube-apiserver.profile.
#
# Deviations from a stock v1.20.2 build (both needed because Debian bookworm only has Go 1.19):
#   * pkg/generated/openapi is generated with `make gen_openapi` (not shipped in the tarball)
#   * vendored modern-go/reflect2 v1.0.1 + json-iterator v1.1.10 are replaced by Debian's
#     golang-github-modern-go-reflect2-dev 1.0.2 / golang-github-json-iterator-go-dev 1.1.12
#     (v1.0.1 makes the apiserver panic on some JSON request bodies under Go >= 1.18)
set -euo pipefail

RIG=${BERTH_E2E_DIR:-/var/lib/berth-e2e}
SRC_PARENT=${BERTH_E2E_SRC:-/var/cache/berth-e2e/src}
BIN=$RIG/bin
PKI=$RIG/pki
RUN=$RIG/run
PORT=${RIG_PORT:-6443}
ETCD_PORT=${RIG_ETCD_PORT:-2379}          # etcd peer and metrics listen on the next two ports
ETCD_PEER_PORT=$((ETCD_PORT + 1))
ETCD_METRICS_PORT=$((ETCD_PORT + 2))
KCM_PORT=${RIG_KCM_PORT:-10257}
SCHED_PORT=${RIG_SCHED_PORT:-10259}
ETCD_DATA=${RIG_ETCD_DATA:-$RIG/etcd}
NODES=${RIG_NODES:-node-1}
CONTROLLERS=${RIG_CONTROLLERS:-0}
PROFILE=${RIG_PROFILE:-default}
[ "$PROFILE" = bound-token ] && CONTROLLERS=1
SA_ADMISSION=${RIG_SA_ADMISSION:-$CONTROLLERS}
[ "$PROFILE" = bound-token ] && SA_ADMISSION=1
BINS="kube-apiserver"
[ "$CONTROLLERS" = 1 ] && BINS="kube-apiserver kube-controller-manager kube-scheduler"
K8S_VERSION=v1.20.2
K8S_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56
ENDPOINT=https://127.0.0.1:$PORT

log() { printf '[berth-e2e %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
case $PROFILE in default|bound-token) ;; *) die "RIG_PROFILE=$PROFILE: expected default or bound-token" ;; esac

# ---------------------------------------------------------------- process helpers
# pid_alive NAME BINARY -> 0 if the PID saved in $RUN/NAME.pid is alive and runs BINARY
pid_alive() {
  local f=$RUN/$1.pid pid exe
  [ -s "$f" ] || return 1
  pid=$(cat "$f")
  [ -d /proc/$pid ] || return 1
  exe=$(readlink /proc/$pid/exe 2>/dev/null || true)
  # "(deleted)": the binary was replaced (rebuilt) while the process kept running
  [ "$exe" = "$2" ] || [ "$exe" = "$2 (deleted)" ]
}

# start_bg NAME BINARY ARGS... : run detached in its own session; the process writes its own PID
start_bg() {
  local name=$1; shift
  mkdir -p "$RUN"
  rm -f "$RUN/$name.pid"
  [ -f "$RUN/$name.log" ] && mv -f "$RUN/$name.log" "$RUN/$name.log.prev"
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "$RUN/$name.pid" "$@" \
    >"$RUN/$name.log" 2>&1 </dev/null &
  for _ in $(seq 50); do [ -s "$RUN/$name.pid" ] && break; sleep 0.1; done
  [ -s "$RUN/$name.pid" ] || die "$name did not start (see $RUN/$name.log)"
}

# stop_pid NAME BINARY : TERM (then KILL after 20s) the saved PID, only if it still runs BINARY
stop_pid() {
  local name=$1 bin=$2 pid
  if pid_alive "$name" "$bin"; then
    pid=$(cat "$RUN/$name.pid")
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 200); do [ -d /proc/$pid ] || break; sleep 0.1; done
    if [ -d /proc/$pid ]; then log "$name did not exit, sending KILL to $pid"; kill -KILL "$pid" 2>/dev/null || true; fi
  else
    [ -f "$RUN/$name.pid" ] && log "$name: saved pid $(cat "$RUN/$name.pid") not running (or not $bin); nothing to stop"
  fi
  rm -f "$RUN/$name.pid"
}

do_stop() {
  stop_pid kube-scheduler "$BIN/kube-scheduler"
  stop_pid kube-controller-manager "$BIN/kube-controller-manager"
  stop_pid kube-apiserver "$BIN/kube-apiserver"
  stop_pid etcd /usr/bin/etcd
}

do_status() {
  local rc=0
  for n in etcd:/usr/bin/etcd kube-apiserver:$BIN/kube-apiserver \
           kube-controller-manager:$BIN/kube-controller-manager kube-scheduler:$BIN/kube-scheduler; do
    case ${n%%:*} in kube-controller-manager|kube-scheduler) [ -f "$RUN/${n%%:*}.pid" ] || continue;; esac
    if pid_alive "${n%%:*}" "${n#*:}"; then echo "${n%%:*}: running (pid $(cat "$RUN/${n%%:*}.pid"))"; else echo "${n%%:*}: not running"; rc=1; fi
  done
  echo "profile: $(cat "$RUN/kube-apiserver.profile" 2>/dev/null || echo default)"
  if [ -f "$RIG/admin.token" ]; then
    echo "readyz: $(curl -s --max-time 3 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(cat "$RIG/admin.token")" "$ENDPOINT/readyz" || echo unreachable)"
  fi
  return $rc
}

# ---------------------------------------------------------------- install (Debian archive only)
apt_updated=0
apt_update_once() { [ $apt_updated = 1 ] || { log "apt-get update"; apt-get update -qq; apt_updated=1; }; }

ensure_debs() {
  local missing=()
  command -v etcd    >/dev/null || missing+=(etcd-server)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v curl    >/dev/null || missing+=(curl)
  if [ ${#missing[@]} -gt 0 ]; then
    apt_update_once
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # On a systemd host etcd-server's postinst enables and starts a packaged etcd on :2379, which
    # would take the port of ours. We installed it only for its binary: switch that service off.
    if [[ " ${missing[*]} " == *" etcd-server "* ]] && [ -d /run/systemd/system ]; then
      log "disabling the packaged etcd.service (only /usr/bin/etcd is used, started by this script)"
      systemctl disable --now etcd.service >/dev/null 2>&1 || true
    fi
  fi
}

# Debian's kubectl (kubernetes-client 1.20.2). The VM image ships a Google Cloud SDK `kubectl`
# package that owns /usr/bin/kubectl, so installing kubernetes-client fails with a dpkg file
# conflict. Instead download the .deb from the Debian archive and extract it under $RIG.
ensure_kubectl() {
  [ -x "$BIN/kubectl" ] && return 0
  apt_update_once
  local tmp; tmp=$(mktemp -d); chmod 755 "$tmp"
  log "fetching Debian kubernetes-client .deb (kubectl $K8S_VERSION)"
  (cd "$tmp" && apt-get download -qq kubernetes-client 2>/dev/null)
  mkdir -p "$RIG/kubectl-deb" "$BIN"
  dpkg-deb -x "$tmp"/kubernetes-client_*.deb "$RIG/kubectl-deb"
  ln -sfn "$RIG/kubectl-deb/usr/bin/kubectl" "$BIN/kubectl"
  rm -rf "$tmp"
}

# deb-src entries copied from the machine's Debian entries (same mirror, suites, components), so
# `apt-get source` works wherever `apt-get install` does. Debian images use either the deb822
# /etc/apt/sources.list.d/debian.sources (bookworm's default) or one-line /etc/apt/sources.list.
have_kubernetes_src() {
  # `apt-cache showsrc` exits 0 even when it finds nothing: look for the record itself
  apt-cache showsrc kubernetes 2>/dev/null | grep -q '^Package: kubernetes$'
}
ensure_deb_src() {
  local f=/etc/apt/sources.list.d/debian-src.sources l=/etc/apt/sources.list.d/berth-deb-src.list
  have_kubernetes_src && return 0
  if [ ! -f "$f" ] && [ ! -f "$l" ]; then
    if [ -f /etc/apt/sources.list ] && grep -qE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list \
        && [ ! -f /etc/apt/sources.list.d/debian.sources ]; then
      log "adding $l (deb-src copy of /etc/apt/sources.list)"
      sed -nE 's/^[[:space:]]*deb([[:space:]])/deb-src\1/p' /etc/apt/sources.list >"$l"
    elif [ -f /etc/apt/sources.list.d/debian.sources ]; then
      log "adding $f (deb-src copy of debian.sources)"
      sed -e 's/^Types:[[:space:]]*deb[[:space:]]*$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$f"
    else
      log "adding $f (default deb.debian.org URIs)"
      cat >"$f" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
  fi
  apt_updated=0; apt_update_once
  have_kubernetes_src || die "no source package 'kubernetes' after adding deb-src entries ($f / $l); check /etc/apt"
}

# ---------------------------------------------------------------- build kube-apiserver (+ optional)
# cached_ok NAME: binary exists, reports the right version, and carries the .buildinfo marker
# (the marker guards against reusing a binary built without the reflect2 fix below)
cached_ok() {
  [ -x "$BIN/$1" ] && [ -f "$BIN/$1.buildinfo" ] && "$BIN/$1" --version 2>/dev/null | grep -q "$K8S_VERSION"
}

build_k8s() {
  local b todo=()
  for b in $BINS; do
    if cached_ok "$b"; then log "reusing cached $BIN/$b ($("$BIN/$b" --version))"; else todo+=("$b"); fi
  done
  [ ${#todo[@]} -eq 0 ] && return 0
  local t0=$SECONDS src
  # build deps: Debian's Go 1.19; dpkg-dev for `apt-get source`; make + rsync for hack/ codegen;
  # Debian's reflect2 1.0.2 / json-iterator 1.1.12 sources to replace the vendored copies
  local gocode=/usr/share/gocode/src/github.com
  command -v go >/dev/null && command -v dpkg-source >/dev/null && command -v make >/dev/null \
    && command -v rsync >/dev/null && [ -f $gocode/modern-go/reflect2/go_above_118.go ] \
    && [ -f $gocode/json-iterator/go/reflect_map.go ] || {
    apt_update_once
    local pk="golang-go dpkg-dev make rsync golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev"
    log "apt-get install $pk"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq --no-install-recommends $pk >/dev/null
  }
  src=$(ls -d "$SRC_PARENT"/kubernetes-1.20* 2>/dev/null | head -n1 || true)
  if [ -z "$src" ] || [ ! -d "$src/cmd/kube-apiserver" ]; then
    ensure_deb_src
    mkdir -p "$SRC_PARENT"; chmod 755 "$SRC_PARENT"
    log "apt-get source kubernetes (into $SRC_PARENT)"
    local ts=$SECONDS
    (cd "$SRC_PARENT" && apt-get source -qq kubernetes >/dev/null 2>&1) || die "apt-get source kubernetes failed"
    log "apt-get source done in $((SECONDS - ts))s"
    src=$(ls -d "$SRC_PARENT"/kubernetes-1.20* | head -n1)
  fi
  [ -d "$src/vendor/k8s.io" ] || die "$src has no vendor/ tree"
  # pkg/generated/openapi/zz_generated.openapi.go is not in the source tarball; without it the
  # build fails with "cmd/kube-apiserver/app/server.go:477:87: undefined: openapi.GetOpenAPIDefinitions".
  if [ ! -s "$src/pkg/generated/openapi/zz_generated.openapi.go" ]; then
    log "generating OpenAPI definitions (make gen_openapi)"
    local tg=$SECONDS
    (cd "$src" && make gen_openapi >"$SRC_PARENT/gen_openapi.log" 2>&1) || die "make gen_openapi failed; see $SRC_PARENT/gen_openapi.log"
    log "gen_openapi done in $((SECONDS - tg))s"
  fi
  # Go >= 1.18 vs vendored github.com/modern-go/reflect2 v1.0.1: the apiserver builds and starts,
  # then PANICS (nil pointer in reflect2.(*frozenConfig).Type2 <- UnsafeMapType.Key <- json-iterator
  # decoderOfMap) when decoding some request bodies, e.g. creating a coordination.k8s.io/v1 Lease;
  # clients see "stream error: stream ID 3; INTERNAL_ERROR". Upstream fixed this with reflect2 v1.0.2
  # + json-iterator v1.1.12 (what k8s >= 1.21 backports use); swap in Debian's packaged sources.
  local pair d
  if [ ! -f "$src/vendor/github.com/modern-go/reflect2/go_above_118.go" ]; then
    log "replacing vendored reflect2 v1.0.1 / json-iterator v1.1.10 with Debian's 1.0.2 / 1.1.12"
    for pair in modern-go/reflect2 json-iterator/go; do
      d=$src/vendor/github.com/$pair
      mkdir -p "$SRC_PARENT/vendor-orig/$pair"; cp -a "$d/." "$SRC_PARENT/vendor-orig/$pair/"
      rm -f "$d"/*.go "$d"/*.s
      find "$gocode/$pair" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' -exec cp {} "$d/" \;
    done
  fi
  # Kubernetes 1.20 builds in GOPATH mode (hack/lib/init.sh exports GO111MODULE=off); module
  # mode with -mod=vendor fails under Go 1.19 with "updates to go.mod needed".
  local gopath=$RIG/gopath
  mkdir -p "$gopath/src/k8s.io" "$BIN"
  ln -sfn "$src" "$gopath/src/k8s.io/kubernetes"
  local P=k8s.io/kubernetes/vendor/k8s.io ldf="-s -w" pkg now
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for pkg in component-base/version client-go/pkg/version; do
    ldf="$ldf -X $P/$pkg.gitVersion=$K8S_VERSION -X $P/$pkg.gitMajor=1 -X $P/$pkg.gitMinor=20"
    ldf="$ldf -X $P/$pkg.gitCommit=$K8S_COMMIT -X $P/$pkg.gitTreeState=archive -X $P/$pkg.buildDate=$now"
  done
  local tb
  for b in "${todo[@]}"; do
    log "building $b with $(go version | cut -d' ' -f3) (cold Go cache, 2 cores: kube-apiserver ~2.5 min, the others ~40 s together)"
    tb=$SECONDS
    (cd "$gopath/src/k8s.io/kubernetes" &&
      env GOPATH="$gopath" GO111MODULE=off GOFLAGS= GOPROXY=off CGO_ENABLED=0 GOCACHE="$RIG/gocache" \
        go build -trimpath -ldflags "$ldf" -o "$BIN/$b.tmp" "./cmd/$b") \
      || die "go build ./cmd/$b failed"
    mv "$BIN/$b.tmp" "$BIN/$b"
    printf 'source=%s\ngo=%s\nvendor-patch=reflect2-1.0.2,json-iterator-1.1.12\nbuilt=%s\nbuild_seconds=%s\n' \
      "$src" "$(go version)" "$now" "$((SECONDS - tb))" >"$BIN/$b.buildinfo"
    log "built $BIN/$b in $((SECONDS - tb))s ($(du -h "$BIN/$b" | cut -f1))"
  done
  log "build step total $((SECONDS - t0))s"
}

# ---------------------------------------------------------------- PKI, tokens, kubeconfigs
sign() { # sign NAME SUBJ EXTFILE-CONTENT
  local name=$1 subj=$2 ext=$3
  [ -s "$PKI/$name.crt" ] && return 0
  openssl req -new -newkey rsa:2048 -nodes -keyout "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile <(printf '%s\n' "$ext") -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr"
}

# Node identities = RIG_NODES plus those created by earlier runs (their token files), so that a
# `start` with fewer RIG_NODES never takes credentials away from a node that is running.
all_nodes() {
  local f n
  {
    for n in $NODES; do echo "$n"; done
    for f in "$RIG"/*.token; do
      [ -e "$f" ] || continue
      n=$(basename "$f" .token)
      case $n in admin|kube-controller-manager|kube-scheduler) ;; *) echo "$n" ;; esac
    done
  } | sort -u
}

ensure_pki() {
  mkdir -p "$PKI"; chmod 700 "$PKI"
  NODES=$(all_nodes | tr '\n' ' ')
  if [ ! -s "$PKI/ca.crt" ]; then
    log "generating PKI in $PKI"
    openssl req -x509 -new -nodes -newkey rsa:2048 -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 3650 \
      -subj "/CN=k8s-rig-ca" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
  fi
  sign apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1"
  # client cert the apiserver presents to kubelets (logs/exec/port-forward/proxy)
  sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  if [ ! -s "$PKI/sa.key" ]; then
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  local tok
  for tok in admin kube-controller-manager kube-scheduler; do
    [ -s "$RIG/$tok.token" ] || openssl rand -hex 16 >"$RIG/$tok.token"
  done
  for n in $NODES; do
    [ -s "$RIG/$n.token" ] || openssl rand -hex 16 >"$RIG/$n.token"
    sign "$n-client" "/O=system:nodes/CN=system:node:$n" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
    sign "kubelet-$n" "/CN=$n" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:$n,DNS:localhost,IP:127.0.0.1"
  done
  chmod 600 "$RIG"/*.token "$PKI"/*.key
  # static token file: token,user,uid,"group1,group2"
  {
    echo "$(cat "$RIG/admin.token"),admin,uid-admin,\"system:masters\""
    for n in $NODES; do echo "$(cat "$RIG/$n.token"),system:node:$n,uid-$n,\"system:nodes\""; done
    # users the bootstrap RBAC policy already grants the controller-manager / scheduler roles to
    echo "$(cat "$RIG/kube-controller-manager.token"),system:kube-controller-manager,uid-kcm"
    echo "$(cat "$RIG/kube-scheduler.token"),system:kube-scheduler,uid-scheduler"
  } >"$PKI/tokens.csv.new"
  chmod 600 "$PKI/tokens.csv.new"
  # replaced only when its content changes: a newer token file than the running kube-apiserver
  # means new identities it has not loaded (start_apiserver restarts it then)
  if cmp -s "$PKI/tokens.csv.new" "$PKI/tokens.csv"; then rm -f "$PKI/tokens.csv.new"
  else mv "$PKI/tokens.csv.new" "$PKI/tokens.csv"; fi

  local ca; ca=$(base64 -w0 <"$PKI/ca.crt")
  write_kubeconfig() { # FILE USER TOKEN
    cat >"$1.new" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: rig
  cluster:
    server: $ENDPOINT
    certificate-authority-data: $ca
users:
- name: $2
  user:
    token: $3
contexts:
- name: $2@rig
  context:
    cluster: rig
    user: $2
current-context: $2@rig
EOF
    chmod 600 "$1.new"; mv "$1.new" "$1"
  }
  write_kubeconfig "$RIG/admin.kubeconfig" admin "$(cat "$RIG/admin.token")"
  for n in $NODES; do write_kubeconfig "$RIG/$n.kubeconfig" "system:node:$n" "$(cat "$RIG/$n.token")"; done
  for tok in kube-controller-manager kube-scheduler; do
    write_kubeconfig "$RIG/$tok.kubeconfig" "system:$tok" "$(cat "$RIG/$tok.token")"
  done
}

# ---------------------------------------------------------------- start
port_busy() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }

start_etcd() {
  if pid_alive etcd /usr/bin/etcd; then log "etcd already running (pid $(cat "$RUN/etcd.pid"))"; return 0; fi
  port_busy $ETCD_PORT && die "127.0.0.1:$ETCD_PORT is already in use by a process this script did not start"
  mkdir -p "$ETCD_DATA"; chmod 700 "$ETCD_DATA"
  log "starting etcd (data dir $ETCD_DATA)"
  start_bg etcd /usr/bin/etcd --name rig --data-dir "$ETCD_DATA" \
    --listen-client-urls http://127.0.0.1:$ETCD_PORT --advertise-client-urls http://127.0.0.1:$ETCD_PORT \
    --listen-peer-urls http://127.0.0.1:$ETCD_PEER_PORT --initial-advertise-peer-urls http://127.0.0.1:$ETCD_PEER_PORT \
    --initial-cluster rig=http://127.0.0.1:$ETCD_PEER_PORT --initial-cluster-state new \
    --listen-metrics-urls http://127.0.0.1:$ETCD_METRICS_PORT --logger zap --log-outputs stderr
  for _ in $(seq 100); do
    curl -sf --max-time 2 http://127.0.0.1:$ETCD_PORT/health 2>/dev/null | grep -q '"health":"true"' && { log "etcd healthy"; return 0; }
    pid_alive etcd /usr/bin/etcd || die "etcd exited; see $RUN/etcd.log"
    sleep 0.2
  done
  die "etcd not healthy after 20s; see $RUN/etcd.log"
}

start_apiserver() {
  local disable=""
  [ "$SA_ADMISSION" = 1 ] || disable="--disable-admission-plugins=ServiceAccount"
  local profile_flags=""
  if [ "$PROFILE" = bound-token ]; then
    profile_flags="--feature-gates=BoundServiceAccountTokenVolume=true --api-audiences=https://kubernetes.default.svc.cluster.local"
  fi
  # Notes: --advertise-address=127.0.0.1 + --endpoint-reconciler-type=none because Endpoints
  # validation rejects loopback IPs, so the default "lease" reconciler could never write
  # default/kubernetes endpoints for 127.0.0.1 (left empty instead). No --kubelet-certificate-authority:
  # the apiserver does not verify kubelet serving certs (any self-signed cert on :10250 works).
  # shellcheck disable=SC2206
  local args=(
    --bind-address=127.0.0.1 --secure-port="$PORT" --insecure-port=0
    --advertise-address=127.0.0.1 --endpoint-reconciler-type=none
    --etcd-servers=http://127.0.0.1:$ETCD_PORT
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key"
    --client-ca-file="$PKI/ca.crt"
    --token-auth-file="$PKI/tokens.csv"
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key"
    --service-account-issuer=https://kubernetes.default.svc.cluster.local
    --service-cluster-ip-range=10.96.0.0/12
    --authorization-mode=Node,RBAC
    --enable-admission-plugins=NodeRestriction $disable $profile_flags
    --allow-privileged=true
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt"
    --kubelet-client-key="$PKI/apiserver-kubelet-client.key"
    --kubelet-preferred-address-types=InternalIP,Hostname,ExternalIP
    --profiling=false --v=1 ${RIG_EXTRA_APISERVER_FLAGS:-}
  )
  if pid_alive kube-apiserver "$BIN/kube-apiserver"; then
    local restart=""
    if [ "$PKI/tokens.csv" -nt "$RUN/kube-apiserver.pid" ]; then
      restart="new node identities in the static token file"
    elif [ "$(cat "$RUN/kube-apiserver.args" 2>/dev/null)" != "${args[*]}" ]; then
      if [ "${RIG_RESTART_ON_CHANGE:-0}" = 1 ]; then
        restart="its flags changed"
      else
        log "WARNING: kube-apiserver was started with different flags (RIG_* settings changed?); run '$0 stop' then start again, or set RIG_RESTART_ON_CHANGE=1"
      fi
    fi
    if [ -z "$restart" ]; then
      log "kube-apiserver already running (pid $(cat "$RUN/kube-apiserver.pid"))"
      return 0
    fi
    log "restarting kube-apiserver: $restart"
    stop_pid kube-apiserver "$BIN/kube-apiserver"
  fi
  port_busy "$PORT" && die "127.0.0.1:$PORT is already in use by a process this script did not start"
  log "starting kube-apiserver on $ENDPOINT"
  local t0; t0=$(date +%s%N)
  start_bg kube-apiserver "$BIN/kube-apiserver" "${args[@]}"
  echo "${args[*]}" >"$RUN/kube-apiserver.args"
  echo "$PROFILE" >"$RUN/kube-apiserver.profile"
  local auth=(--cacert "$PKI/ca.crt" -H "Authorization: Bearer $(cat "$RIG/admin.token")")
  for _ in $(seq 600); do
    if [ "$(curl -s --max-time 2 "${auth[@]}" "$ENDPOINT/readyz" 2>/dev/null)" = ok ]; then
      local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
      log "kube-apiserver ready (/readyz ok) $((ms / 1000)).$(printf %03d $((ms % 1000)))s after start"
      return 0
    fi
    pid_alive kube-apiserver "$BIN/kube-apiserver" || die "kube-apiserver exited; see $RUN/kube-apiserver.log"
    sleep 0.2
  done
  die "kube-apiserver not ready after 120s; see $RUN/kube-apiserver.log"
}

post_start() {
  # In 1.20 the system:node role (what the Node authorizer grants) has no list/watch on
  # endpointslices (and only read on services/endpoints); a kubelet that also implements
  # service proxying needs what kube-proxy gets, so bind system:node-proxier to group system:nodes.
  [ "${RIG_NODE_PROXIER:-1}" = 1 ] || return 0
  "$BIN/kubectl" --kubeconfig "$RIG/admin.kubeconfig" get clusterrolebinding rig-nodes-proxier >/dev/null 2>&1 ||
    "$BIN/kubectl" --kubeconfig "$RIG/admin.kubeconfig" create clusterrolebinding rig-nodes-proxier \
      --clusterrole=system:node-proxier --group=system:nodes >/dev/null
}

# ---------------------------------------------------------------- optional controllers
wait_healthz() { # NAME PORT BINARY
  for _ in $(seq 300); do
    [ "$(curl -sk --max-time 2 "https://127.0.0.1:$2/healthz" 2>/dev/null)" = ok ] && { log "$1 healthy"; return 0; }
    pid_alive "$1" "$3" || die "$1 exited; see $RUN/$1.log"
    sleep 0.2
  done
  die "$1 not healthy after 60s; see $RUN/$1.log"
}

start_controllers() {
  [ "$CONTROLLERS" = 1 ] || return 0
  local kc
  if pid_alive kube-controller-manager "$BIN/kube-controller-manager"; then
    log "kube-controller-manager already running (pid $(cat "$RUN/kube-controller-manager.pid"))"
  else
    port_busy $KCM_PORT && die "127.0.0.1:$KCM_PORT is already in use by a process this script did not start"
    kc=$RIG/kube-controller-manager.kubeconfig
    mkdir -p "$RUN/kcm-certs"
    log "starting kube-controller-manager"
    start_bg kube-controller-manager "$BIN/kube-controller-manager" \
      --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
      --bind-address=127.0.0.1 --secure-port=$KCM_PORT --port=0 --cert-dir="$RUN/kcm-certs" \
      --leader-elect=false --use-service-account-credentials=true \
      --controllers='*,bootstrapsigner,tokencleaner' \
      --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
      --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
      --service-cluster-ip-range=10.96.0.0/12 --cluster-name=rig --profiling=false --v=1
    wait_healthz kube-controller-manager $KCM_PORT "$BIN/kube-controller-manager"
  fi
  if pid_alive kube-scheduler "$BIN/kube-scheduler"; then
    log "kube-scheduler already running (pid $(cat "$RUN/kube-scheduler.pid"))"
  else
    port_busy $SCHED_PORT && die "127.0.0.1:$SCHED_PORT is already in use by a process this script did not start"
    kc=$RIG/kube-scheduler.kubeconfig
    mkdir -p "$RUN/sched-certs"
    log "starting kube-scheduler"
    start_bg kube-scheduler "$BIN/kube-scheduler" \
      --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
      --bind-address=127.0.0.1 --secure-port=$SCHED_PORT --port=0 --cert-dir="$RUN/sched-certs" \
      --leader-elect=false --profiling=false --v=1
    wait_healthz kube-scheduler $SCHED_PORT "$BIN/kube-scheduler"
  fi
}

do_start() {
  ensure_debs
  ensure_kubectl
  build_k8s
  ensure_pki
  start_etcd
  start_apiserver
  post_start
  start_controllers
  echo "endpoint:         $ENDPOINT"
  echo "admin kubeconfig: $RIG/admin.kubeconfig"
  for n in $(all_nodes); do echo "node kubeconfig:  $RIG/$n.kubeconfig  (user system:node:$n)"; done
  echo "kubectl:          $BIN/kubectl  ($("$BIN/kubectl" version --client --short 2>/dev/null || true))"
  if [ "$CONTROLLERS" = 1 ]; then echo "controllers:      kube-controller-manager (127.0.0.1:$KCM_PORT), kube-scheduler (127.0.0.1:$SCHED_PORT)"; fi
  echo "logs/pids:        $RUN"
}

# ---------------------------------------------------------------- smoke test (node-agent flows)
do_smoke() {
  local k="$BIN/kubectl" A=(--kubeconfig "$RIG/admin.kubeconfig") N=(--kubeconfig "$RIG/node-1.kubeconfig")
  local NT; NT=$(cat "$RIG/node-1.token")
  local C=(curl -sS --fail-with-body --cacert "$PKI/ca.crt" -H "Authorization: Bearer $NT")
  now() { date -u +%Y-%m-%dT%H:%M:%S.000000Z; }
  set -x
  "$k" "${A[@]}" get --raw /version
  "$k" "${A[@]}" api-versions | grep -E '^(discovery|coordination)\.k8s\.io/'
  "$k" "${N[@]}" apply -f - <<EOF
apiVersion: v1
kind: Node
metadata: {name: node-1, labels: {kubernetes.io/hostname: node-1, kubernetes.io/os: linux}}
EOF
  "${C[@]}" -X PATCH -H 'Content-Type: application/merge-patch+json' "$ENDPOINT/api/v1/nodes/node-1/status" \
    -d '{"status":{"addresses":[{"type":"InternalIP","address":"127.0.0.1"},{"type":"Hostname","address":"node-1"}],"daemonEndpoints":{"kubeletEndpoint":{"Port":10250}},"capacity":{"cpu":"2","memory":"4Gi","pods":"110"},"allocatable":{"cpu":"2","memory":"4Gi","pods":"110"},"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"smoke","lastHeartbeatTime":"'"$(date -u +%FT%TZ)"'","lastTransitionTime":"'"$(date -u +%FT%TZ)"'"}]}}' >/dev/null
  "$k" "${A[@]}" delete pod smoke --ignore-not-found --grace-period=0 --force 2>/dev/null
  "$k" "${A[@]}" apply -f - <<EOF
apiVersion: v1
kind: Pod
metadata: {name: smoke, namespace: default, labels: {app: smoke}}
spec: {nodeName: node-1, containers: [{name: c, image: busybox, command: [sleep, "3600"]}]}
EOF
  "$k" "${N[@]}" get pods --field-selector spec.nodeName=node-1 -A -o name
  timeout 8 "$k" "${N[@]}" get pods --field-selector spec.nodeName=node-1 -A --watch -o name --request-timeout=6s >"$RUN/smoke-watch.txt" 2>&1 &
  sleep 2
  "${C[@]}" -X PATCH -H 'Content-Type: application/merge-patch+json' "$ENDPOINT/api/v1/namespaces/default/pods/smoke/status" \
    -d '{"status":{"phase":"Running","podIP":"10.244.0.9","hostIP":"127.0.0.1"}}' | grep -o '"phase": *"Running"'
  wait
  cat "$RUN/smoke-watch.txt"
  "$k" "${N[@]}" -n kube-node-lease get lease node-1 >/dev/null 2>&1 || "$k" "${N[@]}" create -f - <<EOF
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: node-1, namespace: kube-node-lease}
spec: {holderIdentity: node-1, leaseDurationSeconds: 40, renewTime: "$(now)"}
EOF
  sleep 1
  "$k" "${N[@]}" -n kube-node-lease patch lease node-1 --type=merge -p '{"spec":{"renewTime":"'"$(now)"'"}}'
  "$k" "${N[@]}" get services -A
  "$k" "${N[@]}" get endpointslices.discovery.k8s.io -A
  "$k" "${A[@]}" delete pod smoke --grace-period=0 --force 2>/dev/null
  set +x
  echo "SMOKE OK"
}

case "${1:-start}" in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  smoke) do_smoke ;;
  reset) do_stop; log "removing $ETCD_DATA"; rm -rf "$ETCD_DATA" ;;
  pki) ensure_pki ;;
  *) echo "usage: $0 [start|stop|status|smoke|reset|pki]" >&2; exit 2 ;;
esac
