package queue_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mira/mira-operator/internal/queue"
)

// startBounded runs an embedded server whose store holds maxStore bytes.
func startBounded(t *testing.T, maxStore int64) jetstream.JetStream {
	t.Helper()
	ns, err := queue.StartEmbedded(queue.EmbeddedOptions{DataDir: t.TempDir(), Port: -1, MaxStore: maxStore})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		ns.Shutdown()
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close(); ns.Shutdown(); ns.WaitForShutdown() })
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// An upgrade finds the legacy deliveries stream holding its share of a
// bounded store: Ensure bounds it to what it holds, without removing any
// of it, so the new outbox fits beside it; an empty legacy stream is
// deleted. (Acknowledged messages are purged first: see
// TestEnsurePurgesWhatTheLegacyConsumersAcked.)
func TestEnsureMakesRoomBesideTheLegacyStream(t *testing.T) {
	ctx := context.Background()
	const store = 200 << 20
	cfg := queue.Config{MaxBytes: store * 95 / 100}
	for _, held := range []bool{true, false} {
		js := startBounded(t, store)
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: queue.LegacyDeliveriesStream, Subjects: []string{"mira.deliveries.>"},
			Storage: jetstream.FileStorage, MaxBytes: cfg.MaxBytesOf(queue.DeliveriesStream), Discard: jetstream.DiscardNew}); err != nil {
			t.Fatal(err)
		}
		if held {
			if _, err := js.Publish(ctx, "mira.deliveries.uid-1", []byte("queued before the upgrade")); err != nil {
				t.Fatal(err)
			}
			// The endpoint's consumer of the earlier version, not acked yet.
			if _, err := js.CreateOrUpdateConsumer(ctx, queue.LegacyDeliveriesStream, jetstream.ConsumerConfig{
				Durable: "dispatch-uid-1", FilterSubject: "mira.deliveries.uid-1", AckPolicy: jetstream.AckExplicitPolicy,
			}); err != nil {
				t.Fatal(err)
			}
		}
		if err := queue.Ensure(ctx, js, cfg); err != nil {
			t.Fatalf("held=%t: %v", held, err)
		}
		st, err := js.Stream(ctx, queue.LegacyDeliveriesStream)
		if !held {
			if !errors.Is(err, jetstream.ErrStreamNotFound) {
				t.Fatalf("the empty legacy stream is still there: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		info := st.CachedInfo()
		if info.State.Msgs != 1 || info.Config.MaxBytes != int64(info.State.Bytes) {
			t.Fatalf("legacy stream: %d messages, bound %d for %d bytes; want 1 message, bound = bytes", info.State.Msgs, info.Config.MaxBytes, info.State.Bytes)
		}
	}
}

// Messages every legacy consumer acknowledged (a limits stream keeps them
// until they expire) are purged; the rest stay.
func TestEnsurePurgesWhatTheLegacyConsumersAcked(t *testing.T) {
	ctx := context.Background()
	js := startBounded(t, 200<<20)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: queue.LegacyDeliveriesStream, Subjects: []string{"mira.deliveries.>"}}); err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{"mira.deliveries.uid-1", "mira.deliveries.uid-1", "mira.deliveries.uid-1"} {
		if _, err := js.Publish(ctx, subj, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, queue.LegacyDeliveriesStream, jetstream.ConsumerConfig{
		Durable: "dispatch-uid-1", FilterSubject: "mira.deliveries.uid-1", AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(2)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := queue.Ensure(ctx, js, queue.Config{MaxBytes: 190 << 20}); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, queue.LegacyDeliveriesStream)
	if err != nil {
		t.Fatal(err)
	}
	if info := st.CachedInfo(); info.State.Msgs != 1 || info.State.FirstSeq != 3 {
		t.Fatalf("legacy stream holds %d messages from %d, want the unacknowledged one (3)", info.State.Msgs, info.State.FirstSeq)
	}
}
