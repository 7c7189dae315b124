// Package dispatch consumes the deliveries stream: for each delivery it
// decides (Admit) whether to attempt it, hold it or end it, signs and POSTs
// it, decides what follows (Judge), records the attempt in the delivery log,
// reports the outcome to the endpoint status, and then acks the message or
// leaves it for a delayed redelivery.
package dispatch

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
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
// Every endpoint has its own durable pull consumer ("dispatch-<uid>",
// filtered on its subject) and pulls only as many messages as it has free
// workers (its maxConcurrency). A slow or dead endpoint therefore leaves its
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
	Now           func() time.Time
	Rand          func() float64
	// OnDead, when set, is called once when a delivery becomes Dead (after
	// its record is stored); the receiver publishes delivery.dead with it.
	OnDead func(ctx context.Context, e *endpoints.Endpoint, rec *datav1.Delivery)
}

// syncEvery is how often lanes are matched to the registry.
const syncEvery = time.Second

// ConsumerName is the durable consumer of an endpoint's deliveries.
func ConsumerName(uid types.UID) string { return "dispatch-" + string(uid) }

// Run dispatches until ctx ends, then lets in-flight attempts finish within
// ShutdownGrace; unfetched deliveries stay in the stream.
func (d *Dispatcher) Run(ctx context.Context) error {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Float64
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	// In-flight attempts get their own context so a shutdown does not cut
	// them off at once.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	var wg sync.WaitGroup
	lanes := map[types.UID]*lane{}
	// Consumers left by endpoints deleted while the receiver was down still
	// hold deliveries: drain them too.
	if stream, err := d.JS.Stream(ctx, queue.DeliveriesStream); err == nil {
		names := stream.ConsumerNames(ctx)
		for name := range names.Name() {
			if uid, ok := strings.CutPrefix(name, "dispatch-"); ok {
				lanes[types.UID(uid)] = nil
			}
		}
	}
	go d.watchBacklog(ctx)
	t := time.NewTicker(syncEvery)
	defer t.Stop()
	for {
		d.syncLanes(ctx, work, lanes, &wg)
		select {
		case <-ctx.Done():
		case <-t.C:
			continue
		}
		break
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d.ShutdownGrace):
		cancelWork()
		<-done
	}
	return nil
}

// syncLanes starts a lane for every endpoint, restarts lanes whose
// concurrency changed, and retires lanes of deleted endpoints once their
// consumer holds nothing more.
func (d *Dispatcher) syncLanes(ctx, work context.Context, lanes map[types.UID]*lane, wg *sync.WaitGroup) {
	if ctx.Err() != nil {
		return
	}
	seen := map[types.UID]bool{}
	for _, e := range d.Registry.All() {
		seen[e.UID] = true
		conc := e.Object().GetMaxConcurrency()
		l := lanes[e.UID]
		if l != nil && l.conc == conc {
			continue
		}
		if l != nil {
			l.stop()
		}
		if nl := d.startLane(ctx, work, e.UID, conc, wg); nl != nil {
			nl.namespace, nl.name = e.Object().Namespace, e.Object().Name
			lanes[e.UID] = nl
		}
	}
	for uid, l := range lanes {
		if seen[uid] {
			continue
		}
		if l != nil && l.name != "" {
			// The endpoint was deleted: so are its metric series.
			d.Metrics.Forget(l.namespace, l.name)
			l.namespace, l.name = "", ""
		}
		if l == nil {
			if l = d.startLane(ctx, work, uid, 1, wg); l == nil {
				continue
			}
			lanes[uid] = l
		}
		// The endpoint is gone: once its consumer is empty, remove it.
		info, err := l.consumer.Info(ctx)
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
			l.stop()
			if err := d.JS.DeleteConsumer(ctx, queue.DeliveriesStream, ConsumerName(uid)); err != nil {
				d.Logger.Error(err, "delete the consumer of a deleted endpoint", "consumer", ConsumerName(uid))
			}
			delete(lanes, uid)
		}
	}
}

// lane is one endpoint's consumer and its fetch loop.
type lane struct {
	consumer jetstream.Consumer
	conc     int
	// namespace and name of the endpoint, for its metric series; empty for
	// a lane that drains the consumer of an endpoint already deleted.
	namespace, name string
	cancel          context.CancelFunc
	done            chan struct{}

	mu    sync.Mutex
	slots slots
	freed chan struct{}
}

func (l *lane) stop() {
	l.cancel()
	<-l.done
}

// release frees the slot of one finished delivery.
func (l *lane) release() {
	l.mu.Lock()
	l.slots.done()
	l.mu.Unlock()
	select {
	case l.freed <- struct{}{}:
	default:
	}
}

func (d *Dispatcher) startLane(ctx, work context.Context, uid types.UID, conc int, wg *sync.WaitGroup) *lane {
	cons, err := d.JS.CreateOrUpdateConsumer(ctx, queue.DeliveriesStream, jetstream.ConsumerConfig{
		Durable:       ConsumerName(uid),
		FilterSubject: fanout.Subject(string(uid)),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       queue.DefaultAckWait,
		MaxDeliver:    -1,
		MaxAckPending: max(d.MaxPending, conc),
		Replicas:      max(d.Replicas, 1),
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		d.Logger.Error(err, "create the deliveries consumer of an endpoint; retrying", "consumer", ConsumerName(uid))
		return nil
	}
	lctx, cancel := context.WithCancel(ctx)
	l := &lane{consumer: cons, conc: conc, cancel: cancel, done: make(chan struct{}), slots: newSlots(conc), freed: make(chan struct{}, 1)}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(l.done)
		d.fetchLoop(lctx, work, uid, l, wg)
	}()
	return l
}

// fetchLoop pulls only as many messages as there are free workers, so
// nothing waits in memory for a busy endpoint.
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
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		batch, err := l.consumer.Fetch(n, jetstream.FetchContext(fctx))
		got := 0
		if err == nil {
			for msg := range batch.Messages() {
				got++
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer l.release()
					d.handle(work, msg)
				}()
			}
			err = batch.Error()
		}
		cancel()
		l.mu.Lock()
		l.slots.unfilled(n, got)
		l.mu.Unlock()
		if err != nil && ctx.Err() == nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			d.Logger.Error(err, "fetch deliveries; retrying in 1s")
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
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

// observeBacklog reads every endpoint consumer's state in one paged listing;
// for those holding messages, the oldest one not acknowledged is the first
// message of the endpoint's subject after the consumer's ack floor.
func (d *Dispatcher) observeBacklog(ctx context.Context) {
	stream, err := d.JS.Stream(ctx, queue.DeliveriesStream)
	if err != nil {
		return
	}
	now := d.Now()
	infos := stream.ListConsumers(ctx)
	for info := range infos.Info() {
		uid, ok := strings.CutPrefix(info.Name, "dispatch-")
		if !ok {
			continue
		}
		e := d.Registry.Get(types.UID(uid))
		if e == nil {
			continue
		}
		age := 0.0
		if info.NumPending > 0 || info.NumAckPending > 0 {
			msg, err := stream.GetMsg(ctx, info.AckFloor.Stream+1, jetstream.WithGetMsgSubject(fanout.Subject(uid)))
			if err == nil {
				age = max(0, now.Sub(msg.Time).Seconds())
			}
		}
		obj := e.Object()
		d.Metrics.BacklogAge.WithLabelValues(obj.Namespace, obj.Name).Set(age)
	}
}
