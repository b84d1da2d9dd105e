#!/usr/bin/env bash
# The local database cluster the tests run against, from this machine's own PostgreSQL and
# MariaDB binaries, on dedicated ports, with all data under .cluster/ (git ignores it):
#
#   pg-a   PostgreSQL primary 127.0.0.1:54411, streaming replica :54412   (database shardkit)
#   pg-b   PostgreSQL primary 127.0.0.1:54421, streaming replica :54422   (database shardkit)
#   pg-c   PostgreSQL primary 127.0.0.1:54431, synchronous replica :54432 (database shardkit),
#          for failover tests: the replica may be promoted, and `rebuild pg-c` makes the pair anew
#   maria-a  MariaDB primary 127.0.0.1:33611, GTID replica      :33612   (database shardkit_1)
#   maria-b  MariaDB primary 127.0.0.1:33621                              (database shardkit_2)
#   maria-c  MariaDB primary 127.0.0.1:33631, semi-synchronous replica :33632 (database shardkit_c),
#            for failover tests: `promote maria-c-replica`, and `rebuild maria-c` makes the pair anew
#
# Usage: scripts/cluster.sh up | down | status | destroy | kill NAME | start NAME | pause NAME | resume NAME
#                          | promote NAME | rebuild PAIR
#   up          create what is missing, start what is stopped (idempotent); installs
#               mariadb-server and redis-server with apt-get when run as root and absent
#               (Redis, on 6391, is the read cache's shared level; in memory only)
#   down        stop every server (data is kept)
#   status      one line per server; exit 0 only when all are running
#   destroy     stop and delete .cluster/
#   kill NAME   stop one server the hard way (pg_ctl -m immediate, SIGKILL), for fault tests
#   start NAME  start one stopped server again
#   pause NAME  SIGSTOP every process of one server (it accepts connections, answers nothing)
#   resume NAME SIGCONT them
#   promote NAME  pg_ctl promote a PostgreSQL replica (it stops replaying and accepts writes)
#   rebuild PAIR  stop a failover pair (pg-c, maria-c), delete it and create it anew, empty
#   promote NAME  on MariaDB (maria-c-replica): apply what it received, stop and forget
#                 replication, make it writable
#
# It never touches the machine's own services on 5432/3306. The application user `shardkit`
# (password below, a local test credential) is an ordinary user, so that replicas refuse its
# writes as they would in production.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# .cluster/ in the checkout, unless the server users could not reach it there (a checkout
# under /root, say): then a folder in /tmp named after the checkout.
cluster_dir() {
  [ -n "${SHARDKIT_CLUSTER_DIR:-}" ] && { echo "$SHARDKIT_CLUSTER_DIR"; return; }
  if [ "$(id -u)" != 0 ] || runuser -u postgres -- test -x "$ROOT"; then
    echo "$ROOT/.cluster"
  else
    echo "/tmp/shardkit-cluster-$(printf '%s' "$ROOT" | md5sum | cut -c1-12)"
  fi
}
CLUSTER_DIR=$(cluster_dir)
RUN_DIR=$CLUSTER_DIR/run
LOG_DIR=$CLUSTER_DIR/logs
APP_USER=shardkit
APP_PASSWORD=shardkit-local-test
REPL_PASSWORD=shardkit-repl-local

PG_INSTANCES=("pg-a-primary:54411" "pg-a-replica:54412" "pg-b-primary:54421" "pg-b-replica:54422" "pg-c-primary:54431" "pg-c-replica:54432")
# Pairs whose primary waits for its replica at every commit, so that a promoted replica holds
# every acknowledged write; their application user may call pg_promote() (planned failover).
SYNCHRONOUS_PAIRS=" pg-c "

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] error: %s\n' "$*" >&2; exit 1; }

# --- PostgreSQL ---------------------------------------------------------------------------

pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do [ -x "$dir/initdb" ] && { echo "$dir"; return; }; done
  command -v initdb >/dev/null && { dirname "$(command -v initdb)"; return; }
  die "PostgreSQL server binaries (initdb) not found; install postgresql"
}

# Run a PostgreSQL server tool as the postgres user when we are root (initdb refuses root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_port() { echo "${1#*:}"; }
pg_name() { echo "${1%%:*}"; }
pg_port_of() {
  local entry
  for entry in "${PG_INSTANCES[@]}"; do [ "$(pg_name "$entry")" = "$1" ] && pg_port "$entry"; done
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pg_running() { as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/$1" status >/dev/null 2>&1; }

pg_start() {
  local name=$1
  pg_running "$name" && return 0
  rm -f "$CLUSTER_DIR/$name/postmaster.pid"
  port_free "$(pg_port_of "$name")" || die "port $(pg_port_of "$name") is taken by another process (another checkout's cluster? run its scripts/cluster.sh down)"
  as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/$name" -l "$LOG_DIR/$name.log" -w -t 60 start >/dev/null
}

psql_admin() {
  local port=$1; shift
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"
}

pg_create_primary() {
  local name=$1 port=$2 dir=$CLUSTER_DIR/$1
  log "initdb $name (port $port)"
  as_pg "$PG_BIN/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
  cat >>"$dir/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$RUN_DIR'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = '256MB'
hot_standby = on
hot_standby_feedback = on
max_connections = 100
# Two-phase commit (kit.transaction({ shards }, ..., { atomic: true })): PREPARE TRANSACTION
# needs slots; a hot standby must have at least as many as its primary (it copies this file).
max_prepared_transactions = 32
shared_buffers = '32MB'
# Fast but crash-safe for a killed server: without fsync only an OS crash can lose data;
# synchronous_commit stays on, so a commit is in the WAL before it is acknowledged.
fsync = off
full_page_writes = off
CONF
  cat >"$dir/pg_hba.conf" <<HBA
local   all          all                      trust
host    all          $APP_USER  127.0.0.1/32  scram-sha-256
host    all          all        127.0.0.1/32  trust
host    replication  all        127.0.0.1/32  trust
HBA
  pg_start "$name"
  psql_admin "$port" <<SQL
CREATE ROLE $APP_USER LOGIN PASSWORD '$APP_PASSWORD';
CREATE DATABASE shardkit OWNER $APP_USER;
SQL
}

pg_create_replica() {
  local name=$1 port=$2 primary_port=$3 dir=$CLUSTER_DIR/$1
  log "pg_basebackup $name (port $port) from :$primary_port"
  as_pg "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres -D "$dir" -R -X stream -c fast
  # The copied postgresql.conf names the primary's port; the last setting wins.
  echo "port = $port" >>"$dir/postgresql.conf"
  pg_start "$name"
}

pg_pair_up() {
  local i=$1 primary primary_port entry name port pair
  primary=$(pg_name "${PG_INSTANCES[$i]}")
  primary_port=$(pg_port "${PG_INSTANCES[$i]}")
  entry=${PG_INSTANCES[$((i + 1))]}
  name=$(pg_name "$entry")
  port=$(pg_port "$entry")
  pair=${primary%-primary}
  if [ ! -f "$CLUSTER_DIR/$primary/PG_VERSION" ]; then
    rm -rf "${CLUSTER_DIR:?}/$primary" "${CLUSTER_DIR:?}/$name"
    pg_create_primary "$primary" "$primary_port"
  else
    pg_start "$primary"
  fi
  if [ ! -f "$CLUSTER_DIR/$name/PG_VERSION" ]; then
    rm -rf "${CLUSTER_DIR:?}/$name"
    pg_create_replica "$name" "$port" "$primary_port"
    case "$SYNCHRONOUS_PAIRS" in *" $pair "*) pg_make_synchronous "$name" "$primary_port" ;; esac
  else
    pg_start "$name"
  fi
}

# After the replica exists (before, every commit would wait for it): the primary waits for
# it, the replica (once promoted) for nobody, and the application user may promote.
pg_make_synchronous() {
  local replica=$1 primary_port=$2
  echo "synchronous_standby_names = ''" >>"$CLUSTER_DIR/$replica/postgresql.conf"
  as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/$replica" -w restart -l "$LOG_DIR/$replica.log" >/dev/null
  psql_admin "$primary_port" -d shardkit <<SQL
GRANT EXECUTE ON FUNCTION pg_promote(boolean, integer) TO $APP_USER;
ALTER SYSTEM SET synchronous_standby_names = '*';
SELECT pg_reload_conf();
SQL
}

pg_up() {
  local i
  for ((i = 0; i < ${#PG_INSTANCES[@]}; i += 2)); do pg_pair_up "$i"; done
}

pg_promote() {
  [ -n "$(pg_port_of "$1")" ] || die "unknown server $1"
  as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/$1" -w -t 30 promote >/dev/null
}

pg_rebuild() {
  local i
  for ((i = 0; i < ${#PG_INSTANCES[@]}; i += 2)); do
    [ "$(pg_name "${PG_INSTANCES[$i]}")" = "$1-primary" ] || continue
    for name in "$1-replica" "$1-primary"; do
      resume_server "$name"
      [ -d "$CLUSTER_DIR/$name" ] && pg_running "$name" && as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/$name" -m immediate -w stop >/dev/null
      rm -rf "${CLUSTER_DIR:?}/$name"
    done
    local tries=0
    while ! port_free "$(pg_port "${PG_INSTANCES[$i]}")" || ! port_free "$(pg_port "${PG_INSTANCES[$((i + 1))]}")"; do
      tries=$((tries + 1))
      [ "$tries" -lt 100 ] || die "the ports of $1 stay taken after its servers stopped"
      sleep 0.1
    done
    pg_pair_up "$i"
    return 0
  done
  die "unknown pair $1"
}

pg_down() {
  local entry name
  for entry in "${PG_INSTANCES[@]}"; do
    name=$(pg_name "$entry")
    [ -d "$CLUSTER_DIR/$name" ] || continue
    # A fault test may have left it SIGSTOPped: it could not stop.
    resume_server "$name"
    pg_running "$name" && as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/$name" -m fast -w stop >/dev/null || true
  done
}

# --- MariaDB ------------------------------------------------------------------------------

# name:port:server-id[:primary]   (a fourth field makes the instance a GTID replica of that primary)
MARIA_INSTANCES=("maria-a-primary:33611:1" "maria-a-replica:33612:2:maria-a-primary" "maria-b-primary:33621:3"
  "maria-c-primary:33631:4" "maria-c-replica:33632:5:maria-c-primary")
MARIA_DATABASES_OF_maria_a_primary="shardkit_1"
MARIA_DATABASES_OF_maria_b_primary="shardkit_2"
MARIA_DATABASES_OF_maria_c_primary="shardkit_c"
# Pairs whose primary waits for its replica to receive every commit (semi-synchronous), so that
# a promoted replica holds every acknowledged write.
MARIA_SEMI_SYNC=" maria-c "

maria_field() { echo "$1" | cut -d: -f"$2"; }
maria_entry() {
  local entry
  for entry in "${MARIA_INSTANCES[@]}"; do [ "$(maria_field "$entry" 1)" = "$1" ] && { echo "$entry"; return; }; done
}
maria_port_of() { maria_field "$(maria_entry "$1")" 2; }

ensure_mariadb() {
  command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] && return 0
  [ "$(id -u)" = 0 ] || die "mariadbd not found; install mariadb-server (apt-get install -y mariadb-server) or run as root"
  log "installing mariadb-server"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null
}

mariadbd_bin() { command -v mariadbd 2>/dev/null || echo /usr/sbin/mariadbd; }

maria_client() {
  local port=$1; shift
  mariadb --no-defaults --protocol=TCP -h 127.0.0.1 -P "$port" -u root "$@"
}

maria_answers() { mariadb-admin --no-defaults --protocol=TCP --connect-timeout=2 -h 127.0.0.1 -P "$1" -u root ping >/dev/null 2>&1; }

# Running means: this cluster's server (by its pid file) is alive and answers on its port.
maria_running() {
  local name=$1 port=$2 pid_file=$RUN_DIR/$1.pid
  [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null && maria_answers "$port"
}

maria_start() {
  local name=$1 entry port server_id primary dir=$CLUSTER_DIR/$1 user_args=() role_args=()
  entry=$(maria_entry "$name"); port=$(maria_field "$entry" 2); server_id=$(maria_field "$entry" 3); primary=$(maria_field "$entry" 4)
  # A replica is read-only from its first moment, restarts included.
  [ -n "$primary" ] && role_args=(--read-only=ON)
  case "$MARIA_SEMI_SYNC" in
    *" ${name%-*} "*) [ -n "$primary" ] && role_args+=(--rpl-semi-sync-slave-enabled=ON) || role_args+=(--rpl-semi-sync-master-enabled=ON --rpl-semi-sync-master-timeout=10000) ;;
  esac
  maria_running "$name" "$port" && return 0
  port_free "$port" || die "port $port is taken by another process (another checkout's cluster? run its scripts/cluster.sh down)"
  [ "$(id -u)" = 0 ] && user_args=(--user=mysql)
  # Crash-safe for a killed server, as PostgreSQL's settings are: flush-log-at-trx-commit=2 writes
  # every commit to the OS before acknowledging it, so only an OS crash could lose one.
  setsid "$(mariadbd_bin)" --no-defaults "${user_args[@]}" --datadir="$dir" --port="$port" \
    --bind-address=127.0.0.1 --socket="$RUN_DIR/$name.sock" --pid-file="$RUN_DIR/$name.pid" \
    --log-error="$LOG_DIR/$name.log" --server-id="$server_id" --log-bin=mysql-bin \
    --binlog-format=ROW --log-slave-updates=ON --skip-name-resolve --innodb-buffer-pool-size=64M \
    --innodb-flush-log-at-trx-commit=2 --sync-binlog=0 --innodb-log-file-size=48M \
    --log-bin-trust-function-creators=ON "${role_args[@]}" \
    </dev/null >/dev/null 2>&1 &
  local tries=0
  until maria_answers "$port"; do
    tries=$((tries + 1))
    [ "$tries" -le 120 ] || die "MariaDB $name did not start; see $LOG_DIR/$name.log"
    sleep 0.25
  done
  [ -n "$primary" ] && { maria_client "$port" -e "START SLAVE" 2>/dev/null || true; }
  return 0
}

maria_install_db() {
  local name=$1 dir=$CLUSTER_DIR/$1 user_args=()
  log "mariadb-install-db $name"
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown mysql:mysql "$dir"; user_args=(--user=mysql); fi
  mariadb-install-db --no-defaults "${user_args[@]}" --datadir="$dir" \
    --auth-root-authentication-method=normal --skip-test-db >/dev/null
}

# Users and databases of a primary: idempotent, and replicated to its replica through the binlog.
# SLAVE MONITOR lets the application user read SHOW REPLICA STATUS for lag monitoring.
maria_prepare_primary() {
  local name=$1 port=$2 databases_var database
  databases_var="MARIA_DATABASES_OF_${name//-/_}"
  {
    cat <<SQL
CREATE USER IF NOT EXISTS 'repl'@'127.0.0.1' IDENTIFIED BY '$REPL_PASSWORD';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';
CREATE USER IF NOT EXISTS '$APP_USER'@'127.0.0.1' IDENTIFIED BY '$APP_PASSWORD';
GRANT ALL PRIVILEGES ON \`shardkit\\_%\`.* TO '$APP_USER'@'127.0.0.1';
GRANT SLAVE MONITOR ON *.* TO '$APP_USER'@'127.0.0.1';
SQL
    for database in ${!databases_var}; do
      echo "CREATE DATABASE IF NOT EXISTS $database;"
      echo "ALTER DATABASE $database CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
    done
  } | maria_client "$port"
}

maria_up() {
  ensure_mariadb
  local entry name port primary
  for entry in "${MARIA_INSTANCES[@]}"; do
    name=$(maria_field "$entry" 1); port=$(maria_field "$entry" 2); primary=$(maria_field "$entry" 4)
    if [ -z "$primary" ]; then
      [ -d "$CLUSTER_DIR/$name/mysql" ] || { rm -rf "${CLUSTER_DIR:?}/$name"; maria_install_db "$name"; }
      maria_start "$name"
      maria_prepare_primary "$name" "$port"
    elif [ ! -d "$CLUSTER_DIR/$name/mysql" ]; then
      rm -rf "${CLUSTER_DIR:?}/$name"
      maria_install_db "$name"
      maria_start "$name"
      # An empty replica replays the primary's whole binlog: users and databases included.
      maria_client "$port" <<SQL
SET GLOBAL gtid_slave_pos = '';
CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$(maria_port_of "$primary"), MASTER_USER='repl',
  MASTER_PASSWORD='$REPL_PASSWORD', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;
START SLAVE;
SQL
    else
      maria_start "$name"
    fi
  done
}

maria_stop() {
  local name=$1 port pid_file=$RUN_DIR/$1.pid
  port=$(maria_port_of "$name")
  [ -f "$pid_file" ] && kill -CONT "$(cat "$pid_file")" 2>/dev/null
  maria_running "$name" "$port" || return 0
  mariadb-admin --no-defaults --protocol=TCP -h 127.0.0.1 -P "$port" -u root shutdown >/dev/null 2>&1 || {
    [ -f "$pid_file" ] && kill "$(cat "$pid_file")" 2>/dev/null || true
  }
  local tries=0
  while maria_running "$name" "$port" && [ "$tries" -lt 120 ]; do tries=$((tries + 1)); sleep 0.25; done
}

# What an operator does to promote a MariaDB replica: stop receiving, apply everything received,
# forget the primary, take writes.
maria_promote() {
  local port tries=0 received applied
  port=$(maria_port_of "$1")
  [ -n "$port" ] || die "unknown server $1"
  maria_client "$port" -e "STOP SLAVE IO_THREAD"
  while :; do
    received=$(maria_client "$port" -e "SHOW ALL SLAVES STATUS\G" | sed -n 's/^ *Gtid_IO_Pos: //p')
    applied=$(maria_client "$port" -N -e "SELECT @@gtid_slave_pos")
    [ "$received" = "$applied" ] && break
    tries=$((tries + 1))
    [ "$tries" -lt 200 ] || die "$1 did not apply what it received ($applied of $received)"
    sleep 0.05
  done
  maria_client "$port" -e "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0"
}

maria_rebuild() {
  local name
  for name in "$1-replica" "$1-primary"; do
    [ -n "$(maria_entry "$name")" ] || die "unknown pair $1"
    maria_stop "$name"
    local pid_file=$RUN_DIR/$name.pid
    if [ -f "$pid_file" ]; then kill -9 "$(cat "$pid_file")" 2>/dev/null || true; rm -f "$pid_file"; fi
    rm -rf "${CLUSTER_DIR:?}/$name"
  done
  maria_up
}

maria_down() {
  command -v mariadb-admin >/dev/null 2>&1 || return 0
  local i
  # Replicas first, so that none logs its primary going away.
  for ((i = ${#MARIA_INSTANCES[@]} - 1; i >= 0; i--)); do maria_stop "$(maria_field "${MARIA_INSTANCES[$i]}" 1)"; done
}

# --- single servers, for fault tests -------------------------------------------------------

# The processes of a server: PostgreSQL's postmaster and its children, MariaDB's one process.
server_pids() {
  local pid
  case "$1" in
    pg-*) pid=$(head -n1 "$CLUSTER_DIR/$1/postmaster.pid" 2>/dev/null) || return 0
          echo "$pid"; pgrep -P "$pid" || true ;;
    maria-*|redis) cat "$RUN_DIR/$1.pid" 2>/dev/null || true ;;
  esac
}

kill_server() {
  case "$1" in
    pg-*)
      [ -n "$(pg_port_of "$1")" ] || die "unknown server $1"
      resume_server "$1"
      pg_running "$1" && as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/$1" -m immediate -w stop >/dev/null
      ;;
    maria-*)
      [ -n "$(maria_entry "$1")" ] || die "unknown server $1"
      local pid_file=$RUN_DIR/$1.pid
      if [ -f "$pid_file" ]; then kill -9 "$(cat "$pid_file")" 2>/dev/null || true; rm -f "$pid_file"; fi
      ;;
    redis)
      local pid_file=$RUN_DIR/$REDIS_NAME.pid
      if [ -f "$pid_file" ]; then kill -9 "$(cat "$pid_file")" 2>/dev/null || true; rm -f "$pid_file"; fi
      ;;
    *) die "unknown server $1" ;;
  esac
}

# SIGSTOP every process of the server: it keeps its sockets and accepts TCP connections (the
# kernel does), but answers nothing, as a hung host or a full disk would.
pause_server() {
  local pids
  pids=$(server_pids "$1")
  [ -n "$pids" ] || die "server $1 is not running"
  # shellcheck disable=SC2086
  kill -STOP $pids
  # kill(2) returns before every thread has stopped; a thread running on the other core can
  # still answer a query. Wait until the kernel reports each thread of each process stopped (T).
  local pid task tries=0
  for pid in $pids; do
    for task in /proc/"$pid"/task/*; do
      while [ -r "$task/stat" ] && [ "$(sed 's/^.*) //' "$task/stat" | cut -c1)" != T ]; do
        tries=$((tries + 1))
        [ "$tries" -lt 200 ] || die "server $1 did not stop (thread ${task##*/} of $pid)"
        sleep 0.01
      done
    done
  done
}

resume_server() {
  local pids
  pids=$(server_pids "$1")
  # shellcheck disable=SC2086
  [ -z "$pids" ] || kill -CONT $pids 2>/dev/null || true
}

start_server() {
  case "$1" in
    pg-*) [ -n "$(pg_port_of "$1")" ] || die "unknown server $1"; pg_start "$1" ;;
    maria-*) [ -n "$(maria_entry "$1")" ] || die "unknown server $1"; maria_start "$1" ;;
    redis) redis_start ;;
    *) die "unknown server $1" ;;
  esac
}

# --- Redis (the read cache's shared level) -------------------------------------------------

REDIS_NAME=redis
REDIS_PORT=6391

ensure_redis() {
  command -v redis-server >/dev/null 2>&1 && return 0
  [ "$(id -u)" = 0 ] || die "redis-server not found; install redis-server (apt-get install -y redis-server) or run as root"
  log "installing redis-server"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
}

redis_answers() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }

redis_running() {
  local pid_file=$RUN_DIR/$REDIS_NAME.pid
  [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null && redis_answers
}

# In memory only (no RDB, no AOF): a killed Redis comes back empty, as a cache may.
redis_start() {
  redis_running && return 0
  port_free "$REDIS_PORT" || die "port $REDIS_PORT is taken by another process"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$RUN_DIR/$REDIS_NAME.pid" --logfile "$LOG_DIR/$REDIS_NAME.log" --dir "$RUN_DIR" >/dev/null
  local tries=0
  until redis_answers; do
    tries=$((tries + 1))
    [ "$tries" -le 80 ] || die "Redis did not start; see $LOG_DIR/$REDIS_NAME.log"
    sleep 0.25
  done
}

redis_up() {
  ensure_redis
  redis_start
}

redis_down() {
  local pid_file=$RUN_DIR/$REDIS_NAME.pid
  [ -f "$pid_file" ] || return 0
  kill -CONT "$(cat "$pid_file")" 2>/dev/null || true
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || kill "$(cat "$pid_file")" 2>/dev/null || true
  local tries=0
  while redis_answers && [ "$tries" -lt 40 ]; do tries=$((tries + 1)); sleep 0.25; done
  rm -f "$pid_file"
}

# --- commands -----------------------------------------------------------------------------

status() {
  local entry name port ok=0 state
  for entry in "${PG_INSTANCES[@]}"; do
    name=$(pg_name "$entry"); port=$(pg_port "$entry")
    if [ -d "$CLUSTER_DIR/$name" ] && pg_running "$name"; then state=running; else state=stopped; ok=1; fi
    printf '%-16s postgresql  127.0.0.1:%-6s %s\n' "$name" "$port" "$state"
  done
  for entry in "${MARIA_INSTANCES[@]}"; do
    name=$(maria_field "$entry" 1); port=$(maria_field "$entry" 2)
    if command -v mariadb-admin >/dev/null 2>&1 && maria_running "$name" "$port"; then state=running; else state=stopped; ok=1; fi
    printf '%-16s mariadb     127.0.0.1:%-6s %s\n' "$name" "$port" "$state"
  done
  if command -v redis-cli >/dev/null 2>&1 && redis_running; then state=running; else state=stopped; ok=1; fi
  printf '%-16s redis       127.0.0.1:%-6s %s\n' "$REDIS_NAME" "$REDIS_PORT" "$state"
  return "$ok"
}

prepare_dirs() {
  mkdir -p "$CLUSTER_DIR" "$RUN_DIR" "$LOG_DIR"
  if [ "$(id -u)" = 0 ]; then
    # The servers run as postgres and mysql: initdb writes into the cluster folder, and both
    # write sockets, pid files and logs.
    chown postgres "$CLUSTER_DIR"
    chmod 755 "$CLUSTER_DIR"
    chmod 1777 "$RUN_DIR" "$LOG_DIR"
  fi
}

PG_BIN=$(pg_bin)
case "${1:-}" in
  up)
    prepare_dirs
    pg_up
    maria_up
    redis_up
    status >/dev/null || die "some servers did not start: $(status | grep stopped | tr '\n' ' ')"
    log "up"
    ;;
  down) pg_down; maria_down; redis_down; log "down" ;;
  status) status ;;
  destroy) pg_down; maria_down; redis_down; rm -rf "$CLUSTER_DIR"; log "destroyed $CLUSTER_DIR" ;;
  kill) [ -n "${2:-}" ] || die "usage: $0 kill NAME"; kill_server "$2" ;;
  start) [ -n "${2:-}" ] || die "usage: $0 start NAME"; start_server "$2" ;;
  pause) [ -n "${2:-}" ] || die "usage: $0 pause NAME"; pause_server "$2" ;;
  resume) [ -n "${2:-}" ] || die "usage: $0 resume NAME"; resume_server "$2" ;;
  promote) [ -n "${2:-}" ] || die "usage: $0 promote NAME"; case "$2" in maria-*) maria_promote "$2" ;; *) pg_promote "$2" ;; esac ;;
  rebuild) [ -n "${2:-}" ] || die "usage: $0 rebuild PAIR"; prepare_dirs; case "$2" in maria-*) maria_rebuild "$2" ;; *) pg_rebuild "$2" ;; esac ;;
  *) echo "usage: $0 up | down | status | destroy | kill NAME | start NAME | pause NAME | resume NAME | promote NAME | rebuild PAIR" >&2; exit 2 ;;
esac
