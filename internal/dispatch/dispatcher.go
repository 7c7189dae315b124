// Package dispatch consumes the deliveries stream: for each delivery it
// decides (Admit) whether to attempt it, hold it or end it, signs and POSTs
// it, decides what follows (Judge), records the attempt in the delivery log,
// reports the outcome to the endpoint status, and then acks the message or
// leaves it for a delayed redelivery.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/apimachinery/pkg/types"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	"github.com/mira/mira-operator/internal/deliverylog"
	"github.com/mira/mira-operator/internal/endpoints"
	"github.com/mira/mira-operator/internal/endpointstatus"
	"github.com/mira/mira-operator/internal/fanout"
	"github.com/mira/mira-operator/internal/queue"
)

// Dispatcher sends deliveries.
//
// Deliveries wait in a work-queue stream under one subject per endpoint
// (mira.outbox.<namespace>.<uid>). An endpoint gets a lane, a durable pull
// consumer ("dispatch-<uid>", filtered on its subject) and a fetch loop,
// only while its subject holds messages: the local fan-out says so at once
// (Wake), and a periodic read of the stream's per-subject counts finds
// deliveries queued by other replicas or before a restart. A lane that has
// found nothing for LaneIdle while its subject holds no message retires, and
// the server removes its consumer once nobody has pulled from it for
// ConsumerInactive. (A subject holding messages that wait for a delayed
// retry keeps its lane and consumer, and so their redelivery delays.) So the consumers
// (Raft groups on a NATS cluster) follow the endpoints with work, not the
// endpoints configured.
//
// A lane pulls only as many messages as it has free workers (the
// endpoint's maxConcurrency). A slow or dead endpoint therefore leaves its
// backlog in the stream, costs nothing while it waits, and never takes a
// worker or a fetch from another endpoint.
type Dispatcher struct {
	JS       jetstream.JetStream
	Log      *deliverylog.Store
	Registry *endpoints.Registry
	Status   *endpointstatus.Writer
	Metrics  *Metrics
	Logger   logr.Logger
	// Replicas of the per-endpoint consumers (3 on a NATS cluster).
	Replicas int
	// MaxPending bounds one endpoint's deliveries in flight or waiting for a
	// retry; beyond it, its newer deliveries wait in the stream.
	MaxPending int
	// ShutdownGrace is how long in-flight attempts may finish after Run's
	// context ends; the rest stay queued.
	ShutdownGrace time.Duration
	// ScanEvery is how often lanes are matched to the stream's per-subject
	// counts and the registry (DefaultScanEvery when zero).
	ScanEvery time.Duration
	// LaneIdle is how long a lane with nothing in flight fetches nothing
	// before it retires (DefaultLaneIdle when zero).
	LaneIdle time.Duration
	// ConsumerInactive is how long the server keeps a lane's consumer once
	// nobody pulls from it (DefaultConsumerInactive when zero).
	ConsumerInactive time.Duration
	// LegacyDrained, if set, runs once the legacy deliveries stream is
	// deleted (the receiver gives the outbox its whole storage share back).
	LegacyDrained func(context.Context) error
	Now           func() time.Time
	Rand          func() float64
	// OnDead, when set, is called once when a delivery becomes Dead (after
	// its record is stored); the receiver publishes delivery.dead with it.
	OnDead func(ctx context.Context, e *endpoints.Endpoint, rec *datav1.Delivery)

	// scans counts finished scans (tests wait on it).
	scans atomic.Int64
	// fetchWait bounds a lane's pull request (laneFetchWait; shorter in
	// tests), and emptyPull, if set, is told of each that brought nothing.
	fetchWait time.Duration
	emptyPull func(*lane)

	wakeOnce sync.Once
	wakeMu   sync.Mutex
	woken    map[string]struct{}
	wakeC    chan struct{}
}

// Defaults of the lane lifecycle.
const (
	DefaultScanEvery        = time.Second
	DefaultLaneIdle         = 30 * time.Second
	DefaultConsumerInactive = 5 * time.Minute
)

