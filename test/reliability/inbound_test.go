package reliability

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/mira/mira-operator/test/harness"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/recall/recalltest"
)

// Inbound floods: every distinct Recall and Stripe webhook replayed N times
// at once is stored once and produces its outgoing event once; bad requests
// (wrong signature, expired timestamp, oversized, malformed) are refused
// with 401/401/413/400 and nothing of them is stored.
func TestInboundFloods(t *testing.T) {
	replays := scale(200, 10000)
	refusedEach := scale(20, 200)
	random := func() string {
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	recallSecret := "whsec_" + random()
	stripeSecret := "whsec_" + strings.NewReplacer("+", "", "/", "", "=", "").Replace(random())
	setupIntegrations(t, map[string]string{"recall-webhook-secret": recallSecret, "stripe-webhook-secret": stripeSecret})
	startManager(t)
	const ns = "inbound-flood"
	consumer, _ := sink(t, ns, "sink")

	port, metricsPort := harness.FreePort(t), harness.FreePort(t)
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	dataDir := filepath.Join(t.TempDir(), "data")
	args := receiverArgs(port, "--data-dir="+dataDir, "--watch-namespace="+ns, "--default-workspace="+ns)
	// The later flag wins. The scrape below uses the documented plain-HTTP
	// opt-out; internal/metricsendpoint tests the authenticated default.
	args = append(args, "--metrics-bind-address=127.0.0.1:"+strconv.Itoa(metricsPort), "--metrics-secure=false")
	p := start(t, "receiver-inbound", args...)
	waitReady(t, url, p)

	now := time.Now()
	// Three distinct webhooks: a Recall progress status (no outgoing
	// event), a Recall bot.fatal (one meeting.failed) and a Stripe event
	// (applied to billing, no outgoing event).
	botID := "bot-flood-" + runID
	progress := recalltest.BotStatusPayload("in_call_recording", botID, "", map[string]string{"user_id": "usr_flood"}, now)
	fatal := recalltest.BotFatalPayload(botID, "bot_kicked_from_call", map[string]string{"user_id": "usr_flood"}, now)
	stripeID := "evt_flood_" + runID
	stripeBody := []byte(fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2023-10-16","created":%d,"type":"invoice.payment_failed","data":{"object":{"id":"in_flood_1","object":"invoice","customer":"cus_flood_1","subscription":"sub_flood_1","amount_due":2900,"amount_paid":0,"attempt_count":1,"next_payment_attempt":null,"hosted_invoice_url":"https://invoice.example/flood","status":"open","currency":"usd"}}}`, stripeID, now.Unix()))
	stripeSigned := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: stripeBody, Secret: stripeSecret, Timestamp: now})

	type request struct {
		kind, route string
		body        []byte
		header      http.Header
	}
	valid := []request{
		{"recall-progress", "/webhooks/recall", progress, recalltest.SignedHeaders(recallSecret, "msg_progress_"+runID, now, progress)},
		{"recall-fatal", "/webhooks/recall", fatal, recalltest.SignedHeaders(recallSecret, "msg_fatal_"+runID, now, fatal)},
		{"stripe", "/webhooks/stripe", stripeSigned.Payload, http.Header{"Stripe-Signature": {stripeSigned.Header}}},
	}

	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	type answer struct {
		code   int
		status string
	}
	do := func(r request) (answer, error) {
		req, _ := http.NewRequest(http.MethodPost, url+r.route, bytes.NewReader(r.body))
		for k, v := range r.header {
			req.Header[k] = v
		}
		if req.Header.Get("Content-Type") == "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			return answer{}, err
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		var out struct {
			Status string `json:"status"`
		}
		_ = json.Unmarshal(b, &out)
		return answer{resp.StatusCode, out.Status}, nil
	}

	// The flood: every webhook N times, interleaved, 64 in flight.
	began := time.Now()
	var mu sync.Mutex
	answers := map[string]map[string]int{} // kind -> "code status" -> count
	var errs []error
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := 0; i < replays; i++ {
		for _, r := range valid {
			sem <- struct{}{}
			wg.Add(1)
			go func(r request) {
				defer wg.Done()
				defer func() { <-sem }()
				a, err := do(r)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				if answers[r.kind] == nil {
					answers[r.kind] = map[string]int{}
				}
				answers[r.kind][fmt.Sprintf("%d %s", a.code, a.status)]++
			}(r)
		}
	}
	wg.Wait()
	floodSeconds := time.Since(began).Seconds()
	if len(errs) > 0 {
		t.Fatalf("%d flood requests failed, first: %v", len(errs), errs[0])
	}
	for _, r := range valid {
		got := answers[r.kind]
		if got["200 stored"] != 1 || got["200 duplicate"] != replays-1 {
			t.Errorf("%s ×%d: answers %v, want 1 × 200 stored and %d × 200 duplicate", r.kind, replays, got, replays-1)
		}
	}

	// The refusals, each with an id of its own so a stored one would show.
	old := now.Add(-10 * time.Minute)
	big := append([]byte(`{"event":"bot.in_call_recording","data":{"pad":"`), bytes.Repeat([]byte("x"), 1<<20)...)
	big = append(big, []byte(`"}}`)...)
	bigStripe := []byte(fmt.Sprintf(`{"id":"evt_big_%s","object":"event","type":"invoice.paid","data":{"object":{"pad":"%s"}}}`, runID, bytes.Repeat([]byte("x"), 1<<20)))
	malformed := []byte(`{"event": "bot.Done", "data": `)
	refusals := []struct {
		kind string
		want int
		make func(i int) request
	}{
		{"recall-bad-signature", 401, func(i int) request {
			id := fmt.Sprintf("msg_badsig_%s_%d", runID, i)
			return request{"", "/webhooks/recall", progress, recalltest.SignedHeaders("whsec_"+base64.StdEncoding.EncodeToString([]byte("not-the-secret-0123456789")), id, now, progress)}
		}},
		{"recall-expired", 401, func(i int) request {
			id := fmt.Sprintf("msg_expired_%s_%d", runID, i)
			return request{"", "/webhooks/recall", progress, recalltest.SignedHeaders(recallSecret, id, old, progress)}
		}},
		{"recall-oversized", 413, func(i int) request {
			id := fmt.Sprintf("msg_big_%s_%d", runID, i)
			return request{"", "/webhooks/recall", big, recalltest.SignedHeaders(recallSecret, id, now, big)}
		}},
		// Signed but never acceptable: 200 "ignored" (a 4xx would be
		// retried for days), and not stored.
		{"recall-malformed", 200, func(i int) request {
			id := fmt.Sprintf("msg_malformed_%s_%d", runID, i)
			return request{"", "/webhooks/recall", malformed, recalltest.SignedHeaders(recallSecret, id, now, malformed)}
		}},
		{"stripe-bad-signature", 401, func(i int) request {
			body := []byte(strings.Replace(string(stripeBody), stripeID, fmt.Sprintf("evt_badsig_%s_%d", runID, i), 1))
			s := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: "whsec_notTheSecret0123456789", Timestamp: now})
			return request{"", "/webhooks/stripe", s.Payload, http.Header{"Stripe-Signature": {s.Header}}}
		}},
		{"stripe-expired", 401, func(i int) request {
			body := []byte(strings.Replace(string(stripeBody), stripeID, fmt.Sprintf("evt_expired_%s_%d", runID, i), 1))
			s := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: stripeSecret, Timestamp: old})
			return request{"", "/webhooks/stripe", s.Payload, http.Header{"Stripe-Signature": {s.Header}}}
		}},
		{"stripe-oversized", 413, func(i int) request {
			s := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: bigStripe, Secret: stripeSecret, Timestamp: now})
			return request{"", "/webhooks/stripe", s.Payload, http.Header{"Stripe-Signature": {s.Header}}}
		}},
		{"stripe-malformed", 200, func(i int) request {
			s := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: malformed, Secret: stripeSecret, Timestamp: now})
			return request{"", "/webhooks/stripe", s.Payload, http.Header{"Stripe-Signature": {s.Header}}}
		}},
	}
	refused := map[string]map[int]int{}
	for _, rf := range refusals {
		refused[rf.kind] = map[int]int{}
		for i := 0; i < refusedEach; i++ {
			a, err := do(rf.make(i))
			if err != nil {
				t.Fatalf("%s: %v", rf.kind, err)
			}
			refused[rf.kind][a.code]++
		}
		if refused[rf.kind][rf.want] != refusedEach {
			t.Errorf("%s: answers %v, want %d × %d", rf.kind, refused[rf.kind], refusedEach, rf.want)
		}
	}

	// The pipeline processed the three stored webhooks: one meeting.failed.
	eventually(t, "meeting.failed delivered", 2*time.Minute, func() error {
		if d := consumer.Distinct(); d < 1 {
			return fmt.Errorf("nothing delivered yet")
		}
		return nil
	})
	var pipeline, requests map[string]float64
	eventually(t, "the pipeline processed the 3 stored webhooks", 2*time.Minute, func() (err error) {
		if pipeline, err = scrape("http://127.0.0.1:"+strconv.Itoa(metricsPort)+"/metrics", "mira_inbound_pipeline_total"); err != nil {
			return err
		}
		n := 0.0
		for _, v := range pipeline {
			n += v
		}
		if n < 3 {
			return fmt.Errorf("%v", pipeline)
		}
		return nil
	})
	requests, err := scrape("http://127.0.0.1:"+strconv.Itoa(metricsPort)+"/metrics", "mira_inbound_requests_total")
	if err != nil {
		t.Fatal(err)
	}
	// A positive marker instead of a settling sleep: one more distinct
	// bot.fatal, sent after the flood, takes the same path (inbound store,
	// pipeline, fan-out, delivery) as the flooded one. Once its
	// meeting.failed has arrived, a duplicate of the flooded webhook would
	// have gone through that path too.
	markerBot := "bot-flood-marker-" + runID
	marker := recalltest.BotFatalPayload(markerBot, "bot_kicked_from_call", map[string]string{"user_id": "usr_flood"}, now)
	a, err := do(request{"recall-marker", "/webhooks/recall", marker, recalltest.SignedHeaders(recallSecret, "msg_marker_"+runID, now, marker)})
	if err != nil || a.code != 200 || a.status != "stored" {
		t.Fatalf("marker webhook: %+v %v, want 200 stored", a, err)
	}
	eventually(t, "the marker's meeting.failed delivered", 2*time.Minute, func() error {
		if d := consumer.Distinct(); d < 2 {
			return fmt.Errorf("%d distinct deliveries", d)
		}
		return nil
	})
	p.Stop()

	// What the inbound stream really holds, read from the stopped
	// receiver's data directory.
	ns2, err := queue.StartEmbedded(queue.EmbeddedOptions{DataDir: dataDir, Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer ns2.Shutdown()
	nc, err := nats.Connect("", nats.InProcessServer(ns2))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, queue.InboundStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(queue.InboundSubject+".>"))
	if err != nil {
		t.Fatal(err)
	}

	report(t, "inbound-floods", map[string]any{
		"replays_each": replays, "distinct_webhooks": len(valid), "flood_requests": replays * len(valid),
		"flood_seconds": floodSeconds, "answers": answers, "refused_each": refusedEach, "refused": refused,
		"inbound_stream_msgs": info.State.Msgs, "inbound_stream_subjects": info.State.Subjects,
		"consumer_delivered": consumer.Distinct(), "consumer_duplicates": consumer.Duplicates(),
		"consumer_bad_signatures": consumer.BadSignatures(), "pipeline": pipeline, "requests": requests,
	})
	// The three flooded webhooks and the marker.
	if info.State.Msgs != uint64(len(valid)+1) {
		t.Errorf("the inbound stream holds %d messages, want %d (one per distinct webhook, and the marker)", info.State.Msgs, len(valid)+1)
	}
	if consumer.Total() != 2 || consumer.Distinct() != 2 {
		t.Errorf("the consumer got %d deliveries (%d distinct), want exactly two meeting.failed: the flooded bot's and the marker's", consumer.Total(), consumer.Distinct())
	}
	if consumer.BadSignatures() != 0 {
		t.Errorf("%d bad signatures at the consumer", consumer.BadSignatures())
	}
}

// scrape reads the samples of one metric family from a Prometheus text
// endpoint, keyed by their label sets.
func scrape(url, family string) (map[string]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, family+"{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[len(family):i]] = v
	}
	return out, sc.Err()
}
