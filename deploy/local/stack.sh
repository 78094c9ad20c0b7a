#!/usr/bin/env bash
# deploy/local/stack.sh — a disposable local service stack for development and CI:
#   RabbitMQ 4.0 (three nodes clustered, with management; HUSKIMO_RABBITMQ_VERSION=3.10 and
#   HUSKIMO_RABBITMQ_NODES=1 for the oldest supported broker or one node), PostgreSQL 15, two moto S3 servers (plain + strict SigV4), and a
#   Redshift-dialect proxy in front of PostgreSQL and the plain S3 (Tests/Support/redshift/redshift_dialect.py),
#   all bound to 127.0.0.1 on private ports, with their data under $HUSKIMO_STACK_DIR
#   (default: <repo>/.local/stack, git-ignored).
#
# Usage: stack.sh up | down [--graceful] | status | env | clean
#                 | start-rabbitmq | stop-rabbitmq | restart-rabbitmq | restart-postgres | rabbitmqctl ARGS...
#                 | kill-node N | start-node N | restart-node N | freeze-node N | thaw-node N
#
#   up                install missing packages, start whatever is not running, wait until
#                     everything is ready, write $STACK/stack.env and print it on stdout.
#   down              stop exactly what `up` started (by recorded pid). --graceful: SIGTERM the
#                     broker (≈7 s) instead of SIGKILL.
#   status            one line per service; exit 0 only if all are running.
#   env               print stack.env (exit 1 if the stack is not up).
#   restart-rabbitmq  SIGKILL the broker's node 1 (epmd stays) and start it again on the same ports and
#                     data dir; returns when the cluster is whole again. For broker-restart tests.
#   kill-node N       SIGKILL node N and return (start-node N brings it back, waiting for the cluster);
#   freeze-node N     SIGSTOP node N (thaw-node N: SIGCONT): a node that hangs with its sockets open.
#   restart-postgres  stop PostgreSQL (fast shutdown: sessions are cut, as in a failover) and start it
#                     again on the same port and data dir; returns when it accepts connections. For chaos runs.
#   rabbitmqctl ...   run rabbitmqctl against node 1 (HUSKIMO_RABBITMQCTL_NODE=N: node N), 0.5 s per call.
#   clean             down, then delete all data (stack dir and the PostgreSQL dir).
#
# Ports (override with env vars): AMQP 35672 (HUSKIMO_AMQP_PORT), AMQPS 35670 (HUSKIMO_AMQPS_PORT), management 35673
# (HUSKIMO_RABBITMQ_MGMT_PORT), Erlang dist 35674 (HUSKIMO_RABBITMQ_DIST_PORT) — node n adds 100 × (n − 1) — epmd 35675
# (HUSKIMO_EPMD_PORT), PostgreSQL 35432 (HUSKIMO_POSTGRES_PORT), S3 35900 (HUSKIMO_S3_PORT),
# strict S3 35901 (HUSKIMO_S3_STRICT_PORT), Redshift-dialect proxy 35439 (HUSKIMO_REDSHIFT_PORT).
#
# Script messages go to stderr; only the env (up/env) goes to stdout. Service output goes to
# log files under $STACK/logs. Expects to run as root (Debian 12, no systemd); see
# docs/testing.md ("The local stack") for the facts behind the choices made here.
set -euo pipefail

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "$SCRIPT")/../.." && pwd -P)
STACK=$(readlink -m "${HUSKIMO_STACK_DIR:-$REPO/.local/stack}")
RUN=$STACK/run        # pid files
LOGS=$STACK/logs
RMQ=$STACK/rabbitmq   # RabbitMQ HOME (.erlang.cookie), config, mnesia
ENV_FILE=$STACK/stack.env
KEYS_FILE=$STACK/moto-strict.keys
PG_PATH_FILE=$STACK/pg.path   # where the PostgreSQL dir lives (see pg_root)

AMQP_PORT=${HUSKIMO_AMQP_PORT:-35672}
MGMT_PORT=${HUSKIMO_RABBITMQ_MGMT_PORT:-35673}
DIST_PORT=${HUSKIMO_RABBITMQ_DIST_PORT:-35674}
AMQPS_PORT=${HUSKIMO_AMQPS_PORT:-35670}
EPMD_PORT=${HUSKIMO_EPMD_PORT:-35675}
# rabbitmqctl needs a distribution port of its own; its default range (35672-35682!)
# overlaps the ports above, so give it a separate one.
CTL_PORT_MIN=${HUSKIMO_RABBITMQ_CTL_PORT_MIN:-35676}
PG_PORT=${HUSKIMO_POSTGRES_PORT:-35432}
S3_PORT=${HUSKIMO_S3_PORT:-35900}
S3_STRICT_PORT=${HUSKIMO_S3_STRICT_PORT:-35901}
REDSHIFT_PORT=${HUSKIMO_REDSHIFT_PORT:-35439}
NODENAME=${HUSKIMO_RABBITMQ_NODENAME:-huskimo@localhost}
# The broker's shape: 4.0 (Debian 13's, in a root of its own) or 3.10 (Debian 12's); 1 node or a cluster of 3. Without
# the variables, the shape the stack was last brought up with (so `down` and `status` find what `up` started).
SHAPE_FILE=$STACK/run/rabbitmq.shape
read -r SHAPE_VERSION SHAPE_NODES <"$SHAPE_FILE" 2>/dev/null || true
RABBIT_VERSION=${HUSKIMO_RABBITMQ_VERSION:-${SHAPE_VERSION:-4.0}}
RABBIT_NODES=${HUSKIMO_RABBITMQ_NODES:-${SHAPE_NODES:-3}}
case $RABBIT_VERSION in 4.0 | 3.10) ;; *) echo "HUSKIMO_RABBITMQ_VERSION must be 4.0 or 3.10" >&2; exit 2 ;; esac
case $RABBIT_NODES in 1 | 3) ;; *) echo "HUSKIMO_RABBITMQ_NODES must be 1 or 3" >&2; exit 2 ;; esac
RABBIT_ROOT=$STACK/rabbitmq-$RABBIT_VERSION-root
if [[ $RABBIT_VERSION == 3.10 ]]; then RABBIT_BASE=$RMQ/3.10 RABBIT_BASE_IN=$RMQ/3.10
else RABBIT_BASE=$RABBIT_ROOT/huskimo RABBIT_BASE_IN=/huskimo; fi

PG_USER=huskimo
PG_PASSWORD=huskimo-local-secret
PG_DB=huskimo
S3_REGION=us-east-1