// laneFetchWait bounds one pull request of a lane. A lane retires only
// after a pull request has expired, so no request of a retired lane is left
// on the server to swallow a message.
const laneFetchWait = 5 * time.Second

// ConsumerName is the durable consumer of an endpoint's deliveries.
func ConsumerName(uid types.UID) string { return "dispatch-" + string(uid) }

// Wake tells the dispatcher that subject (an endpoint's deliveries subject)
// has a message: its lane starts now rather than at the next scan. It never
// blocks; the fan-out calls it after each delivery it queued.
func (d *Dispatcher) Wake(subject string) {
	d.initWake()
	d.wakeMu.Lock()
	d.woken[subject] = struct{}{}
	d.wakeMu.Unlock()
	select {
	case d.wakeC <- struct{}{}:
	default:
	}
}

func (d *Dispatcher) initWake() {
	d.wakeOnce.Do(func() {
		d.woken = map[string]struct{}{}
		d.wakeC = make(chan struct{}, 1)
	})
}

// takeWoken returns and clears the subjects woken since the last call.
func (d *Dispatcher) takeWoken() map[string]struct{} {
	d.wakeMu.Lock()
	defer d.wakeMu.Unlock()
	w := d.woken
	d.woken = map[string]struct{}{}
	return w
}

func (d *Dispatcher) setDefaults() {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Float64
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	if d.ScanEvery <= 0 {
		d.ScanEvery = DefaultScanEvery
	}
	if d.LaneIdle <= 0 {
		d.LaneIdle = DefaultLaneIdle
	}
	if d.ConsumerInactive <= 0 {
		d.ConsumerInactive = DefaultConsumerInactive
	}
	if d.fetchWait <= 0 {
		d.fetchWait = laneFetchWait
	}
	d.initWake()
}

// lanes is the dispatcher's running lanes (owned by Run's goroutine).
type lanes struct {
	// outbox lanes by subject.
	outbox map[string]*lane
	// legacy lanes drain the per-endpoint consumers of the legacy stream,
	// by consumer name.
	legacy map[string]*lane
	// known endpoints (uid → namespace/name) at the last scan, to forget
	// the metric series of deleted ones.
	known map[types.UID][2]string
	wg    sync.WaitGroup
}

// Run dispatches until ctx ends, then lets in-flight attempts finish within
// ShutdownGrace; unfetched deliveries stay in the stream.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.setDefaults()
	// In-flight attempts get their own context so a shutdown does not cut
	// them off at once.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	ls := &lanes{outbox: map[string]*lane{}, legacy: map[string]*lane{}, known: map[types.UID][2]string{}}
	d.openLegacy(ctx, work, ls)
	go d.watchBacklog(ctx)
	t := time.NewTicker(d.ScanEvery)
	defer t.Stop()
	d.scan(ctx, work, ls)
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-t.C:
			d.scan(ctx, work, ls)
		case <-d.wakeC:
			for subj := range d.takeWoken() {
				d.ensureLane(ctx, work, ls, subj)
			}
		}
	}
	done := make(chan struct{})
	go func() { ls.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d.ShutdownGrace):
		cancelWork()
		<-done
	}
	return nil
}

// scan starts a lane for every subject holding messages, restarts lanes
// whose endpoint's concurrency changed, drops lanes that retired, drains
// the legacy stream and forgets the metrics of deleted endpoints.
func (d *Dispatcher) scan(ctx, work context.Context, ls *lanes) {
	if ctx.Err() != nil {
		return
	}
	for subj, l := range ls.outbox {
		if l.ended() {
			delete(ls.outbox, subj)
			continue
		}
		if conc := d.concurrency(l.uid); conc != l.conc {
			l.stop()
			delete(ls.outbox, subj)
		}
	}
	counts, err := d.subjectCounts(ctx)
	if err != nil {
		d.Logger.Error(err, "read the deliveries waiting per endpoint")
	} else {
		for subj, l := range ls.outbox {
			l.queued.Store(counts[subj] > 0)
		}
	}
	for subj, n := range counts {
		if n > 0 {
			d.ensureLane(ctx, work, ls, subj)
		}
	}
	d.syncLegacy(ctx, ls)
	d.forgetDeleted(ls)
	d.scans.Add(1)
}

