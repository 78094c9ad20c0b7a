#!/usr/bin/env bash
# bench/run.sh — Huskimo's benchmark harness. Every figure is a ratio against a baseline measured in the
# same run, on the same machine, with release builds. Results go to stdout and bench/results/<name>.txt.
#
#   bench/run.sh extract   CPU-seconds per million records and peak RSS of a worker extracting one large day
#                          (fetch, parse, convert, gzip, stage) against the sandbox; baseline: a hand-written
#                          Python extractor of the same day (bench/python_extract.py), same run.
#   bench/run.sh extract-quick [N]   the worker half of extract, N times: the median, for A/B iterations
#                          (HUSKIMO_BENCH_PROFILE=FILE with `extract` records a perf profile of the worker).
#   bench/run.sh extract-ab REF [N]   the worker half of extract for this tree and for git revision REF (built in
#                          .build-ab/; or HUSKIMO_BENCH_BASELINE_BIN=DIR with its release binaries), alternating, N
#                          runs each: both medians and their ratio, measured in the same run (refactors, A/B changes).
#   bench/run.sh load-ab REF [N]   the loader of this tree against the loader of REF on the same staged rows, alternating,
#                          N runs each: wall and CPU medians and their ratio (refactors of the load path).
#   bench/run.sh mix       the realistic mix (5 accounts × 3 days, Twilio-sized records, all resources): CPU-s per million
#                          records of the whole worker process, peak RSS at concurrency 4 and 16, the Python baseline on
#                          the same data; then the load of those rows against psql \copy of them.
#   bench/run.sh small     3,000 small jobs (1,000 channels), two workers: CPU per job, jobs/s against the latency bound,
#                          the planner's publish rate.
#   bench/run.sh limit     5 accounts × 30 days against 2 concurrent requests per account (429/20429): wall against the ideal.
#   bench/run.sh memory    peak RSS on a 1,000,000-record day at --concurrency 16.
#   bench/run.sh idle      CPU of an idle worker and an idle loader (HUSKIMO_BENCH_IDLE_SECONDS, default 60).
#   bench/run.sh fleet     a latency-bound run (sandbox latency, per-account concurrency limit, many jobs):
#                          wall time against the ideal the API allows, and one worker process against two.
#   bench/run.sh load      PostgreSQL load throughput (rows/s) of the loader against psql \copy of the
#                          same rows into the same server.
#   bench/run.sh plan      planning 1,000 channels × 5 resources × 365 days (--dry-run).
#   bench/run.sh singular  Singular's two APIs on the same records (HUSKIMO_BENCH_SINGULAR_RECORDS per day and resource):
#                          worker CPU-s per million records reading the v2.0 reports (CSV, mapped by header) against
#                          the legacy JSON endpoints, alternating, and the v2 wall (polls and slots included).
#   bench/run.sh history   one day of calls through Bulk Export (gzipped JSON lines) against the same records from the
#                          list's JSON pages, alternating: worker CPU-s per million records and the ratio.
#   bench/run.sh all
set -euo pipefail
REPO=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd -P)
cd "$REPO"
mkdir -p bench/results
eval "$(bash deploy/local/stack.sh up)"
swift build -c release >/dev/null 2>&1 || swift build -c release
# HUSKIMO_BENCH_BIN=DIR: another build's release binaries (an A/B of a case that has no REF form, e.g. cluster).
BIN=${HUSKIMO_BENCH_BIN:-$(swift build -c release --show-bin-path)}
WORK=$(mktemp -d /tmp/huskimo-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

PORT=${HUSKIMO_BENCH_SANDBOX_PORT:-35810}
SANDBOX_URL=http://127.0.0.1:$PORT
start_sandbox() {   # start_sandbox [args…]
  "$BIN/huskimo-sandbox" --port "$PORT" "$@" >"$WORK/sandbox.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "$SANDBOX_URL/sandbox/stats" >/dev/null && return; sleep 0.1; done
  echo "sandbox did not start" >&2; exit 1
}
stop_sandbox() { kill "${pids[-1]}" 2>/dev/null || true; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'; }
faults() { curl -sf -X POST -H 'content-type: application/json' -d "$1" "$SANDBOX_URL/sandbox/faults" >/dev/null; }

config() {   # config PREFIX SCHEMA  (channels from the CHANNELS variable: "name sid token" lines)
  local prefix=$1 schema=$2
  cat <<YAML
queue: {url: ${QUEUE_URLS:-"\"$AMQP_URL\""}, prefix: $prefix, type: ${QUEUE_TYPE:-classic}, retry_delays: [1, 2]}
channels:
$(while read -r name sid token; do [[ -n $name ]] && echo "  - {name: $name, type: twilio, api_user: $sid, api_key: $token, api_url: \"$SANDBOX_URL\", pricing_url: \"$SANDBOX_URL\"}"; done <<<"$CHANNELS")
s3: {access_key_id: "$S3_ACCESS_KEY_ID", secret_access_key: "$S3_SECRET_ACCESS_KEY", region: us-east-1, bucket: huskimo-bench, folder_path: "$prefix", endpoint: "$S3_ENDPOINT", path_style: true}
targets:
  - {name: local, type: postgres, host: "$POSTGRES_HOSTNAME", port: $POSTGRES_PORT, database: "$POSTGRES_DB", username: "$POSTGRES_USER", password: "$POSTGRES_PASSWORD", schema: $schema, sslmode: disable}
YAML
}
curl -sf -X PUT --aws-sigv4 aws:amz:us-east-1:s3 -u "$S3_ACCESS_KEY_ID:$S3_SECRET_ACCESS_KEY" \
  -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$S3_ENDPOINT/huskimo-bench" >/dev/null || true
psql_() { PGPASSWORD=$POSTGRES_PASSWORD psql -h "$POSTGRES_HOSTNAME" -p "$POSTGRES_PORT" -U "$POSTGRES_USER" -d "$POSTGRES_DB" -Atq "$@"; }
now() { date +%s.%N; }
# The benchmark's days, relative to today: day 0 is 17 days ago (HUSKIMO_BENCH_DAY=YYYY-MM-DD to pin it, e.g. to rerun
# an older result). A literal date would leave Twilio's 400-day list window a year later, and the worker would then
# read it through Bulk Export: a different path from the one measured. The sandbox's record counts vary by day
# (±20 %); the figures are per million records.
BENCH_DAY0=${HUSKIMO_BENCH_DAY:-$(date -u -d '17 days ago' +%F)}
bday() { date -u -d "$BENCH_DAY0 $1 days" +%F; }   # bday OFFSET
calc() { python3 -c "print($1)"; }

bench_extract() {
  # The Bulk account serves exactly this many calls on every day (huskimo-sandbox --bulk-day-records).
  local records=${HUSKIMO_BENCH_RECORDS:-200000} day=$(bday 0) sid=AC00000000000000000000000000000004
  start_sandbox --bulk-day-records "$records"
  local expected; expected=$(curl -sf "$SANDBOX_URL/sandbox/expected?account=$sid&resource=calls&day=$day" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
  # Baseline, same run, same pages: a hand-written Python extractor (bench/python_extract.py). It also warms
  # the sandbox's cache of the day.
  local py; py=$(python3 bench/python_extract.py "$SANDBOX_URL" "$sid" sandbox-token-4 "$day")
  local py_cpu; py_cpu=$(sed -n 's/.*cpu_s=\([0-9.]*\).*/\1/p' <<<"$py")
  # The worker extracts the day REPEAT times (default 3; CPU time on a shared 2-core machine varies by ±15 %):
  # the figure is the median run. HUSKIMO_BENCH_PROFILE=FILE records a perf profile of the first run.
  local repeat=${HUSKIMO_BENCH_REPEAT:-3} runs=() rss=0 got=0 i
  for ((i = 0; i < repeat; i++)); do
    CHANNELS="bulk $sid sandbox-token-4" config "bx$i$RANDOM" "bench_x" >"$WORK/x.yaml"
    "$BIN/huskimo-planner" plan --config "$WORK/x.yaml" --from "$day" --to "$day" --resource calls >/dev/null
    local profile=()
    [[ -n ${HUSKIMO_BENCH_PROFILE:-} && $i == 0 ]] && profile=(perf record -F 1999 -g -o "$HUSKIMO_BENCH_PROFILE" --)
    local out; out=$("${profile[@]}" "$BIN/huskimo-worker" extract --config "$WORK/x.yaml" --concurrency 1 --exit-when-idle 2 2>"$WORK/x-worker.log")
    echo "$out" >&2
    runs+=("$(sed -n 's/.*cpu_s=\([0-9.]*\).*/\1/p' <<<"$out")")
    rss=$(calc "max($rss, $(sed -n 's/.*max_rss_mib=\([0-9.]*\).*/\1/p' <<<"$out"))")
    got=$(sed -n 's/.*records=\([0-9]*\).*/\1/p' <<<"$out")
  done
  local sorted; sorted=$(printf '%s\n' "${runs[@]}" | sort -n)
  local cpu; cpu=$(sed -n "$(( (repeat + 1) / 2 ))p" <<<"$sorted")
  local spread; spread="runs: $(tr '\n' ' ' <<<"$sorted")CPU-s"
  stop_sandbox
  # The same at a quarter of the size: peak memory must not follow the size of the day.
  start_sandbox --bulk-day-records $((records / 4))
  python3 bench/python_extract.py "$SANDBOX_URL" "$sid" sandbox-token-4 "$day" >/dev/null
  CHANNELS="bulk $sid sandbox-token-4" config "bq$RANDOM" "bench_x" >"$WORK/q.yaml"
  "$BIN/huskimo-planner" plan --config "$WORK/q.yaml" --from "$day" --to "$day" --resource calls >/dev/null
  local small; small=$("$BIN/huskimo-worker" extract --config "$WORK/q.yaml" --concurrency 1 --exit-when-idle 2 2>/dev/null)
  stop_sandbox
  local small_rss small_got
  small_rss=$(sed -n 's/.*max_rss_mib=\([0-9.]*\).*/\1/p' <<<"$small"); small_got=$(sed -n 's/.*records=\([0-9]*\).*/\1/p' <<<"$small")
  {
    echo "extract: one day of calls, $got records (sandbox expects $expected), pages of 1000"
    echo "  huskimo-worker: ${cpu} CPU-s (median; $spread) → $(calc "round($cpu / $got * 1e6, 2)") CPU-s per million records (goal ≤ 5); peak RSS ${rss} MiB (bound 64 MiB)"
    echo "  baseline, hand-written Python extractor of the same day: ${py_cpu} CPU-s → $(calc "round($py_cpu / $got * 1e6, 2)") CPU-s per million"
    echo "  peak RSS at a quarter of the size ($small_got records): ${small_rss} MiB → bounded, not proportional to the day"
    echo "  ratio: the worker uses $(calc "round($cpu / $py_cpu, 3)") of the Python baseline's CPU ($(calc "round($py_cpu / $cpu, 1)")× less)"
  } | tee bench/results/extract.txt
}

# The worker half of `extract` only, REPEAT times against one sandbox: CPU-s per million records of each run and
# the median, for iterating on the extractor (no baseline: compare medians before and after a change).
bench_extract_quick() {
  local repeat=${1:-3} records=${HUSKIMO_BENCH_RECORDS:-200000} day=$(bday 0) sid=AC00000000000000000000000000000004
  start_sandbox --bulk-day-records "$records"
  python3 bench/python_extract.py "$SANDBOX_URL" "$sid" sandbox-token-4 "$day" >/dev/null   # warms the sandbox's cache
  local figures=() i
  for ((i = 0; i < repeat; i++)); do
    CHANNELS="bulk $sid sandbox-token-4" config "bxq$i$RANDOM" "bench_x" >"$WORK/xq.yaml"
    "$BIN/huskimo-planner" plan --config "$WORK/xq.yaml" --from "$day" --to "$day" --resource calls >/dev/null
    local out; out=$("$BIN/huskimo-worker" extract --config "$WORK/xq.yaml" --concurrency 1 --exit-when-idle 2 2>"$WORK/xq.log")
    local cpu got staged; cpu=$(sed -n 's/.*cpu_s=\([0-9.]*\).*/\1/p' <<<"$out"); got=$(sed -n 's/.*records=\([0-9]*\).*/\1/p' <<<"$out")
    staged=$(grep -o 'bytes.staged=[0-9]*' "$WORK/xq.log" | head -1 | cut -d= -f2)
    figures+=("$(calc "round($cpu / $got * 1e6, 2)")")
    echo "  run $((i + 1)): $cpu CPU-s for $got records → ${figures[-1]} CPU-s per million; staged ${staged:-?} bytes gzip"
  done
  stop_sandbox
  echo "extract-quick: median $(printf '%s\n' "${figures[@]}" | sort -n | sed -n "$(( (repeat + 1) / 2 ))p") CPU-s per million records over $repeat runs"
}

# Worker-only extract runs of two builds, alternating on one sandbox: the ratio of their medians.
# The release binaries of git revision REF (built in .build-ab/), or HUSKIMO_BENCH_BASELINE_BIN when set.
baseline_bin() {   # baseline_bin REF MODE
  local ref=$1 base_bin=${HUSKIMO_BENCH_BASELINE_BIN:-}
  if [[ -z $base_bin ]]; then
    [[ -n $ref ]] || { echo "usage: bench/run.sh $2 REF [N] (or HUSKIMO_BENCH_BASELINE_BIN=DIR)" >&2; exit 2; }
    local src=$REPO/.build-ab/src
    rm -rf "$src"; git worktree prune
    git worktree add -f --detach "$src" "$ref" >/dev/null
    swift build -c release --package-path "$src" --scratch-path "$REPO/.build-ab/build" >/dev/null 2>&1 \
      || swift build -c release --package-path "$src" --scratch-path "$REPO/.build-ab/build" >&2
    base_bin=$(swift build -c release --package-path "$src" --scratch-path "$REPO/.build-ab/build" --show-bin-path)
  fi
  echo "$base_bin"
}

bench_extract_ab() {
  local ref=${1:-} repeat=${2:-5} records=${HUSKIMO_BENCH_RECORDS:-200000} day=$(bday 0) sid=AC00000000000000000000000000000004
  local base_bin; base_bin=$(baseline_bin "$ref" extract-ab)
  start_sandbox --bulk-day-records "$records"
  python3 bench/python_extract.py "$SANDBOX_URL" "$sid" sandbox-token-4 "$day" >/dev/null   # warms the sandbox's cache
  local base=() current=() i which bin
  for ((i = 0; i < repeat; i++)); do
    for which in baseline current; do
      bin=$BIN; [[ $which == baseline ]] && bin=$base_bin
      CHANNELS="bulk $sid sandbox-token-4" config "bab$i$RANDOM" "bench_x" >"$WORK/ab.yaml"
      "$bin/huskimo-planner" plan --config "$WORK/ab.yaml" --from "$day" --to "$day" --resource calls >/dev/null
      local out; out=$("$bin/huskimo-worker" extract --config "$WORK/ab.yaml" --concurrency 1 --exit-when-idle 2 2>"$WORK/ab.log")
      local cpu got; cpu=$(sed -n 's/.*cpu_s=\([0-9.]*\).*/\1/p' <<<"$out"); got=$(sed -n 's/.*records=\([0-9]*\).*/\1/p' <<<"$out")
      local figure; figure=$(calc "round($cpu / $got * 1e6, 2)")
      if [[ $which == baseline ]]; then base+=("$figure"); else current+=("$figure"); fi
      echo "  run $((i + 1)) $which: $cpu CPU-s for $got records → $figure CPU-s per million"
    done
  done
  stop_sandbox
  local mid=$(( (repeat + 1) / 2 )) mb mc
  mb=$(printf '%s\n' "${base[@]}" | sort -n | sed -n "${mid}p"); mc=$(printf '%s\n' "${current[@]}" | sort -n | sed -n "${mid}p")
  {
    echo "extract-ab ($(date -u +%F), $(nproc) cores): baseline ${ref:-$base_bin} median $mb (runs $(printf '%s ' "${base[@]}")), current median $mc (runs $(printf '%s ' "${current[@]}")) CPU-s per million records"
    echo "  ratio current / baseline: $(calc "round($mc / $mb, 3)")"
  } | tee bench/results/extract-ab.txt
}


median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }   # field NAME <<<"… NAME=value …"
MIX_DAYS=("$(bday -2)" "$(bday -1)" "$(bday 0)")
MIX_CHANNELS=$(for n in 1 2 3 4 5; do printf 'mix%s AC000000000000000000000000000000%02x mix-token-%s\n' "$n" $((0x20 + n)) "$n"; done)

# The realistic mix: 5 accounts × 3 days × (4,000 calls + 6,000 messages + 1,000 recordings) + 20 numbers each, records of
# Twilio's real size (huskimo-sandbox --mix). Figures: CPU-s per million records of the whole worker process (start to
# exit: startup, connections, S3 multipart, load messages) at --concurrency 4, median of REPEAT runs, against the
# hand-written Python extractor on the same data in the same run; peak RSS at concurrency 4 and 16; then the load of
# one run's staged objects against psql \copy of the same rows.
bench_mix() {
  local repeat=${HUSKIMO_BENCH_REPEAT:-3}
  start_sandbox --mix
  local jobs=$WORK/mix.jobs name sid token day r
  : >"$jobs"
  while read -r name sid token; do
    for day in "${MIX_DAYS[@]}"; do for r in calls messages recordings; do echo "$sid $token $r $day" >>"$jobs"; done; done
    echo "$sid $token incoming_phone_numbers" >>"$jobs"
  done <<<"$MIX_CHANNELS"
  # Baseline first (it also fills the sandbox's cache of the 45 days, so every run below reads warm pages).
  local py; py=$(python3 bench/python_extract.py "$SANDBOX_URL" --jobs "$jobs")
  local py_cpu py_records; py_cpu=$(field cpu_s <<<"$py"); py_records=$(field records <<<"$py")
  local runs=() rss4=0 got=0 njobs=0 i out
  for ((i = 0; i < repeat; i++)); do
    CHANNELS=$MIX_CHANNELS config "bm$i$RANDOM" "bench_m" >"$WORK/m.yaml"
    "$BIN/huskimo-planner" plan --config "$WORK/m.yaml" --from "${MIX_DAYS[0]}" --to "${MIX_DAYS[-1]}" --resource calls \
      --resource messages --resource recordings --resource incoming_phone_numbers >/dev/null
    out=$("$BIN/huskimo-worker" extract --config "$WORK/m.yaml" --concurrency 4 --exit-when-idle 2 2>"$WORK/m-worker.log")
    echo "  mix run $((i + 1)): $out" >&2
    got=$(field records <<<"$out"); njobs=$(sed -n 's/.*jobs=\([0-9]*\).*/\1/p' <<<"$out")
    runs+=("$(calc "round($(field cpu_s <<<"$out") / $got * 1e6, 3)")")
    rss4=$(calc "max($rss4, $(field max_rss_mib <<<"$out"))")
  done
  local cpm; cpm=$(printf '%s\n' "${runs[@]}" | median)
  local call_bytes; call_bytes=$(( $(curl -sf -u AC00000000000000000000000000000021:mix-token-1 \
    "$SANDBOX_URL/2010-04-01/Accounts/AC00000000000000000000000000000021/Calls.json?StartTime=${MIX_DAYS[0]}&PageSize=1000" | wc -c) / 1000 ))
  # Concurrency 16 on the same mix, REPEAT times: the memory bound must hold at four times the jobs in flight. Each
  # run's staged objects are then loaded (the first load of each partition) and timed against psql \copy of the same
  # rows (see mix_load).
  local rss16=0 loads=() lines=()
  for ((i = 0; i < repeat; i++)); do
    CHANNELS=$MIX_CHANNELS config "bm16$i$RANDOM" "bench_m" >"$WORK/m16.yaml"
    psql_ -q -c "SET client_min_messages = warning; DROP SCHEMA IF EXISTS bench_m CASCADE"
    "$BIN/huskimo-planner" ddl --config "$WORK/m16.yaml" --apply >/dev/null
    "$BIN/huskimo-planner" plan --config "$WORK/m16.yaml" --from "${MIX_DAYS[0]}" --to "${MIX_DAYS[-1]}" --resource calls \
      --resource messages --resource recordings --resource incoming_phone_numbers >/dev/null
    out=$("$BIN/huskimo-worker" extract --config "$WORK/m16.yaml" --concurrency 16 --exit-when-idle 2 2>"$WORK/m16-worker.log")
    rss16=$(calc "max($rss16, $(field max_rss_mib <<<"$out"))")
    lines+=("$(mix_load "$WORK/m16.yaml")")
    echo "  mix load $((i + 1)): ${lines[-1]}" >&2
    loads+=("$(field ratio <<<"${lines[-1]}")")
  done
  stop_sandbox
  local ratio; ratio=$(printf '%s\n' "${loads[@]}" | median)
  local line; for line in "${lines[@]}"; do [[ $(field ratio <<<"$line") == "$ratio" ]] && break; done
  {
    echo "mix ($(date -u +%F), $(nproc) cores): $njobs jobs, $got records (5 accounts × 3 days × 4,000 calls, 6,000 messages, 1,000 recordings + 20 numbers; $call_bytes B of JSON per call)"
    echo "  huskimo-worker, whole process at --concurrency 4: $cpm CPU-s per million records (median; runs: ${runs[*]}) (goal ≤ 4)"
    echo "  baseline, hand-written Python extractor of the same $py_records records: $(calc "round($py_cpu / $py_records * 1e6, 1)") CPU-s per million"
    echo "  ratio: the worker uses $(calc "round($cpm / ($py_cpu / $py_records * 1e6), 3)") of the baseline's CPU per record"
    echo "  peak RSS: $rss4 MiB at --concurrency 4, $rss16 MiB at --concurrency 16 (the most of $repeat runs; bound 64 MiB)"
    echo "load: the mix's rows (50 partitions) into PostgreSQL, loader against psql \\copy of the same rows into tables with the same indexes"
    echo "  ratio: $ratio of psql's throughput (median; runs: ${loads[*]}) (goal ≥ 0.9)"
    echo "  the median run: $line"
  } | tee bench/results/mix.txt
}

# One load of the mix's staged objects (one loader, --exit-when-idle: the first load of each partition) against psql
# \copy of the same rows (exported from the loaded tables as COPY text) in the same run, into tables of the same
# shape: with the warehouse tables' partition indexes (LIKE … INCLUDING ALL: the same work the loader does, the
# figure) and without them (plain LIKE: what the bare COPY costs, for reference). Prints one line of fields.
mix_load() {
  local yaml=$1 t0 t1 n ours t tables=(twilio_calls twilio_messages twilio_recordings twilio_incoming_phone_numbers)
  t0=$(now)
  "$BIN/huskimo-worker" load --config "$yaml" --target local --exit-when-idle 0.5 >/dev/null 2>"$WORK/m-loader.log"
  t1=$(now)
  ours=$(calc "$t1 - $t0 - 0.5")
  n=0
  for t in "${tables[@]}"; do n=$((n + $(psql_ -c "SELECT count(*) FROM bench_m.$t"))); done
  local indexed bare
  read -r indexed bare < <(copy_baseline bench_m "${tables[@]}")
  echo "rows=$n loader_s=$(calc "round($ours, 2)") loader_rows_per_s=$(calc "round($n / $ours)") loader_cpu_s=$(grep -o 'cpu_s=[0-9.]*' "$WORK/m-loader.log" | tail -1 | cut -d= -f2) loader_rss_mib=$(grep -o 'max_rss_mib=[0-9.]*' "$WORK/m-loader.log" | tail -1 | cut -d= -f2) psql_indexed_s=$(calc "round($indexed, 2)") ratio=$(calc "round($indexed / $ours, 3)") psql_without_indexes_s=$(calc "round($bare, 2)") ratio_without_indexes=$(calc "round($bare / $ours, 3)")"
}

# copy_baseline SCHEMA TABLE…: psql \copy of the tables' rows (exported as COPY text) into tables of the same shape,
# timed twice: with their indexes (LIKE … INCLUDING ALL) and without (plain LIKE). Prints both, in seconds.
copy_baseline() {
  local schema=$1 t kind p0 p1 indexed bare; shift
  for t in "$@"; do psql_ -c "\\copy $schema.$t TO '$WORK/$t.copy'"; done
  for kind in "INCLUDING ALL" ""; do
    for t in "$@"; do psql_ -q -c "SET client_min_messages = warning; DROP TABLE IF EXISTS $schema.${t}_copy; CREATE TABLE $schema.${t}_copy (LIKE $schema.$t $kind)"; done
    p0=$(now)
    for t in "$@"; do psql_ -c "\\copy $schema.${t}_copy FROM '$WORK/$t.copy'"; done
    p1=$(now)
    if [[ -n $kind ]]; then indexed=$(calc "$p1 - $p0"); else bare=$(calc "$p1 - $p0"); fi
  done
  echo "$indexed $bare"
}

# two_workers CONFIG OUT CONCURRENCY: two extract workers until the queue is idle a second; each one's summary line in
# OUT1.out / OUT2.out, its log in OUT1.log / OUT2.log.
two_workers() {
  local wp=() w
  for w in 1 2; do
    "$BIN/huskimo-worker" extract --config "$1" --concurrency "$3" --exit-when-idle 1 >"$2$w.out" 2>"$2$w.log" &
    wp+=($!)
  done
  wait "${wp[@]}"
}

# Many small jobs: 1,000 channels × 3 resources × 1 day of 3 records each (huskimo-sandbox --small-accounts 1000), one
# request per job at LATENCY ms, two workers at CONCURRENCY each. Figures: CPU per job (both workers, whole process),
# jobs per second against the bound the latency allows (2 × CONCURRENCY requests in flight), the planner's publish rate
# (with publisher confirms).
bench_small() {
  local latency=${HUSKIMO_BENCH_SMALL_LATENCY_MS:-100} concurrency=${HUSKIMO_BENCH_SMALL_CONCURRENCY:-8} repeat=${HUSKIMO_BENCH_REPEAT:-3}
  local day; day=$(bday 0); local channels i
  start_sandbox --small-accounts 1000
  faults "{\"latencyMs\": $latency}"
  channels=$(for ((i = 0; i < 1000; i++)); do printf 'small%s AC%032x small-token-%s\n' "$i" $((0x100000 + i)) "$i"; done)
  local cpus=() rates=() publish=() jobs=0 r
  for ((r = 0; r < repeat; r++)); do
    CHANNELS=$channels config "bs$r$RANDOM" "bench_s" >"$WORK/s.yaml"
    local p0 p1 planned; p0=$(now)
    planned=$("$BIN/huskimo-planner" plan --config "$WORK/s.yaml" --from "$day" --to "$day" --resource calls --resource messages --resource recordings)
    p1=$(now)
    jobs=$(sed -n 's/.*: \([0-9]*\) jobs.*/\1/p' <<<"$planned")
    publish+=("$(calc "round($jobs / ($p1 - $p0))")")
    local t0 t1 w
    t0=$(now)
    two_workers "$WORK/s.yaml" "$WORK/s" "$concurrency"
    t1=$(now)
    local cpu=0 done_jobs=0
    for w in 1 2; do
      cpu=$(calc "$cpu + $(field cpu_s <"$WORK/s$w.out")")
      done_jobs=$((done_jobs + $(sed -n 's/.*jobs=\([0-9]*\).*/\1/p' "$WORK/s$w.out")))
    done
    [[ $done_jobs == "$jobs" ]] || { echo "small: $done_jobs of $jobs jobs done" >&2; exit 1; }
    cpus+=("$(calc "round($cpu / $jobs * 1000, 3)")")
    rates+=("$(calc "round($jobs / ($t1 - $t0 - 1), 1)")")   # minus the idle second before exit
    echo "  small run $((r + 1)): $jobs jobs, $(calc "round($t1 - $t0 - 1, 2)") s, ${cpus[-1]} ms CPU per job, planner ${publish[-1]} jobs/s" >&2
  done
  stop_sandbox
  local bound; bound=$(calc "round(2 * $concurrency / ($latency / 1000), 1)")
  local rate; rate=$(printf '%s\n' "${rates[@]}" | median)
  {
    echo "small ($(date -u +%F), $(nproc) cores): $jobs jobs (1,000 channels × calls, messages, recordings × 1 day, 3 records each), ${latency} ms per request, 2 workers × concurrency $concurrency"
    echo "  CPU per job, both workers whole process: $(printf '%s\n' "${cpus[@]}" | median) ms (median; runs: ${cpus[*]}) (goal ≤ 5)"
    echo "  throughput: $rate jobs/s (median; runs: ${rates[*]}) against $bound the latency allows → $(calc "round($rate / $bound, 3)") (goal ≥ 0.8)"
    echo "  planner: $(printf '%s\n' "${publish[@]}" | median) jobs/s published with confirms (median; runs: ${publish[*]}), config parse and connection included"
  } | tee bench/results/small.txt
}

# The cost of replication: the small-job case (one request per job, LATENCY ms, default 50; 200 channels × calls,
# messages, recordings × 1 day = 600 jobs ... 1,400 with HUSKIMO_BENCH_CLUSTER_DAYS) on one node without replication
# (node 1 only, classic queues) and on the three-node cluster (every node listed, quorum queues: each message written
# on three nodes), alternating, REPEAT runs each. Figures per broker: jobs/s against the bound the latency and the
# slots allow, the planner's publish rate with confirms, CPU per job, and where a job's time goes (the API request,
# the S3 PUT, publishing its load message under a confirm, the ack), from the workers' summary lines.
bench_cluster() {
  local latency=${HUSKIMO_BENCH_CLUSTER_LATENCY_MS:-50} concurrency=${HUSKIMO_BENCH_SMALL_CONCURRENCY:-8} repeat=${HUSKIMO_BENCH_REPEAT:-3}
  local days=${HUSKIMO_BENCH_CLUSTER_DAYS:-1} accounts=200 channels i
  [[ ${RABBITMQ_NODES:-1} == 3 ]] || { echo "cluster: needs the stack's three-node cluster (HUSKIMO_RABBITMQ_NODES=3, the default)" >&2; exit 1; }
  start_sandbox --small-accounts "$accounts"
  faults "{\"latencyMs\": $latency}"
  channels=$(for ((i = 0; i < accounts; i++)); do printf 'small%s AC%032x small-token-%s\n' "$i" $((0x100000 + i)) "$i"; done)
  local all_urls; all_urls="[$(tr ',' '\n' <<<"$AMQP_URLS" | sed 's/.*/"&"/' | paste -sd, -)]"
  local -A rate cpu pub fetch stage publish ack
  local mode r
  for ((r = 0; r < repeat; r++)); do
    for mode in one cluster; do
      local urls type
      if [[ $mode == one ]]; then urls="\"$AMQP_URL\"" type=classic; else urls=$all_urls type=quorum; fi
      QUEUE_URLS=$urls QUEUE_TYPE=$type CHANNELS=$channels config "bc$r$mode$RANDOM" "bench_c" >"$WORK/c.yaml"
      local p0 p1 planned jobs; p0=$(now)
      planned=$("$BIN/huskimo-planner" plan --config "$WORK/c.yaml" --from "$(bday 0)" --to "$(bday $((days - 1)))" \
        --resource calls --resource messages --resource recordings)
      p1=$(now)
      jobs=$(sed -n 's/.*: \([0-9]*\) jobs.*/\1/p' <<<"$planned")
      pub[$mode]+="$(calc "round($jobs / ($p1 - $p0))") "
      local t0 t1 w; t0=$(now)
      two_workers "$WORK/c.yaml" "$WORK/c" "$concurrency"
      t1=$(now)
      local c=0 f=0 st=0 pb=0 ak=0 n=0
      for w in 1 2; do
        c=$(calc "$c + $(field cpu_s <"$WORK/c$w.out")"); f=$(calc "$f + $(field fetch_s <"$WORK/c$w.out")")
        st=$(calc "$st + $(field stage_s <"$WORK/c$w.out")"); pb=$(calc "$pb + $(field publish_s <"$WORK/c$w.out")")
        ak=$(calc "$ak + $(field ack_s <"$WORK/c$w.out")"); n=$((n + $(sed -n 's/.*jobs=\([0-9]*\).*/\1/p' "$WORK/c$w.out")))
      done
      [[ $n == "$jobs" ]] || { echo "cluster ($mode): $n of $jobs jobs done" >&2; exit 1; }
      rate[$mode]+="$(calc "round($jobs / ($t1 - $t0 - 1), 1)") "
      cpu[$mode]+="$(calc "round($c / $jobs * 1000, 3)") "
      fetch[$mode]+="$(calc "round($f / $jobs * 1000, 1)") "; stage[$mode]+="$(calc "round($st / $jobs * 1000, 1)") "
      publish[$mode]+="$(calc "round($pb / $jobs * 1000, 1)") "; ack[$mode]+="$(calc "round($ak / $jobs * 1000, 2)") "
      echo "  cluster run $((r + 1)) $mode: $jobs jobs, $(calc "round($t1 - $t0 - 1, 2)") s" >&2
    done
  done
  stop_sandbox
  med() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | median; }
  local bound; bound=$(calc "round(2 * $concurrency / ($latency / 1000), 1)")
  {
    echo "cluster ($(date -u +%F), $(nproc) cores, RabbitMQ ${RABBITMQ_VERSION:-?}): $accounts channels × 3 resources × $days day(s), one request per job at ${latency} ms, 2 workers × concurrency $concurrency (bound: $bound jobs/s)"
    for mode in one cluster; do
      local label; [[ $mode == one ]] && label="one node, classic queues" || label="three nodes, quorum queues"
      local rt; rt=$(med "${rate[$mode]}")
      echo "  $label: $rt jobs/s (runs: ${rate[$mode]% }) = bound ÷ $(calc "round($bound / $rt, 2)"); planner $(med "${pub[$mode]}") jobs/s with confirms; CPU $(med "${cpu[$mode]}") ms per job"
      echo "    per job (median ms, summed over the jobs' own time): API request $(med "${fetch[$mode]}"), S3 PUT $(med "${stage[$mode]}"), publish + confirm $(med "${publish[$mode]}"), ack $(med "${ack[$mode]}")"
    done
    echo "  replication's cost: throughput $(calc "round($(med "${rate[cluster]}") / $(med "${rate[one]}"), 3)") of one node's, planner publish rate $(calc "round($(med "${pub[cluster]}") / $(med "${pub[one]}"), 3)")"
  } | tee bench/results/cluster.txt
}

# The API's own limit: 5 accounts × 30 days × calls, messages, recordings (one page each), LATENCY ms per request, the
# sandbox answering 429 / 20429 (no Retry-After) beyond 2 requests in flight per account. Ideal = the busiest
# account's requests × latency ÷ 2. One worker at concurrency 12 (more than the API allows, so the limit binds).
bench_limit() {
  local latency=${HUSKIMO_BENCH_LIMIT_LATENCY_MS:-300} limit=2 repeat=${HUSKIMO_BENCH_REPEAT:-3}
  start_sandbox
  CHANNELS=$'a1 AC00000000000000000000000000000001 sandbox-token-1\na2 AC00000000000000000000000000000002 sandbox-token-2\na3 AC00000000000000000000000000000003 sandbox-token-3\na11 AC00000000000000000000000000000011 sandbox-token-11\na12 AC00000000000000000000000000000012 sandbox-token-12'
  local walls=() ratios=() throttled=() r
  local per_account=$((30 * 3))
  local ideal; ideal=$(calc "round($per_account * $latency / 1000 / $limit, 2)")
  for ((r = 0; r < repeat; r++)); do
    faults "{\"latencyMs\": $latency, \"concurrencyLimit\": $limit}"
    curl -sf -X DELETE "$SANDBOX_URL/sandbox/stats" >/dev/null   # the counters of this run only
    config "bl$r$RANDOM" "bench_lim" >"$WORK/lim.yaml"
    "$BIN/huskimo-planner" plan --config "$WORK/lim.yaml" --from "$(bday -29)" --to "$(bday 0)" --resource calls --resource messages --resource recordings >/dev/null
    local t0 t1 out stats
    t0=$(now)
    out=$("$BIN/huskimo-worker" extract --config "$WORK/lim.yaml" --concurrency 12 --exit-when-idle 1 2>"$WORK/lim.log")
    t1=$(now)
    stats=$(curl -sf "$SANDBOX_URL/sandbox/stats")
    local requests max_in_flight thr
    requests=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])' <<<"$stats")
    max_in_flight=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["maxInFlightPerAccount"])' <<<"$stats")
    thr=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["throttled"])' <<<"$stats")
    walls+=("$(calc "round($t1 - $t0 - 1, 2)")"); ratios+=("$(calc "round(($t1 - $t0 - 1) / $ideal, 3)")"); throttled+=("$thr")
    echo "  limit run $((r + 1)): ${walls[-1]} s, $requests requests, $thr answered 429, peak $max_in_flight in flight per account; $out" >&2
  done
  stop_sandbox
  {
    echo "limit ($(date -u +%F), $(nproc) cores): 5 accounts × 30 days × 3 resources, $per_account requests per account at ${latency} ms, 429/20429 beyond $limit in flight"
    echo "  wall: $(printf '%s\n' "${walls[@]}" | median) s (median; runs: ${walls[*]}); 429s per run: ${throttled[*]}"
    echo "  ideal = $per_account × ${latency} ms ÷ $limit = $ideal s → $(printf '%s\n' "${ratios[@]}" | median)× the ideal (goal ≤ 1.2)"
  } | tee bench/results/limit.txt
}

