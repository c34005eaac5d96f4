#!/usr/bin/env bash
# A real Kubernetes API server (kube-apiserver 1.20.2 over a plain etcd) for the integration tests.
#
# The binary is built offline from Debian's `kubernetes` source package, with Debian's Go, and
# cached; the servers listen on 127.0.0.1 only and keep all their state in a directory of yours.
# Run `scripts/kube-apiserver.sh --help` for the subcommands.
set -euo pipefail

readonly K8S_VERSION=1.20.2
readonly PROG=kube-apiserver.sh
CACHE_DIR=${NETWEAVE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/netweave}
readonly CACHE_DIR
readonly BIN_DIR=$CACHE_DIR/kube-apiserver-$K8S_VERSION
readonly BINARY=$BIN_DIR/kube-apiserver
readonly READY_TIMEOUT=${KUBE_APISERVER_READY_TIMEOUT:-60}
# kube-apiserver 1.20 exits at once on SIGTERM, unless watches are open: then it waits for them
# up to its --request-timeout (60 s). Tests restart it with watches open, so it is killed sooner.
readonly APISERVER_STOP_GRACE=${KUBE_APISERVER_STOP_GRACE:-5}
readonly ETCD_STOP_GRACE=20
# Debian packages: to build the binary, and to run the servers.
readonly BUILD_DEPS=(golang-go rsync jq dpkg-dev golang-github-modern-go-reflect2-dev)
readonly RUN_DEPS=(etcd-server openssl curl ca-certificates)
# Debian's reflect2 1.0.2, which replaces the vendored 1.0.1 (1.0.1 crashes under Go >= 1.18).
readonly DEBIAN_REFLECT2=/usr/share/gocode/src/github.com/modern-go/reflect2

