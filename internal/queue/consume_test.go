package queue_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/queue/queuetest"
	"github.com/mira/mira-operator/internal/testenv"
)

// setup creates a stream and a durable pull consumer like the pipeline's.
func setup(t *testing.T, ackWait time.Duration) (jetstream.JetStream, jetstream.Consumer) {
	t.Helper()
	_, js := queuetest.Start(t)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "T", jetstream.ConsumerConfig{
		Durable: "c", AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait, MaxDeliver: -1, MaxAckPending: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	return js, cons
}

func publish(t *testing.T, js jetstream.JetStream, n int, prefix string) {
	t.Helper()
	for i := range n {
		if _, err := js.Publish(context.Background(), "t.x", fmt.Appendf(nil, "%s-%d", prefix, i)); err != nil {
			t.Fatal(err)
		}
	}
}

// A message must not time out in a client-side buffer while every worker
// is busy with long work: it would be handled twice and come back with an
// inflated delivery count, which the pipeline read as failed attempts.
func TestConsumeFetchesOnlyWhatWorkersCanTake(t *testing.T) {
	const ackWait = 500 * time.Millisecond
	js, cons := setup(t, ackWait)
	publish(t, js, 2, "long")
	publish(t, js, 1, "marker")
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var handles []string
	marker := make(chan struct{})
	var once sync.Once
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = queue.Consume(ctx, cons, 1, logr.Discard(), func(_ context.Context, msg jetstream.Msg) {
			md, _ := msg.Metadata()
			mu.Lock()
			handles = append(handles, fmt.Sprintf("%s#%d", msg.Data(), md.NumDelivered))
			mu.Unlock()
			if string(msg.Data()) == "marker-0" {
				_ = msg.Ack()
				once.Do(func() { close(marker) })
				return
			}
			// Long work: three ack waits, kept alive with InProgress as the
			// pipeline does.
			end := time.Now().Add(3 * ackWait)
			for time.Now().Before(end) {
				_ = msg.InProgress()
				time.Sleep(ackWait / 5)
			}
			_ = msg.Ack()
		})
	}()
	select {
	case <-marker:
	case <-time.After(30 * time.Second):
		t.Fatal("marker not handled")
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	want := []string{"long-0#1", "long-1#1", "marker-0#1"}
	if fmt.Sprint(handles) != fmt.Sprint(want) {
		t.Errorf("handled %v, want %v: a message timed out waiting for a worker", handles, want)
	}
}

// After PauseConsumer and ResumeConsumer, a backlog stored meanwhile must
// flow at once, not after an outstanding pull request expires.
func TestConsumeResumesPromptlyAfterPause(t *testing.T) {
	t.Parallel()
	js, cons := setup(t, 30*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	handled := make(chan string, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = queue.Consume(ctx, cons, 4, logr.Discard(), func(_ context.Context, msg jetstream.Msg) {
			_ = msg.Ack()
			handled <- string(msg.Data())
		})
	}()
	publish(t, js, 1, "warm")
	<-handled
	if _, err := js.PauseConsumer(ctx, "T", "c", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// The scenario, not a synchronisation: a pause longer than a pull
	// request's life (the benchmark paused for a whole run).
	time.Sleep(35 * time.Second)
	publish(t, js, 20, "backlog")
	// The consumer's pending count is the server's view and may trail the
	// acknowledged publishes for a moment.
	testenv.Eventually(t, "a backlog of 20 while paused", 10*time.Second, func() error {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumPending != 20 || info.Delivered.Consumer != 1 {
			return fmt.Errorf("pending %d, delivered %d", info.NumPending, info.Delivered.Consumer)
		}
		return nil
	})
	if _, err := js.ResumeConsumer(ctx, "T", "c"); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	for i := range 20 {
		select {
		case <-handled:
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d of 20 messages handled 30 s after resume", i)
		}
	}
	if d := time.Since(resumed); d > queue.FetchWait+time.Second {
		t.Errorf("the backlog took %s after resume; the consumer stalled", d)
	}
	cancel()
	<-done
}
