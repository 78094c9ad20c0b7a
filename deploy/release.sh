#!/usr/bin/env bash
# deploy/release.sh — builds the release archive and prints its path:
#   dist/huskimo-<version>-linux-<arch>.tar.gz  (and <archive>.sha256 beside it, in sha256sum's format)
# holding huskimo-<version>/ with bin/huskimo-planner and bin/huskimo-worker (Swift's standard library and Foundation
# linked statically: no toolchain needed to run them), sql/, deploy/, huskimo.example.yml, LICENSE, CHANGELOG.md,
# README.md and runtime-packages.txt (what the binaries need from the system; the README's Install section).
# The version is the one in Sources/Shared/Core/Support/Version.swift; <arch> is Debian's (amd64, arm64).
set -euo pipefail
REPO=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd -P)
cd "$REPO"

version=$(sed -n 's/.*static let current = "\([^"]*\)".*/\1/p' Sources/Shared/Core/Support/Version.swift)
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] || { echo "release: no version in Version.swift" >&2; exit 1; }
arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
name=huskimo-$version
scratch=${HUSKIMO_RELEASE_SCRATCH:-$REPO/.build-release}

echo "[release] building $name for linux-$arch (release, static Swift stdlib) in $scratch" >&2
swift build -c release --static-swift-stdlib --scratch-path "$scratch" --product huskimo-planner >&2
swift build -c release --static-swift-stdlib --scratch-path "$scratch" --product huskimo-worker >&2
bin=$(swift build -c release --static-swift-stdlib --scratch-path "$scratch" --show-bin-path)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
top=$stage/$name
mkdir -p "$top/bin"
install -m 755 "$bin/huskimo-planner" "$bin/huskimo-worker" "$top/bin/"
strip "$top/bin/huskimo-planner" "$top/bin/huskimo-worker"
cp -r sql "$top/sql"
mkdir -p "$top/deploy"
cp -r deploy/systemd deploy/cron deploy/kubernetes deploy/rabbitmq deploy/prometheus deploy/grafana deploy/README.md "$top/deploy/"
cp deploy/release/Containerfile "$top/deploy/Containerfile"
cp deploy/release/huskimo.example.yml "$top/huskimo.example.yml"
cp deploy/release/runtime-packages.txt "$top/runtime-packages.txt"
cp LICENSE CHANGELOG.md README.md "$top/"

mkdir -p dist
archive=dist/$name-linux-$arch.tar.gz
# Reproducible order and owners: the same tree gives the same archive.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@${SOURCE_DATE_EPOCH:-0}" -C "$stage" -czf "$archive" "$name"
(cd dist && sha256sum "$(basename "$archive")" >"$(basename "$archive").sha256")
echo "[release] $(du -h "$archive" | cut -f1) $(cut -d' ' -f1 "$archive.sha256")" >&2
echo "$REPO/$archive"
