package inbound

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/endpoints"
	"github.com/mira/mira-operator/internal/integrations"
	"github.com/mira/mira-operator/internal/manager"
	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/recall/recalltest"
	"github.com/mira/mira-operator/internal/receiver"
	"github.com/mira/mira-operator/internal/signing"
	"github.com/mira/mira-operator/internal/testenv"
	"github.com/mira/mira-operator/internal/workspace"
)

const (
	apiToken     = "inbound-test-api-token-0123456789"
	recallSecret = "whsec_cmVjYWxsLWZpeHR1cmUta2V5LTAxMjM0NTY3ODlhYmM="
	stripeSecret = "whsec_stripeFixtureSecret0123456789"
	intNS        = "mira-system"
	intName      = "mira-integrations"
	defaultTmpl  = "discovery"
	// consumerNS is the default workspace: its events reach only its own
	// WebhookEndpoints.
	consumerNS   = intNS
	consumerName = "all-events"
)

var (
	k8s     client.Client
	recv    *receiver.Receiver
	in      *Inbound
	recvURL string
	fake    *recalltest.Server
	// stripeFake answers GET /v1/subscriptions/{id} like Stripe.
	stripeFake *httptest.Server
	consumer   *collector
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	// Fuzzing (coordinator and workers) needs no cluster: run
	// `go test -run '^$' -fuzz FuzzRoleplayRequest`.
	flag.Parse()
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		return m.Run()
	}
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		return m.Run()
	}
	level := zapcore.Level(2)
	if os.Getenv("TEST_VERBOSE") != "" {
		level = -1
	}
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.Level(level)))
	fail := func(err error) int { fmt.Fprintln(os.Stderr, err); return 1 }
	env, cfg, err := testenv.Start()
	if err != nil {
		return fail(err)
	}
	defer func() { _ = env.Stop() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The controllers: endpoints and templates become Ready, signing
	// Secrets are generated.
	mopts := manager.Options{MetricsAddr: "0", ProbeAddr: "0", AllowInsecureURLs: true, MaxConcurrentRecon: 4, SyncPeriod: time.Hour}
	mgr, err := manager.New(cfg, mopts)
	if err != nil {
		return fail(err)
	}
	if err := manager.Setup(ctx, mgr, mopts); err != nil {
		return fail(err)
	}
	go func() { _ = mgr.Start(ctx) }()

	if k8s, err = client.New(cfg, client.Options{Scheme: manager.Scheme()}); err != nil {
		return fail(err)
	}
	for _, ns := range []string{intNS} {
		if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return fail(err)
		}
	}
	if err := k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: intNS, Name: intName},
		StringData: integrationKeys(),
	}); err != nil {
		return fail(err)
	}

	fake = recalltest.NewServer()
	defer fake.Close()
	stripeFake = httptest.NewServer(http.HandlerFunc(serveStripeSubscription))
	defer stripeFake.Close()

	dir, err := os.MkdirTemp("", "mira-inbound-test-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	var o receiver.Options
	o.BindFlags(flagSet())
	o.Listen, o.MetricsAddr, o.DataDir = "127.0.0.1:0", "0", filepath.Join(dir, "data")
	o.IntegrationsSecret = intNS + "/" + intName
	o.StatusInterval, o.AllowedCIDRs, o.ShutdownGrace = 200*time.Millisecond, "127.0.0.0/8", 2*time.Second
	if recv, err = receiver.New(ctx, cfg, o, ctrl.Log.WithName("receiver")); err != nil {
		return fail(err)
	}
	var iopts Options
	iopts.BindFlags(flagSet())
	iopts.RecallAPIURL = fake.URL
	iopts.RecallMaxRetryDuration = 5 * time.Second
	iopts.TranscriptPollInterval = 200 * time.Millisecond
	iopts.StripeAPIURL = stripeFake.URL
	iopts.Registerer = prometheus.NewRegistry()
	if in, err = New(Deps{
		JetStream: recv.JetStream, Publisher: recv.Publisher, Integrations: recv.Integrations, Workspaces: recv.Workspaces,
		NamespaceAuth: recv.Auth.Require, KnownWorkspace: recv.KnownWorkspace,
		Templates: recv.Manager.GetCache(), Replicas: o.Replicas, WatchNamespace: o.WatchNamespace, Logger: ctrl.Log.WithName("inbound"),
	}, iopts); err != nil {
		return fail(err)
	}
	recv.Mount(in)
	done := make(chan error, 1)
	go func() { done <- recv.Start(ctx) }()
	deadline := time.Now().Add(60 * time.Second)
	for !recv.Ready() {
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("receiver did not become ready"))
		}
		select {
		case err := <-done:
			return fail(fmt.Errorf("receiver stopped: %w", err))
		case <-time.After(50 * time.Millisecond):
		}
	}
	recvURL = "http://" + recv.Addr()

	consumer = &collector{notify: make(chan struct{}, 1)}
	srv := httptest.NewServer(consumer)
	defer srv.Close()
	if err := setupFixtures(ctx, srv.URL); err != nil {
		return fail(err)
	}

	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "receiver stopped:", err)
	}
	recv.Close()
	return code
}

