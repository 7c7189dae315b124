package events_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mira/mira-operator/internal/events"
	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/queue/queuetest"
)

// When the events stream reaches its bound, POST /v1/events answers 503
// (the caller retries) and nothing already stored is dropped.
func TestIngestAnswers503WhenFull(t *testing.T) {
	_, js := queuetest.Start(t)
	ctx := context.Background()
	cfg := queue.Config{MaxBytes: queue.MinMaxBytes}
	if err := queue.Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	h := &events.Handler{Publisher: &events.Stream{JS: js}, DefaultNamespace: "default", Logger: logr.Discard()}
	data := strings.Repeat("x", 900<<10)
	accepted, status := 0, 0
	for i := range 100 {
		body := fmt.Sprintf(`{"id":"ev-%d","event":"report.completed","data":{"pad":%q}}`, i, data)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(body)))
		if status = rec.Code; status != http.StatusAccepted {
			break
		}
		accepted++
	}
	if status != http.StatusServiceUnavailable {
		t.Fatalf("after %d accepted events: status %d, want 503", accepted, status)
	}
	st, err := js.Stream(ctx, queue.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(accepted) || accepted == 0 {
		t.Fatalf("stream holds %d messages, %d were accepted", info.State.Msgs, accepted)
	}
	if limit := cfg.MaxBytesOf(queue.EventsStream); info.Config.MaxBytes != limit || int64(info.State.Bytes) > limit {
		t.Fatalf("stream max bytes %d, holds %d, want bound %d", info.Config.MaxBytes, info.State.Bytes, limit)
	}
}

// The bounds and what happens at them: queued deliveries are refused
// (DiscardNew), the delivery log drops its oldest entries (DiscardOld).
func TestStorageBoundsAndDiscardPolicies(t *testing.T) {
	_, js := queuetest.Start(t)
	ctx := context.Background()
	cfg := queue.Config{MaxBytes: 1 << 30}
	if err := queue.Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	// Idempotent.
	if err := queue.Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, tc := range []struct {
		stream  string
		share   string
		discard jetstream.DiscardPolicy
	}{
		{queue.EventsStream, queue.EventsStream, jetstream.DiscardNew},
		{queue.DeliveriesStream, queue.DeliveriesStream, jetstream.DiscardNew},
		{queue.InboundStream, queue.InboundStream, jetstream.DiscardNew},
		{"KV_" + queue.DeliveryLogBucket, queue.DeliveryLogBucket, jetstream.DiscardOld},
		{"KV_" + queue.ReportsBucket, queue.ReportsBucket, jetstream.DiscardNew},
		{"KV_" + queue.StateBucket, queue.StateBucket, jetstream.DiscardNew},
		{"KV_" + queue.EndpointStatsBucket, queue.EndpointStatsBucket, jetstream.DiscardNew},
	} {
		st, err := js.Stream(ctx, tc.stream)
		if err != nil {
			t.Fatal(err)
		}
		c := st.CachedInfo().Config
		want := cfg.MaxBytesOf(tc.share)
		if c.MaxBytes != want || want <= 0 || c.Discard != tc.discard {
			t.Errorf("%s: max bytes %d discard %v, want %d %v", tc.stream, c.MaxBytes, c.Discard, want, tc.discard)
		}
		total += c.MaxBytes
	}
	if total > cfg.MaxBytes {
		t.Errorf("bounds add up to %d, more than %d", total, cfg.MaxBytes)
	}
	if err := queue.Ensure(ctx, js, queue.Config{MaxBytes: 1 << 20}); err == nil {
		t.Error("Ensure accepted a 1 MiB bound")
	}
}
