#!/usr/bin/env bash
# deploy/local/test.sh — start the local service stack (RabbitMQ, PostgreSQL, moto S3, Redshift-dialect
# proxy), export its connection env, check the deploy recipes, run the proxy's tests, build and run the
# Swift tests, and stop the stack again on exit.
#
# Usage: deploy/local/test.sh [swift test arguments...]     e.g. --filter StorageTests
#   HUSKIMO_KEEP_STACK=1   leave the stack running afterwards (it is reused if already up).
#   HUSKIMO_LONG=1         the long mode: also a bounded libFuzzer run of every fuzz target (Tests/Fuzz/run.sh,
#                          HUSKIMO_FUZZ_SECONDS each, default 60) and a longer chaos run (deploy/local/chaos.sh).
#   Ports / stack dir: see the header of deploy/local/stack.sh.
set -euo pipefail

REPO=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd -P)
STACK_SH=$REPO/deploy/local/stack.sh
cd "$REPO"

on_exit() {
  local rc=$?
  if ((rc != 0)); then
    # CI throws the clone away, so show the service logs here when something failed.
    local dir=${HUSKIMO_STACK_DIR:-$REPO/.local/stack}/logs f
    echo "[test] failed with exit code $rc; service status and log tails:" >&2
    bash "$STACK_SH" status >&2 || true
    for f in "$dir"/*.log; do
      [[ -e $f ]] || continue
      echo "---- $f (last 20 lines)" >&2
      tail -n 20 "$f" >&2 || true
    done
  fi
  if [[ ${HUSKIMO_KEEP_STACK:-0} != 1 ]]; then
    bash "$STACK_SH" down || true
  fi
  exit "$rc"
}
trap on_exit EXIT
# make sure the EXIT trap (and so `down`) also runs on Ctrl-C / kill
trap 'exit 130' INT
trap 'exit 143' TERM

# `up` prints the `export …` lines of the env file on stdout (messages go to stderr).
env_text=$(bash "$STACK_SH" up)
eval "$env_text"

# The deploy recipes (YAML/JSON validity, KEDA on ready + unacked, secrets, grace periods, alert and dashboard
# metrics against what the code exports), and the checker's own mutation test.
python3 deploy/check.py
python3 deploy/check.py --self-test >/dev/null

# The Redshift-dialect test proxy's own tests (they start a proxy of their own against the stack's
# PostgreSQL and moto S3); a failure stops here, before the Swift build.
python3 -m unittest discover -s Tests/Support/redshift -p 'test_redshift_dialect.py'

swift --version 2>&1 | head -n 1
# The house format (.swift-format: 4 spaces, 140 columns, ordered imports): `swift format format -i -r Sources Tests
# Package.swift` fixes what this finds.
swift format lint --strict -r Sources Tests Package.swift
# --explicit-target-dependency-import-check: a target importing a library it does not declare (a layer reaching
# sideways or up) fails the build, not just a clean build.
swift build --build-tests --explicit-target-dependency-import-check error
if [[ $# -gt 0 ]]; then
  swift test "$@"
else
  # The tests whose work runs on Swift's cooperative pool (two threads on two cores) first, apart from the
  # integration tests that block their thread waiting on child processes: the unit tests, then the async integration
  # suites, then the rest. The blocking suites carry `.ownThreads` (Tests/IntegrationTests/OwnThreads.swift): their
  # test cases run on threads of their own, so two of them cannot hold the pool while other test cases' time limits
  # run out (CI saw a test of milliseconds exceed its two minutes that way).
  # Anchored at the module: a bare "FleetTests" would also match the integration suite SingularFleetTests.
  unit='^(ConnectorTests|FleetTests)\.'
  async_suites='AMQPIntegrationTests|S3IntegrationTests|TwilioExtractionTests|RefusedObjectTests'
  swift test --skip-build --filter "$unit"
  swift test --skip-build --filter "$async_suites"
  # The chaos suite restarts RabbitMQ and PostgreSQL under everything else, the cluster fault suite kills and
  # freezes RabbitMQ nodes for half a minute at a time, and one fleet test restarts node 1 mid-run: they run last and
  # alone (CI saw the Singular fleet test lose its loader's session to a PostgreSQL restart, a status test lose node
  # 1's management API to a killed node, and the Singular test's own queue check refused while node 1 restarted).
  disruptive='ChaosTests|ClusterFaultTests|aBrokerRestartMidRunDoesNotStopTheRun'
  swift test --skip-build --skip "$unit|$async_suites|$disruptive"
  swift test --skip-build --filter aBrokerRestartMidRunDoesNotStopTheRun
  swift test --skip-build --filter ClusterFaultTests
  swift test --skip-build --filter ChaosTests
  # The release archive (static Swift stdlib) on a clean Debian 12 root built by debootstrap, installed by the
  # README's own Install section, then --version, the sample config and one sandbox night run inside it.
  archive=$(bash deploy/release.sh)
  bash deploy/release/clean-root-test.sh "$archive"
  # Every input of the fuzz corpus through its parser, without libFuzzer: no crash, bad input a classified error.
  "$(swift build --show-bin-path)/HuskimoFuzz"
fi
if [[ ${HUSKIMO_LONG:-0} == 1 ]]; then
  bash Tests/Fuzz/run.sh "${HUSKIMO_FUZZ_SECONDS:-60}"
  bash deploy/local/chaos.sh
fi
