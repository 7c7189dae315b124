# Mira operator. `make help` lists the targets.

# The build's version, commit and date, stamped into the binary with
# -ldflags (internal/version) by `make build`, `make release` and the
# Dockerfile. `make release VERSION=v1.2.3` overrides VERSION.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
VERSION_PKG := github.com/mira/mira-operator/internal/version
LDFLAGS := -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Commit=$(COMMIT) -X $(VERSION_PKG).Date=$(DATE)
IMAGE_REPO ?= ghcr.io/mira/mira-operator
IMG ?= $(IMAGE_REPO):$(VERSION)
CONTROLLER_TOOLS_VERSION ?= v0.23.0
# kube-openapi's openapi-gen, at the version go.mod already requires.
OPENAPI_GEN_VERSION ?= v0.0.0-20260721132016-d427ff9ee9ad
GOLANGCI_LINT_VERSION ?= v2.15.0
# Where make release's krew manifest points for the plugin tarballs.
RELEASE_URL ?= https://github.com/mira/mira-operator/releases/download/$(VERSION)
BIN := $(CURDIR)/bin
GO ?= go
KUBECTL ?= kubectl
# Tests and `make run` use the control plane compiled into bin/.
export KUBEBUILDER_ASSETS := $(BIN)

.DEFAULT_GOAL := help

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(BIN)/controller-gen ## Generate CRDs and RBAC from the API types and kubebuilder markers.
	$(BIN)/controller-gen crd:allowDangerousTypes=true paths=./api/v1alpha1/... output:crd:artifacts:config=config/crd/bases
	$(BIN)/controller-gen rbac:roleName=mira-manager paths=./controllers/... output:rbac:artifacts:config=config/rbac
	cp config/crd/bases/*.yaml charts/mira-operator/crds/
	cp config/overlays/prometheus/prometheusrule.yaml charts/mira-operator/files/
	$(GO) run ./hack/crd-docs

.PHONY: generate
generate: $(BIN)/controller-gen $(BIN)/openapi-gen ## Generate DeepCopy methods and the data API's OpenAPI definitions.
	$(BIN)/controller-gen object:headerFile=hack/boilerplate.go.txt paths=./api/...
	$(BIN)/openapi-gen --output-dir internal/dataapi/openapi --output-pkg $(shell $(GO) list -m)/internal/dataapi/openapi \
		--output-file zz_generated.openapi.go --output-model-name-file zz_generated.model_name.go --go-header-file hack/boilerplate.go.txt \
		--readonly-pkg k8s.io/apimachinery/pkg/apis/meta/v1 --readonly-pkg k8s.io/apimachinery/pkg/runtime --readonly-pkg k8s.io/apimachinery/pkg/version \
		--report-filename internal/dataapi/openapi/api-violations.list \
		k8s.io/apimachinery/pkg/apis/meta/v1 k8s.io/apimachinery/pkg/runtime k8s.io/apimachinery/pkg/version ./api/data/v1alpha1

.PHONY: verify
verify: manifests generate ## Fail when generated files or formatting are stale.
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	@git diff --exit-code -- api config charts docs/crd-reference.md docs/operations.md || { echo "generated files are stale: run 'make manifests generate' and commit"; exit 1; }

.PHONY: fmt
fmt: ## Run gofmt.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	$(GO) vet ./...

.PHONY: lint
lint: $(BIN)/golangci-lint ## Run golangci-lint (.golangci.yml): govet, staticcheck, errcheck, gosec, revive, ...
	$(BIN)/golangci-lint run ./...

.PHONY: test
test: envtest-bins render-tools chromium $(BIN)/nats-server ## Run unit and envtest (real kube-apiserver + etcd) tests with the race detector, fuzz seed corpora included.
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 40m ./...

.PHONY: reliability
reliability: envtest-bins $(BIN)/nats-server ## Run the fault-injection suite at full load (figures in docs/reliability.md).
	MIRA_RELIABILITY=full $(GO) test -count=1 -timeout 30m -v ./test/reliability/

.PHONY: bench
bench: envtest-bins ## Run the benchmarks and write docs/benchmarks.md.
	$(GO) run ./hack/bench -out docs/benchmarks.md

##@ Build

.PHONY: build
build: $(BIN)/mira-operator ## Build the mira-operator binary into bin/.

.PHONY: $(BIN)/mira-operator
$(BIN)/mira-operator:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $@ ./cmd/mira-operator
	ln -sf mira-operator $(BIN)/kubectl-mira

.PHONY: run
run: envtest-bins build ## Run the whole product locally: control plane, CRDs, samples, operator (Ctrl-C stops it all).
	$(GO) build -o $(BIN)/dev-runner ./hack/dev
	$(BIN)/dev-runner -bin $(BIN) -dir $(BIN)/dev

.PHONY: demo
demo: ## Against a running `make run`: a signed Recall webhook becomes a scored report and signed deliveries.
	$(GO) run ./hack/demo

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) --build-arg DATE=$(DATE) -t $(IMG) .

##@ Deployment

.PHONY: install
install: manifests ## Install the CRDs into the cluster of the current kubeconfig.
	$(KUBECTL) apply --server-side -k config/crd

.PHONY: deploy
deploy: manifests $(BIN)/kustomize ## Deploy the operator with image IMG into the cluster of the current kubeconfig.
	hack/release.sh install $(IMG) | $(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: $(BIN)/kustomize ## Remove the operator from the cluster of the current kubeconfig.
	hack/release.sh install $(IMG) | $(KUBECTL) delete --ignore-not-found -f -

##@ Release

.PHONY: release
release: render-tools ## Write dist/ for VERSION=vX.Y.Z: install.yaml, crds.yaml, the chart, kubectl-mira tarballs, the krew manifest, sha256sums.txt.
	BIN=$(BIN) VERSION=$(VERSION) LDFLAGS="$(LDFLAGS)" IMAGE_REPO=$(IMAGE_REPO) RELEASE_URL=$(RELEASE_URL) hack/release.sh dist

##@ Tools (built from the Go module proxy into bin/, only when missing)

.PHONY: envtest-bins
envtest-bins: $(BIN)/kube-apiserver $(BIN)/etcd ## Compile kube-apiserver and etcd from Kubernetes' Go modules.

$(BIN)/kube-apiserver:
	hack/build-control-plane.sh kube-apiserver $@

$(BIN)/etcd:
	hack/build-control-plane.sh etcd $@

.PHONY: render-tools
render-tools: $(BIN)/helm $(BIN)/kustomize ## Build helm and kustomize from hack/tools/render into bin/.

$(BIN)/helm:
	hack/build-render-tools.sh helm $@

$(BIN)/kustomize:
	hack/build-render-tools.sh kustomize $@

.PHONY: chromium
chromium: ## Install Debian's chromium package (apt-get) when missing, for the dashboard's browser test.
	hack/install-chromium.sh

$(BIN)/nats-server:
	hack/build-nats-server.sh $@

$(BIN)/openapi-gen:
	GOBIN=$(BIN) $(GO) install k8s.io/kube-openapi/cmd/openapi-gen@$(OPENAPI_GEN_VERSION)

$(BIN)/controller-gen:
	GOBIN=$(BIN) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

# From the Go module proxy, pinned (a few minutes the first time).
$(BIN)/golangci-lint:
	GOBIN=$(BIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
