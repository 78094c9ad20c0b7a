#!/usr/bin/env bash
# Tests/Fuzz/run.sh — builds the fuzz targets with libFuzzer and runs each for SECONDS (default 60), starting from the
# seed corpus in Tests/Fuzz/corpus/<target>; the inputs it finds go to .build-fuzz/corpus/<target> (copy the ones
# worth keeping into the repo's corpus: the test suite replays it on every run).
# Bounded: 512 MB RSS, 5 s per input, 64 KiB inputs. A crash leaves crash-* in .build-fuzz/findings/ and exits 1.
#
# Usage: Tests/Fuzz/run.sh [SECONDS] [TARGET...]     targets: json twilio singular arraystream config job load http
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.."
seconds=${1:-60}; shift || true
targets=("$@"); [[ ${#targets[@]} -gt 0 ]] || targets=(json twilio singular arraystream config job load http)
swift build --product HuskimoFuzz --build-path .build-fuzz -Xswiftc -sanitize=fuzzer -Xswiftc -DHUSKIMO_FUZZ >/dev/null
bin=$(swift build --product HuskimoFuzz --build-path .build-fuzz --show-bin-path)/HuskimoFuzz
mkdir -p .build-fuzz/findings
for target in "${targets[@]}"; do
  work=.build-fuzz/corpus/$target
  mkdir -p "$work"
  HUSKIMO_FUZZ_TARGET=$target "$bin" -max_total_time="$seconds" -rss_limit_mb=512 -timeout=5 -max_len=65536 \
    -artifact_prefix=".build-fuzz/findings/$target-" -print_final_stats=1 "$work" "Tests/Fuzz/corpus/$target" \
    2>"/tmp/huskimo-fuzz-$target.log" \
    || { tail -40 "/tmp/huskimo-fuzz-$target.log"; echo "fuzz $target: FAILED (artifact in .build-fuzz/findings/)"; exit 1; }
  echo "fuzz $target: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "/tmp/huskimo-fuzz-$target.log" | grep -o '[0-9]*$') runs in ${seconds}s, no crash, $(ls "$work" | wc -l) inputs found"
done