// subjectCounts reads how many messages each endpoint subject holds
// (waiting, in flight or waiting for a retry: the stream keeps a message
// until it is acknowledged). Subjects without messages are absent.
func (d *Dispatcher) subjectCounts(ctx context.Context) (map[string]uint64, error) {
	stream, err := d.JS.Stream(ctx, queue.DeliveriesStream)
	if err != nil {
		return nil, fmt.Errorf("open the deliveries stream: %w", err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(queue.DeliveriesSubject+".>"))
	if err != nil {
		return nil, fmt.Errorf("read the deliveries stream: %w", err)
	}
	return info.State.Subjects, nil
}

// concurrency is an endpoint's maxConcurrency, or 1 for a deleted endpoint
// whose deliveries are being drained.
func (d *Dispatcher) concurrency(uid types.UID) int {
	if e := d.Registry.Get(uid); e != nil {
		return e.Object().GetMaxConcurrency()
	}
	return 1
}

// ensureLane starts the lane of subject unless one runs.
func (d *Dispatcher) ensureLane(ctx, work context.Context, ls *lanes, subj string) {
	if l := ls.outbox[subj]; l != nil && !l.ended() {
		return
	}
	uid, ok := uidOfSubject(subj)
	if !ok {
		return
	}
	if l := d.startLane(ctx, work, subj, uid, d.concurrency(uid), &ls.wg); l != nil {
		ls.outbox[subj] = l
	}
}

// uidOfSubject is the endpoint uid of mira.outbox.<namespace>.<uid>.
func uidOfSubject(subj string) (types.UID, bool) {
	rest, ok := strings.CutPrefix(subj, queue.DeliveriesSubject+".")
	if !ok {
		return "", false
	}
	_, uid, ok := strings.Cut(rest, ".")
	if !ok || uid == "" || strings.Contains(uid, ".") {
		return "", false
	}
	return types.UID(uid), true
}

// forgetDeleted drops the metric series of endpoints deleted since the
// last scan.
func (d *Dispatcher) forgetDeleted(ls *lanes) {
	now := make(map[types.UID][2]string, len(ls.known))
	for _, e := range d.Registry.All() {
		obj := e.Object()
		now[e.UID] = [2]string{obj.Namespace, obj.Name}
	}
	for uid, n := range ls.known {
		if _, ok := now[uid]; !ok {
			d.Metrics.Forget(n[0], n[1])
		}
	}
	ls.known = now
}

// lane is one endpoint's consumer and its fetch loop.
type lane struct {
	consumer jetstream.Consumer
	uid      types.UID
	conc     int
	// retire: the lane ends itself once idle (outbox lanes); legacy lanes
	// run until their consumer is empty.
	retire bool
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	slots slots
	freed chan struct{}
	// busy counts messages being handled; active is when the lane last
	// fetched or finished one.
	busy   int
	active time.Time
	// queued is set by the scan while the endpoint's subject holds
	// messages (waiting for a delayed retry, say): such a lane does not
	// retire, so its consumer keeps their redelivery delays.
	queued atomic.Bool
}

func (l *lane) stop() {
	l.cancel()
	<-l.done
}

// ended reports whether the fetch loop has returned (retired, or its
// consumer is gone).
func (l *lane) ended() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// release frees the slot of one finished delivery.
func (l *lane) release() {
	l.mu.Lock()
	l.slots.done()
	l.busy--
	l.active = time.Now()
	l.mu.Unlock()
	select {
	case l.freed <- struct{}{}:
	default:
	}
}

// idle reports whether nothing is in flight and nothing was fetched or
// finished for at least after.
func (l *lane) idle(after time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.busy == 0 && time.Since(l.active) >= after
}

// startLane creates (or joins, on another replica) the consumer of one
// endpoint's subject and starts its fetch loop.
func (d *Dispatcher) startLane(ctx, work context.Context, subj string, uid types.UID, conc int, wg *sync.WaitGroup) *lane {
	cons, err := d.JS.CreateOrUpdateConsumer(ctx, queue.DeliveriesStream, LaneConsumerConfig(subj, uid, conc, d.MaxPending, d.Replicas, d.ConsumerInactive))
	if err != nil && strings.Contains(err.Error(), errStorageNotUpdatable) {
		// A consumer an earlier version created with its state on disk:
		// deliver through it as it is until it retires (InactiveThreshold);
		// the lane after that gets the memory-backed one.
		cons, err = d.JS.Consumer(ctx, queue.DeliveriesStream, ConsumerName(uid))
	}
	if err != nil {
		d.Logger.Error(err, "create the deliveries consumer of an endpoint; retrying", "consumer", ConsumerName(uid))
		return nil
	}
	return d.runLane(ctx, work, cons, uid, conc, true, wg)
}

// errStorageNotUpdatable is nats-server's refusal to change a consumer's
// storage type (checkNewConsumerConfig).
const errStorageNotUpdatable = "storage type can not be updated"

// LaneConsumerConfig is the consumer of one endpoint's subject in the
// work-queue stream.
//
// Its state is kept in memory (MemoryStorage), not in a file: on a file
// store nats-server rewrites a consumer's state file (open, write, rename)
// up to 10 times a second while it acks, and with 100 busy lanes that was
// 30% of the receiver's CPU (docs/benchmarks.md, lanes). Nothing is lost
// by it: in a work-queue stream an acked message is removed from the
// stream, so what a consumer's state would remember after a restart is
// only which unacked messages were in flight; a consumer lost with a
// server restart is created again by the next scan (DeliverAll), which
// hands out every message still in the subject, as AckWait would have.
func LaneConsumerConfig(subj string, uid types.UID, conc, maxPending, replicas int, inactive time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:           ConsumerName(uid),
		FilterSubject:     subj,
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           queue.DefaultAckWait,
		MaxDeliver:        -1,
		MaxAckPending:     max(maxPending, conc),
		Replicas:          max(replicas, 1),
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: inactive,
		MemoryStorage:     true,
	}
}

