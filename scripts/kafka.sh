#!/usr/bin/env bash
# A single-node Apache Kafka 4.x broker (KRaft, combined broker + controller) for development
# and tests, on loopback, run on the machine's Java 17 from Apache Kafka's jars on Maven Central.
#
# Usage: scripts/kafka.sh start|stop|status|env [DIR]
#
#   start  fetch the jars (first time only), format DIR/data (first time only), start the broker
#          in the background and wait until it answers a metadata request. No-op if running.
#   stop   stop the broker (SIGTERM, then SIGKILL after a bound). Safe to call repeatedly.
#   status print running/stopped; exit 0 if the broker is running, 3 otherwise.
#   env    print shell exports for clients (eval "$(scripts/kafka.sh env)").
#
# DIR defaults to $ROLEWATCH_KAFKA_DIR, else /var/tmp/rolewatch-kafka-PORT. Layout under DIR:
#   DIR/data               the KRaft metadata and topic logs (formatted once)
#   DIR/server.properties  the broker's configuration
#   DIR/server.log         the broker's log (log4j2); DIR/stdout.log its stdout and stderr
#   DIR/kafka.pid          the broker's process id while it runs
#   DIR/cluster-id         the cluster id the storage was formatted with
#
# Settings (environment):
#   ROLEWATCH_KAFKA_PORT             client listener port (default 9092), on 127.0.0.1
#   ROLEWATCH_KAFKA_CONTROLLER_PORT  KRaft controller port (default client port + 1)
#   ROLEWATCH_KAFKA_VERSION          Apache Kafka version (default 4.1.1)
#   ROLEWATCH_KAFKA_CACHE            where the jars go (default ~/.cache/rolewatch/kafka-VERSION)
#   ROLEWATCH_KAFKA_HEAP             JVM heap options (default "-Xms256m -Xmx512m")
#
# Topics are created on first use with 3 partitions (num.partitions=3); every internal topic has
# replication factor 1. Group rebalances start without the initial delay, which suits tests.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
KAFKA_VERSION=${ROLEWATCH_KAFKA_VERSION:-4.1.1}
PORT=${ROLEWATCH_KAFKA_PORT:-9092}
CONTROLLER_PORT=${ROLEWATCH_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}
CACHE=${ROLEWATCH_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rolewatch/kafka-$KAFKA_VERSION}
HEAP=${ROLEWATCH_KAFKA_HEAP:--Xms256m -Xmx512m}
# Seconds to wait for the broker to answer after starting it, and to exit after SIGTERM.
START_TIMEOUT=${ROLEWATCH_KAFKA_START_TIMEOUT:-90}
STOP_TIMEOUT=30

die() { echo "kafka: $*" >&2; exit 1; }
usage() { echo "usage: $0 start|stop|status|env [DIR]" >&2; exit 2; }

