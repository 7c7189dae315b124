#!/usr/bin/env bash
# Compiles nats-server into OUT (default bin/nats-server) from
# github.com/nats-io/nats-server/v2, at the version go.mod requires (the one
# the embedded server runs), through the Go module proxy. The reliability
# suite runs three of them as a JetStream cluster on loopback. Only builds
# when OUT is missing.
set -euo pipefail
out=${1:-bin/nats-server}
case "$out" in /*) ;; *) out=$PWD/$out ;; esac
[ -x "$out" ] && exit 0
cd "$(dirname "$0")/.."
version=$(go list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2)
echo "==> building nats-server $version into $out (first time only)"
mkdir -p "$(dirname "$out")"
tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT
go build -o "$tmp" github.com/nats-io/nats-server/v2
mv "$tmp" "$out"