// runLane starts the fetch loop of a lane on cons.
func (d *Dispatcher) runLane(ctx, work context.Context, cons jetstream.Consumer, uid types.UID, conc int, retire bool, wg *sync.WaitGroup) *lane {
	lctx, cancel := context.WithCancel(ctx)
	l := &lane{consumer: cons, uid: uid, conc: conc, retire: retire, cancel: cancel, done: make(chan struct{}),
		slots: newSlots(conc), freed: make(chan struct{}, 1), active: time.Now()}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(l.done)
		d.fetchLoop(lctx, work, uid, l, wg)
	}()
	return l
}

// openLegacy starts a lane for every consumer of the legacy deliveries
// stream (an upgrade from per-endpoint consumers), so what they hold is
// delivered.
func (d *Dispatcher) openLegacy(ctx, work context.Context, ls *lanes) {
	stream, err := d.JS.Stream(ctx, queue.LegacyDeliveriesStream)
	if err != nil {
		return
	}
	names := stream.ConsumerNames(ctx)
	for name := range names.Name() {
		uid, ok := strings.CutPrefix(name, "dispatch-")
		if !ok {
			continue
		}
		cons, err := stream.Consumer(ctx, name)
		if err != nil {
			d.Logger.Error(err, "open a legacy deliveries consumer", "consumer", name)
			continue
		}
		ls.legacy[name] = d.runLane(ctx, work, cons, types.UID(uid), d.concurrency(types.UID(uid)), false, &ls.wg)
	}
}