APT_PACKAGES=(
  rabbitmq-server                      # broker 3.10 (Erlang 25 comes with it); its epmd serves the 4.0 nodes too
  debootstrap                          # builds the Debian 13 root that RabbitMQ 4.0 runs in
  postgresql                           # PostgreSQL 15 server + psql
  librabbitmq-dev libcurl4-openssl-dev libpq-dev zlib1g-dev libssl-dev libisal-dev pkg-config   # C libraries the Swift code links
  curl procps openssl                  # used by this script (readiness checks, ps, the broker's test CA)
  python3-yaml                         # deploy/check.py (the deploy recipes' checks, run by test.sh)
)

# ---------------------------------------------------------------------------------------- helpers

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

read_pid() { [[ -s $1 ]] && head -n1 "$1" | tr -dc 0-9 || true; }

# alive PID [PATTERN]: the process exists, is not a zombie (processes we start are re-parented to
# PID 1, which reaps them late, and `kill -0` succeeds on zombies), and its command line matches
# PATTERN, an extended regex (guards against a stale pid file whose pid was reused).
alive() {
  local pid=$1 pattern=${2:-} stat args
  [[ -n $pid ]] || return 1
  stat=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
  [[ $stat != Z* ]] || return 1
  args=$(ps -ww -o args= -p "$pid" 2>/dev/null) || return 1
  [[ -z $pattern || $args =~ $pattern ]]
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# http_up PORT: something answers HTTP on the port (any status code).
http_up() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/" 2>/dev/null) || true
  [[ -n $code && $code != 000 ]]
}

# spawn PIDFILE LOGFILE CMD...: start CMD detached (own session, so terminal signals and the
# caller's process-group kills don't reach it; stdin/stdout/stderr not inherited) and record
# its pid. The inner sh writes its own pid and then execs, so the pid is CMD's.
spawn() {
  local pidfile=$1 logfile=$2; shift 2
  rm -f "$pidfile"
  printf '\n==== %s: %s\n' "$(date '+%F %T')" "$*" >>"$logfile"
  # (cwd = stack dir, so stray files such as crash dumps land there)
  setsid sh -c 'cd "$1" && echo $$ >"$0" && shift && exec "$@"' "$pidfile" "$STACK" "$@" \
    </dev/null >>"$logfile" 2>&1 &
  for _ in $(seq 100); do [[ -s $pidfile ]] && return 0; sleep 0.01; done
  die "could not start $1 (no pid file $pidfile)"
}

# stop_pid NAME PIDFILE PATTERN SIGNAL [TIMEOUT_S]: signal the recorded process, wait until it is
# gone (or a zombie), escalate to SIGKILL after TIMEOUT_S, remove the pid file.
stop_pid() {
  local name=$1 pidfile=$2 pattern=$3 sig=$4 timeout=${5:-10} pid
  pid=$(read_pid "$pidfile")
  if alive "$pid" "$pattern"; then
    kill "-$sig" "$pid" 2>/dev/null || true
    for _ in $(seq $((timeout * 20))); do alive "$pid" "$pattern" || break; sleep 0.05; done
    if alive "$pid" "$pattern"; then
      log "$name (pid $pid) still running after ${timeout}s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 100); do alive "$pid" "$pattern" || break; sleep 0.05; done
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
}

# fail_with_log NAME LOGFILE MESSAGE: print the tail of a service log and exit.
fail_with_log() {
  printf '[stack] ---- last lines of %s ----\n' "$2" >&2
  tail -n 40 "$2" >&2 || true
  die "$1: $3"
}

# refuse to start a service if a foreign process already holds its port
check_port_free() {
  ! port_open "$2" || die "$1: port $2 on 127.0.0.1 is already in use by another process (set HUSKIMO_*_PORT to move it)"
}

# The real interpreter behind the pyenv shim (so recorded pids are python's own); sets $PY.
init_python() {
  [[ -n ${PY:-} ]] || PY=$(python3 -c 'import sys; print(sys.executable)') || die "python3 not found"
}

# Two services on one port would half-start (e.g. the management API answering on the AMQP
# port), so refuse overlapping overrides up front.
check_distinct_ports() {
  local dup
  dup=$(printf '%s\n' "$AMQP_PORT" "$AMQPS_PORT" "$MGMT_PORT" "$DIST_PORT" "$EPMD_PORT" "$PG_PORT" "$S3_PORT" \
        "$S3_STRICT_PORT" "$REDSHIFT_PORT" $(seq "$CTL_PORT_MIN" $((CTL_PORT_MIN + 9))) | sort | uniq -d | tr '\n' ' ')
  [[ -z $dup ]] || die "port(s) used twice in the configuration: $dup"
}

# -------------------------------------------------------------------------------------- install

ensure_packages() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  [[ $EUID -eq 0 ]] || die "missing packages (${missing[*]}) and not root"
  log "installing: ${missing[*]} (apt output in $LOGS/install.log)"
  local t; t=$(now)
  # On a machine without /usr/sbin/policy-rc.d the rabbitmq-server postinst would start the
  # packaged broker on the default ports; our ports differ, so that would not clash.
  if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
         --no-install-recommends "${missing[@]}"; } </dev/null >>"$LOGS/install.log" 2>&1; then
    fail_with_log apt "$LOGS/install.log" "package installation failed"
  fi
  log "packages installed in $(elapsed "$t")s"
}

ensure_moto() {
  local py=$PY
  "$py" -c 'import moto.server, flask' 2>/dev/null && return 0
  log "installing moto[server] from PyPI (output in $LOGS/install.log)"
  "$py" -m pip install -q 'moto[server]' </dev/null >>"$LOGS/install.log" 2>&1 \
    || fail_with_log pip "$LOGS/install.log" "pip install moto[server] failed"
  "$py" -c 'import moto.server, flask' || die "moto installed but 'import moto.server, flask' still fails"
}

# ------------------------------------------------------------------------------------- RabbitMQ
#
# RABBIT_VERSION 4.0 (the default: what users run) is Debian 13's RabbitMQ 4.0 with Erlang 27, installed by
# debootstrap into a root of its own under the stack dir (built once, ~35 s and ~370 MB, then reused) and run there
# with chroot; 3.10 is this machine's Debian 12 package (the oldest version Huskimo supports). RABBIT_NODES 3 (the
# default) is a cluster on loopback formed at first boot by classic peer discovery: node n is named huskimo@localhost,
# huskimo2@localhost, huskimo3@localhost and listens on the base ports + 100 × (n − 1), one data dir and HOME each
# (the same cookie in each), one epmd for all.

