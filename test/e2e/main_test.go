// Package e2e runs the real mira-operator binary as processes against a real
// kube-apiserver and etcd, and drives it the way a user would.
package e2e

import (
	"context"
	"fmt"
	"github.com/mira/mira-operator/test/harness"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/mira/mira-operator/internal/manager"
	"github.com/mira/mira-operator/internal/testenv"
)

var (
	k8s        client.Client
	restCfg    *rest.Config
	kubeconfig string
	binary     string
	workDir    string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	// The aggregation layer is on, for the receiver's data API.
	aggEnv, cleanup, err := testenv.StartAggregating()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	env, cfg, err := testenv.StartEnvironment(aggEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	restCfg = cfg
	workDir, err = os.MkdirTemp("", "mira-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(workDir) }()

	kubeconfig = filepath.Join(workDir, "kubeconfig")
	if err := testenv.WriteAdminKubeconfig(env, "e2e-admin", kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if binary, err = harness.BuildOperator(workDir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	k8s, err = client.New(cfg, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// start runs a mira-operator subcommand (manager or receiver) with the test
// kubeconfig given as --kubeconfig; $KUBECONFIG points nowhere, so the
// processes only reach the API server if the flag works.
func start(t *testing.T, name string, args ...string) *harness.Process {
	t.Helper()
	args = append(args, "--kubeconfig", kubeconfig)
	p := harness.Start(t, workDir, []string{"KUBECONFIG=" + filepath.Join(workDir, "no-such-kubeconfig")}, name, binary, args...)
	p.StopTimeout = 20 * time.Second
	return p
}

// eventually waits for a state the system converges to; see testenv.Eventually.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	testenv.Eventually(t, what, timeout, cond)
}

var _ = context.Background
