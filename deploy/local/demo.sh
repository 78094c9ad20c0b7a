#!/usr/bin/env bash
# deploy/local/demo.sh — the main job on a local stack: services on 127.0.0.1, the sandbox standing in for
# Twilio and Singular, the DDL applied to the local PostgreSQL, three sandbox accounts × three days planned, two extract
# workers (separate processes) and a loader, then a summary: rows per table, queue depths, failures.
set -euo pipefail
REPO=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd -P)
cd "$REPO"
eval "$(bash deploy/local/stack.sh up)"
swift build -c release --product huskimo-planner >/dev/null
swift build -c release --product huskimo-worker >/dev/null
swift build -c release --product huskimo-sandbox >/dev/null
BIN=$(swift build -c release --show-bin-path)
SANDBOX_PORT=${HUSKIMO_SANDBOX_PORT:-35800}
export SANDBOX_URL=http://127.0.0.1:$SANDBOX_PORT
CONFIG=deploy/local/demo.yaml
LOGS=$HUSKIMO_STACK_DIR/logs
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

"$BIN/huskimo-sandbox" --port "$SANDBOX_PORT" >"$LOGS/sandbox.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -sf "$SANDBOX_URL/sandbox/stats" >/dev/null && break; sleep 0.1; done

# The staging bucket (moto keeps nothing across restarts).
curl -sf -X PUT --aws-sigv4 aws:amz:us-east-1:s3 -u "$S3_ACCESS_KEY_ID:$S3_SECRET_ACCESS_KEY" \
  -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$S3_ENDPOINT/huskimo-demo" >/dev/null || true

"$BIN/huskimo-planner" ddl --config "$CONFIG" --apply
TO=$(date -u -d yesterday +%F); FROM=$(date -u -d '3 days ago' +%F)
"$BIN/huskimo-planner" plan --config "$CONFIG" --from "$FROM" --to "$TO"

# Two extract workers and one loader, as separate processes; each exits when its queue stays idle.
"$BIN/huskimo-worker" extract --config "$CONFIG" --concurrency 4 --exit-when-idle 5 --metrics-port 35811 2>"$LOGS/worker-1.log" &
w1=$!; pids+=($w1)
"$BIN/huskimo-worker" extract --config "$CONFIG" --concurrency 4 --exit-when-idle 5 2>"$LOGS/worker-2.log" &
w2=$!; pids+=($w2)
"$BIN/huskimo-worker" load --config "$CONFIG" --target local --exit-when-idle 8 --metrics-port 35813 --queue-poll-seconds 2 \
  2>"$LOGS/loader.log" &
l1=$!; pids+=($l1)
wait "$w1" "$w2"
echo "== metrics (loader, http://127.0.0.1:35813/metrics; worker-1 served :35811 while it ran)"
curl -sf http://127.0.0.1:35813/metrics | grep -E '^huskimo_(loads_total|load_rows_total)' | sed 's/^/  /' || true
wait "$l1"

echo
echo "== jobs per worker"
for f in worker-1 worker-2; do echo "  $f: $(grep -c 'job succeeded' "$LOGS/$f.log") succeeded, $(grep -c 'job failed' "$LOGS/$f.log" || true) failed lines"; done
echo "== rows per table (schema huskimo)"
PGPASSWORD=$POSTGRES_PASSWORD psql -h "$POSTGRES_HOSTNAME" -p "$POSTGRES_PORT" -U "$POSTGRES_USER" -d "$POSTGRES_DB" -At -F ' ' -c "
  SELECT 'twilio_calls', count(*) FROM huskimo.twilio_calls UNION ALL
  SELECT 'twilio_messages', count(*) FROM huskimo.twilio_messages UNION ALL
  SELECT 'twilio_recordings', count(*) FROM huskimo.twilio_recordings UNION ALL
  SELECT 'twilio_incoming_phone_numbers', count(*) FROM huskimo.twilio_incoming_phone_numbers UNION ALL
  SELECT 'twilio_pricing_phone_numbers', count(*) FROM huskimo.twilio_pricing_phone_numbers UNION ALL
  SELECT 'singular_campaigns', count(*) FROM huskimo.singular_campaigns UNION ALL
  SELECT 'singular_creatives', count(*) FROM huskimo.singular_creatives" | sed 's/^/  /'
echo "== status"
"$BIN/huskimo-planner" status --config "$CONFIG" || true
echo "[demo] the stack stays up; stop it with: deploy/local/stack.sh down" >&2