[[ $# -eq 1 || $# -eq 2 ]] || usage
cmd=$1
DIR=${2:-${ROLEWATCH_KAFKA_DIR:-/var/tmp/rolewatch-kafka-$PORT}}
PID_FILE=$DIR/kafka.pid

broker_pid() {
  [[ -f $PID_FILE ]] || return 1
  local pid
  pid=$(cat "$PID_FILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  # The pid must still be our broker, not a recycled pid of another process.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $DIR/server.properties" || return 1
  echo "$pid"
}

is_running() { broker_pid >/dev/null; }

port_is_open() {
  # bash's /dev/tcp: succeeds once something accepts connections on the port.
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The broker answers a metadata request and lists itself (node 1).
broker_answers() {
  if command -v kcat >/dev/null 2>&1; then
    kcat -b "127.0.0.1:$PORT" -L -m 3 2>/dev/null | grep -q 'broker 1 at'
  else
    port_is_open "$PORT"
  fi
}

fetch_jars() {
  if [[ -f $CACHE/.complete ]]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found (run scripts/install-deps.sh)"
  echo "kafka: fetching Apache Kafka $KAFKA_VERSION jars into $CACHE" >&2
  local staging=$CACHE.tmp.$$
  rm -rf "$staging"
  mkdir -p "$(dirname "$CACHE")"
  if ! mvn -q -B -f "$ROOT/scripts/kafka/pom.xml" dependency:copy-dependencies \
      -Dkafka.version="$KAFKA_VERSION" -DincludeScope=runtime \
      -DoutputDirectory="$staging" >"$staging.log" 2>&1; then
    cat "$staging.log" >&2
    rm -rf "$staging" "$staging.log"
    die "could not fetch the Kafka jars with Maven"
  fi
  rm -f "$staging.log"
  touch "$staging/.complete"
  # Another process may have finished first: keep theirs.
  if ! mv -T "$staging" "$CACHE" 2>/dev/null; then
    rm -rf "$staging"
    [[ -f $CACHE/.complete ]] || die "could not move the jars into $CACHE"
  fi
}

write_config() {
  cat >"$DIR/server.properties" <<CONF
# Written by scripts/kafka.sh: a single-node development broker on loopback.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DIR/data
num.partitions=3
auto.create.topics.enable=true
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
CONF
}

classpath() { echo "$CACHE/*"; }

java_opts() {
  # shellcheck disable=SC2086 # HEAP holds several JVM options
  printf '%s\n' $HEAP -Djava.awt.headless=true -Dkafka.logs.dir="$DIR" \
    -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.properties"
}

format_storage() {
  if [[ -f $DIR/data/meta.properties ]]; then
    return 0
  fi
  local cluster_id opts
  cluster_id=$(java -cp "$(classpath)" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
  [[ -n $cluster_id ]] || die "kafka-storage random-uuid gave no cluster id"
  echo "$cluster_id" >"$DIR/cluster-id"
  mapfile -t opts < <(java_opts)
  java "${opts[@]}" -cp "$(classpath)" kafka.tools.StorageTool format \
    -t "$cluster_id" -c "$DIR/server.properties" >"$DIR/format.log" 2>&1 \
    || { cat "$DIR/format.log" >&2; die "kafka-storage format failed"; }
}

start() {
  command -v java >/dev/null 2>&1 || die "java not found (run scripts/install-deps.sh)"
  mkdir -p "$DIR"
  # One start at a time per DIR (tests of several worktrees may race to start the broker).
  exec 9>"$DIR/lock"
  flock -w $((START_TIMEOUT + 120)) 9 || die "timed out waiting for the lock on $DIR"
  local pid
  if pid=$(broker_pid); then
    wait_until_ready "$pid"
    return 0
  fi
  if port_is_open "$PORT"; then
    die "port $PORT is in use by something that is not the broker of $DIR (set ROLEWATCH_KAFKA_PORT)"
  fi
  fetch_jars
  write_config
  format_storage

  local opts started
  mapfile -t opts < <(java_opts)
  started=$SECONDS
  # setsid: the broker outlives the shell (and test process) that started it. In a script
  # (no job control) the background job is no process-group leader, so setsid execs in place
  # and $! is the broker's pid.
  setsid java "${opts[@]}" -cp "$(classpath)" kafka.Kafka "$DIR/server.properties" \
    </dev/null >"$DIR/stdout.log" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$PID_FILE"
  wait_until_ready "$pid"
  echo "kafka: broker $KAFKA_VERSION on 127.0.0.1:$PORT ready after $((SECONDS - started)) s (dir $DIR)" >&2
}

# Wait until the broker (process $1) answers; fail at once if it exits.
wait_until_ready() {
  local pid=$1 deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      tail -n 40 "$DIR/stdout.log" "$DIR/server.log" >&2 2>/dev/null || true
      die "the broker exited during start-up (logs in $DIR)"
    fi
    if broker_answers; then
      return 0
    fi
    sleep 0.5
  done
  die "the broker did not answer on 127.0.0.1:$PORT within $START_TIMEOUT s (logs in $DIR)"
}

stop() {
  local pid
  pid=$(broker_pid) || { rm -f "$PID_FILE"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while ((SECONDS < deadline)) && kill -0 "$pid" 2>/dev/null; do
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "kafka: broker $pid did not stop within $STOP_TIMEOUT s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
}

print_env() {
  printf 'export ROLEWATCH_KAFKA_BROKERS=%q\n' "127.0.0.1:$PORT"
  printf 'export ROLEWATCH_KAFKA_DIR=%q\n' "$DIR"
  printf 'export ROLEWATCH_KAFKA_CLASSPATH=%q\n' "$(classpath)"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  status) if is_running; then echo running; else echo stopped; exit 3; fi ;;
  env) print_env ;;
  *) usage ;;
esac