# Idle cost: an extract worker and a loader with nothing to do, for SECONDS (default 60): CPU per minute from
# /proc/PID/stat, as a share of one core (goal < 0.1 %).
bench_idle() {
  local seconds=${HUSKIMO_BENCH_IDLE_SECONDS:-60}
  CHANNELS="idle AC00000000000000000000000000000001 sandbox-token-1" config "bi$RANDOM" "bench_i" >"$WORK/i.yaml"
  "$BIN/huskimo-planner" ddl --config "$WORK/i.yaml" --apply >/dev/null 2>&1
  "$BIN/huskimo-worker" extract --config "$WORK/i.yaml" --concurrency 4 >/dev/null 2>"$WORK/i-worker.log" &
  local wpid=$!; pids+=("$wpid")
  "$BIN/huskimo-worker" load --config "$WORK/i.yaml" --target local >/dev/null 2>"$WORK/i-loader.log" &
  local lpid=$!; pids+=("$lpid")
  sleep 5   # past startup (connections, topology)
  ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
  local w0 l0 w1 l1 hz; hz=$(getconf CLK_TCK)
  w0=$(ticks "$wpid"); l0=$(ticks "$lpid")
  sleep "$seconds"
  w1=$(ticks "$wpid"); l1=$(ticks "$lpid")
  kill -TERM "$wpid" "$lpid"; wait "$wpid" "$lpid" 2>/dev/null || true
  {
    echo "idle ($(date -u +%F)): an extract worker and a loader with empty queues for $seconds s"
    echo "  extract worker: $(calc "round(($w1 - $w0) / $hz * 1000 / $seconds * 60, 1)") ms CPU per minute → $(calc "round(($w1 - $w0) / $hz / $seconds * 100, 4)") % of a core (goal < 0.1 %)"
    echo "  loader: $(calc "round(($l1 - $l0) / $hz * 1000 / $seconds * 60, 1)") ms CPU per minute → $(calc "round(($l1 - $l0) / $hz / $seconds * 100, 4)") % of a core (goal < 0.1 %)"
    echo "  (clock ticks of 1/$hz s: $((w1 - w0)) and $((l1 - l0)))"
  } | tee bench/results/idle.txt
}

