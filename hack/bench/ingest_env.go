package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/inbound"
	"github.com/mira/mira-operator/internal/integrations"
	"github.com/mira/mira-operator/internal/manager"
	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/recall/recalltest"
	"github.com/mira/mira-operator/internal/receiver"
	"github.com/mira/mira-operator/internal/testenv"
)

// Fixtures of the ingest suite: the integrations Secret and the template
// the bot.done meetings name in their metadata.
const (
	ingNS            = "mira-bench"
	ingSecretName    = "mira-integrations"
	ingRecallSecret  = "whsec_YmVuY2gtcmVjYWxsLXNpZ25pbmcta2V5LTAxMjM0NTY3"
	ingStripeSecret  = "whsec_benchStripeSigningSecret0123456789"
	ingAPIToken      = "bench-api-token-0123456789abcdef"
	ingTemplate      = "bench-discovery"
	ingRecallPath    = "/webhooks/recall"
	ingStripePath    = "/webhooks/stripe"
	ingBaselinePath  = "/webhooks/baseline"
	ingDrainTimeout  = 2 * time.Minute
	ingReadyDeadline = time.Minute
)

// ingestEnv is the control plane, one in-process receiver with the inbound
// extension (embedded JetStream), a Recall API stand-in and the baseline
// server. No controllers run: the ingest path needs none, and the bot.done
// meetings name their ScoringTemplate, which is read from the receiver's
// cache without waiting for its Ready condition.
type ingestEnv struct {
	k8s     client.Client
	recv    *receiver.Receiver
	url     string // the receiver
	baseURL string // the baseline server
	fake    *recalltest.Server
	stop    []func()
}

func (e *ingestEnv) close() {
	for i := len(e.stop) - 1; i >= 0; i-- {
		e.stop[i]()
	}
}

