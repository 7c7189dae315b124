package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/deliverylog"
	"github.com/mira/mira-operator/internal/endpoints"
	"github.com/mira/mira-operator/internal/fanout"
	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/queue/queuetest"
)

// A lane with free workers must end when it is stopped (an endpoint was
// deleted, its concurrency changed, or the receiver shuts down). It used to
// spin on failing fetches with the cancelled context, so stop never
// returned: the dispatcher stopped syncing lanes and the receiver's
// shutdown ran into its grace period.
func TestLaneStopsWithFreeWorkers(t *testing.T) {
	ctx := context.Background()
	d := newTestDispatcher(t)
	var wg sync.WaitGroup
	l := d.startLane(ctx, ctx, fanout.Subject("team-a", "uid-stopped"), "uid-stopped", 4, &wg)
	if l == nil {
		t.Fatal("lane not started")
	}
	stopped := make(chan struct{})
	go func() { l.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("lane.stop did not return: the fetch loop ignores its cancelled context")
	}
	wg.Wait()
}

// newTestDispatcher is a dispatcher on a real, embedded JetStream with the
// streams in place, an empty registry and unregistered metrics.
func newTestDispatcher(t *testing.T) *Dispatcher {
	t.Helper()
	_, js := queuetest.Start(t)
	if err := queue.Ensure(context.Background(), js, queue.Config{}); err != nil {
		t.Fatal(err)
	}
	reg, err := endpoints.NewRegistry(endpoints.RegistryOptions{Reader: fake.NewClientBuilder().Build()})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(context.Background(), queue.DeliveryLogBucket)
	if err != nil {
		t.Fatal(err)
	}
	log, err := deliverylog.New(kv)
	if err != nil {
		t.Fatal(err)
	}
	d := &Dispatcher{JS: js, Log: log, Registry: reg, Metrics: NewMetrics(prometheus.NewRegistry()), Now: time.Now, Rand: func() float64 { return 0 }}
	d.setDefaults()
	return d
}

