package dataapi_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/testenv"
)

// The suite runs one kube-apiserver with the aggregation layer, one
// embedded JetStream and one data API server registered through an
// APIService, the way `make run` registers it.
var (
	k8s         client.Client
	env         *envtest.Environment
	deliveryKV  jetstream.KeyValue
	reportKV    jetstream.KeyValue
	adminConfig string // kubeconfig of a cluster admin
	aliceConfig string // kubeconfig of alice: read in team-a only
	workDir     string
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	var err error
	workDir, err = os.MkdirTemp("", "dataapi-test-")
	if err != nil {
		return 0, err
	}
	defer func() { _ = os.RemoveAll(workDir) }()
	e, cleanup, err := testenv.StartAggregating()
	if err != nil {
		return 0, err
	}
	defer cleanup()
	var cfg *rest.Config
	env, cfg, err = testenv.StartEnvironment(e)
	if err != nil {
		return 0, err
	}
	defer func() { _ = env.Stop() }()
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return 0, err
	}
	ns, err := queue.StartEmbedded(queue.EmbeddedOptions{DataDir: filepath.Join(workDir, "js"), Port: -1})
	if err != nil {
		return 0, err
	}
	defer ns.Shutdown()
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if deliveryKV, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: queue.DeliveryLogBucket}); err != nil {
		return 0, err
	}
	if reportKV, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: queue.ReportsBucket}); err != nil {
		return 0, err
	}
	// Served and registered as the receiver command and `make run` do.
	done, err := testenv.ServeDataAPI(ctx, cfg, k8s, js, "mira-system", workDir)
	if err != nil {
		return 0, err
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "data API server:", err)
		}
	}()
	if err := setupUsers(ctx); err != nil {
		return 0, err
	}
	if err := writeFixtures(ctx); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

// setupUsers writes the admin's kubeconfig and alice's, who may read
// deliveries and reports in team-a only.
func setupUsers(ctx context.Context) error {
	for _, n := range []string{"team-a", "team-b"} {
		if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}); err != nil {
			return err
		}
	}
	adminConfig = filepath.Join(workDir, "admin.kubeconfig")
	if err := testenv.WriteAdminKubeconfig(env, "admin", adminConfig); err != nil {
		return err
	}
	alice, err := env.AddUser(envtest.User{Name: "alice", Groups: []string{"team-a-readers"}}, nil)
	if err != nil {
		return err
	}
	kc, err := alice.KubeConfig()
	if err != nil {
		return err
	}
	aliceConfig = filepath.Join(workDir, "alice.kubeconfig")
	if err := os.WriteFile(aliceConfig, kc, 0o600); err != nil {
		return err
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "mira-reader", Namespace: "team-a"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{datav1.GroupName}, Resources: []string{"deliveries", "reports"},
			Verbs: []string{"get", "list"},
		}},
	}
	if err := k8s.Create(ctx, role); err != nil {
		return err
	}
	return k8s.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice", Namespace: "team-a"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "mira-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}},
	})
}

// kubectl runs the kubectl binary on PATH with a kubeconfig and its own
// discovery cache; it returns stdout, stderr and the error.
func kubectl(t *testing.T, kubeconfig string, args ...string) (string, string, error) {
	t.Helper()
	args = append([]string{"--kubeconfig", kubeconfig, "--cache-dir", t.TempDir()}, args...)
	cmd := exec.Command("kubectl", args...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}
