#!/usr/bin/env bash
# deploy/release/clean-root-test.sh ARCHIVE — the release archive on a clean Debian 12, as a new user meets it:
#   1. a root of Debian 12 built by `debootstrap --variant=minbase bookworm` from Debian's archive (cached as a
#      tarball under the stack dir: built once, unpacked fresh for every run);
#   2. the README's Install section run there word for word (its ```sh block, line by line, under `set -e`, in a
#      directory holding the archive and its .sha256): it installs exactly runtime-packages.txt and unpacks the
#      archive into /opt;
#   3. under chroot: `--version` of both executables (the version of Version.swift), `config` on the sample config
#      with its variables set, and `run` of one sandbox night against the local stack on loopback (the sandbox and
#      the services stay outside the root), checked in PostgreSQL from outside.
# A runtime library the list forgot fails step 2 or 3. Needs root and the local stack (deploy/local/stack.sh up).
set -euo pipefail
REPO=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd -P)
cd "$REPO"
archive=$(readlink -f "${1:?usage: clean-root-test.sh ARCHIVE}")
[[ -s $archive && -s $archive.sha256 ]] || { echo "clean-root: $archive or its .sha256 missing" >&2; exit 2; }
eval "$(bash deploy/local/stack.sh env)"
log() { printf '[clean-root] %s\n' "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

base=$HUSKIMO_STACK_DIR/clean-root-bookworm.tar
if [[ ! -s $base ]]; then
  t=$(now)
  log "building a clean Debian 12 root with debootstrap (once; cached as $base)"
  tmp=$(mktemp -d /tmp/huskimo-bookworm.XXXXXX)
  debootstrap --variant=minbase bookworm "$tmp" "${HUSKIMO_DEBIAN_MIRROR:-http://deb.debian.org/debian}" \
    >"$HUSKIMO_STACK_DIR/logs/clean-root-debootstrap.log" 2>&1 \
    || { tail -20 "$HUSKIMO_STACK_DIR/logs/clean-root-debootstrap.log" >&2; exit 1; }
  tar -C "$tmp" -cf "$base.tmp" . && mv "$base.tmp" "$base"
  rm -rf "$tmp"
  log "root built in $(elapsed "$t") s ($(du -h "$base" | cut -f1))"
fi

root=$(mktemp -d /tmp/huskimo-clean-root.XXXXXX)
sandbox_pid=""
cleanup() {
  [[ -n $sandbox_pid ]] && kill "$sandbox_pid" 2>/dev/null || true
  mountpoint -q "$root/proc" && umount -l "$root/proc" || true
  rm -rf "$root"
}
trap cleanup EXIT
tar -C "$root" -xf "$base"
mount -t proc proc "$root/proc"
cp /etc/resolv.conf "$root/etc/resolv.conf"   # apt inside reaches Debian's archive

# 2. The README's Install section, word for word.
mkdir -p "$root/root/release"
cp "$archive" "$archive.sha256" "$root/root/release/"
install_lines=$(sed -n '/^## Install/,/^## [^I]/p' README.md | sed -n '/^```sh$/,/^```$/p' | sed '1d;$d')
[[ -n $install_lines ]] || { echo "clean-root: README.md has no ## Install section with a \`\`\`sh block" >&2; exit 1; }
# The archive named there is this version's: the README says what users will type.
version=$(sed -n 's/.*static let current = "\([^"]*\)".*/\1/p' Sources/Shared/Core/Support/Version.swift)
grep -q "huskimo-$version-linux-" <<<"$install_lines" || { echo "clean-root: the Install section does not name version $version" >&2; exit 1; }
printf '%s\n' "$install_lines" >"$root/root/release/install.sh"
t=$(now)
log "running the README's Install section in the clean root:"
sed 's/^/    /' "$root/root/release/install.sh" >&2
chroot "$root" /bin/bash -c 'cd /root/release && set -ex && . ./install.sh' >"$HUSKIMO_STACK_DIR/logs/clean-root-install.log" 2>&1 \
  || { tail -30 "$HUSKIMO_STACK_DIR/logs/clean-root-install.log" >&2; exit 1; }
log "installed in $(elapsed "$t") s"

# 3. The executables, the sample config and one night.
in_root() { chroot "$root" env -i PATH=/usr/bin:/bin HOME=/root "$@"; }
for exe in huskimo-planner huskimo-worker; do
  got=$(in_root "/opt/huskimo/bin/$exe" --version)
  [[ $got == "$version" ]] || { echo "clean-root: $exe --version printed '$got', expected $version" >&2; exit 1; }
done
in_root HUSKIMO_RABBITMQ_URL=amqps://huskimo:x@rabbitmq.example.internal:5671/huskimo HUSKIMO_TWILIO_ACCOUNT_SID=AC00000000000000000000000000000001 \
  HUSKIMO_TWILIO_AUTH_TOKEN=t HUSKIMO_SINGULAR_API_KEY=k HUSKIMO_S3_ACCESS_KEY_ID=a HUSKIMO_S3_SECRET_ACCESS_KEY=s \
  HUSKIMO_WAREHOUSE_PASSWORD=p /opt/huskimo/bin/huskimo-planner config --config /opt/huskimo/huskimo.example.yml >/dev/null \
  || { echo "clean-root: the sample config does not validate" >&2; exit 1; }

sandbox=$(swift build --show-bin-path)/huskimo-sandbox
[[ -x $sandbox ]] || swift build --product huskimo-sandbox >&2
port=${HUSKIMO_CLEAN_ROOT_SANDBOX_PORT:-35820}
"$sandbox" --port "$port" >"$HUSKIMO_STACK_DIR/logs/clean-root-sandbox.log" 2>&1 &
sandbox_pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/sandbox/stats" >/dev/null && break; sleep 0.1; done
schema=clean_root_$$
bucket=huskimo-clean-root
curl -sf -X PUT --aws-sigv4 aws:amz:us-east-1:s3 -u "$S3_ACCESS_KEY_ID:$S3_SECRET_ACCESS_KEY" \
  -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$S3_ENDPOINT/$bucket" >/dev/null || true
cat >"$root/root/release/night.yaml" <<YAML
queue: {url: "$AMQP_URL", prefix: $schema, retry_delays: [1, 2]}
fetch: {settle_days: 0}
channels:
  - {name: acme, type: twilio, api_user: AC00000000000000000000000000000001, api_key: sandbox-token-1, api_url: "http://127.0.0.1:$port", pricing_url: "http://127.0.0.1:$port"}
s3: {access_key_id: "$S3_ACCESS_KEY_ID", secret_access_key: "$S3_SECRET_ACCESS_KEY", region: us-east-1, bucket: $bucket, folder_path: $schema, endpoint: "$S3_ENDPOINT", path_style: true}
targets:
  - {name: local, type: postgres, host: "$POSTGRES_HOSTNAME", port: $POSTGRES_PORT, database: "$POSTGRES_DB", username: "$POSTGRES_USER", password: "$POSTGRES_PASSWORD", schema: $schema, sslmode: disable}
YAML
t=$(now)
in_root /opt/huskimo/bin/huskimo-planner ddl --config /root/release/night.yaml --apply >/dev/null
in_root /opt/huskimo/bin/huskimo-planner run --config /root/release/night.yaml --date 2026-11-20 --resource calls --resource messages --workers 2 \
  >"$HUSKIMO_STACK_DIR/logs/clean-root-run.log" 2>&1 || { tail -30 "$HUSKIMO_STACK_DIR/logs/clean-root-run.log" >&2; exit 1; }
psql_() { PGPASSWORD=$POSTGRES_PASSWORD psql -h "$POSTGRES_HOSTNAME" -p "$POSTGRES_PORT" -U "$POSTGRES_USER" -d "$POSTGRES_DB" -Atq "$@"; }
for resource in calls messages; do
  got=$(psql_ -c "SELECT count(*) FROM $schema.twilio_$resource")
  want=$(curl -sf "http://127.0.0.1:$port/sandbox/expected?account=AC00000000000000000000000000000001&resource=$resource&day=2026-11-20" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
  [[ $got == "$want" && $got -gt 0 ]] || { echo "clean-root: twilio_$resource has $got rows, the sandbox served $want" >&2; exit 1; }
done
psql_ -c "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1 || true
log "one night run in the clean root in $(elapsed "$t") s: the rows are the sandbox's; ok"