func startIngestEnv(ctx context.Context) (e *ingestEnv, err error) {
	ie := &ingestEnv{}
	e = ie
	defer func() {
		if err != nil {
			ie.close() // e itself is nil on the error returns
		}
	}()
	// receiver.New registers its metrics on controller-runtime's global
	// registry (MustRegister); the delivery suite's receiver, earlier in the
	// same process, already did. Give this receiver a registry of its own.
	prevRegistry := crmetrics.Registry
	crmetrics.Registry = prometheus.NewRegistry()
	e.stop = append(e.stop, func() { crmetrics.Registry = prevRegistry })

	env, cfg, err := testenv.Start()
	if err != nil {
		return nil, err
	}
	e.stop = append(e.stop, func() { _ = env.Stop() })
	if e.k8s, err = client.New(cfg, client.Options{Scheme: manager.Scheme()}); err != nil {
		return nil, err
	}
	if err := e.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ingNS}}); err != nil {
		return nil, err
	}
	if err := e.k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ingNS, Name: ingSecretName},
		StringData: map[string]string{
			integrations.APITokenKey:            ingAPIToken,
			integrations.RecallWebhookSecretKey: ingRecallSecret,
			integrations.RecallAPIKeyKey:        recalltest.DefaultAPIKey,
			integrations.StripeWebhookSecretKey: ingStripeSecret,
		},
	}); err != nil {
		return nil, err
	}
	if err := e.k8s.Create(ctx, benchTemplate()); err != nil {
		return nil, err
	}

	e.fake = recalltest.NewServer()
	e.stop = append(e.stop, e.fake.Close)

	dir, err := os.MkdirTemp("", "mira-bench-ingest-")
	if err != nil {
		return nil, err
	}
	e.stop = append(e.stop, func() { _ = os.RemoveAll(dir) })
	o := receiverOptions(filepath.Join(dir, "data"))
	o.IntegrationsSecret = ingNS + "/" + ingSecretName
	rctx, rcancel := context.WithCancel(ctx)
	if e.recv, err = receiver.New(rctx, cfg, o, logr.Discard()); err != nil {
		rcancel()
		return nil, err
	}
	var iopts inbound.Options
	iopts.BindFlags(flagSetForDefaults())
	iopts.RecallAPIURL = e.fake.URL
	iopts.Registerer = prometheus.NewRegistry()
	in, err := inbound.New(inbound.Deps{
		JetStream: e.recv.JetStream, Publisher: e.recv.Publisher, Integrations: e.recv.Integrations,
		Templates: e.recv.Manager.GetCache(), Replicas: o.Replicas, WatchNamespace: o.WatchNamespace, Logger: logr.Discard(),
	}, iopts)
	if err != nil {
		rcancel()
		e.recv.Close()
		return nil, err
	}
	e.recv.Mount(in)
	rdone := make(chan error, 1)
	go func() { rdone <- e.recv.Start(rctx) }()
	e.stop = append(e.stop, func() {
		rcancel()
		if err := <-rdone; err != nil {
			fmt.Fprintln(os.Stderr, "bench: receiver stopped:", err)
		}
		e.recv.Close()
	})
	deadline := time.Now().Add(ingReadyDeadline)
	for !e.recv.Ready() || e.recv.Integrations.Value(ctx, integrations.StripeWebhookSecretKey) == "" || !templateCached(ctx, e.recv) {
		if time.Now().After(deadline) {
			return nil, errors.New("receiver, integrations Secret or template not ready within a minute")
		}
		select {
		case err := <-rdone:
			return nil, fmt.Errorf("receiver stopped: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	e.url = "http://" + e.recv.Addr()

	// The baseline: the same kind of http.Server (receiver.NewServer: same
	// header, read, write and idle timeouts) on loopback, with a handler
	// that reads the body under the same limit and answers 202.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	base := receiver.NewServer(ln.Addr().String(), http.HandlerFunc(baselineHandler))
	go func() { _ = base.Serve(ln) }()
	e.stop = append(e.stop, func() { _ = base.Close() })
	e.baseURL = "http://" + ln.Addr().String()
	return e, nil
}

// baselineHandler is the unverified, non-durable handler: read the body with
// the webhook limit, answer 202.
func baselineHandler(w http.ResponseWriter, r *http.Request) {
	if _, err := io.ReadAll(http.MaxBytesReader(w, r.Body, inbound.MaxWebhookBytes)); err != nil {
		http.Error(w, "body", http.StatusRequestEntityTooLarge)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func benchTemplate() *miraapi.ScoringTemplate {
	f := func(v float64) *float64 { return &v }
	return &miraapi.ScoringTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ingNS, Name: ingTemplate},
		Spec: miraapi.ScoringTemplateSpec{
			DisplayName: "Discovery call",
			Criteria: []miraapi.Criterion{
				{Name: "talk ratio", Weight: 60, Metric: miraapi.MetricTalkRatio, Target: &miraapi.TargetRange{Min: f(30), Max: f(60)}},
				{Name: "questions", Weight: 40, Metric: miraapi.MetricQuestionRate, Target: &miraapi.TargetRange{Min: f(5)}},
			},
		},
	}
}

func templateCached(ctx context.Context, r *receiver.Receiver) bool {
	t := &miraapi.ScoringTemplate{}
	return r.Manager.GetCache().Get(ctx, types.NamespacedName{Namespace: ingNS, Name: ingTemplate}, t) == nil
}

// pipelineBacklog is how many stored inbound messages the pipeline has not
// acknowledged yet (pending + ack pending).
func (e *ingestEnv) pipelineBacklog(ctx context.Context) (uint64, error) {
	c, err := e.recv.JetStream.Consumer(ctx, queue.InboundStream, queue.PipelineConsumer)
	if err != nil {
		return 0, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}

// pausePipeline stops the pipeline consumer from handing out messages
// (JetStream consumer pause) until resumePipeline, so ingest can be
// measured without the pipeline's work competing for the CPUs.
func (e *ingestEnv) pausePipeline(ctx context.Context) error {
	_, err := e.recv.JetStream.PauseConsumer(ctx, queue.InboundStream, queue.PipelineConsumer, time.Now().Add(5*time.Minute))
	return err
}

func (e *ingestEnv) resumePipeline(ctx context.Context) error {
	_, err := e.recv.JetStream.ResumeConsumer(ctx, queue.InboundStream, queue.PipelineConsumer)
	return err
}

// waitDrained waits until the pipeline acknowledged every stored message.
func (e *ingestEnv) waitDrained(ctx context.Context) (time.Time, error) {
	deadline := time.Now().Add(ingDrainTimeout)
	lastLog := time.Now()
	for {
		// BENCH_DEBUG=1 prints the pipeline consumer's state every second.
		if os.Getenv("BENCH_DEBUG") != "" && time.Since(lastLog) > time.Second {
			lastLog = time.Now()
			if c, err := e.recv.JetStream.Consumer(ctx, queue.InboundStream, queue.PipelineConsumer); err == nil {
				if info, err := c.Info(ctx); err == nil {
					fmt.Fprintf(os.Stderr, "      drain: pending %d ack-pending %d redelivered %d waiting %d delivered %d acked %d\n",
						info.NumPending, info.NumAckPending, info.NumRedelivered, info.NumWaiting, info.Delivered.Consumer, info.AckFloor.Consumer)
				}
			}
		}
		n, err := e.pipelineBacklog(ctx)
		if err == nil && n == 0 {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("pipeline still has %d inbound messages after %s (last error %v)", n, ingDrainTimeout, err)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return time.Time{}, err
		}
	}
}

// ingestReq is one pre-signed webhook.
type ingestReq struct {
	body []byte
	hdr  http.Header
}

// recallStatusReqs returns n signed bot.in_call_recording webhooks with
// distinct webhook-ids (and bot ids), timestamped now.
func recallStatusReqs(nonce string, n int) []ingestReq {
	now := time.Now()
	out := make([]ingestReq, n)
	for i := range out {
		id := "msg_" + nonce + "_" + strconv.Itoa(i)
		body := recalltest.BotStatusPayload("in_call_recording", "bot_"+nonce+"_"+strconv.Itoa(i), "",
			map[string]string{inbound.MetadataUserID: "usr_" + strconv.Itoa(i%1000)}, now)
		out[i] = ingestReq{body: body, hdr: recalltest.SignedHeaders(ingRecallSecret, id, now, body)}
	}
	return out
}

// recallDoneReqs returns n signed bot.done webhooks for bots the Recall
// stand-in knows, each with transcript, naming the bench template.
func recallDoneReqs(fake *recalltest.Server, nonce string, n int, transcript []byte) []ingestReq {
	now := time.Now()
	out := make([]ingestReq, n)
	for i := range out {
		bot := "bot_done_" + nonce + "_" + strconv.Itoa(i)
		md := map[string]string{inbound.MetadataUserID: "usr_" + strconv.Itoa(i%1000), inbound.MetadataTemplate: ingTemplate}
		fake.AddBot(bot, md, transcript, false)
		id := "msg_done_" + nonce + "_" + strconv.Itoa(i)
		body := recalltest.BotDonePayload(bot, md, now)
		out[i] = ingestReq{body: body, hdr: recalltest.SignedHeaders(ingRecallSecret, id, now, body)}
	}
	return out
}

// stripeReqs returns n customer.updated events (acknowledged and counted by
// the billing processor, no state written) with distinct event ids, signed
// with GenerateTestSignedPayload now.
func stripeReqs(nonce string, n int) []ingestReq {
	now := time.Now()
	out := make([]ingestReq, n)
	for i := range out {
		body, err := json.Marshal(map[string]any{
			"id": "evt_" + nonce + "_" + strconv.Itoa(i), "object": "event", "api_version": stripe.APIVersion,
			"created": now.Unix(), "livemode": false, "pending_webhooks": 1, "type": "customer.updated",
			"request": map[string]any{"id": nil, "idempotency_key": nil},
			"data": map[string]any{"object": map[string]any{
				"id": "cus_" + nonce + strconv.Itoa(i%1000), "object": "customer", "email": "buyer" + strconv.Itoa(i%1000) + "@example.com",
				"name": "Bench Buyer", "created": now.Unix() - 86400, "currency": "usd", "delinquent": false, "livemode": false,
				"metadata": map[string]string{"user_id": "usr_" + strconv.Itoa(i%1000)},
			}, "previous_attributes": map[string]any{"email": "old@example.com"}},
		})
		if err != nil {
			panic(err)
		}
		p := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: ingStripeSecret, Timestamp: now})
		out[i] = ingestReq{body: body, hdr: http.Header{"Stripe-Signature": {p.Header}, "Content-Type": {"application/json"}}}
	}
	return out
}

// ingestPost sends one request and checks the answer: want is the status
// code; for the receiver (want 200) the body must say "stored", so a
// duplicate (dedupe short-circuit) counts as an error.
func ingestPost(c *http.Client, url string, r ingestReq, want int) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(r.body))
	if err != nil {
		return err
	}
	req.Header = r.hdr
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	if want == http.StatusOK && !bytes.Contains(b, []byte(`"stored"`)) {
		return fmt.Errorf("not stored: %s", bytes.TrimSpace(b))
	}
	return nil
}
