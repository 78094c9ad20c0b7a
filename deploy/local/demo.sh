#!/usr/bin/env bash
# deploy/local/demo.sh — the main job on a local stack. For now (foundation) it brings the services up,
# builds the binaries and validates the example fleet configuration; the planner, workers and loader
# land with the fleet issue and will be run from here.
set -euo pipefail
REPO=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd -P)
cd "$REPO"
eval "$(bash deploy/local/stack.sh up)"
swift build
export TEST_AMQP_PASSWORD=guest TEST_TWILIO_TOKEN=demo-token TEST_SINGULAR_KEY=demo-key \
  TEST_S3_SECRET="$S3_SECRET_ACCESS_KEY" TEST_PG_PASSWORD="$POSTGRES_PASSWORD"
.build/debug/huskimo-planner config --config Tests/SharedTests/Fixtures/fleet.yaml
echo
bash deploy/local/stack.sh status
echo "[demo] the stack stays up; stop it with: deploy/local/stack.sh down" >&2
