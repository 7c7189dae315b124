package dispatch

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/fanout"
	"github.com/mira/mira-operator/internal/queue"
)

// The backlog age is the age of the oldest message an endpoint's consumer
// has not acknowledged, measured against a real JetStream.
func TestObserveBacklog(t *testing.T) {
	ctx := context.Background()
	d := newTestDispatcher(t)
	js, reg := d.JS, d.Registry
	busy := &miraapi.WebhookEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "busy", UID: "uid-busy", Generation: 1}}
	idle := &miraapi.WebhookEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "idle", UID: "uid-idle", Generation: 1}}
	reg.Observe(busy)
	reg.Observe(idle)

	// busy: three messages, the first acknowledged; idle: one, acknowledged.
	busySubj, idleSubj := fanout.Subject("team-a", "uid-busy"), fanout.Subject("team-a", "uid-idle")
	for i, subj := range []string{busySubj, busySubj, idleSubj, busySubj} {
		if i > 0 {
			// Not synchronisation: it spaces the stream timestamps so the
			// assertion below can tell which message the age came from.
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := js.Publish(ctx, subj, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	ack := func(uid string, n int) {
		cons, err := js.CreateOrUpdateConsumer(ctx, queue.DeliveriesStream, jetstream.ConsumerConfig{
			Durable: ConsumerName(types.UID(uid)), FilterSubject: fanout.Subject("team-a", uid), AckPolicy: jetstream.AckExplicitPolicy,
		})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		batch, err := cons.Fetch(n, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	ack("uid-busy", 1)
	ack("uid-idle", 1)

	stream, err := js.Stream(ctx, queue.DeliveriesStream)
	if err != nil {
		t.Fatal(err)
	}
	second, err := stream.GetMsg(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	now := second.Time.Add(90 * time.Second)
	d.Now = func() time.Time { return now }
	d.observeBacklog(ctx)

	if got := testutil.ToFloat64(d.Metrics.BacklogAge.WithLabelValues("team-a", "busy")); got < 89.995 || got > 90.005 {
		t.Fatalf("busy backlog age %.3f s, want 90 (its oldest unacknowledged message is the second one)", got)
	}
	if got := testutil.ToFloat64(d.Metrics.BacklogAge.WithLabelValues("team-a", "idle")); got != 0 {
		t.Fatalf("idle backlog age %.3f s, want 0", got)
	}
}

func TestForgetDeletesAnEndpointsSeries(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	m.Deliveries.WithLabelValues("team-a", "gone", "report.completed", "delivered").Inc()
	m.Deliveries.WithLabelValues("team-a", "kept", "report.completed", "dead").Inc()
	m.Retries.WithLabelValues("team-a", "gone").Inc()
	m.AttemptSeconds.WithLabelValues("team-a", "gone").Observe(0.1)
	m.CircuitOpen.WithLabelValues("team-a", "gone").Set(1)
	m.BacklogAge.WithLabelValues("team-a", "gone").Set(3)
	m.BacklogAge.WithLabelValues("team-b", "gone").Set(4)

	m.Forget("team-a", "gone")

	for name, c := range map[string]prometheus.Collector{
		"deliveries": m.Deliveries, "retries": m.Retries, "attempts": m.AttemptSeconds, "circuit": m.CircuitOpen, "backlog": m.BacklogAge,
	} {
		want := map[string]int{"deliveries": 1, "backlog": 1}[name]
		if got := testutil.CollectAndCount(c); got != want {
			t.Errorf("%s: %d series left, want %d", name, got, want)
		}
	}
	if got := testutil.ToFloat64(m.Deliveries.WithLabelValues("team-a", "kept", "report.completed", "dead")); got != 1 {
		t.Fatalf("another endpoint's series changed: %v", got)
	}
	if got := testutil.ToFloat64(m.BacklogAge.WithLabelValues("team-b", "gone")); got != 4 {
		t.Fatalf("the same name in another namespace changed: %v", got)
	}
}