EPMD_PAT="epmd.*-port $EPMD_PORT"
epmd_running() { alive "$(read_pid "$RUN/epmd.pid")" "$EPMD_PAT"; }

nodes() { seq 1 "$RABBIT_NODES"; }
node_name() { if (($1 == 1)); then echo "$NODENAME"; else echo "huskimo$1@localhost"; fi; }
node_port() { echo $(($2 + 100 * ($1 - 1))); }   # node_port N BASE
amqp_port() { node_port "$1" "$AMQP_PORT"; }
mgmt_port() { node_port "$1" "$MGMT_PORT"; }
# Where node N keeps its HOME, config and data: as this host sees it, and as the broker does (inside its root).
node_dir() { echo "$RABBIT_BASE/node$1"; }
node_dir_in() { echo "$RABBIT_BASE_IN/node$1"; }
node_pidfile() { echo "$RUN/rabbitmq$1.pid"; }
node_log() { echo "$LOGS/rabbitmq$1.log"; }
node_pat() { echo "beam.*-home $(node_dir_in "$1") "; }
node_running() { alive "$(read_pid "$(node_pidfile "$1")")" "$(node_pat "$1")"; }
rabbit_running() { local n; for n in $(nodes); do node_running "$n" || return 1; done; }
# Runs a RabbitMQ program: inside the 4.0 root, or on this host for 3.10.
in_root() { if [[ $RABBIT_VERSION == 3.10 ]]; then "$@"; else chroot "$RABBIT_ROOT" "$@"; fi; }

node_ready() {
  port_open "$(amqp_port "$1")" &&
    curl -fsS -o /dev/null --max-time 2 -u guest:guest \
      "http://127.0.0.1:$(mgmt_port "$1")/api/health/checks/alarms" 2>/dev/null
}
# Every node up, and (a cluster) every node a running member of it.
rabbit_ready() {
  local n
  for n in $(nodes); do node_ready "$n" || return 1; done
  ((RABBIT_NODES == 1)) && return 0
  local running
  running=$(curl -fsS --max-time 2 -u guest:guest "http://127.0.0.1:$MGMT_PORT/api/nodes?columns=name,running" 2>/dev/null \
    | grep -o '"running":true' | wc -l) || return 1
  ((running == RABBIT_NODES))
}

start_epmd() {
  epmd_running && return 0
  check_port_free epmd "$EPMD_PORT"
  # Our own epmd in the foreground (not `-daemon`, which would orphan it with an unknown pid). Debian 12's serves the
  # 4.0 nodes too (epmd's protocol has not changed).
  spawn "$RUN/epmd.pid" "$LOGS/epmd.log" env ERL_EPMD_ADDRESS=127.0.0.1 epmd -port "$EPMD_PORT"
  for _ in $(seq 100); do port_open "$EPMD_PORT" && return 0; sleep 0.05; done
  fail_with_log epmd "$LOGS/epmd.log" "epmd did not open port $EPMD_PORT"
}

# The 4.0 root: Debian 13's rabbitmq-server from Debian's archive, built once (a marker file says it is complete).
ensure_rabbit_root() {
  [[ $RABBIT_VERSION == 3.10 ]] && return 0
  if [[ ! -e $RABBIT_ROOT/.huskimo-complete ]]; then
    command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
    local t; t=$(now)
    log "building the RabbitMQ $RABBIT_VERSION root with debootstrap (Debian 13, once; output in $LOGS/debootstrap.log)"
    umount_root_proc
    rm -rf "$RABBIT_ROOT"
    debootstrap --variant=minbase --include=rabbitmq-server trixie "$RABBIT_ROOT" "${HUSKIMO_DEBIAN_MIRROR:-http://deb.debian.org/debian}" \
      >>"$LOGS/debootstrap.log" 2>&1 || fail_with_log debootstrap "$LOGS/debootstrap.log" "debootstrap of Debian 13 failed"
    chroot "$RABBIT_ROOT" dpkg-query -W -f='${Version}\n' rabbitmq-server >"$RABBIT_ROOT/.huskimo-complete"
    log "RabbitMQ root built in $(elapsed "$t")s: rabbitmq-server $(cat "$RABBIT_ROOT/.huskimo-complete")"
  fi
  # Erlang reads /proc; the broker runs as root inside.
  mountpoint -q "$RABBIT_ROOT/proc" || mount -t proc proc "$RABBIT_ROOT/proc" || die "cannot mount /proc in $RABBIT_ROOT"
}

umount_root_proc() {   # whichever broker root has /proc mounted (the stack may have switched shapes)
  local root
  for root in "$STACK"/rabbitmq-*-root; do
    if mountpoint -q "$root/proc" 2>/dev/null; then umount -l "$root/proc" 2>/dev/null || true; fi
  done
}

# The environment shared by a node and rabbitmqctl (paths as the broker sees them).
rabbit_env() {   # rabbit_env N
  local d; d=$(node_dir_in "$1")
  export HOME=$d                                     # .erlang.cookie lives here, for server and CLI
  export RABBITMQ_CONF_ENV_FILE=$d/rabbitmq-env.conf # (empty) instead of /etc/rabbitmq/rabbitmq-env.conf
  export RABBITMQ_NODENAME; RABBITMQ_NODENAME=$(node_name "$1")
  export RABBITMQ_DIST_PORT; RABBITMQ_DIST_PORT=$(node_port "$1" "$DIST_PORT")
  export ERL_EPMD_PORT=$EPMD_PORT ERL_EPMD_ADDRESS=127.0.0.1
  export RABBITMQ_CONFIG_FILE=$d/rabbitmq.conf
  export RABBITMQ_CONFIG_FILES=$d/conf.d             # instead of /etc/rabbitmq/conf.d
  export RABBITMQ_ADVANCED_CONFIG_FILE=$d/advanced.config   # does not exist: no advanced config
  export RABBITMQ_ENABLED_PLUGINS_FILE=$d/enabled_plugins
  export RABBITMQ_MNESIA_BASE=$d/mnesia
  export RABBITMQ_PLUGINS_EXPAND_DIR=$d/plugins-expand
  export RABBITMQ_LOG_BASE=$d/log
  export RABBITMQ_LOGS=-                             # log to stdout, i.e. $LOGS/rabbitmqN.log
  export RABBITMQ_PID_FILE=$d/rabbit.pid
  export ERL_CRASH_DUMP=$d/erl_crash.dump            # default is the current directory
  export RABBITMQ_CTL_DIST_PORT_MIN=$CTL_PORT_MIN RABBITMQ_CTL_DIST_PORT_MAX=$((CTL_PORT_MIN + 9))
}

