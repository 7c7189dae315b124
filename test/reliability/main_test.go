// Package reliability is Mira's fault-injection suite: the real
// mira-operator binary (manager and receivers) as processes against a real
// kube-apiserver and etcd, with real nats-server processes for the cluster
// mode, under load, with faults injected (SIGKILL, a NATS node restarted, the
// API server stopped, a full disk). Every scenario counts at a consumer by
// delivery id and reports delivered, duplicates and lost (lost must be 0).
//
// The short mode runs as part of `go test ./...` (make test) and scales the
// load down; MIRA_RELIABILITY=full (make reliability) runs the figures of
// docs/reliability.md. MIRA_RELIABILITY_REPORT=<file> appends one line per
// scenario with its measured counts.
package reliability

import (
	"fmt"
	"github.com/mira/mira-operator/test/harness"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/mira/mira-operator/internal/manager"
	"github.com/mira/mira-operator/internal/testenv"
)

var (
	env        *envtest.Environment
	k8s        client.Client
	restCfg    *rest.Config
	kubeconfig string
	binary     string
	natsServer string
	workDir    string
	// full is MIRA_RELIABILITY=full: the loads and durations of the report.
	full = os.Getenv("MIRA_RELIABILITY") == "full"
)

// scale picks the short or the full value of a load or duration.
func scale[T any](short, long T) T {
	if full {
		return long
	}
	return short
}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	root := testenv.RepoRoot()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(root, "bin")
	}
	var err error
	workDir, err = os.MkdirTemp("", "mira-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(workDir) }()
	// A fixed certificate directory keeps the API server's serving
	// certificate and port across the stop/start of the outage scenario, so
	// the processes' kubeconfig stays valid.
	certDir := filepath.Join(workDir, "apiserver-certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env = &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	// kube-apiserver's graceful shutdown can take longer than envtest's
	// default stop timeout on a loaded machine.
	env.ControlPlane.APIServer = &envtest.APIServer{CertDir: certDir}
	env.ControlPlaneStopTimeout = 2 * time.Minute
	restCfg, err = env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start envtest:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	restCfg.QPS, restCfg.Burst = 500, 1000

	kubeconfig = filepath.Join(workDir, "kubeconfig")
	if err := testenv.WriteAdminKubeconfig(env, "reliability-admin", kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if binary, err = harness.BuildOperator(workDir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// nats-server from the Go module proxy (the version go.mod requires),
	// into bin/ when missing.
	natsServer = filepath.Join(root, "bin", "nats-server")
	nb := exec.Command(filepath.Join(root, "hack", "build-nats-server.sh"), natsServer)
	nb.Dir = root
	if out, err := nb.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build nats-server: %v\n%s", err, out)
		return 1
	}
	k8s, err = client.New(restCfg, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}