// defaultWS is a context in the default workspace, for handlers called
// directly.
func defaultWS() context.Context { return workspace.With(context.Background(), intNS) }

func integrationKeys() map[string]string {
	return map[string]string{
		integrations.APITokenKey:            apiToken,
		integrations.RecallWebhookSecretKey: recallSecret,
		integrations.RecallAPIKeyKey:        recalltest.DefaultAPIKey,
		integrations.StripeWebhookSecretKey: stripeSecret,
	}
}

// setupFixtures creates the consumer's WebhookEndpoint (all event types) and
// the default ScoringTemplate, and waits until the receiver sees both ready.
func setupFixtures(ctx context.Context, consumerURL string) error {
	ep := &miraapi.WebhookEndpoint{
		ObjectMeta: metav1.ObjectMeta{Namespace: consumerNS, Name: consumerName},
		Spec:       miraapi.WebhookEndpointSpec{URL: consumerURL, Events: miraapi.EventTypes},
	}
	if err := k8s.Create(ctx, ep); err != nil {
		return err
	}
	if err := k8s.Create(ctx, template(defaultTmpl, true)); err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		e := recv.Registry.Lookup(consumerNS, consumerName)
		s := &corev1.Secret{}
		err := k8s.Get(ctx, types.NamespacedName{Namespace: consumerNS, Name: consumerName + "-signing-secret"}, s)
		if e != nil && endpoints.Configured(e.Object()) && err == nil && templateReady(ctx, defaultTmpl) == nil {
			consumer.setSecret(string(s.Data["signingSecret"]))
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fixtures not ready: endpoint %v, secret %v, template %v", e != nil, err, templateReady(ctx, defaultTmpl))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// template is a small rubric: talk ratio and questions.
func template(name string, isDefault bool) *miraapi.ScoringTemplate {
	f := func(v float64) *float64 { return &v }
	return &miraapi.ScoringTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: intNS, Name: name},
		Spec: miraapi.ScoringTemplateSpec{
			DisplayName: "Discovery call", Default: isDefault,
			Criteria: []miraapi.Criterion{
				{Name: "talk ratio", Weight: 60, Metric: miraapi.MetricTalkRatio, Target: &miraapi.TargetRange{Min: f(30), Max: f(60)}},
				{Name: "questions", Weight: 40, Metric: miraapi.MetricQuestionRate, Target: &miraapi.TargetRange{Min: f(5)}},
			},
		},
	}
}

