#!/usr/bin/env bash
# Kafka to lake throughput, side by side with kcat draining the same topic (BENCHMARKS.md).
#
# Produces N real pgAudit jsonlog records (the bundled sample's audit lines, repeated with
# distinct session ids) to a fresh topic on the local broker (scripts/kafka.sh), then on one
# core (taskset -c 0, with the broker and this script moved to the other cores meanwhile):
#   1. kcat -C drains the topic to /dev/null: the cost of just reading it;
#   2. rolewatch run consumes it into a fresh lake, until /metrics shows N records read and
#      every chunk stored; the time includes joining the consumer group. It also prints the
#      steady rate: events stored between the moments 10% and 90% of them were stored.
#
# Usage: scripts/bench-kafka.sh [N] [ROLEWATCH_BINARY]   (default 1000000, target/release/rolewatch)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
N=${1:-1000000}
BIN=${2:-${CARGO_TARGET_DIR:-$ROOT/target}/release/rolewatch}
BROKER=127.0.0.1:${ROLEWATCH_KAFKA_PORT:-9092}
[[ -x $BIN ]] || { echo "no rolewatch binary at $BIN (cargo build --release -p rolewatch)" >&2; exit 2; }

"$ROOT/scripts/kafka.sh" start >/dev/null
# Core 0 is the measured one: the broker (a remote machine in production) and this script's
# sampling run on the other cores while kcat and rolewatch are measured, and get all back after.
eval "$("$ROOT/scripts/kafka.sh" env)"
BROKER_PID=$(cat "$ROLEWATCH_KAFKA_DIR/kafka.pid")
CORES=$(nproc)
if ((CORES > 1)); then
  taskset -a -p -c "1-$((CORES - 1))" "$BROKER_PID" >/dev/null
  taskset -p -c "1-$((CORES - 1))" $$ >/dev/null
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rolewatch-bench.XXXXXX")
cleanup() {
  [[ -n ${DAEMON:-} ]] && kill "$DAEMON" 2>/dev/null
  rm -rf "$WORK"
  ((CORES > 1)) && taskset -a -p -c "0-$((CORES - 1))" "$BROKER_PID" >/dev/null 2>&1
  true
}
trap cleanup EXIT
TOPIC=bench.$(date +%s%N)

# N records: the sample's AUDIT lines, each copy with its own session id.
grep '"AUDIT: SESSION' "$ROOT/examples/logs/postgresql.json" >"$WORK/audit.lines"
python3 - "$WORK/audit.lines" "$N" >"$WORK/records" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
n = int(sys.argv[2])
out = sys.stdout
for i in range(n):
    line = lines[i % len(lines)]
    out.write(line.replace('"session_id":"', '"session_id":"b%d.' % (i // len(lines)), 1) + "\n")
PY
bytes=$(wc -c <"$WORK/records")
echo "producing $N records ($bytes bytes) to $TOPIC" >&2
kcat -b "$BROKER" -P -t "$TOPIC" -k pg-main -X linger.ms=50 -X batch.num.messages=10000 <"$WORK/records"

now() { date +%s.%N; }
start=$(now)
taskset -c 0 kcat -b "$BROKER" -C -t "$TOPIC" -o beginning -e -q >/dev/null
kcat_seconds=$(echo "$(now) - $start" | bc)

cat >"$WORK/rolewatch.toml" <<TOML
[lake]
path = "$WORK/lake"
[state]
path = "$WORK/state"
[source.kafka]
brokers = ["$BROKER"]
topics = ["$TOPIC"]
group_id = "bench-$TOPIC"
format = "pgaudit-jsonlog"
flush_interval = "1s"
[metrics]
listen = "127.0.0.1:0"
TOML
start=$(now)
taskset -c 0 "$BIN" run --config "$WORK/rolewatch.toml" >/dev/null 2>"$WORK/run.err" &
DAEMON=$!
address=""
until [[ -n $address ]]; do
  address=$(grep -o 'http://[0-9.:]*' "$WORK/run.err" | head -1 || true)
  sleep 0.05
done
metric() { curl -s "$address/metrics" | awk -v name="$1" '$1 == name { print $2 }'; }
# Samples of (time, events stored) every 0.1 s, for the steady rate below.
: >"$WORK/samples"
until [[ $(metric 'rolewatch_source_records_total{source="kafka"}') == "$N" ]]; do
  echo "$(now) $(metric rolewatch_lake_events_stored_total)" >>"$WORK/samples"
  sleep 0.1
done
# Everything read is stored once the buffers are cut (within flush_interval).
stored_before=""
until [[ -n $stored_before && $(metric rolewatch_lake_events_stored_total) == "$stored_before" ]]; do
  stored_before=$(metric rolewatch_lake_events_stored_total)
  echo "$(now) $stored_before" >>"$WORK/samples"
  sleep 1.2
done
rolewatch_seconds=$(echo "$(now) - $start - 1.2" | bc)
events=$(metric rolewatch_lake_events_stored_total)
# The steady rate: events stored between the samples where the count first passed 10% and 90%
# of the total (leaves out starting, joining the group, and the last flush_interval wait).
steady=$(awk -v total="$events" '
  $2 != "" && !low && $2 >= total * 0.1 { t1 = $1; e1 = $2; low = 1 }
  $2 != "" && !high && $2 >= total * 0.9 { t2 = $1; e2 = $2; high = 1 }
  END { if (high && t2 > t1) printf "%.0f", (e2 - e1) / (t2 - t1); else print "n/a" }' "$WORK/samples")
# The daemon's CPU time (every thread: librdkafka's, the encoder's) until everything was stored.
cpu_seconds=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$DAEMON/stat")
# User and system time apart, and the minor page faults (fresh memory the kernel zeroed).
cpu_detail=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f s user, %.2f s system, %d minor page faults", $14 / hz, $15 / hz, $10 }' "/proc/$DAEMON/stat")
cpu_detail="$cpu_detail, peak RSS $(awk '/VmHWM/ { print $2, $3 }' "/proc/$DAEMON/status")"
kill -TERM "$DAEMON"; wait "$DAEMON" || true; DAEMON=""
lake_bytes=$(du -sb "$WORK/lake/events" | cut -f1)

printf 'records %s, bytes %s\n' "$N" "$bytes"
printf 'kcat -C to /dev/null (1 core):   %6.2f s  %10.0f records/s\n' "$kcat_seconds" "$(echo "$N / $kcat_seconds" | bc -l)"
printf 'rolewatch run to lake (1 core):  %6.2f s  %10.0f events/s (%s events, %s lake bytes)\n' \
  "$rolewatch_seconds" "$(echo "$events / $rolewatch_seconds" | bc -l)" "$events" "$lake_bytes"
printf 'ratio rolewatch/kcat: %.2f\n' "$(echo "$rolewatch_seconds / $kcat_seconds" | bc -l)"
printf 'rolewatch steady rate (10%%..90%% of the events stored): %s events/s\n' "$steady"
printf 'rolewatch CPU time: %s s, %.0f events per CPU-second (start-up and joining the group included)\n' \
  "$cpu_seconds" "$(echo "$events / $cpu_seconds" | bc -l)"
printf 'rolewatch CPU time in detail: %s\n' "$cpu_detail"
