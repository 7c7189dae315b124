#!/usr/bin/env bash
# Release artefacts. Called by the Makefile with BIN, VERSION, COMMIT, DATE,
# LDFLAGS, IMAGE_REPO and RELEASE_URL in the environment.
#
#   hack/release.sh install IMAGE   print config/default with the image set to IMAGE
#                                   (repo:tag, repo@sha256:..., repo:tag@sha256:...);
#                                   make deploy and make release use it.
#   hack/release.sh dist            write dist/ (make release VERSION=vX.Y.Z):
#     install.yaml   CRDs, namespace, RBAC, Deployments, Services, PVC, PDBs; the image
#                    pinned to $IMAGE_REPO:$VERSION
#     crds.yaml      the CRDs alone, for upgrades (docs/upgrade.md)
#     mira-operator-<semver>.tgz   the Helm chart, version and appVersion set
#     kubectl-mira_<version>_<os>_<arch>.tar.gz   the plugin for linux and darwin, amd64 and arm64
#     mira.yaml      the krew plugin manifest, with the tarballs' sha256
#     sha256sums.txt sha256 of every file above
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
BIN=${BIN:-$root/bin}
base_image=ghcr.io/mira/mira-operator

# render_install IMAGE: kustomize build of config/default with the image
# replaced, through a throw-away kustomization (config/ stays untouched).
# A subshell, so its EXIT trap removes that kustomization.
render_install() (
	local img=$1 name tag="" digest=""
	name=${img%@*}
	[[ $img == *@* ]] && digest=${img#*@}
	local last=${name##*/}
	if [[ $last == *:* ]]; then
		tag=${last##*:}
		name=${name%:*}
	fi
	# Inside the repository (bin/ is git-ignored): kustomize takes only
	# relative paths to other kustomizations.
	local dir
	mkdir -p "$root/bin"
	dir=$(mktemp -d "$root/bin/.install-XXXXXX")
	trap 'rm -rf "$dir"' EXIT
	{
		echo "apiVersion: kustomize.config.k8s.io/v1beta1"
		echo "kind: Kustomization"
		echo "resources:"
		echo "  - ../../config/default"
		echo "images:"
		echo "  - name: $base_image"
		echo "    newName: $name"
		[[ -n $tag ]] && echo "    newTag: \"$tag\""
		[[ -n $digest ]] && echo "    digest: \"$digest\""
		true
	} >"$dir/kustomization.yaml"
	"$BIN/kustomize" build "$dir"
)

dist() {
	: "${VERSION:?}" "${IMAGE_REPO:?}" "${RELEASE_URL:?}"
	if ! [[ $VERSION =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
		echo "VERSION=$VERSION: want vX.Y.Z (make release VERSION=v1.2.3)" >&2
		exit 2
	fi
	local out=$root/dist
	rm -rf "$out"
	mkdir -p "$out"
	echo "==> dist/install.yaml ($IMAGE_REPO:$VERSION)"
	render_install "$IMAGE_REPO:$VERSION" >"$out/install.yaml"
	echo "==> dist/crds.yaml"
	"$BIN/kustomize" build config/crd >"$out/crds.yaml"
	echo "==> the Helm chart"
	# The chart's image default is its appVersion, so it pins the same image.
	"$BIN/helm" lint --strict charts/mira-operator
	"$BIN/helm" package charts/mira-operator --version "${VERSION#v}" --app-version "$VERSION" -d "$out"
	local platforms=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64) p os arch tgz
	# Global, not local: the EXIT trap runs after dist has returned.
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	local krew_platforms=""
	for p in "${platforms[@]}"; do
		os=${p%/*} arch=${p#*/}
		echo "==> kubectl-mira $os/$arch"
		mkdir -p "$work/$os-$arch"
		CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -ldflags "-s -w $LDFLAGS" \
			-o "$work/$os-$arch/kubectl-mira" ./cmd/mira-operator
		tgz=kubectl-mira_${VERSION}_${os}_${arch}.tar.gz
		# Reproducible: fixed owner, order and mtime.
		tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/$os-$arch" -cf - kubectl-mira | gzip -n >"$out/$tgz"
		krew_platforms+="  - selector:
      matchLabels: {os: $os, arch: $arch}
    uri: $RELEASE_URL/$tgz
    sha256: $(sha256sum "$out/$tgz" | cut -d' ' -f1)
    bin: kubectl-mira
"
	done
	echo "==> dist/mira.yaml (krew)"
	cat >"$out/mira.yaml" <<KREW
apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: mira
spec:
  version: $VERSION
  homepage: https://github.com/mira/mira-operator
  shortDescription: Mira webhook deliveries, redelivery, test events, dashboard
  description: |
    kubectl mira reads the delivery log of Mira WebhookEndpoints and acts on
    them: deliveries, delivery, redeliver, replay, test, rotate-secret, enable,
    report, rescore, dashboard (a local web page) and version. It talks to
    the API server of your kubeconfig and, through its service proxy, to the
    Mira receiver.
  platforms:
$krew_platforms
KREW
	echo "==> dist/sha256sums.txt"
	(cd "$out" && sha256sum install.yaml crds.yaml mira-operator-*.tgz kubectl-mira_*.tar.gz mira.yaml >sha256sums.txt)
	ls -l "$out"
}

case "${1:-}" in
install) render_install "${2:?usage: $0 install IMAGE}" ;;
dist) dist ;;
*)
	echo "usage: $0 install IMAGE | dist" >&2
	exit 2
	;;
esac
