#!/usr/bin/env bash
# Compiles one control-plane binary (kube-apiserver or etcd) from the tool
# module in hack/tools, printing progress: the first build of kube-apiserver
# compiles ~2,000 packages and takes about 5–8 minutes on 2 cores.
set -euo pipefail
name=$1 out=$2
cd "$(dirname "$0")/tools"
echo "==> building $name into $out (first time only; later runs reuse it)"
start=$(date +%s)
status_file=$(mktemp)
trap 'rm -f "$status_file" "$out.tmp"' EXIT
# -v prints each package as it compiles: count them as progress.
{ go build -v -o "$out.tmp" "./$name" 2>&1; echo "exit=$?" >"$status_file"; } | awk -v name="$name" '
  { n++; if (n % 100 == 0) { printf "    %s: %d packages compiled\n", name, n; fflush() } }
  /\.go:[0-9]+|cannot |error/ { print "    " $0; fflush() }'
if [[ "$(cat "$status_file")" != "exit=0" || ! -s "$out.tmp" ]]; then
  echo "==> building $name failed" >&2
  exit 1
fi
mv "$out.tmp" "$out"
echo "==> built $name in $(( $(date +%s) - start ))s"