// syncLegacy deletes each legacy consumer once it holds nothing, and the
// legacy stream once no consumer is left.
func (d *Dispatcher) syncLegacy(ctx context.Context, ls *lanes) {
	if len(ls.legacy) == 0 {
		return
	}
	for name, l := range ls.legacy {
		info, err := l.consumer.Info(ctx)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		if err == nil && (info.NumPending > 0 || info.NumAckPending > 0) {
			continue
		}
		l.stop()
		delete(ls.legacy, name)
		if err == nil {
			if err := d.JS.DeleteConsumer(ctx, queue.LegacyDeliveriesStream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				d.Logger.Error(err, "delete a drained legacy deliveries consumer", "consumer", name)
			}
		}
	}
	if len(ls.legacy) == 0 {
		if err := d.JS.DeleteStream(ctx, queue.LegacyDeliveriesStream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			d.Logger.Error(err, "delete the drained legacy deliveries stream")
			return
		}
		if d.LegacyDrained != nil {
			if err := d.LegacyDrained(ctx); err != nil {
				d.Logger.Error(err, "after the legacy deliveries stream was drained")
			}
		}
	}
}

// fetchLoop pulls only as many messages as there are free workers, so
// nothing waits in memory for a busy endpoint. A retiring lane returns after
// an empty pull once it has been idle for LaneIdle.
func (d *Dispatcher) fetchLoop(ctx, work context.Context, uid types.UID, l *lane, wg *sync.WaitGroup) {
	for {
		// A stopped lane (deleted endpoint, changed concurrency, shutdown)
		// returns at once: with free slots a cancelled Fetch fails at once
		// too, and the loop would spin instead of ending.
		if ctx.Err() != nil {
			return
		}
		l.mu.Lock()
		n := l.slots.take()
		l.mu.Unlock()
		if n == 0 {
			select {
			case <-ctx.Done():
				return
			case <-l.freed:
			}
			continue
		}
		if e := d.Registry.Get(uid); e != nil {
			if wait := e.PausedUntil().Sub(d.Now()); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
		got, err := d.fetch(ctx, work, l, n, wg)
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
			return // the next scan starts a new lane if there is work
		}
		if err != nil && ctx.Err() == nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			d.Logger.Error(err, "fetch deliveries; retrying in 1s")
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		if got == 0 && d.emptyPull != nil {
			d.emptyPull(l)
		}
		if got == 0 && l.retire && !l.queued.Load() && l.idle(d.LaneIdle) {
			return
		}
	}
}

// fetch pulls up to n messages and hands each to a worker; it returns how
// many it got.
func (d *Dispatcher) fetch(ctx, work context.Context, l *lane, n int, wg *sync.WaitGroup) (int, error) {
	fctx, cancel := context.WithTimeout(ctx, d.fetchWait)
	defer cancel()
	batch, err := l.consumer.Fetch(n, jetstream.FetchContext(fctx))
	got := 0
	if err == nil {
		for msg := range batch.Messages() {
			got++
			l.mu.Lock()
			l.busy++
			l.active = time.Now()
			l.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer l.release()
				d.handle(work, msg)
			}()
		}
		err = batch.Error()
	}
	l.mu.Lock()
	l.slots.unfilled(n, got)
	l.mu.Unlock()
	return got, err
}

// backlogEvery is how often endpoints' backlog ages are measured.
const backlogEvery = 10 * time.Second

// watchBacklog sets mira_endpoint_backlog_age_seconds until ctx ends.
func (d *Dispatcher) watchBacklog(ctx context.Context) {
	t := time.NewTicker(backlogEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.observeBacklog(ctx)
		}
	}
}

// observeBacklog reads the stream's per-subject counts once; for an
// endpoint whose subject holds messages, the oldest one not acknowledged is
// the first message of its subject (acknowledged messages leave the
// stream). Endpoints without messages have age 0.
func (d *Dispatcher) observeBacklog(ctx context.Context) {
	counts, err := d.subjectCounts(ctx)
	if err != nil {
		return
	}
	stream, err := d.JS.Stream(ctx, queue.DeliveriesStream)
	if err != nil {
		return
	}
	now := d.Now()
	for _, e := range d.Registry.All() {
		obj := e.Object()
		subj := fanout.Subject(obj.Namespace, string(e.UID))
		age := 0.0
		if counts[subj] > 0 {
			msg, err := stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(subj))
			if err == nil {
				age = max(0, now.Sub(msg.Time).Seconds())
			}
		}
		d.Metrics.BacklogAge.WithLabelValues(obj.Namespace, obj.Name).Set(age)
	}
}
