package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/cli"
	"github.com/mira/mira-operator/internal/endpoints"
	"github.com/mira/mira-operator/internal/integrations"
	"github.com/mira/mira-operator/internal/manager"
	"github.com/mira/mira-operator/internal/receiver"
	"github.com/mira/mira-operator/internal/testenv"
)

const apiToken = "cli-test-api-token-0123456789"

var (
	k8s        client.WithWatch
	recv       *receiver.Receiver
	recvURL    string
	kubeconfig string
	intNS      = "mira-system"
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	level := zapcore.Level(2)
	if os.Getenv("TEST_VERBOSE") != "" {
		level = -1
	}
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.Level(level)))
	// The aggregation layer is on: the plugin reads deliveries and reports
	// through the receiver's aggregated API, registered below.
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	mopts := manager.Options{MetricsAddr: "0", ProbeAddr: "0", AllowInsecureURLs: true, MaxConcurrentRecon: 2, SyncPeriod: time.Hour}
	mgr, err := manager.New(cfg, mopts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := manager.Setup(ctx, mgr, mopts); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() { _ = mgr.Start(ctx) }()

	if k8s, err = client.NewWithWatch(cfg, client.Options{Scheme: manager.Scheme()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: intNS}},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: intNS, Name: "mira-integrations"},
			StringData: map[string]string{integrations.APITokenKey: apiToken},
		},
	} {
		if err := k8s.Create(ctx, obj); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}

	dir, err := os.MkdirTemp("", "mira-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if kubeconfig, err = writeKubeconfig(cfg, filepath.Join(dir, "kubeconfig")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	var o receiver.Options
	o.BindFlags(pflag.NewFlagSet("test", pflag.ContinueOnError))
	o.Listen = "127.0.0.1:0"
	o.MetricsAddr = "0"
	o.DataDir = filepath.Join(dir, "data")
	o.IntegrationsSecret = intNS + "/mira-integrations"
	o.StatusInterval = 200 * time.Millisecond
	o.AllowedCIDRs = "127.0.0.0/8"
	o.ShutdownGrace = 2 * time.Second
	if recv, err = receiver.New(ctx, cfg, o, ctrl.Log.WithName("receiver")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- recv.Start(ctx) }()
	deadline := time.After(60 * time.Second)
	for !recv.Ready() {
		select {
		case err := <-done:
			fmt.Fprintln(os.Stderr, "receiver stopped:", err)
			return 1
		case <-deadline:
			fmt.Fprintln(os.Stderr, "receiver did not become ready")
			return 1
		case <-time.After(50 * time.Millisecond):
		}
	}
	recvURL = "http://" + recv.Addr()
	// The receiver Service as `make run` leaves it: the local-url annotation
	// points the plugin at the receiver process on loopback.
	if err := k8s.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: intNS, Name: "mira-receiver", Annotations: map[string]string{cli.LocalURLAnnotation: recvURL}},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The aggregated API over the receiver's buckets, registered as the
	// receiver command and `make run` do.
	dataDone, err := testenv.ServeDataAPI(ctx, cfg, k8s, recv.JetStream, intNS, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "data API:", err)
		return 1
	}
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "receiver stopped:", err)
	}
	if err := <-dataDone; err != nil {
		fmt.Fprintln(os.Stderr, "data API stopped:", err)
	}
	recv.Close()
	return code
}

// writeKubeconfig writes a kubeconfig for cfg, so the commands load their
// configuration the way users' do.
func writeKubeconfig(cfg *rest.Config, path string) (string, error) {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["envtest"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken,
	}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "envtest", Namespace: "default"}
	kc.CurrentContext = "envtest"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return "", err
	}
	return path, nil
}

// eventually waits for a state the system converges to; see testenv.Eventually.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	testenv.Eventually(t, what, 45*time.Second, cond)
}

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "cli-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// createEndpoint creates an endpoint for url and waits until the receiver
// sees it configured; it returns its signing secret.
func createEndpoint(t *testing.T, ns, name, url string) string {
	t.Helper()
	ctx := context.Background()
	w := &miraapi.WebhookEndpoint{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       miraapi.WebhookEndpointSpec{URL: url, Events: []string{miraapi.EventReportCompleted}},
	}
	if err := k8s.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	eventually(t, "endpoint configured in the receiver", func() error {
		e := recv.Registry.Lookup(ns, name)
		if e == nil || !endpoints.Configured(e.Object()) {
			return fmt.Errorf("not configured yet")
		}
		return nil
	})
	return signingSecret(t, ns, name+"-signing-secret")
}

func signingSecret(t *testing.T, ns, name string) string {
	t.Helper()
	s := &corev1.Secret{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
		t.Fatal(err)
	}
	return string(s.Data[miraapi.SigningSecretKey])
}

// syncBuffer is an io.Writer safe for the listener's goroutines, with a
// notification on every write so tests wait for output without sleeping.
type syncBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	notify chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{notify: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	select {
	case b.notify <- struct{}{}:
	default:
	}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor blocks until cond holds on the buffer's content.
func (b *syncBuffer) waitFor(t *testing.T, what string, cond func(string) bool) string {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		if s := b.String(); cond(s) {
			return s
		}
		select {
		case <-b.notify:
		case <-timeout:
			t.Fatalf("%s: output so far:\n%s", what, b.String())
		}
	}
}

// startListen runs `mira-operator listen` with args until the test ends and
// returns its address and stdout.
func startListen(t *testing.T, args ...string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := newSyncBuffer(), newSyncBuffer()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- cli.RunListen(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), out, errOut, func(a string) { ready <- a })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("listen: %v", err)
		}
	})
	select {
	case a := <-ready:
		return a, out
	case err := <-done:
		t.Fatalf("listen stopped: %v; stderr: %s", err, errOut.String())
	case <-time.After(60 * time.Second):
		t.Fatal("listen did not start")
	}
	return "", nil
}

// plugin runs `kubectl mira args...` against the test cluster.
func plugin(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := cli.RunKubectl(context.Background(), append(args, "--kubeconfig", kubeconfig), &out, &errOut)
	if err != nil {
		t.Logf("kubectl mira %v: stderr: %s", args, errOut.String())
	}
	return out.String(), err
}