// runDispatcher runs d until the test ends.
func runDispatcher(t *testing.T, d *Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// consumerNames lists the consumers of the deliveries stream.
func consumerNames(t *testing.T, d *Dispatcher) []string {
	t.Helper()
	stream, err := d.JS.Stream(context.Background(), queue.DeliveriesStream)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	names := stream.ConsumerNames(context.Background())
	for n := range names.Name() {
		out = append(out, n)
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// queueFor publishes one delivery for an endpoint straight into the stream,
// as the fan-out of another replica would (no Wake on this one).
func queueFor(t *testing.T, d *Dispatcher, ns, uid, id string) (created time.Time) {
	t.Helper()
	m := fanout.Message{ID: id, EventID: "evt_" + id, EventType: "report.completed", EndpointUID: uid, Namespace: ns,
		Name: "gone", Body: []byte(`{}`), Created: time.Now().UTC()}
	if _, err := d.JS.PublishMsg(context.Background(), m.NewMsg()); err != nil {
		t.Fatal(err)
	}
	return m.Created
}

// storedMsgs is how many deliveries the stream still holds.
func storedMsgs(t *testing.T, d *Dispatcher) uint64 {
	t.Helper()
	stream, err := d.JS.Stream(context.Background(), queue.DeliveriesStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Idle endpoints have no consumer; a delivery queued by another replica
// gets a lane from the periodic scan, is settled (its endpoint was deleted,
// so it ends as dead) and acknowledged; the lane then retires and the
// server removes its consumer.
func TestLanesFollowWork(t *testing.T) {
	d := newTestDispatcher(t)
	d.ScanEvery, d.LaneIdle, d.ConsumerInactive = 50*time.Millisecond, 200*time.Millisecond, time.Second
	for i := range 50 {
		uid := fmt.Sprintf("uid-idle-%d", i)
		d.Registry.Observe(&miraapi.WebhookEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: uid, UID: types.UID(uid), Generation: 1}})
	}
	runDispatcher(t, d)
	waitFor(t, "two scans", func() bool { return d.scans.Load() >= 2 })
	if got := consumerNames(t, d); len(got) != 0 {
		t.Fatalf("consumers %v with 50 idle endpoints, want none", got)
	}

	created := queueFor(t, d, "team-a", "uid-deleted", "dlv_1")
	waitFor(t, "the delivery to be settled", func() bool { return storedMsgs(t, d) == 0 })
	if got := consumerNames(t, d); len(got) != 1 || got[0] != ConsumerName("uid-deleted") {
		t.Fatalf("consumers %v right after the delivery, want only the lane of uid-deleted", got)
	}
	rec, _, err := d.Log.Get(context.Background(), "uid-deleted", created, "dlv_1")
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != datav1.StateDead || rec.Reason != ReasonDeleted {
		t.Fatalf("record %s/%s, want Dead/%s", rec.State, rec.Reason, ReasonDeleted)
	}
	waitFor(t, "the idle lane's consumer to go", func() bool { return len(consumerNames(t, d)) == 0 })
}

// The fan-out's Wake starts a lane at once, without waiting for a scan.
func TestWakeStartsALane(t *testing.T) {
	d := newTestDispatcher(t)
	d.ScanEvery = time.Hour // only the scan at start, on an empty stream
	runDispatcher(t, d)
	waitFor(t, "the first scan", func() bool { return d.scans.Load() >= 1 })
	queueFor(t, d, "team-b", "uid-woken", "dlv_2")
	d.Wake(fanout.Subject("team-b", "uid-woken"))
	waitFor(t, "the woken delivery to be settled", func() bool { return storedMsgs(t, d) == 0 })
}

// A lane's consumer keeps its state in memory (no state file rewritten per
// ack); a file-backed consumer an earlier version left behind is used as it
// is (nats-server refuses to change the storage type) rather than leaving
// its deliveries stuck.
func TestLaneConsumerStorage(t *testing.T) {
	ctx := context.Background()
	d := newTestDispatcher(t)
	d.ScanEvery = 50 * time.Millisecond
	// The earlier version's consumer of uid-old, on disk.
	old := LaneConsumerConfig(fanout.Subject("team-c", "uid-old"), "uid-old", 4, d.MaxPending, 1, time.Hour)
	old.MemoryStorage = false
	if _, err := d.JS.CreateOrUpdateConsumer(ctx, queue.DeliveriesStream, old); err != nil {
		t.Fatal(err)
	}
	runDispatcher(t, d)
	queueFor(t, d, "team-c", "uid-new", "dlv_new")
	queueFor(t, d, "team-c", "uid-old", "dlv_old")
	waitFor(t, "both deliveries to be settled", func() bool { return storedMsgs(t, d) == 0 })
	for uid, memory := range map[string]bool{"uid-new": true, "uid-old": false} {
		c, err := d.JS.Consumer(ctx, queue.DeliveriesStream, ConsumerName(types.UID(uid)))
		if err != nil {
			t.Fatalf("consumer of %s: %v", uid, err)
		}
		if got := c.CachedInfo().Config.MemoryStorage; got != memory {
			t.Errorf("consumer of %s: MemoryStorage %v, want %v", uid, got, memory)
		}
	}
}

func TestUIDOfSubject(t *testing.T) {
	for subj, want := range map[string]string{
		fanout.Subject("team-a", "u-1"): "u-1",
		fanout.Subject("", "u-2"):       "u-2",
		"mira.outbox.team-a":            "",
		"mira.outbox.a.b.c":             "",
		"mira.deliveries.u-3":           "",
	} {
		got, ok := uidOfSubject(subj)
		if string(got) != want || ok != (want != "") {
			t.Errorf("uidOfSubject(%q) = %q, %v; want %q", subj, got, ok, want)
		}
	}
}

// The first outcome of a first-fan-out message creates its record; a
// pending record that a redone fan-out wrote meanwhile is adopted rather than
// making the message come back (one hand-out, record settled).
func TestFirstOutcomeAdoptsAnUntouchedPendingRecord(t *testing.T) {
	d := newTestDispatcher(t)
	ctx := context.Background()
	m := fanout.Message{ID: "dlv_3", EventID: "evt_3", EventType: "report.completed", EndpointUID: "uid-gone", Namespace: "team-c",
		Name: "gone", Body: []byte(`{}`), Created: time.Now().UTC().Truncate(time.Millisecond)}
	if _, err := d.Log.Create(ctx, m.NewRecord()); err != nil {
		t.Fatal(err)
	}
	if _, err := d.JS.PublishMsg(ctx, m.NewMsg()); err != nil {
		t.Fatal(err)
	}
	runDispatcher(t, d)
	waitFor(t, "the delivery to be settled", func() bool { return storedMsgs(t, d) == 0 })
	rec, _, err := d.Log.Get(ctx, "uid-gone", m.Created, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != datav1.StateDead || rec.Reason != ReasonDeleted {
		t.Fatalf("record %s/%s, want Dead/%s", rec.State, rec.Reason, ReasonDeleted)
	}
	cons, err := d.JS.Consumer(ctx, queue.DeliveriesStream, ConsumerName("uid-gone"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Delivered.Consumer != 1 {
		t.Fatalf("handed out %d times, want once", info.Delivered.Consumer)
	}
}

// A lane whose endpoint has a delivery waiting for a delayed retry does not
// retire, however long it finds nothing to fetch: its consumer holds the
// retry delay, and a new consumer would hand the delivery out at once.
func TestLaneWithARetryWaitingStays(t *testing.T) {
	d := newTestDispatcher(t)
	ctx := context.Background()
	d.ScanEvery, d.LaneIdle, d.ConsumerInactive, d.fetchWait = 20*time.Millisecond, 100*time.Millisecond, time.Second, 50*time.Millisecond
	var mu sync.Mutex
	pulls := map[*lane]int{}
	d.emptyPull = func(l *lane) { mu.Lock(); pulls[l]++; mu.Unlock() }
	// A manual redelivery (round 1) whose record waits an hour for its next
	// retry: the dispatcher reads the record and returns the message with
	// that delay.
	created := time.Now().UTC().Truncate(time.Millisecond)
	next := time.Now().Add(time.Hour)
	m := fanout.Message{ID: "dlv_4", EventID: "evt_4", EventType: "report.completed", EndpointUID: "uid-retry", Namespace: "team-d",
		Name: "retry", Body: []byte(`{}`), Created: created, Round: 1}
	rec := m.NewRecord()
	rec.State, rec.NextRetry, rec.AttemptCount = datav1.StateRetrying, &next, 1
	if _, err := d.Log.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := d.JS.PublishMsg(ctx, m.NewMsg()); err != nil {
		t.Fatal(err)
	}
	runDispatcher(t, d)
	// 20 empty pulls of 50 ms: well past LaneIdle.
	waitFor(t, "20 empty pulls", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range pulls {
			if n >= 20 {
				return true
			}
		}
		return false
	})
	mu.Lock()
	lanes := len(pulls)
	mu.Unlock()
	if lanes != 1 {
		t.Fatalf("%d lanes pulled for the endpoint, want 1 (the lane retired and was started again)", lanes)
	}
	if n := storedMsgs(t, d); n != 1 {
		t.Fatalf("%d messages in the stream, want the waiting one", n)
	}
}

// After an upgrade, the legacy deliveries stream's per-endpoint consumers
// are drained, then deleted, and so is the stream.
func TestLegacyStreamIsDrainedThenDeleted(t *testing.T) {
	d := newTestDispatcher(t)
	ctx := context.Background()
	d.ScanEvery = 50 * time.Millisecond
	if _, err := d.JS.CreateStream(ctx, jetstream.StreamConfig{Name: queue.LegacyDeliveriesStream, Subjects: []string{"mira.deliveries.>"}}); err != nil {
		t.Fatal(err)
	}
	m := fanout.Message{ID: "dlv_5", EventID: "evt_5", EventType: "report.completed", EndpointUID: "uid-old", Namespace: "team-e",
		Name: "old", Body: []byte(`{}`), Created: time.Now().UTC().Truncate(time.Millisecond)}
	msg := m.NewMsg()
	msg.Subject = "mira.deliveries.uid-old" // the legacy subject
	if _, err := d.JS.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	if _, err := d.JS.CreateOrUpdateConsumer(ctx, queue.LegacyDeliveriesStream, jetstream.ConsumerConfig{
		Durable: ConsumerName("uid-old"), FilterSubject: "mira.deliveries.uid-old", AckPolicy: jetstream.AckExplicitPolicy,
	}); err != nil {
		t.Fatal(err)
	}
	runDispatcher(t, d)
	waitFor(t, "the legacy stream to be deleted", func() bool {
		_, err := d.JS.Stream(ctx, queue.LegacyDeliveriesStream)
		return errors.Is(err, jetstream.ErrStreamNotFound)
	})
	rec, _, err := d.Log.Get(ctx, "uid-old", m.Created, m.ID)
	if err != nil {
		t.Fatalf("the legacy delivery was not settled before its stream went: %v", err)
	}
	if rec.State != datav1.StateDead || rec.Reason != ReasonDeleted {
		t.Fatalf("record %s/%s, want Dead/%s", rec.State, rec.Reason, ReasonDeleted)
	}
}