// templateReady checks, through the receiver's own cache, that the template
// is reconciled and Ready.
func templateReady(ctx context.Context, name string) error {
	t := &miraapi.ScoringTemplate{}
	if err := recv.Manager.GetCache().Get(ctx, types.NamespacedName{Namespace: intNS, Name: name}, t); err != nil {
		return err
	}
	c := apimeta.FindStatusCondition(t.Status.Conditions, miraapi.ReadyCondition)
	if c == nil || c.ObservedGeneration != t.Generation || c.Status != metav1.ConditionTrue {
		return fmt.Errorf("template %s not Ready yet", name)
	}
	return nil
}

// delivery is one verified webhook the consumer received.
type delivery struct {
	Event    string
	Data     map[string]any
	Verified bool
}

// collector is the webhook consumer: it verifies each delivery's
// X-Mira-Signature and Standard Webhooks signature inside the handler.
type collector struct {
	mu     sync.Mutex
	secret string
	got    []delivery
	notify chan struct{}
}

func (c *collector) setSecret(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.secret = s
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	secret := c.secret
	c.mu.Unlock()
	std := signing.Standard{ID: r.Header.Get("webhook-id"), Timestamp: r.Header.Get("webhook-timestamp"), Signature: r.Header.Get("webhook-signature")}
	verified := secret != "" && signing.VerifyMira(secret, body, r.Header.Get("X-Mira-Signature")) &&
		signing.VerifyStandard([]string{secret}, std, body, time.Now(), signing.DefaultTolerance) == nil
	var env struct {
		Event string         `json:"event"`
		Data  map[string]any `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Event != r.Header.Get("X-Mira-Event") {
		verified = false
	}
	c.mu.Lock()
	c.got = append(c.got, delivery{Event: env.Event, Data: env.Data, Verified: verified})
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

// matching returns the deliveries of an event type whose data[key] == value.
func (c *collector) matching(event, key, value string) []delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []delivery
	for _, d := range c.got {
		if d.Event == event && fmt.Sprint(d.Data[key]) == value {
			out = append(out, d)
		}
	}
	return out
}

// waitEvent waits for a delivery of event with data[key] == value, checks
// its signatures and returns its data.
func waitEvent(t *testing.T, event, key, value string) map[string]any {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		if got := consumer.matching(event, key, value); len(got) > 0 {
			if !got[0].Verified {
				t.Fatalf("%s for %s=%s arrived with a signature that does not verify", event, key, value)
			}
			return got[0].Data
		}
		select {
		case <-consumer.notify:
		case <-time.After(100 * time.Millisecond):
		case <-timeout:
			consumer.mu.Lock()
			n := len(consumer.got)
			consumer.mu.Unlock()
			// Say whether the pipeline or the delivery stalled.
			t.Fatalf("no %s with %s=%s at the consumer (%d deliveries in all; %d events stored)",
				event, key, value, n, streamMessages(t, queue.EventsStream))
		}
	}
}

// eventually waits for a state the system converges to; see testenv.Eventually.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	testenv.Eventually(t, what, 45*time.Second, cond)
}

// pipelineIdle waits until the pipeline has acknowledged every inbound message.
func pipelineIdle(t *testing.T) {
	t.Helper()
	eventually(t, "pipeline idle", func() error {
		c, err := recv.JetStream.Consumer(context.Background(), queue.InboundStream, queue.PipelineConsumer)
		if err != nil {
			return err
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("%d pending, %d unacknowledged", info.NumPending, info.NumAckPending)
		}
		return nil
	})
}

// streamMessages counts the messages stored in a stream.
func streamMessages(t *testing.T, stream string) uint64 {
	t.Helper()
	s, err := recv.JetStream.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// post sends a request to the receiver.
func post(t *testing.T, path string, header http.Header, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, recvURL+path, bytes.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	return do(t, req)
}

// get sends an authenticated GET.
func get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, recvURL+path, nil)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func authHeader() http.Header {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+apiToken)
	h.Set("Content-Type", "application/json")
	return h
}