usage() {
  cat <<EOF
Usage: scripts/$PROG COMMAND [DIR]

A real kube-apiserver $K8S_VERSION (plus etcd) on 127.0.0.1, for the integration tests.

Commands:
  build                  Build kube-apiserver from Debian's \`kubernetes\` source package unless
                         it is cached already, and install etcd. Prints the binary path:
                           $BINARY
                         (cache: \$NETWEAVE_CACHE_DIR, else \$XDG_CACHE_HOME/netweave, else
                         ~/.cache/netweave). Installs Debian packages with apt-get (sudo if not
                         root); the apt configuration of the machine is left untouched.
  start DIR              Start etcd and kube-apiserver on free loopback ports, with all state in
                         DIR (created when missing; certificates, tokens and etcd data are reused
                         when DIR has them). Waits until /readyz answers ok, then writes:
                           DIR/kubeconfig             admin (group system:masters)
                           DIR/restricted.kubeconfig  user netweave-restricted, no groups
                           DIR/env                    APISERVER_URL, ETCD_URL, the PIDs, file paths
                         (shell-sourceable). The tokens are in DIR/admin-token and
                         DIR/restricted-token, the CA certificate in DIR/pki/ca.crt.
  stop DIR               Stop kube-apiserver and etcd.
  stop-apiserver [--kill] DIR
                         Stop kube-apiserver only (etcd keeps running): SIGTERM, and SIGKILL
                         after \$KUBE_APISERVER_STOP_GRACE s (default 5: open watches hold a
                         1.20 kube-apiserver up to 60 s); --kill: SIGKILL at once, like a crash.
  start-apiserver DIR    Start kube-apiserver again: same port, etcd, certificates and tokens.
  -h, --help             This help.

Environment:
  KUBE_APISERVER_BIN            binary for \`start\` (default: the cached build above)
  KUBE_APISERVER_READY_TIMEOUT  seconds \`start\` waits for readiness (default: 60)
  KUBE_APISERVER_STOP_GRACE     seconds from SIGTERM to SIGKILL for kube-apiserver (default: 5)
EOF
}

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# ---------------------------------------------------------------------------------------------
# build

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root (or sudo) to run: $*"
  fi
}

# Installs the Debian packages that are not installed yet.
apt_install() {
  local package missing=()
  for package in "$@"; do
    if [ "$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null)" != "install ok installed" ]; then
      missing+=("$package")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get here"
  log "installing ${missing[*]}"
  local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends)
  if ! as_root "${install[@]}" "${missing[@]}" >&2; then
    log "refreshing the package lists and retrying"
    as_root apt-get update -qq >&2
    as_root "${install[@]}" "${missing[@]}" >&2
  fi
}

binary_works() {
  [ -x "$BINARY" ] && "$BINARY" --version >/dev/null 2>&1
}

# The machine's own Debian `deb` entries, as one-line `deb-src` entries (URIs, suites, components
# and Signed-By kept), from /etc/apt/sources.list.d/debian.sources and /etc/apt/sources.list.
debian_source_entries() {
  local deb822=/etc/apt/sources.list.d/debian.sources oneline=/etc/apt/sources.list
  {
    if [ -r "$deb822" ]; then
      awk '
        function flush(   n, m, i, j, u, s, opts) {
          if (types ~ /(^|[ \t])deb([ \t]|$)/ && tolower(enabled) != "no") {
            opts = signed_by == "" ? "" : " [signed-by=" signed_by "]"
            n = split(uris, u, /[ \t]+/)
            m = split(suites, s, /[ \t]+/)
            for (i = 1; i <= n; i++)
              for (j = 1; j <= m; j++)
                if (u[i] != "" && s[j] != "") print "deb-src" opts " " u[i] " " s[j] " " components
          }
          types = uris = suites = components = signed_by = enabled = ""
        }
        /^[ \t]*$/ { flush(); next }
        /^#/ || /^[ \t]/ { next }  # comments; continuation lines (an inline Signed-By key)
        {
          key = tolower(substr($0, 1, index($0, ":") - 1))
          value = substr($0, index($0, ":") + 1)
          gsub(/^[ \t]+|[ \t]+$/, "", value)
          if (key == "types") types = value
          else if (key == "uris") uris = value
          else if (key == "suites") suites = value
          else if (key == "components") components = value
          else if (key == "enabled") enabled = value
          else if (key == "signed-by") { signed_by = value; gsub(/[ \t]+/, ",", signed_by) }
        }
        END { flush() }
      ' "$deb822"
    fi
    if [ -r "$oneline" ]; then
      sed -nE 's/^[ \t]*deb(-src)?([ \t])/deb-src\2/p' "$oneline"
    fi
  } | awk '!seen[$0]++'
}

build() {
  mkdir -p "$BIN_DIR"
  apt_install "${RUN_DEPS[@]}"
  if binary_works; then
    log "cached: $("$BINARY" --version)"
    echo "$BINARY"
    return 0
  fi

  # One build at a time per cache directory; the winner's binary serves the others.
  exec 9>"$CACHE_DIR/.build.lock"
  flock 9
  if binary_works; then
    echo "$BINARY"
    return 0
  fi

  local started=$SECONDS stale
  for stale in "$CACHE_DIR"/build.*; do # left by an interrupted build
    [ -d "$stale" ] || continue
    log "removing $stale"
    chmod -R u+w "$stale" 2>/dev/null || true
    rm -rf "$stale"
  done
  apt_install "${BUILD_DEPS[@]}"
  [ -f "$DEBIAN_REFLECT2/reflect2.go" ] || die "no $DEBIAN_REFLECT2 (golang-github-modern-go-reflect2-dev)"

  local work
  work=$(mktemp -d "$CACHE_DIR/build.XXXXXX")
  # shellcheck disable=SC2064  # expand $work now
  trap "chmod -R u+w '$work' 2>/dev/null; rm -rf '$work'" EXIT

  # A private apt configuration with deb-src entries: the machine's own stays untouched.
  local apt_dir=$work/apt
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$work/download"
  debian_source_entries >"$apt_dir/sources.list"
  [ -s "$apt_dir/sources.list" ] || die "no Debian apt sources found to derive deb-src entries from"
  local apt_opts=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::Cache=$apt_dir/cache"
    -o Acquire::Languages=none
  )
  # root downloads as _apt, which cannot write into our directory: download as ourselves.
  [ "$(id -u)" -ne 0 ] || apt_opts+=(-o APT::Sandbox::User=root)
  log "fetching the source package index ($(wc -l <"$apt_dir/sources.list") deb-src entries)"
  apt-get "${apt_opts[@]}" -qq update >&2 || log "warning: apt-get update reported errors"

  # Debian's kubernetes source package whose upstream is $K8S_VERSION, e.g. 1.20.5+really1.20.2-1.1+deb12u1.
  local version
  version=$(apt-cache "${apt_opts[@]}" showsrc kubernetes 2>/dev/null |
    awk '/^Version:/ { print $2 }' |
    grep -E "^([0-9.]+\+really)?${K8S_VERSION//./\\.}-[^-]+$" | sort -V | tail -n 1 || true)
  [ -n "$version" ] || die "no Debian source package kubernetes with upstream version $K8S_VERSION"
  log "downloading Debian source package kubernetes $version"
  (cd "$work/download" && apt-get "${apt_opts[@]}" -qq source --download-only "kubernetes=$version" >&2)

  local src=$work/kubernetes
  log "unpacking"
  dpkg-source -x "$work/download/kubernetes_${version#*:}.dsc" "$src" >"$work/dpkg-source.log" 2>&1 ||
    { cat "$work/dpkg-source.log" >&2; die "dpkg-source failed"; }
  rm -rf "$work/download" "$apt_dir" "$work"/kubernetes_*.orig.tar.* # dpkg-source copies it

  log "replacing vendored reflect2 $(awk '$2 == "github.com/modern-go/reflect2" { print $3; exit }' "$src/vendor/modules.txt") with Debian's $(dpkg-query -W -f='${Version}' golang-github-modern-go-reflect2-dev)"
  local vendored=$src/vendor/github.com/modern-go/reflect2
  rm -rf "$vendored"
  mkdir -p "$vendored"
  find "$DEBIAN_REFLECT2" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' \
    -exec cp -t "$vendored" {} +

  log "building cmd/kube-apiserver with $(/usr/lib/go/bin/go version) (takes a few minutes)"
  mkdir -p "$src/.go/src/k8s.io"
  ln -s ../../.. "$src/.go/src/k8s.io/kubernetes"
  (
    cd "$src"
    unset GOROOT GOBIN
    export PATH=/usr/lib/go/bin:$PATH GOPATH=$src/.go GOCACHE=$work/go-build GOPROXY=off \
      GOFLAGS=-mod=vendor GO111MODULE=on GOWORK=off GOENV=off CGO_ENABLED=0 HOME=$work
    make WHAT=cmd/kube-apiserver >&2
  )
  local built=$src/_output/bin/kube-apiserver
  "$built" --version >/dev/null || die "the built binary does not run"
  cp -L "$built" "$BIN_DIR/.kube-apiserver.$$"
  mv -f "$BIN_DIR/.kube-apiserver.$$" "$BINARY"
  log "built $("$BINARY" --version) in $((SECONDS - started)) s, $(du -m "$BINARY" | cut -f1) MB"

  log "removing the build tree"
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
  trap - EXIT
  echo "$BINARY"
}

# ---------------------------------------------------------------------------------------------
# start / stop

# True when PID is a live process. A zombie main thread counts as alive while other threads of
# the process are still exiting: they hold its files, so its sockets may still be open.
alive() {
  local pid=${1:-} state tasks
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$state" ] || return 1
  [ "$state" != Z ] && return 0
  tasks=("/proc/$pid/task"/*)
  [ ${#tasks[@]} -gt 1 ]
}

# True when PID is alive and one of our servers for $DIR (not a process that reused the PID).
# Only for started servers: until the exec, a child's command line is still this script's.
running() {
  alive "${1:-}" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$DIR/"
}

# Stops PID: SIGTERM, then SIGKILL after GRACE seconds (at once when GRACE is 0); waits until
# it is gone.
terminate() {
  local pid=$1 name=$2 grace=$3 i
  if ! running "$pid"; then
    log "$name is not running"
    return 0
  fi
  if [ "$grace" -gt 0 ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
      alive "$pid" || { log "stopped $name (pid $pid)"; return 0; }
      sleep 0.1
    done
    log "$name (pid $pid) still running $grace s after SIGTERM; killing it"
  else
    log "killing $name (pid $pid)"
  fi
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  die "$name (pid $pid) does not stop"
}

# A free TCP port on loopback outside the ephemeral range, none of those given.
free_port() {
  local used port _
  used=$(awk 'FNR > 1 { n = split($2, a, ":"); print a[n] }' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
  for _ in $(seq 200); do
    port=$((20000 + RANDOM % 12000))
    case " $* " in *" $port "*) continue ;; esac
    grep -qx "$(printf '%04X' "$port")" <<<"$used" || { echo "$port"; return 0; }
  done
  die "no free port found"
}

load_env() {
  [ -f "$DIR/env" ] || die "$DIR/env not found: run \`$PROG start $DIR\` first"
  # shellcheck source=/dev/null
  . "$DIR/env"
}

write_env() {
  local name
  {
    echo "# written by scripts/$PROG; shell-sourceable"
    for name in NETWEAVE_KUBE_DIR KUBE_APISERVER_BIN APISERVER_URL APISERVER_PORT APISERVER_PID \
      ETCD_URL ETCD_PORT ETCD_PEER_PORT ETCD_PID KUBECONFIG_ADMIN KUBECONFIG_RESTRICTED CA_FILE \
      ADMIN_TOKEN_FILE RESTRICTED_TOKEN_FILE; do
      printf '%s=%q\n' "$name" "${!name-}"
    done
  } >"$DIR/env.tmp"
  mv -f "$DIR/env.tmp" "$DIR/env"
}

# Certificates, keys and tokens, made on first use.
make_credentials() {
  local pki=$DIR/pki
  [ -f "$pki/apiserver.crt" ] && [ -f "$DIR/tokens.csv" ] && return 0
  log "generating certificates, the service-account key and tokens in $DIR"
  mkdir -p "$pki"
  cat >"$pki/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = netweave-test
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  openssl req -x509 -config "$pki/openssl.cnf" -extensions ca -newkey rsa:2048 -nodes \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" -days 3650 -subj /CN=netweave-test-ca 2>/dev/null
  openssl req -new -config "$pki/openssl.cnf" -newkey rsa:2048 -nodes \
    -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr" -subj /CN=kube-apiserver 2>/dev/null
  openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -set_serial "0x$(openssl rand -hex 8)" -days 3650 -extfile "$pki/openssl.cnf" \
    -extensions server -out "$pki/apiserver.crt" 2>/dev/null
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  openssl rand -hex 32 >"$DIR/admin-token"
  openssl rand -hex 32 >"$DIR/restricted-token"
  printf 'Authorization: Bearer %s\n' "$(cat "$DIR/admin-token")" >"$DIR/admin-header"
  # token,user,uid,"groups"
  {
    printf '%s,netweave-admin,netweave-admin,"system:masters"\n' "$(cat "$DIR/admin-token")"
    printf '%s,netweave-restricted,netweave-restricted\n' "$(cat "$DIR/restricted-token")"
  } >"$DIR/tokens.csv"
}

write_kubeconfig() {
  local file=$1 user=$2 token_file=$3
  cat >"$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: netweave-test
  cluster:
    server: $APISERVER_URL
    certificate-authority-data: $(base64 -w0 <"$CA_FILE")
users:
- name: $user
  user:
    token: $(cat "$token_file")
contexts:
- name: $user@netweave-test
  context:
    cluster: netweave-test
    user: $user
current-context: $user@netweave-test
EOF
  mv -f "$file.tmp" "$file"
}

show_log_tail() {
  local file
  for file in "$@"; do
    [ -f "$file" ] || continue
    log "last lines of $file:"
    tail -n 25 "$file" | sed 's/^/    /' >&2
  done
}

# curl to our servers: loopback, never through a proxy.
local_curl() { curl --silent --noproxy '*' --max-time 2 "$@"; }

launch_etcd() {
  local arch_env=()
  case "$(uname -m)" in aarch64 | arm64) arch_env=(ETCD_UNSUPPORTED_ARCH=arm64) ;; esac
  env "${arch_env[@]}" etcd \
    --name netweave \
    --data-dir "$DIR/etcd" \
    --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "netweave=http://127.0.0.1:$ETCD_PEER_PORT" \
    </dev/null >>"$DIR/etcd.log" 2>&1 &
  ETCD_PID=$!
  local deadline=$((SECONDS + READY_TIMEOUT))
  until local_curl "$ETCD_URL/health" | grep -q '"health":"true"'; do
    if ! alive "$ETCD_PID" || [ $SECONDS -ge $deadline ]; then
      show_log_tail "$DIR/etcd.log"
      terminate "$ETCD_PID" etcd "$ETCD_STOP_GRACE"
      ETCD_PID=''
      die "etcd did not become healthy on $ETCD_URL"
    fi
    sleep 0.1
  done
  log "etcd is healthy on $ETCD_URL (pid $ETCD_PID)"
}

launch_apiserver() {
  [ -x "$KUBE_APISERVER_BIN" ] || die "no $KUBE_APISERVER_BIN: run \`$PROG build\` first"
  "$KUBE_APISERVER_BIN" \
    --bind-address=127.0.0.1 --secure-port="$APISERVER_PORT" --insecure-port=0 \
    --advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
    --tls-cert-file="$DIR/pki/apiserver.crt" --tls-private-key-file="$DIR/pki/apiserver.key" \
    --cert-dir="$DIR/pki" \
    --etcd-servers="$ETCD_URL" \
    --token-auth-file="$DIR/tokens.csv" \
    --authorization-mode=RBAC \
    --service-account-key-file="$DIR/pki/sa.pub" \
    --service-account-signing-key-file="$DIR/pki/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range=10.96.0.0/16 \
    --allow-privileged=true \
    --profiling=false \
    </dev/null >>"$DIR/kube-apiserver.log" 2>&1 &
  APISERVER_PID=$!
  local deadline=$((SECONDS + READY_TIMEOUT))
  # Ready, and the bootstrap controller has made the `default` namespace.
  until [ "$(local_curl --cacert "$CA_FILE" "$APISERVER_URL/readyz" || true)" = ok ] &&
    local_curl --fail --cacert "$CA_FILE" -H "@$DIR/admin-header" -o /dev/null \
      "$APISERVER_URL/api/v1/namespaces/default"; do
    if ! alive "$APISERVER_PID"; then
      show_log_tail "$DIR/kube-apiserver.log"
      APISERVER_PID=''
      die "kube-apiserver exited during start-up (log: $DIR/kube-apiserver.log)"
    fi
    if [ $SECONDS -ge $deadline ]; then
      show_log_tail "$DIR/kube-apiserver.log"
      terminate "$APISERVER_PID" kube-apiserver "$APISERVER_STOP_GRACE"
      APISERVER_PID=''
      die "kube-apiserver not ready on $APISERVER_URL after $READY_TIMEOUT s"
    fi
    sleep 0.2
  done
  log "kube-apiserver is ready on $APISERVER_URL (pid $APISERVER_PID)"
}

# DIR=the absolute path of $1; with --create, creates it if needed.
set_dir() {
  local create=false
  if [ "${1:-}" = --create ]; then
    create=true
    shift
  fi
  [ -n "${1:-}" ] || die "missing DIR (see --help)"
  umask 077 # tokens and keys stay private
  if $create; then
    mkdir -p "$1"
  fi
  [ -d "$1" ] || die "no directory $1"
  DIR=$(cd "$1" && pwd -P)
}

start() {
  set_dir --create "$@"
  command -v etcd >/dev/null 2>&1 || die "no etcd: run \`$PROG build\` first"
  command -v openssl >/dev/null 2>&1 || die "no openssl: run \`$PROG build\` first"
  command -v curl >/dev/null 2>&1 || die "no curl: run \`$PROG build\` first"
  local binary=${KUBE_APISERVER_BIN:-$BINARY}
  if [ -f "$DIR/env" ]; then
    load_env # ports of the previous run: etcd keeps its member URLs in its data
    if running "${ETCD_PID:-}" || running "${APISERVER_PID:-}"; then
      die "servers of $DIR are running already: \`$PROG stop $DIR\` first"
    fi
  fi
  KUBE_APISERVER_BIN=$binary
  # shellcheck disable=SC2034  # written out by write_env
  NETWEAVE_KUBE_DIR=$DIR
  ETCD_PORT=${ETCD_PORT:-$(free_port)}
  ETCD_PEER_PORT=${ETCD_PEER_PORT:-$(free_port "$ETCD_PORT")}
  APISERVER_PORT=${APISERVER_PORT:-$(free_port "$ETCD_PORT" "$ETCD_PEER_PORT")}
  ETCD_URL=http://127.0.0.1:$ETCD_PORT
  APISERVER_URL=https://127.0.0.1:$APISERVER_PORT
  CA_FILE=$DIR/pki/ca.crt
  ADMIN_TOKEN_FILE=$DIR/admin-token
  RESTRICTED_TOKEN_FILE=$DIR/restricted-token
  KUBECONFIG_ADMIN=$DIR/kubeconfig
  KUBECONFIG_RESTRICTED=$DIR/restricted.kubeconfig
  ETCD_PID='' APISERVER_PID=''
  make_credentials
  write_env

  launch_etcd
  write_env
  trap 'log "stopping etcd"; terminate "$ETCD_PID" etcd "$ETCD_STOP_GRACE"; ETCD_PID="" write_env' EXIT
  launch_apiserver
  trap - EXIT
  write_env
  write_kubeconfig "$KUBECONFIG_ADMIN" netweave-admin "$ADMIN_TOKEN_FILE"
  write_kubeconfig "$KUBECONFIG_RESTRICTED" netweave-restricted "$RESTRICTED_TOKEN_FILE"
}

stop() {
  set_dir "$@"
  load_env
  terminate "${APISERVER_PID:-}" kube-apiserver "$APISERVER_STOP_GRACE"
  terminate "${ETCD_PID:-}" etcd "$ETCD_STOP_GRACE"
  APISERVER_PID='' ETCD_PID=''
  write_env
}

stop_apiserver() {
  local grace=$APISERVER_STOP_GRACE
  if [ "${1:-}" = --kill ]; then
    grace=0
    shift
  fi
  set_dir "$@"
  load_env
  terminate "${APISERVER_PID:-}" kube-apiserver "$grace"
  APISERVER_PID=''
  write_env
}

start_apiserver() {
  set_dir "$@"
  load_env
  running "${ETCD_PID:-}" || die "etcd of $DIR is not running: \`$PROG start $DIR\` instead"
  running "${APISERVER_PID:-}" && die "kube-apiserver of $DIR is running already"
  launch_apiserver
  write_env
}

main() {
  case "${1:-}" in
    build) build ;;
    start) start "${@:2}" ;;
    stop) stop "${@:2}" ;;
    stop-apiserver) stop_apiserver "${@:2}" ;;
    start-apiserver) start_apiserver "${@:2}" ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

# One line: bash reads a script while running it, so a later edit must not change what follows.
main "$@"; exit
