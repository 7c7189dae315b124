package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/cli"
	"github.com/mira/mira-operator/internal/endpoints"
	"github.com/mira/mira-operator/internal/events"
	"github.com/mira/mira-operator/internal/integrations"
	"github.com/mira/mira-operator/internal/manager"
	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/receiver"
	"github.com/mira/mira-operator/internal/scoring"
	"github.com/mira/mira-operator/internal/testenv"
)

// The suite runs what `make run` runs, in-process: a real API server and
// etcd with the aggregation layer, the manager, a receiver with its
// embedded JetStream, the receiver Service whose local-url annotation
// `kubectl mira` follows, and the aggregated API data.platform.mira.io
// served over the receiver's buckets and registered with an APIService.
// The dashboard is started as users start it: `kubectl mira dashboard`
// with a kubeconfig; every page reads deliveries and reports through the
// aggregated API with that user's credentials.

const apiToken = "dashboard-test-api-token-0123456789"

var (
	k8s client.Client
	// data reads data.platform.mira.io as cluster-admin.
	data    client.Client
	recv    *receiver.Receiver
	recvURL string
	// adminKubeconfig is cluster-admin; viewerKubeconfig may read
	// endpoints, Events and (mira-data-view) deliveries and reports, but
	// not patch endpoints.
	adminKubeconfig, viewerKubeconfig string
	intNS                             = "mira-system"
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	level := zapcore.Level(2)
	if os.Getenv("TEST_VERBOSE") != "" {
		level = -1
	}
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.Level(level)))
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
	if err := setup(ctx, env, cfg); err != nil {
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
	if err := k8s.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: intNS, Name: "mira-receiver", Annotations: map[string]string{cli.LocalURLAnnotation: recvURL}},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dataDone, err := testenv.ServeDataAPI(ctx, cfg, k8s, recv.JetStream, intNS, tmpDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "data API:", err)
		return 1
	}
	// The suite's own reads of the log go through the same API.
	if data, err = client.New(cfg, client.Options{Scheme: dataScheme()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
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

var (
	tmpDir string
	// testEnv adds users for RBAC cases.
	testEnv *envtest.Environment
)

// userKubeconfig provisions a user with no rights beyond what the test
// binds to it and writes its kubeconfig.
func userKubeconfig(t *testing.T, name string) string {
	t.Helper()
	u, err := testEnv.AddUser(envtest.User{Name: name}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func setup(ctx context.Context, env *envtest.Environment, cfg *rest.Config) error {
	testEnv = env
	mopts := manager.Options{MetricsAddr: "0", ProbeAddr: "0", AllowInsecureURLs: true, MaxConcurrentRecon: 2, SyncPeriod: time.Hour}
	mgr, err := manager.New(cfg, mopts)
	if err != nil {
		return err
	}
	if err := manager.Setup(ctx, mgr, mopts); err != nil {
		return err
	}
	go func() { _ = mgr.Start(ctx) }()
	if k8s, err = client.New(cfg, client.Options{Scheme: manager.Scheme()}); err != nil {
		return err
	}
	dataView, err := shippedDataViewRole()
	if err != nil {
		return err
	}
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: intNS}},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: intNS, Name: "mira-integrations"},
			StringData: map[string]string{integrations.APITokenKey: apiToken},
		},
		dataView,
		// The viewer: reads endpoints and Events, and the delivery log and
		// reports through the shipped mira-data-view; no Secret, no
		// Service (the dashboard needs neither the receiver's token nor its
		// address), and may not patch endpoints.
		&rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "mira-dashboard-viewer"},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{miraapi.GroupVersion.Group}, Resources: []string{"webhookendpoints"}, Verbs: []string{"get", "list", "watch"}},
				{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"list", "watch"}},
			},
		},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "mira-dashboard-viewer"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "mira-dashboard-viewer"},
			Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: "viewer"}},
		},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "viewer-data-view"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: dataView.Name},
			Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: "viewer"}},
		},
	} {
		if err := k8s.Create(ctx, obj); err != nil {
			return err
		}
	}
	if tmpDir, err = os.MkdirTemp("", "mira-dashboard-test-"); err != nil {
		return err
	}
	adminKubeconfig = filepath.Join(tmpDir, "admin.kubeconfig")
	if err := testenv.WriteAdminKubeconfig(env, "admin", adminKubeconfig); err != nil {
		return err
	}
	viewer, err := env.AddUser(envtest.User{Name: "viewer"}, nil)
	if err != nil {
		return fmt.Errorf("add user viewer: %w", err)
	}
	kc, err := viewer.KubeConfig()
	if err != nil {
		return err
	}
	viewerKubeconfig = filepath.Join(tmpDir, "viewer.kubeconfig")
	if err := os.WriteFile(viewerKubeconfig, kc, 0o600); err != nil {
		return err
	}

	var o receiver.Options
	o.BindFlags(pflag.NewFlagSet("test", pflag.ContinueOnError))
	o.Listen = "127.0.0.1:0"
	o.MetricsAddr = "0"
	o.DataDir = filepath.Join(tmpDir, "data")
	o.IntegrationsSecret = intNS + "/mira-integrations"
	o.StatusInterval = 200 * time.Millisecond
	o.AllowedCIDRs = "127.0.0.0/8"
	o.ShutdownGrace = 2 * time.Second
	recv, err = receiver.New(ctx, cfg, o, ctrl.Log.WithName("receiver"))
	return err
}

func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	testenv.Eventually(t, what, 45*time.Second, cond)
}