# Memory on a large day: one day of 1,000,000 calls (the sandbox's Bulk account) at --concurrency 16.
bench_memory() {
  local records=${HUSKIMO_BENCH_MEMORY_RECORDS:-1000000} day=$(bday 0) sid=AC00000000000000000000000000000004
  start_sandbox --bulk-day-records "$records"
  curl -sf -u "$sid:sandbox-token-4" "$SANDBOX_URL/2010-04-01/Accounts/$sid/Calls.json?StartTime=$day&PageSize=1" >/dev/null   # generates the day
  CHANNELS="bulk $sid sandbox-token-4" config "bmem$RANDOM" "bench_x" >"$WORK/mem.yaml"
  "$BIN/huskimo-planner" plan --config "$WORK/mem.yaml" --from "$day" --to "$day" --resource calls >/dev/null
  local out; out=$("$BIN/huskimo-worker" extract --config "$WORK/mem.yaml" --concurrency 16 --exit-when-idle 2 2>"$WORK/mem.log")
  stop_sandbox
  {
    echo "memory ($(date -u +%F)): one day of $(field records <<<"$out") calls at --concurrency 16"
    echo "  peak RSS $(field max_rss_mib <<<"$out") MiB (bound 64 MiB; an idle worker is 33 MiB, 30 of it shared libraries), $(calc "round($(field cpu_s <<<"$out") / $(field records <<<"$out") * 1e6, 2)") CPU-s per million records"
  } | tee bench/results/memory.txt
}

