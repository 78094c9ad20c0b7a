#!/usr/bin/env bash
# deploy/local/chaos.sh — the chaos run, longer than CI's: API faults while a driver SIGKILLs extract workers and
# the loader and restarts RabbitMQ and PostgreSQL, then checks that every partition is exact, nothing twice, nothing
# parked. Prints what it did and the verdict.
#
# Usage: deploy/local/chaos.sh [DAYS] [ROUNDS]      (defaults 10 and 30; CI runs 4 and 8 in the test suite)
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.."
eval "$(bash deploy/local/stack.sh up)"
swift build --build-tests >/dev/null
HUSKIMO_CHAOS_DAYS=${1:-10} HUSKIMO_CHAOS_ROUNDS=${2:-30} \
  swift test --skip-build --filter ChaosTests 2>&1 | grep -E "chaos|round|API:|later attempt|✔|✘"