// startDashboard runs `kubectl mira dashboard` with kubeconfig until the
// test ends and returns its base URL.
func startDashboard(t *testing.T, kubeconfig string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &lineWriter{lines: make(chan string, 16)}
	var errOut bytes.Buffer
	done := make(chan error, 1)
	args := append([]string{"dashboard", "--no-browser", "--port", "0", "--kubeconfig", kubeconfig}, extra...)
	go func() { done <- cli.RunKubectl(ctx, args, out, &errOut) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dashboard: %v", err)
		}
	})
	urlRE := regexp.MustCompile(`(http://127\.0\.0\.1:\d+)/endpoints`)
	select {
	case line := <-out.lines:
		m := urlRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("dashboard printed %q, want its URL", line)
		}
		return m[1]
	case err := <-done:
		t.Fatalf("dashboard stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("dashboard did not print its URL")
	}
	return ""
}

// lineWriter hands each written line to a channel.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line)
			return len(p), nil
		}
		select {
		case w.lines <- strings.TrimSpace(line):
		default:
		}
	}
}

// consumer is a webhook consumer that answers 204 and records event types.
type consumer struct {
	*httptest.Server
	mu     sync.Mutex
	events []string
}

func newConsumer(t *testing.T) *consumer {
	c := &consumer{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.events = append(c.events, r.Header.Get("X-Mira-Event"))
		c.mu.Unlock()
		w.Header().Set("X-Consumer", "test <consumer>")
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *consumer) count(event string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.events {
		if e == event {
			n++
		}
	}
	return n
}

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "dash-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// createEndpoint creates an endpoint for url and waits until the receiver
// has it configured.
func createEndpoint(t *testing.T, ns, name, url string) {
	t.Helper()
	w := &miraapi.WebhookEndpoint{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       miraapi.WebhookEndpointSpec{URL: url, Events: []string{miraapi.EventReportCompleted}},
	}
	if err := k8s.Create(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	eventually(t, "endpoint configured in the receiver", func() error {
		e := recv.Registry.Lookup(ns, name)
		if e == nil || !endpoints.Configured(e.Object()) {
			return fmt.Errorf("not configured yet")
		}
		return nil
	})
}

// publish stores an event of workspace ns, as the receiver's publishing API
// does once it has authorised the caller (that API is tested in the receiver
// package; here only the dashboard's view of the result matters).
func publish(t *testing.T, ns, id, event string, payload map[string]any) {
	t.Helper()
	raw, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	ev := events.Event{ID: id, Namespace: ns, Type: event, Data: raw, Time: time.Now().UTC()}
	if err := recv.Publisher.Publish(context.Background(), ev); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// dataScheme holds the kinds of data.platform.mira.io, for the suite's
// own reads of the aggregated API.
func dataScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := datav1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// shippedDataViewRole is the ClusterRole mira-data-view as shipped in
// config/apiservice (kustomize and the chart install it).
func shippedDataViewRole() (*rbacv1.ClusterRole, error) {
	path := filepath.Join(testenv.RepoRoot(), "config", "apiservice", "user_roles.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.UnmarshalStrict(b, role); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if role.Kind != "ClusterRole" || role.Name != "mira-data-view" {
		return nil, fmt.Errorf("%s holds %s %q, want the ClusterRole mira-data-view", path, role.Kind, role.Name)
	}
	return role, nil
}

// endpointDeliveries lists an endpoint's deliveries through the aggregated
// API, as cluster-admin: what the dashboard reads, without the page.
func endpointDeliveries(ns, name string) ([]datav1.DeliveryObject, error) {
	list := &datav1.DeliveryObjectList{}
	err := data.List(context.Background(), list, client.InNamespace(ns), client.MatchingLabels{datav1.LabelEndpoint: name})
	return list.Items, err
}

// storeReport writes a scored report into the receiver's reports bucket
// under "<namespace>.<report id>", where the scoring pipeline keeps it (the
// pipeline itself is tested in internal/inbound).
func storeReport(t *testing.T, r *scoring.Report) {
	t.Helper()
	ctx := context.Background()
	kv, err := recv.JetStream.KeyValue(ctx, queue.ReportsBucket)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, r.Namespace+"."+r.ReportID, b); err != nil {
		t.Fatalf("store report %s: %v", r.ReportID, err)
	}
}

// deliveredOnce publishes a report.completed event to a new endpoint in a
// new namespace and waits until the aggregated API serves its delivery as
// delivered; it returns the namespace, the consumer and the delivery as
// the API serves it.
func deliveredOnce(t *testing.T, name string, payload map[string]any) (string, *consumer, *datav1.DeliveryObject) {
	t.Helper()
	ns := newNamespace(t)
	c := newConsumer(t)
	createEndpoint(t, ns, name, c.URL+"/hook")
	publish(t, ns, "evt_"+ns, miraapi.EventReportCompleted, payload)
	var rec *datav1.DeliveryObject
	eventually(t, "the data API serves the delivery as delivered", func() error {
		items, err := endpointDeliveries(ns, name)
		if err != nil {
			return err
		}
		if len(items) != 1 || items[0].Status.State != datav1.StateDelivered {
			return fmt.Errorf("items %+v", items)
		}
		rec = &items[0]
		return nil
	})
	eventually(t, "the receiver writes the delivery into the endpoint's status", func() error {
		w := &miraapi.WebhookEndpoint{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, w); err != nil {
			return err
		}
		if d := w.Status.LastDelivery; d == nil || d.StatusCode != http.StatusNoContent {
			return fmt.Errorf("lastDelivery %+v", d)
		}
		return nil
	})
	return ns, c, rec
}

// get fetches a page with the Host the dashboard expects.
func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func signingSecret(t *testing.T, ns, name string) string {
	t.Helper()
	s := &corev1.Secret{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		t.Fatal(err)
	}
	return string(s.Data[miraapi.SigningSecretKey])
}