# Singular: the same days read through the Reporting API v2.0 (availability, report, poll, CSV download, mapped to the
# 0.3 keys) and through the legacy endpoints (one JSON GET), alternating: worker CPU per million records, and wall.
bench_singular() {
  local records=${HUSKIMO_BENCH_SINGULAR_RECORDS:-100000} repeat=${HUSKIMO_BENCH_REPEAT:-3} key=sg-alpha-7d1f0c9e4b2a86f3
  start_sandbox --singular-records "$records"
  local cpu_v2=() cpu_legacy=() wall_v2=() wall_legacy=() r api
  for ((r = 0; r < repeat; r++)); do
    for api in v2 legacy; do
      local prefix="bsg$r$api$RANDOM"
      local extra=""; [[ $api == v2 ]] && extra=", report_poll_s: 0.05"
      CHANNELS="" config "$prefix" "bench_sg" \
        | sed "s|^channels:|channels:\\n  - {name: spend, type: singular, api_key: $key, api_url: \"$SANDBOX_URL\", api: $api$extra}|" >"$WORK/sg.yaml"
      "$BIN/huskimo-planner" plan --config "$WORK/sg.yaml" --from "$(bday -2)" --to "$(bday 0)" >/dev/null
      local t0 t1 out
      t0=$(now)
      out=$("$BIN/huskimo-worker" extract --config "$WORK/sg.yaml" --concurrency 2 --exit-when-idle 1 2>"$WORK/sg-$api.log")
      t1=$(now)
      local per; per=$(calc "round($(field cpu_s <<<"$out") / $(field records <<<"$out") * 1e6, 2)")
      if [[ $api == v2 ]]; then cpu_v2+=("$per"); wall_v2+=("$(calc "round($t1 - $t0 - 1, 2)")"); else cpu_legacy+=("$per"); wall_legacy+=("$(calc "round($t1 - $t0 - 1, 2)")"); fi
      echo "  singular $api run $((r + 1)): $per CPU-s per million records, $(calc "round($t1 - $t0 - 1, 2)") s; $out" >&2
    done
  done
  stop_sandbox
  local v2 legacy; v2=$(printf '%s\n' "${cpu_v2[@]}" | median); legacy=$(printf '%s\n' "${cpu_legacy[@]}" | median)
  {
    echo "singular ($(date -u +%F), $(nproc) cores): 3 days × 2 resources × $records records, one channel, --concurrency 2, alternating"
    echo "  v2.0 reports (CSV by header → 0.3 records → TSV): $v2 CPU-s per million records (median; runs: ${cpu_v2[*]}); wall $(printf '%s\n' "${wall_v2[@]}" | median) s"
    echo "  legacy endpoints (JSON → TSV): $legacy CPU-s per million records (median; runs: ${cpu_legacy[*]}); wall $(printf '%s\n' "${wall_legacy[@]}" | median) s"
    echo "  v2 / legacy CPU: $(calc "round($v2 / $legacy, 2)")×"
  } | tee bench/results/singular.txt
}

