package receiver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/mira/mira-operator/internal/integrations"
	"github.com/mira/mira-operator/internal/manager"
	"github.com/mira/mira-operator/internal/receiver"
	"github.com/mira/mira-operator/internal/testenv"
)

const apiToken = "test-api-token-0123456789"

var (
	k8s     client.Client
	restCfg *rest.Config
	recv    *receiver.Receiver
	recvURL string
	intNS   = "mira-system"
	dataDir string
	// publisherToken is a ServiceAccount token allowed to create
	// events.data.platform.mira.io in every namespace.
	publisherToken string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	level := zapcore.Level(2)
	if os.Getenv("TEST_VERBOSE") != "" {
		level = -1
	}
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.Level(level)))
	env, cfg, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	restCfg = cfg
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The controllers, so endpoints become Ready (plain http allowed: the
	// consumers are httptest servers on loopback).
	mopts := manager.Options{MetricsAddr: "0", ProbeAddr: "0", AllowInsecureURLs: true, MaxConcurrentRecon: 4, SyncPeriod: time.Hour}
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

	k8s, err = client.New(cfg, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: intNS}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: intNS, Name: "mira-integrations"},
		StringData: map[string]string{integrations.APITokenKey: apiToken},
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	if publisherToken, err = serviceAccountToken(ctx, intNS, "test-publisher", ""); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "mira-receiver-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	dataDir = filepath.Join(dir, "data")
	opts := testOptions(dataDir)
	recv, err = receiver.New(ctx, cfg, opts, ctrl.Log.WithName("receiver"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- recv.Start(ctx) }()
	deadline := time.Now().Add(60 * time.Second)
	for !recv.Ready() {
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "receiver did not become ready")
			return 1
		}
		select {
		case err := <-done:
			fmt.Fprintln(os.Stderr, "receiver stopped:", err)
			return 1
		case <-time.After(50 * time.Millisecond):
		}
	}
	recvURL = "http://" + recv.Addr()
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "receiver stopped:", err)
	}
	recv.Close()
	return code
}

func testOptions(dataDir string) receiver.Options {
	var o receiver.Options
	o.BindFlags(flagSetForDefaults())
	o.Listen = "127.0.0.1:0"
	o.MetricsAddr = "0"
	o.DataDir = dataDir
	o.IntegrationsSecret = intNS + "/mira-integrations"
	o.StatusInterval = 200 * time.Millisecond
	o.AllowedCIDRs = "127.0.0.0/8"
	// Consumers answering 1 MiB bodies make records that outgrow a NATS
	// message after a few attempts (TestLargeResponsesManyAttempts).
	o.MaxResponseBytes = 1 << 20
	o.ShutdownGrace = 2 * time.Second
	return o
}

// eventually waits for a state the system converges to; see testenv.Eventually.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	testenv.Eventually(t, what, 45*time.Second, cond)
}

// publish posts an event to workspace ns through the receiver's API, as a
// ServiceAccount allowed to create events in every namespace.
func publish(t *testing.T, ns, event string, data any) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"event": event, "data": data})
	req, err := http.NewRequest(http.MethodPost, recvURL+"/v1/namespaces/"+ns+"/events", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+publisherToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /v1/namespaces/%s/events: %d %s", ns, resp.StatusCode, b)
	}
	var out struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out.ID
}

func apiRequest(t *testing.T, method, path string, body []byte) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, recvURL+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// received is what a consumer got.
type received struct {
	Header http.Header
	Path   string
	Body   []byte
}

// consumer collects deliveries; respond decides each answer.
type consumer struct {
	mu      sync.Mutex
	got     []received
	respond func(n int, w http.ResponseWriter, r *http.Request)
	notify  chan struct{}
}

func newConsumer(respond func(n int, w http.ResponseWriter, r *http.Request)) *consumer {
	return &consumer{respond: respond, notify: make(chan struct{}, 1000)}
}

func (c *consumer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.got = append(c.got, received{Header: r.Header.Clone(), Path: r.URL.Path, Body: body})
	n := len(c.got)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
	if c.respond != nil {
		c.respond(n, w, r)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (c *consumer) all() []received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]received(nil), c.got...)
}

// waitFor blocks until the consumer has at least n requests.
func (c *consumer) waitFor(t *testing.T, n int) []received {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		if got := c.all(); len(got) >= n {
			return got
		}
		select {
		case <-c.notify:
		case <-timeout:
			t.Fatalf("consumer got %d requests, want %d", len(c.all()), n)
		}
	}
}