# A test CA and a server certificate for localhost / 127.0.0.1 (for the amqps:// listener), made once.
ensure_test_ca() {
  local tls=$RMQ/tls
  [[ -s $tls/ca.pem && -s $tls/server.pem && -s $tls/server.key ]] && return 0
  mkdir -p "$tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=huskimo local test CA" \
    -keyout "$tls/ca.key" -out "$tls/ca.pem" >>"$LOGS/tls.log" 2>&1 || fail_with_log tls "$LOGS/tls.log" "cannot make the test CA"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$tls/server.key" -out "$tls/server.csr" \
    >>"$LOGS/tls.log" 2>&1 || fail_with_log tls "$LOGS/tls.log" "cannot make the server key"
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$tls/san.ext"
  openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 3650 \
    -extfile "$tls/san.ext" -out "$tls/server.pem" >>"$LOGS/tls.log" 2>&1 || fail_with_log tls "$LOGS/tls.log" "cannot sign the server certificate"
  chmod 644 "$tls"/*.pem "$tls/server.key"
}

write_rabbit_config() {   # write_rabbit_config N
  local n=$1 d d_in; d=$(node_dir "$n"); d_in=$(node_dir_in "$n")
  mkdir -p "$d/conf.d" "$d/log" "$d/mnesia" "$d/tls"
  ensure_test_ca
  cp "$RMQ/tls/ca.pem" "$RMQ/tls/server.pem" "$RMQ/tls/server.key" "$d/tls/"
  # One cookie for the cluster and its CLI, in each node's HOME.
  [[ -s $RMQ/cookie ]] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RMQ/cookie"
  install -m 600 "$RMQ/cookie" "$d/.erlang.cookie"
  : >"$d/rabbitmq-env.conf"
  echo '[rabbitmq_management].' >"$d/enabled_plugins"
  {
    echo "# generated by deploy/local/stack.sh — edits are overwritten on start"
    echo "listeners.tcp.1 = 127.0.0.1:$(amqp_port "$n")"
    echo "# amqps:// with a certificate of the local test CA (clients verify it with cacertfile=…)"
    echo "listeners.ssl.1 = 127.0.0.1:$(node_port "$n" "$AMQPS_PORT")"
    echo "ssl_options.cacertfile = $d_in/tls/ca.pem"
    echo "ssl_options.certfile = $d_in/tls/server.pem"
    echo "ssl_options.keyfile = $d_in/tls/server.key"
    echo "ssl_options.verify = verify_none"
    echo "ssl_options.fail_if_no_peer_cert = false"
    echo "management.tcp.ip = 127.0.0.1"
    echo "management.tcp.port = $(mgmt_port "$n")"
    echo "# guest/guest may log in over 127.0.0.1 TCP (every listener is loopback anyway)"
    echo "loopback_users = none"
    echo "# management stats every 0.5 s instead of 5 s (queue counters in /api/queues lag less)"
    echo "collect_statistics_interval = 500"
    if ((RABBIT_NODES > 1)); then
      echo "cluster_formation.peer_discovery_backend = classic_config"
      local m; for m in $(nodes); do echo "cluster_formation.classic_config.nodes.$m = $(node_name "$m")"; done
      # A frozen (SIGSTOP) or killed node is the minority: it pauses rather than splitting the cluster.
      echo "cluster_partition_handling = pause_minority"
    fi
  } >"$d/rabbitmq.conf"
}

# Start node N (epmd must be up). Does not wait; see wait_rabbit.
spawn_node() {
  local n=$1
  check_port_free "rabbitmq node $n (amqp)" "$(amqp_port "$n")"
  check_port_free "rabbitmq node $n (amqps)" "$(node_port "$n" "$AMQPS_PORT")"
  check_port_free "rabbitmq node $n (management)" "$(mgmt_port "$n")"
  check_port_free "rabbitmq node $n (dist)" "$(node_port "$n" "$DIST_PORT")"
  write_rabbit_config "$n"
  # RABBITMQ_ALLOW_INPUT makes the script `exec erl` (→ erlexec → beam.smp, all exec; chroot execs too) instead of
  # staying around as a signal-forwarding parent, so the recorded pid is beam.smp itself; the shell stays disabled by
  # -noinput. inet_dist_use_interface binds the distribution listener to loopback (else 0.0.0.0).
  ( rabbit_env "$n"
    export RABBITMQ_ALLOW_INPUT=true
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-noinput -kernel inet_dist_use_interface {127,0,0,1}"
    if [[ $RABBIT_VERSION == 3.10 ]]; then
      spawn "$(node_pidfile "$n")" "$(node_log "$n")" /usr/lib/rabbitmq/bin/rabbitmq-server
    else
      spawn "$(node_pidfile "$n")" "$(node_log "$n")" chroot "$RABBIT_ROOT" /usr/lib/rabbitmq/bin/rabbitmq-server
    fi )
}

# Wait until every node answers AMQP, its management API reports no alarm, and the cluster has every node. Fails
# fast, with the log tail, if a node's process dies (e.g. eaddrinuse at boot).
wait_rabbit() {
  local t=$1 n deadline=$((SECONDS + ${HUSKIMO_RABBITMQ_BOOT_TIMEOUT:-120}))
  until rabbit_ready; do
    for n in $(nodes); do
      alive "$(read_pid "$(node_pidfile "$n")")" "$(node_pat "$n")" \
        || fail_with_log "rabbitmq node $n" "$(node_log "$n")" "broker process died during boot"
    done
    ((SECONDS < deadline)) || fail_with_log rabbitmq "$(node_log 1)" "broker not ready after ${HUSKIMO_RABBITMQ_BOOT_TIMEOUT:-120}s"
    sleep 0.2
  done
  log "rabbitmq $RABBIT_VERSION ready ($RABBIT_NODES node(s), amqp $AMQP_PORT, mgmt $MGMT_PORT) in $(elapsed "$t")s"
}

# Sets RABBIT_WAIT=1 if the caller must wait_rabbit (a node spawned, or one still booting).
# (A flag rather than a return code: `set -e` is suspended inside functions used as conditions.)
ensure_rabbit_started() {
  RABBIT_WAIT=1
  mkdir -p "$RMQ" "$RUN"
  # Another shape still running (its pid files name other nodes or another root): stop it first, by its own shape.
  if [[ -s $SHAPE_FILE && "$(cat "$SHAPE_FILE")" != "$RABBIT_VERSION $RABBIT_NODES" ]]; then
    log "rabbitmq was brought up as $(cat "$SHAPE_FILE"); stopping it for $RABBIT_VERSION $RABBIT_NODES"
    HUSKIMO_RABBITMQ_VERSION=${SHAPE_VERSION:-} HUSKIMO_RABBITMQ_NODES=${SHAPE_NODES:-} bash "$SCRIPT" stop-rabbitmq
  fi
  echo "$RABBIT_VERSION $RABBIT_NODES" >"$SHAPE_FILE"
  if rabbit_running && rabbit_ready; then log "rabbitmq already running"; RABBIT_WAIT=0; return 0; fi
  ensure_rabbit_root
  start_epmd
  local n
  for n in $(nodes); do node_running "$n" || spawn_node "$n"; done
}

stop_node() {   # stop_node N KILL|TERM
  # SIGKILL is instant and fine for a disposable broker; SIGTERM is a graceful stop (≈7 s).
  local pid; pid=$(read_pid "$(node_pidfile "$1")")
  if [[ -n $pid ]]; then kill -CONT "$pid" 2>/dev/null || true; fi   # a frozen node cannot act on SIGTERM
  stop_pid "rabbitmq node $1" "$(node_pidfile "$1")" "$(node_pat "$1")" "$2" 30
}

stop_rabbit() {   # stop_rabbit KILL|TERM
  local n
  for n in $(nodes); do stop_node "$n" "$1"; done
}

# ------------------------------------------------------------------------------------ PostgreSQL

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [[ -n $d ]] || die "no PostgreSQL binaries under /usr/lib/postgresql"
  echo "$d"
}

# PostgreSQL refuses to run as root, so it runs as `postgres`, which must be able to reach its
# data dir. If the stack dir is not reachable for it (repo under a 0700 dir such as /root) or
# the socket path would be too long (Unix sockets: 107 bytes), use /tmp/huskimo-stack-<hash>/pg.
# The choice is recorded in $PG_PATH_FILE so later calls (down, status) agree.
pg_root() {
  if [[ -s $PG_PATH_FILE ]]; then cat "$PG_PATH_FILE"; return; fi
  local root=$STACK/pg
  if { [[ $EUID -eq 0 ]] && ! runuser -u postgres -- test -x "$STACK" 2>/dev/null; } ||
     (( ${#root} + 24 > 100 )); then
    root=/tmp/huskimo-stack-$(printf %s "$STACK" | sha256sum | cut -c1-12)/pg
  fi
  echo "$root" >"$PG_PATH_FILE"
  echo "$root"
}

as_pg() {   # run a command as the postgres user (or as ourselves if not root)
  if [[ $EUID -eq 0 ]]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

pg_running() {
  local root; root=$(pg_root)
  alive "$(read_pid "$root/data/postmaster.pid")" "postgres" &&
    "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2
}

ensure_pg() {
  local t bin root data sock; t=$(now)
  bin=$(pg_bin); root=$(pg_root); data=$root/data; sock=$root/sock
  if pg_running; then
    log "postgres already running (pid $(read_pid "$data/postmaster.pid"), port $PG_PORT)"
  else
    check_port_free postgres "$PG_PORT"
    local owner=postgres; [[ $EUID -eq 0 ]] || owner=$(id -un)
    mkdir -p "$root" && chmod 755 "$root" "$(dirname "$root")"
    install -d -m 700 -o "$owner" "$data"
    install -d -m 755 -o "$owner" "$sock"
    touch "$root/postgres.log" && chown "$owner" "$root/postgres.log"
    ln -sfn "$root/postgres.log" "$LOGS/postgres.log"
    if [[ ! -s $data/PG_VERSION ]]; then
      as_pg "$bin/initdb" -D "$data" --no-sync -U postgres -E UTF8 --locale=C \
        --auth-local=trust --auth-host=scram-sha-256 >>"$LOGS/initdb.log" 2>&1 \
        || fail_with_log postgres "$LOGS/initdb.log" "initdb failed"
      # Disposable test database: durability off for speed.
      cat >>"$data/postgresql.conf" <<'EOF'

# added by deploy/local/stack.sh (disposable local database)
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    fi
    # A postmaster.pid left by a killed server whose pid now belongs to something else would
    # make the new postmaster refuse to start.
    [[ -f $data/postmaster.pid ]] && rm -f "$data/postmaster.pid"
    # Port, socket dir and listen address go on the command line so env overrides always apply.
    as_pg "$bin/pg_ctl" -D "$data" -l "$root/postgres.log" -w -t 60 \
      -o "-p $PG_PORT -k '$sock' -c listen_addresses=127.0.0.1" start >>"$LOGS/pg_ctl.log" 2>&1 \
      || fail_with_log postgres "$root/postgres.log" "pg_ctl start failed"
    log "postgres started (pid $(read_pid "$data/postmaster.pid"), port $PG_PORT, data $data) in $(elapsed "$t")s"
  fi
  # Idempotent: application role + database. Local socket auth is `trust`; TCP needs the password.
  local sql
  sql=$(cat <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN SUPERUSER PASSWORD '$PG_PASSWORD';
  END IF;
END \$\$;
ALTER ROLE $PG_USER LOGIN SUPERUSER PASSWORD '$PG_PASSWORD';
SELECT 'CREATE DATABASE $PG_DB OWNER $PG_USER' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DB') \gexec
SQL
)
  "$bin/psql" -X -q -h "$sock" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    <<<"$sql" >>"$LOGS/pg_ctl.log" 2>&1 || fail_with_log postgres "$LOGS/pg_ctl.log" "creating role/database failed"
}

stop_pg() {
  [[ -s $PG_PATH_FILE ]] || return 0
  local root data; root=$(pg_root); data=$root/data
  [[ -f $data/postmaster.pid ]] || return 0
  local pid; pid=$(read_pid "$data/postmaster.pid")
  if alive "$pid" postgres; then
    as_pg "$(pg_bin)/pg_ctl" -D "$data" -m fast -w -t 30 stop >>"$LOGS/pg_ctl.log" 2>&1 \
      || { log "pg_ctl stop failed; SIGKILL $pid"; kill -KILL "$pid" 2>/dev/null || true; }
    log "stopped postgres (pid $pid)"
  fi
}

# --------------------------------------------------------------------------------------- moto S3

moto_pat() { echo "moto.server.*-p $1"; }
moto_running() {   # moto_running NAME PORT
  alive "$(read_pid "$RUN/$1.pid")" "$(moto_pat "$2")" && http_up "$2"
}

spawn_moto() {    # spawn_moto NAME PORT
  check_port_free "$1" "$2"
  spawn "$RUN/$1.pid" "$LOGS/$1.log" "$PY" -m moto.server -H 127.0.0.1 -p "$2"
}

wait_moto() {     # wait_moto NAME PORT
  local pid; pid=$(read_pid "$RUN/$1.pid")
  for _ in $(seq 300); do
    http_up "$2" && return 0
    alive "$pid" "$(moto_pat "$2")" || fail_with_log "$1" "$LOGS/$1.log" "moto server died during start"
    sleep 0.1
  done
  fail_with_log "$1" "$LOGS/$1.log" "moto server not answering on port $2 after 30s"
}

# IAM call to the strict server, signed with any key (accepted while auth is still off).
moto_iam() {
  curl -sS --fail-with-body --max-time 10 --aws-sigv4 "aws:amz:$S3_REGION:iam" -u test:test \
    "http://127.0.0.1:$S3_STRICT_PORT/" --data "$1&Version=2010-05-08"
}

xml_field() { sed -n "s:.*<$1>\([^<]*\)</$1>.*:\1:p" | head -n1; }

# Create an IAM user with an allow-all policy, then switch on signature checking
# (moto's reset-auth with a text/plain body "0"; a form-encoded body gives a 500).
configure_strict_moto() {
  local out key secret policy code
  moto_iam 'Action=CreateUser&UserName=huskimo' >/dev/null
  out=$(moto_iam 'Action=CreateAccessKey&UserName=huskimo')
  key=$(xml_field AccessKeyId <<<"$out"); secret=$(xml_field SecretAccessKey <<<"$out")
  [[ -n $key && -n $secret ]] || die "s3-strict: could not parse access key from: $out"
  # {"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}, URL-encoded
  policy='%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22%2A%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D'
  moto_iam "Action=PutUserPolicy&UserName=huskimo&PolicyName=allow-all&PolicyDocument=$policy" >/dev/null
  curl -fsS --max-time 10 -o /dev/null -H 'content-type: text/plain' --data-binary 0 \
    "http://127.0.0.1:$S3_STRICT_PORT/moto-api/reset-auth"
  # Verify once that signatures are really checked now. An unsigned request is refused, but
  # moto 5.2.1 answers it with a 500 (KeyError on the missing Authorization header) rather
  # than 403, so accept either; an unknown key must get 403, the new key 200.
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$S3_STRICT_PORT/")
  [[ $code == 403 || $code == 500 ]] || die "s3-strict: unsigned request got HTTP $code, expected 403 (auth not enabled?)"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --aws-sigv4 "aws:amz:$S3_REGION:s3" \
    -u test:test -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "http://127.0.0.1:$S3_STRICT_PORT/")
  [[ $code == 403 ]] || die "s3-strict: request signed with an unknown key got HTTP $code, expected 403"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --aws-sigv4 "aws:amz:$S3_REGION:s3" \
    -u "$key:$secret" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "http://127.0.0.1:$S3_STRICT_PORT/")
  [[ $code == 200 ]] || die "s3-strict: signed ListBuckets got HTTP $code, expected 200"
  printf '%s\n%s\n' "$key" "$secret" >"$KEYS_FILE"
  chmod 600 "$KEYS_FILE"
}

# Start (or keep) both moto servers, without waiting (see finish_motos); the strict one is
# reused only if its keys were recorded. Sets MOTO_PLAIN_NEW / MOTO_STRICT_NEW.
start_motos() {
  MOTO_T=$(now) MOTO_PLAIN_NEW=1 MOTO_STRICT_NEW=1
  if moto_running s3-plain "$S3_PORT"; then
    log "s3-plain already running (pid $(read_pid "$RUN/s3-plain.pid"))"; MOTO_PLAIN_NEW=0
  fi
  if moto_running s3-strict "$S3_STRICT_PORT" && [[ -s $KEYS_FILE ]]; then
    log "s3-strict already running (pid $(read_pid "$RUN/s3-strict.pid"))"; MOTO_STRICT_NEW=0
  fi
  ((MOTO_PLAIN_NEW + MOTO_STRICT_NEW)) || return 0
  init_python
  ensure_moto
  if ((MOTO_PLAIN_NEW)); then spawn_moto s3-plain "$S3_PORT"; fi
  if ((MOTO_STRICT_NEW)); then
    stop_pid s3-strict "$RUN/s3-strict.pid" "$(moto_pat "$S3_STRICT_PORT")" TERM 5
    rm -f "$KEYS_FILE"
    spawn_moto s3-strict "$S3_STRICT_PORT"
  fi
}

# Wait for the servers start_motos spawned; set up the strict one's user and switch auth on.
finish_motos() {
  ((MOTO_PLAIN_NEW + MOTO_STRICT_NEW)) || return 0
  if ((MOTO_PLAIN_NEW)); then wait_moto s3-plain "$S3_PORT"; fi
  if ((MOTO_STRICT_NEW)); then wait_moto s3-strict "$S3_STRICT_PORT"; configure_strict_moto; fi
  log "moto S3 ready (ports $S3_PORT, $S3_STRICT_PORT) in $(elapsed "$MOTO_T")s"
}

# ------------------------------------------------------------------------- Redshift-dialect proxy

# A PostgreSQL wire-protocol proxy that behaves as Redshift does where the project depends on it
# (COPY from S3, refusal of PostgreSQL-only SQL); see Tests/Support/redshift/README.md. Needs
# PostgreSQL and the plain moto S3 up. The password for its stl_load_errors writer goes in the
# environment, not on the command line.
REDSHIFT_SCRIPT=$REPO/Tests/Support/redshift/redshift_dialect.py
redshift_pat() { echo "redshift_dialect\.py --listen-port $REDSHIFT_PORT"; }
redshift_running() {
  alive "$(read_pid "$RUN/redshift.pid")" "$(redshift_pat)" && port_open "$REDSHIFT_PORT"
}

ensure_redshift() {
  local t pid; t=$(now)
  if redshift_running; then
    log "redshift proxy already running (pid $(read_pid "$RUN/redshift.pid"), port $REDSHIFT_PORT)"; return 0
  fi
  init_python
  "$PY" -c 'import boto3' 2>/dev/null || ensure_moto   # boto3 comes with moto[server]
  stop_pid redshift "$RUN/redshift.pid" "$(redshift_pat)" TERM 5
  check_port_free redshift "$REDSHIFT_PORT"
  # (exported in a subshell: spawn logs its command line, and the password must not land in the log)
  ( export REDSHIFT_DIALECT_PG_USER=$PG_USER REDSHIFT_DIALECT_PG_PASSWORD=$PG_PASSWORD
    spawn "$RUN/redshift.pid" "$LOGS/redshift.log" "$PY" "$REDSHIFT_SCRIPT" --listen-port "$REDSHIFT_PORT" \
      --pg-host 127.0.0.1 --pg-port "$PG_PORT" --s3-endpoint "http://127.0.0.1:$S3_PORT" --s3-region "$S3_REGION" )
  pid=$(read_pid "$RUN/redshift.pid")
  for _ in $(seq 100); do
    if port_open "$REDSHIFT_PORT"; then
      log "redshift proxy ready (pid $pid, port $REDSHIFT_PORT) in $(elapsed "$t")s"; return 0
    fi
    alive "$pid" "$(redshift_pat)" || fail_with_log redshift "$LOGS/redshift.log" "proxy died during start"
    sleep 0.05
  done
  fail_with_log redshift "$LOGS/redshift.log" "proxy not listening on port $REDSHIFT_PORT after 5s"
}

stop_redshift() { stop_pid redshift "$RUN/redshift.pid" "$(redshift_pat)" TERM 5; }

# ------------------------------------------------------------------------------------- env file

write_env() {
  local key secret
  { read -r key; read -r secret; } <"$KEYS_FILE"
  {
    echo "# generated by deploy/local/stack.sh up — $(date '+%F %T')"
    local kv
    for kv in \
      "AMQP_URL=amqp://guest:guest@127.0.0.1:$AMQP_PORT/%2f" \
      "AMQPS_URL=amqps://guest:guest@localhost:$AMQPS_PORT/%2f" \
      "AMQPS_CA=$RMQ/tls/ca.pem" \
      "RABBITMQ_MGMT_URL=http://127.0.0.1:$MGMT_PORT" \
      "RABBITMQ_NODENAME=$NODENAME" \
      "RABBITMQ_VERSION=$RABBIT_VERSION" \
      "RABBITMQ_NODES=$RABBIT_NODES" \
      "AMQP_URLS=$(for n in $(nodes); do printf 'amqp://guest:guest@127.0.0.1:%s/%%2f,' "$(amqp_port "$n")"; done | sed 's/,$//')" \
      "RABBITMQ_MGMT_URLS=$(for n in $(nodes); do printf 'http://127.0.0.1:%s,' "$(mgmt_port "$n")"; done | sed 's/,$//')" \
      "POSTGRES_HOSTNAME=127.0.0.1" \
      "POSTGRES_PORT=$PG_PORT" \
      "POSTGRES_USER=$PG_USER" \
      "POSTGRES_PASSWORD=$PG_PASSWORD" \
      "POSTGRES_DB=$PG_DB" \
      "S3_ENDPOINT=http://127.0.0.1:$S3_PORT" \
      "S3_REGION=$S3_REGION" \
      "S3_ACCESS_KEY_ID=test" \
      "S3_SECRET_ACCESS_KEY=test" \
      "S3_STRICT_ENDPOINT=http://127.0.0.1:$S3_STRICT_PORT" \
      "S3_STRICT_ACCESS_KEY_ID=$key" \
      "S3_STRICT_SECRET_ACCESS_KEY=$secret" \
      "REDSHIFT_HOSTNAME=127.0.0.1" \
      "REDSHIFT_PORT=$REDSHIFT_PORT" \
      "HUSKIMO_STACK_DIR=$STACK" \
      "HUSKIMO_STACK_SCRIPT=$SCRIPT"; do
      printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"
    done
  } >"$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

all_running() {
  epmd_running && rabbit_running && rabbit_ready && pg_running &&
    moto_running s3-plain "$S3_PORT" && moto_running s3-strict "$S3_STRICT_PORT" && redshift_running
}

# ------------------------------------------------------------------------------------- commands

# Keep the kernel from handing the stack's ports out as ephemeral ports of outgoing connections (32768–60999 by
# default, which holds them all): seen in CI, a client socket on 35674 kept the restarted broker from binding its
# distribution port (dist_port_already_used … not_erlang). Needs root; otherwise a note, and the restart's retry.
reserve_ports() {
  local file=/proc/sys/net/ipv4/ip_local_reserved_ports want=35400-35999
  [[ -w $file ]] || { log "note: cannot reserve ports $want from the ephemeral range (not root); a client socket may take one"; return 0; }
  local current; current=$(cat "$file")
  [[ ,$current, == *,$want,* ]] && return 0
  echo "${current:+$current,}$want" >"$file" 2>/dev/null || log "note: cannot reserve ports $want from the ephemeral range"
}

cmd_up() {
  local t0; t0=$(now)
  check_distinct_ports
  reserve_ports
  mkdir -p "$RUN" "$LOGS"
  ensure_packages
  # The broker is the slow one (≈5 s): start it first and do everything else while it boots;
  # likewise PostgreSQL starts while the moto servers load.
  local t_rmq; t_rmq=$(now)
  ensure_rabbit_started
  start_motos
  ensure_pg
  finish_motos
  ensure_redshift   # after PostgreSQL and moto: it proxies both
  if ((RABBIT_WAIT)); then wait_rabbit "$t_rmq"; fi
  write_env
  log "stack up in $(elapsed "$t0")s (env: $ENV_FILE)"
  cat "$ENV_FILE"
}

cmd_down() {
  local sig=KILL
  [[ ${1:-} == --graceful ]] && sig=TERM
  stop_redshift   # before the services it proxies
  stop_rabbit "$sig"
  umount_root_proc
  rm -f "$SHAPE_FILE"
  stop_pid epmd "$RUN/epmd.pid" "$EPMD_PAT" TERM 5
  stop_pid s3-plain "$RUN/s3-plain.pid" "$(moto_pat "$S3_PORT")" TERM 5
  stop_pid s3-strict "$RUN/s3-strict.pid" "$(moto_pat "$S3_STRICT_PORT")" TERM 5
  stop_pg
  rm -f "$ENV_FILE" "$KEYS_FILE"
}

cmd_status() {
  local ok=0 pid
  line() { printf '%-10s %-8s %s\n' "$1" "$2" "$3"; }
  local n
  for n in $(nodes); do
    pid=$(read_pid "$(node_pidfile "$n")")
    if node_running "$n" && node_ready "$n"; then
      line "rabbitmq$n" running "$RABBIT_VERSION $(node_name "$n") amqp=$(amqp_port "$n") mgmt=$(mgmt_port "$n") pid=$pid"
    elif node_running "$n"; then line "rabbitmq$n" booting "amqp=$(amqp_port "$n") pid=$pid"; ok=1
    else line "rabbitmq$n" stopped "amqp=$(amqp_port "$n")"; ok=1; fi
  done
  if epmd_running; then line epmd running "port=$EPMD_PORT pid=$(read_pid "$RUN/epmd.pid")"
  else line epmd stopped "port=$EPMD_PORT"; ok=1; fi
  if [[ -s $PG_PATH_FILE ]] && pg_running; then
    line postgres running "port=$PG_PORT pid=$(read_pid "$(pg_root)/data/postmaster.pid")"
  else line postgres stopped "port=$PG_PORT"; ok=1; fi
  if moto_running s3-plain "$S3_PORT"; then line s3-plain running "port=$S3_PORT pid=$(read_pid "$RUN/s3-plain.pid")"
  else line s3-plain stopped "port=$S3_PORT"; ok=1; fi
  if moto_running s3-strict "$S3_STRICT_PORT"; then line s3-strict running "port=$S3_STRICT_PORT pid=$(read_pid "$RUN/s3-strict.pid")"
  else line s3-strict stopped "port=$S3_STRICT_PORT"; ok=1; fi
  if redshift_running; then line redshift running "port=$REDSHIFT_PORT pid=$(read_pid "$RUN/redshift.pid")"
  else line redshift stopped "port=$REDSHIFT_PORT"; ok=1; fi
  return $ok
}

cmd_env() {
  [[ -s $ENV_FILE ]] && all_running || die "stack is not up (run: $SCRIPT up)"
  cat "$ENV_FILE"
}

cmd_start_rabbit() {
  check_distinct_ports
  mkdir -p "$RUN" "$LOGS"
  local t; t=$(now)
  ensure_rabbit_started
  if ((RABBIT_WAIT)); then wait_rabbit "$t"; fi
}

# Node N killed (SIGKILL) and started again on the same ports and data dir; returns when the cluster has it again.
cmd_restart_node() {
  local n=${1:-1} t; t=$(now)
  reserve_ports
  stop_node "$n" KILL
  wait_ports_free "$n"
  # And if the new node still loses the race for a port, start it once more.
  if ! (cmd_start_node "$n"); then
    log "rabbitmq node $n did not come back on the first try; starting it again"
    sleep 2
    cmd_start_node "$n"
  fi
  log "rabbitmq node $n restarted in $(elapsed "$t")s"
}

# The killed node's listeners can outlive its pid for a moment (seen in CI: the new node then died with
# could_not_start_listener on 35672): wait until nothing answers on its ports; kill whatever still holds AMQP.
wait_ports_free() {
  local n=$1
  for _ in $(seq 150); do
    port_open "$(amqp_port "$n")" || port_open "$(mgmt_port "$n")" || port_open "$(node_port "$n" "$AMQPS_PORT")" \
      || port_open "$(node_port "$n" "$DIST_PORT")" || break
    sleep 0.1
  done
  if port_open "$(amqp_port "$n")" && command -v ss >/dev/null; then
    ss -ltnpH "sport = :$(amqp_port "$n")" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u | xargs -r kill -KILL 2>/dev/null || true
    sleep 0.5
  fi
}

# Starts node N (after kill-node) and waits until the whole cluster is ready again.
cmd_start_node() {
  local n=${1:-1} t; t=$(now)
  check_distinct_ports
  mkdir -p "$RUN" "$LOGS"
  ensure_rabbit_root
  start_epmd
  node_running "$n" || spawn_node "$n"
  wait_rabbit "$t"
}

# SIGKILL node N and return at once (the cluster goes on without it).
cmd_kill_node() {
  stop_node "${1:-1}" KILL
  wait_ports_free "${1:-1}"
}

# SIGSTOP / SIGCONT node N: a node that hangs (its sockets open, nothing answering).
cmd_signal_node() {   # cmd_signal_node STOP|CONT N
  local pid; pid=$(read_pid "$(node_pidfile "$2")")
  node_running "$2" || die "rabbitmq node $2 is not running"
  kill "-$1" "$pid"
  log "rabbitmq node $2 (pid $pid): SIG$1"
}

cmd_restart_pg() {
  local t; t=$(now)
  stop_pg
  ensure_pg
  log "postgres restarted in $(elapsed "$t")s"
}

cmd_rabbitmqctl() {   # against node 1, or node N with HUSKIMO_RABBITMQCTL_NODE=N
  local n=${HUSKIMO_RABBITMQCTL_NODE:-1}
  rabbit_env "$n"
  in_root /usr/lib/rabbitmq/bin/rabbitmqctl -n "$(node_name "$n")" "$@"
}

cmd_clean() {
  cmd_down
  umount_root_proc
  local root=""
  [[ -s $PG_PATH_FILE ]] && root=$(pg_root)
  [[ -n $root && $root == /tmp/huskimo-stack-* ]] && rm -rf "$(dirname "$root")"
  rm -rf "$STACK"
  log "removed $STACK${root:+ and $root}"
}

case ${1:-} in
  up) cmd_up ;;
  down) shift; cmd_down "$@" ;;
  status) cmd_status ;;
  env) cmd_env ;;
  start-rabbitmq) cmd_start_rabbit ;;
  stop-rabbitmq) stop_rabbit KILL ;;
  restart-rabbitmq) cmd_restart_node 1 ;;
  restart-node) cmd_restart_node "${2:?node number}" ;;
  kill-node) cmd_kill_node "${2:?node number}" ;;
  start-node) cmd_start_node "${2:?node number}" ;;
  freeze-node) cmd_signal_node STOP "${2:?node number}" ;;
  thaw-node) cmd_signal_node CONT "${2:?node number}" ;;
  restart-postgres) cmd_restart_pg ;;
  rabbitmqctl) shift; cmd_rabbitmqctl "$@" ;;
  clean) cmd_clean ;;
  *) sed -n '2,/^set -euo/p' "$SCRIPT" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