run_fleet() {   # run_fleet WORKERS CONCURRENCY → prints "wall requests"
  local workers=$1 concurrency=$2 prefix="bf$1$RANDOM"
  config "$prefix" "bench_f" >"$WORK/f.yaml"
  "$BIN/huskimo-planner" plan --config "$WORK/f.yaml" --from "$(bday -6)" --to "$(bday 1)" --resource calls --resource messages >/dev/null
  local before after t0 t1 wp=()
  before=$(curl -sf "$SANDBOX_URL/sandbox/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
  t0=$(now)
  for i in $(seq "$workers"); do
    "$BIN/huskimo-worker" extract --config "$WORK/f.yaml" --concurrency "$concurrency" --exit-when-idle 1 >/dev/null 2>"$WORK/f$i.log" &
    wp+=($!)
  done
  wait "${wp[@]}"
  t1=$(now)
  after=$(curl -sf "$SANDBOX_URL/sandbox/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
  echo "$(calc "round($t1 - $t0 - 1, 2)") $((after - before))"   # minus the idle second before exit
}

bench_fleet() {
  # 48 jobs (3 accounts × 8 days × calls, messages): one request each at the sandbox's latency.
  local latency=500 limit=2 jobs_per_account=16
  start_sandbox
  CHANNELS=$'us AC00000000000000000000000000000001 sandbox-token-1\neu AC00000000000000000000000000000002 sandbox-token-2\nasia AC00000000000000000000000000000003 sandbox-token-3'
  # A: the API is the bottleneck (2 concurrent requests per account); one worker with room to spare.
  faults "{\"latencyMs\": $latency, \"concurrencyLimit\": $limit}"
  read -r wallA reqA < <(run_fleet 1 6)
  local ideal; ideal=$(calc "round($jobs_per_account * $latency / 1000 / $limit, 2)")
  # B: the workers are the bottleneck (no API limit, 2 jobs at a time per worker): one process against two.
  faults "{\"latencyMs\": $latency}"
  read -r wall1 req1 < <(run_fleet 1 2)
  read -r wall2 req2 < <(run_fleet 2 2)
  stop_sandbox
  {
    echo "fleet: 48 jobs over 3 accounts, ${latency} ms per request"
    echo "  A, API-bound (${limit} concurrent requests per account, 1 worker, concurrency 6): ${wallA} s, $reqA requests (429s included)"
    echo "    ideal = ${jobs_per_account} requests per account × ${latency} ms ÷ ${limit} = ${ideal} s → $(calc "round($wallA / $ideal, 2)")× the ideal (goal ≤ 1.25)"
    echo "  B, worker-bound (concurrency 2 per worker): 1 process ${wall1} s, 2 processes ${wall2} s → $(calc "round($wall1 / $wall2, 2)")× faster (goal ≥ 1.8)"
  } | tee bench/results/fleet.txt
}

bench_load() {
  local rows=${HUSKIMO_BENCH_LOAD_ROWS:-300000} sid=AC00000000000000000000000000000004
  start_sandbox --bulk-day-records "$rows"
  CHANNELS="bulk $sid sandbox-token-4" config "bl$RANDOM" "bench_l" >"$WORK/l.yaml"
  psql_ -c "DROP SCHEMA IF EXISTS bench_l CASCADE"
  "$BIN/huskimo-planner" ddl --config "$WORK/l.yaml" --apply >/dev/null
  "$BIN/huskimo-planner" plan --config "$WORK/l.yaml" --from "$(bday 0)" --to "$(bday 0)" --resource calls >/dev/null
  "$BIN/huskimo-worker" extract --config "$WORK/l.yaml" --concurrency 1 --exit-when-idle 1 >/dev/null 2>"$WORK/l-worker.log"
  stop_sandbox
  local t0 t1 n
  t0=$(now)
  "$BIN/huskimo-worker" load --config "$WORK/l.yaml" --target local --exit-when-idle 0.5 2>"$WORK/l-loader.log"
  t1=$(now)
  n=$(psql_ -c "SELECT count(*) FROM bench_l.twilio_calls")
  local ours; ours=$(calc "$t1 - $t0 - 0.5")
  local indexed bare
  read -r indexed bare < <(copy_baseline bench_l twilio_calls)
  {
    echo "load ($(date -u +%F)): $n rows of twilio_calls (one partition) from S3 (gzip) into PostgreSQL"
    echo "  huskimo loader, whole process: $(calc "round($ours, 2)") s → $(calc "round($n / $ours)") rows/s; its CPU $(grep -o 'cpu_s=[0-9.]*' "$WORK/l-loader.log" | tail -1 | cut -d= -f2) s"
    echo "  psql \\copy from a local file into a table with the same index: $(calc "round($indexed, 2)") s → ratio $(calc "round($indexed / $ours, 3)") of psql's throughput"
    echo "  (without the index: $(calc "round($bare, 2)") s; the loader reaches $(calc "round($bare / $ours, 3)") of that)"
  } | tee bench/results/load.txt
}

# The loader of this tree against the loader of git revision REF on the same staged rows (one partition of calls from
# the sandbox's --bulk-day-records day, extracted by this tree's worker for each run), alternating, N runs each: the loader's wall time and CPU,
# both medians and their ratio, in the same run (refactors of the load path).
bench_load_ab() {
  local ref=${1:-} repeat=${2:-5} rows=${HUSKIMO_BENCH_LOAD_ROWS:-300000} sid=AC00000000000000000000000000000004
  local base_bin; base_bin=$(baseline_bin "$ref" load-ab)
  start_sandbox --bulk-day-records "$rows"
  local base=() current=() base_cpu=() current_cpu=() i which bin t0 t1 wall cpu schema loaded expected=""
  for ((i = 0; i < repeat; i++)); do
    for which in baseline current; do
      bin=$BIN; [[ $which == baseline ]] && bin=$base_bin
      schema="bench_lab_$which"
      CHANNELS="bulk $sid sandbox-token-4" config "blab$i$RANDOM" "$schema" >"$WORK/lab.yaml"
      psql_ -c "DROP SCHEMA IF EXISTS $schema CASCADE"
      "$bin/huskimo-planner" ddl --config "$WORK/lab.yaml" --apply >/dev/null
      "$BIN/huskimo-planner" plan --config "$WORK/lab.yaml" --from "$(bday 0)" --to "$(bday 0)" --resource calls >/dev/null
      "$BIN/huskimo-worker" extract --config "$WORK/lab.yaml" --concurrency 1 --exit-when-idle 1 >/dev/null 2>"$WORK/lab-worker.log"
      t0=$(now)
      "$bin/huskimo-worker" load --config "$WORK/lab.yaml" --target local --exit-when-idle 0.5 2>"$WORK/lab-loader.log"
      t1=$(now)
      wall=$(calc "round($t1 - $t0 - 0.5, 3)")
      cpu=$(grep -o 'cpu_s=[0-9.]*' "$WORK/lab-loader.log" | tail -1 | cut -d= -f2)
      loaded=$(psql_ -c "SELECT count(*) FROM $schema.twilio_calls")
      [[ $loaded -gt 0 && ( -z $expected || $loaded == "$expected" ) ]] || { echo "load-ab: $which loaded $loaded rows, expected ${expected:-some}" >&2; exit 1; }
      expected=$loaded
      if [[ $which == baseline ]]; then base+=("$wall"); base_cpu+=("$cpu"); else current+=("$wall"); current_cpu+=("$cpu"); fi
      echo "  run $((i + 1)) $which: $loaded rows in $wall s (loader CPU $cpu s)"
    done
  done
  stop_sandbox
  local mb mc cb cc
  mb=$(printf '%s\n' "${base[@]}" | median); mc=$(printf '%s\n' "${current[@]}" | median)
  cb=$(printf '%s\n' "${base_cpu[@]}" | median); cc=$(printf '%s\n' "${current_cpu[@]}" | median)
  {
    echo "load-ab ($(date -u +%F), $(nproc) cores): $expected rows of twilio_calls (one partition) from S3 into PostgreSQL; baseline ${ref:-$base_bin}"
    echo "  wall: baseline median $mb s (runs $(printf '%s ' "${base[@]}")), current median $mc s (runs $(printf '%s ' "${current[@]}"))"
    echo "  loader CPU: baseline median $cb s, current median $cc s"
    echo "  ratio current / baseline: wall $(calc "round($mc / $mb, 3)"), CPU $(calc "round($cc / $cb, 3)")"
  } | tee bench/results/load-ab.txt
}

bench_plan() {
  # 1,000 channels × 5 resources × 365 days: planning alone (--dry-run), in the release build.
  {
    echo "queue: {url: \"$AMQP_URL\"}"
    echo "channels:"
    for i in $(seq 1000); do echo "  - {name: c$i, type: twilio, api_user: AC$i, api_key: k}"; done
    echo "s3: {access_key_id: k, secret_access_key: s, region: us-east-1, bucket: b}"
    echo "targets: [{name: t, type: postgres, host: 127.0.0.1, database: d, username: u}]"
  } >"$WORK/plan.yaml"
  local t0 t1 out
  t0=$(now)
  out=$("$BIN/huskimo-planner" plan --config "$WORK/plan.yaml" --from "$(bday -355)" --to "$(bday 8)" --dry-run | tail -1)
  t1=$(now)
  # Baseline: the same number of job ids printed by a shell loop-free awk one-liner (what "listing" costs).
  local b0 b1
  b0=$(now); awk 'BEGIN { for (c = 1; c <= 1000; c++) for (d = 0; d < 1095; d++) n++; print n }' >/dev/null; b1=$(now)
  {
    echo "plan: $out"
    echo "  huskimo-planner plan --dry-run: $(calc "round($t1 - $t0, 2)") s wall (config parse, planning, interleaving)"
    echo "  baseline, awk counting the same jobs: $(calc "round($b1 - $b0, 2)") s"
  } | tee bench/results/plan.txt
}

# History: one day of calls through Bulk Export (the day file: gzipped JSON lines, ISO-8601 times, fewer fields) against
# the same day's records from the list (JSON pages of 1,000, RFC 2822 times), alternating, REPEAT runs each: worker
# CPU-s per million records and their ratio. `list_window_days: 1` makes a day of last week history for the export
# channel, so both read the very same records; the second and later export runs find the day file already made.
bench_history() {
  local records=${HUSKIMO_BENCH_RECORDS:-200000} repeat=${HUSKIMO_BENCH_REPEAT:-3} sid=AC00000000000000000000000000000004
  local day; day=$(bday 0)
  start_sandbox --bulk-day-records "$records"
  local cpu_list=() cpu_export=() got_list=0 got_export=0 r mode
  for ((r = 0; r < repeat; r++)); do
    for mode in list export; do
      local extra=""
      [[ $mode == export ]] && extra=", list_window_days: 1, bulkexports_url: \"$SANDBOX_URL\", bulkexport_poll_s: 0.05"
      CHANNELS="bulk $sid sandbox-token-4" config "bh$r$mode$RANDOM" "bench_h" \
        | sed "s|pricing_url: \"$SANDBOX_URL\"}|pricing_url: \"$SANDBOX_URL\"$extra}|" >"$WORK/h.yaml"
      psql_ -c "DROP SCHEMA IF EXISTS bench_h CASCADE" 2>/dev/null
      "$BIN/huskimo-planner" ddl --config "$WORK/h.yaml" --apply >/dev/null
      if [[ $mode == export ]]; then
        "$BIN/huskimo-planner" backfill --config "$WORK/h.yaml" --channel bulk --resource calls --from "$day" --to "$day" >/dev/null
      else
        "$BIN/huskimo-planner" plan --config "$WORK/h.yaml" --from "$day" --to "$day" --resource calls >/dev/null
      fi
      local out; out=$("$BIN/huskimo-worker" extract --config "$WORK/h.yaml" --concurrency 1 --exit-when-idle 2 2>"$WORK/h-$mode.log")
      local cpu got per; cpu=$(field cpu_s <<<"$out"); got=$(field records <<<"$out")
      per=$(calc "round($cpu / $got * 1e6, 2)")
      if [[ $mode == list ]]; then cpu_list+=("$per"); got_list=$got; else cpu_export+=("$per"); got_export=$got; fi
      echo "  history $mode run $((r + 1)): $cpu CPU-s for $got records → $per CPU-s per million" >&2
    done
  done
  stop_sandbox
  local from_list from_export
  from_list=$(printf '%s\n' "${cpu_list[@]}" | median); from_export=$(printf '%s\n' "${cpu_export[@]}" | median)
  {
    echo "history ($(date -u +%F), $(nproc) cores): one day of calls ($records records), --concurrency 1, alternating, $repeat runs each"
    echo "  Bulk Export day file (gzipped JSON lines, ISO-8601 times): $from_export CPU-s per million records (median; runs: ${cpu_export[*]}); $got_export records"
    echo "  list pages of 1000 (JSON, RFC 2822 times): $from_list CPU-s per million records (median; runs: ${cpu_list[*]}); $got_list records"
    echo "  export / list CPU: $(calc "round($from_export / $from_list, 2)")×"
  } | tee bench/results/history.txt
}

case ${1:-all} in
  extract) bench_extract ;;
  extract-quick) bench_extract_quick "${2:-3}" ;;
  extract-ab) bench_extract_ab "${2:-}" "${3:-5}" ;;
  load-ab) bench_load_ab "${2:-}" "${3:-5}" ;;
  mix) bench_mix ;;
  small) bench_small ;;
  cluster) bench_cluster ;;
  limit) bench_limit ;;
  idle) bench_idle ;;
  fleet) bench_fleet ;;
  load) bench_load ;;
  plan) bench_plan ;;
  singular) bench_singular ;;
  history) bench_history ;;
  memory) bench_memory ;;
  all) bench_extract; bench_mix; bench_small; bench_limit; bench_memory; bench_idle; bench_fleet; bench_load; bench_plan ;;
  *) echo "usage: bench/run.sh extract|extract-quick [N]|extract-ab REF [N]|load-ab REF [N]|mix|small|cluster|limit|memory|idle|fleet|load|plan|singular|history|all" >&2; exit 2 ;;
esac
