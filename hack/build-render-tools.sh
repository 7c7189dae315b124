#!/usr/bin/env bash
# Compiles one manifest-rendering tool (helm or kustomize) from the tool module
# in hack/tools/render into OUT, so tests and docs render config/ and the Helm
# chart without kubectl or a downloaded helm binary. The first helm build
# compiles ~700 packages (about 2–3 minutes on 2 cores); later runs reuse it.
set -euo pipefail
name=$1 out=$2
case "$out" in /*) ;; *) out=$PWD/$out ;; esac
cd "$(dirname "$0")/tools/render"
ldflags=()
case "$name" in
  helm)
    pkg=helm.sh/helm/v3/cmd/helm
    # What helm's own Makefile stamps in: its version, and the Kubernetes
    # version `helm template` assumes (else v1.20, which kubeVersion refuses).
    helm_version=$(go list -m -f '{{.Version}}' helm.sh/helm/v3)
    k8s_minor=$(go list -m -f '{{.Version}}' k8s.io/client-go | cut -d. -f2)
    ldflags=(-ldflags "-X helm.sh/helm/v3/internal/version.version=$helm_version \
-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor \
-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$k8s_minor")
    ;;
  kustomize) pkg=./kustomize ;;
  *) echo "usage: $0 helm|kustomize OUT" >&2; exit 2 ;;
esac
echo "==> building $name into $out (first time only; later runs reuse it)"
start=$(date +%s)
mkdir -p "$(dirname "$out")"
tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT
go build "${ldflags[@]}" -o "$tmp" "$pkg"
mv "$tmp" "$out"
echo "==> built $name in $(( $(date +%s) - start ))s"
