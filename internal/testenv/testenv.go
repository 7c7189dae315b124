// Package testenv starts a real kube-apiserver and etcd (envtest) for tests,
// with the binaries that `make` compiles into bin/ and the CRDs from
// config/crd/bases.
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// RepoRoot is the repository's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Start starts the control plane with the CRDs installed. Call Stop on the
// returned environment when done. KUBEBUILDER_ASSETS wins when set;
// otherwise bin/ of the repository is used.
func Start() (*envtest.Environment, *rest.Config, error) {
	return StartEnvironment(newEnvironment())
}

// newEnvironment is the environment Start starts: the control-plane
// binaries and the CRDs of this repository.
func newEnvironment() *envtest.Environment {
	root := RepoRoot()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(root, "bin")
	}
	return &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
}

// StartEnvironment starts env (from Start's defaults, possibly configured
// further, e.g. by StartAggregating).
func StartEnvironment(env *envtest.Environment) (*envtest.Environment, *rest.Config, error) {
	assets := env.BinaryAssetsDirectory
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			return nil, nil, fmt.Errorf("control-plane binary %s missing in %s: run `make envtest-bins` (make test does it): %w", b, assets, err)
		}
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, nil, fmt.Errorf("start envtest: %w", err)
	}
	// Tests create many objects quickly.
	cfg.QPS, cfg.Burst = 500, 1000
	return env, cfg, nil
}

// Eventually polls cond until it returns nil, failing the test with the last
// error after timeout. It waits for a state the system converges to (an
// object's status, a count at a consumer); it is not a fixed sleep.
func Eventually(t testing.TB, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

// WriteAdminKubeconfig adds a cluster-admin user (group system:masters) to
// env and writes its kubeconfig to path, for processes run against env.
func WriteAdminKubeconfig(env *envtest.Environment, name, path string) error {
	user, err := env.AddUser(envtest.User{Name: name, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("add user %s: %w", name, err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("render kubeconfig of %s: %w", name, err)
	}
	return os.WriteFile(path, kc, 0o600)
}
