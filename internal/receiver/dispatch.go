package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/delivery"
	"github.com/mira/mira-operator/internal/queue"
)

// Dispatcher consumes the deliveries stream: sign, POST, record the attempt,
// then ack, retry later (a delayed redelivery of the same message) or give up.
//
// Every endpoint has its own durable pull consumer ("dispatch-<uid>",
// filtered on its subject) and pulls only as many messages as it has free
// workers (its maxConcurrency). A slow or dead endpoint therefore leaves its
// backlog in the stream, costs nothing while it waits, and never takes a
// worker or a fetch from another endpoint.
type Dispatcher struct {
	JS       jetstream.JetStream
	Log      *LogStore
	Registry *Registry
	Status   *StatusWriter
	Metrics  *Metrics
	Logger   logr.Logger
	// Replicas of the per-endpoint consumers (3 on a NATS cluster).
	Replicas int
	// MaxPending bounds one endpoint's deliveries in flight or waiting for a
	// retry; beyond it, its newer deliveries wait in the stream.
	MaxPending int
	// AckWait of the consumers; attempts heartbeat while they run.
	AckWait time.Duration
	// ShutdownGrace is how long in-flight attempts may finish after Run's
	// context ends; the rest stay queued.
	ShutdownGrace time.Duration
	// SyncEvery is how often lanes are matched to the registry.
	SyncEvery time.Duration
	Now       func() time.Time
	Rand      func() float64
}

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
	if d.SyncEvery == 0 {
		d.SyncEvery = time.Second
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
	t := time.NewTicker(d.SyncEvery)
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
			lanes[e.UID] = nl
		}
	}
	for uid, l := range lanes {
		if seen[uid] {
			continue
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
	cancel   context.CancelFunc
	done     chan struct{}
}

func (l *lane) stop() {
	l.cancel()
	<-l.done
}

func (d *Dispatcher) startLane(ctx, work context.Context, uid types.UID, conc int, wg *sync.WaitGroup) *lane {
	cons, err := d.JS.CreateOrUpdateConsumer(ctx, queue.DeliveriesStream, jetstream.ConsumerConfig{
		Durable:       ConsumerName(uid),
		FilterSubject: queue.DeliveriesSubject + "." + string(uid),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       d.ackWait(),
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
	l := &lane{consumer: cons, conc: conc, cancel: cancel, done: make(chan struct{})}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(l.done)
		d.fetchLoop(lctx, work, uid, cons, conc, wg)
	}()
	return l
}

// fetchLoop pulls only as many messages as there are free workers, so
// nothing waits in memory for a busy endpoint.
func (d *Dispatcher) fetchLoop(ctx, work context.Context, uid types.UID, cons jetstream.Consumer, conc int, wg *sync.WaitGroup) {
	free := make(chan struct{}, conc)
	for i := 0; i < conc; i++ {
		free <- struct{}{}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-free:
		}
		if e := d.Registry.Get(uid); e != nil {
			if wait := e.pausedUntil().Sub(d.Now()); wait > 0 {
				select {
				case <-ctx.Done():
					free <- struct{}{}
					return
				case <-time.After(wait):
				}
			}
		}
		n := 1
	more:
		for n < conc {
			select {
			case <-free:
				n++
			default:
				break more
			}
		}
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		batch, err := cons.Fetch(n, jetstream.FetchContext(fctx))
		got := 0
		if err == nil {
			for msg := range batch.Messages() {
				got++
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { free <- struct{}{} }()
					d.handle(work, msg)
				}()
			}
			err = batch.Error()
		}
		cancel()
		for i := got; i < n; i++ {
			free <- struct{}{}
		}
		if err != nil && ctx.Err() == nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			d.Logger.Error(err, "fetch deliveries; retrying in 1s")
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (d *Dispatcher) ackWait() time.Duration {
	if d.AckWait <= 0 {
		return queue.DefaultAckWait
	}
	return d.AckWait
}

// handle processes one delivery message.
func (d *Dispatcher) handle(ctx context.Context, msg jetstream.Msg) {
	var dl Delivery
	if err := json.Unmarshal(msg.Data(), &dl); err != nil || dl.ID == "" {
		d.Logger.Error(err, "drop malformed delivery message")
		_ = msg.Term()
		return
	}
	uid := types.UID(dl.EndpointUID)
	rec, err := d.loadRecord(ctx, msg, &dl)
	if err != nil {
		d.Logger.Error(err, "read delivery record", "delivery", dl.ID)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	if rec.Round > dl.Round || (rec.Round == dl.Round && isFinal(rec.State)) {
		_ = msg.Ack() // a replay of a delivery that already ended
		return
	}
	if rec.Round == dl.Round && rec.State == StateRetrying && rec.NextRetry != nil {
		// Redelivered before its time (after a restart, the ack wait expired):
		// keep the schedule.
		if wait := rec.NextRetry.Sub(d.Now()); wait > 50*time.Millisecond {
			_ = msg.NakWithDelay(wait)
			return
		}
	}
	if rec.Round < dl.Round {
		rec.Round, rec.AttemptCount, rec.FirstAttempt, rec.NextRetry, rec.Reason = dl.Round, 0, nil, nil, ""
	}
	prevState := rec.State

	e := d.Registry.Get(uid)
	if e == nil {
		rec.State, rec.Reason = StateDead, "the WebhookEndpoint was deleted"
		d.finish(ctx, msg, nil, rec, prevState, nil, 0)
		return
	}
	obj := e.Object()
	if obj.Spec.Suspend || d.Status.Disabled(ctx, e) {
		rec.State, rec.Reason = StateSkipped, skipReason(obj)
		d.finish(ctx, msg, e, rec, prevState, nil, 0)
		return
	}
	if !Configured(obj) {
		if d.Now().Sub(dl.Created) > obj.GetMaxRetryDuration() {
			rec.State, rec.Reason = StateDead, "the WebhookEndpoint was not Ready within the retry duration"
			d.finish(ctx, msg, e, rec, prevState, nil, 0)
			return
		}
		d.holdBack(e, msg, 10*time.Second)
		return
	}

	// Flow control (concurrency is the lane's worker count); none of these
	// count as an attempt.
	if wait := e.Limits().Wait(); wait > 0 {
		d.holdBack(e, msg, wait)
		return
	}
	breaker := e.CircuitBreaker()
	if ok, retryIn := breaker.Allow(); !ok {
		d.Metrics.CircuitOpen.WithLabelValues(obj.Namespace + "/" + obj.Name).Set(1)
		d.holdBack(e, msg, retryIn+time.Duration(d.Rand()*float64(time.Second)))
		return
	}
	secret, previous, err := d.Registry.SigningSecrets(ctx, e)
	if err != nil {
		d.Logger.Info("signing secret unavailable, delivery waits", "endpoint", obj.Namespace+"/"+obj.Name, "error", err.Error())
		d.holdBack(e, msg, 5*time.Second)
		return
	}
	sender, err := d.Registry.Sender(ctx, e)
	if err != nil {
		d.Logger.Info("TLS settings unavailable, delivery waits", "endpoint", obj.Namespace+"/"+obj.Name, "error", err.Error())
		d.holdBack(e, msg, 5*time.Second)
		return
	}
	target, err := Target(obj)
	if err != nil {
		d.holdBack(e, msg, 5*time.Second)
		return
	}

	now := d.Now()
	req, err := delivery.NewRequest(ctx, target, delivery.Message{
		ID: dl.ID, EventType: dl.EventType, Body: dl.Body, Secret: secret, PreviousSecrets: previous,
	}, now)
	if err != nil {
		rec.State, rec.Reason = StateDead, "cannot build request: "+err.Error()
		d.finish(ctx, msg, e, rec, prevState, nil, 0)
		return
	}
	d.Metrics.InFlight.Inc()
	stopBeat := d.heartbeat(msg)
	res := sender.Send(ctx, req, obj.GetTimeout())
	stopBeat()
	d.Metrics.InFlight.Dec()
	if ctx.Err() != nil {
		// Shutting down: this attempt does not count, the message stays queued.
		_ = msg.Nak()
		return
	}

	if rec.FirstAttempt == nil {
		rec.FirstAttempt = &now
	}
	rec.AttemptCount++
	rec.URL = target
	a := Attempt{
		Number: rec.AttemptCount, Round: rec.Round, Time: now, DurationMillis: res.Duration.Milliseconds(), URL: target,
		RequestHeaders: flatten(req.Header), StatusCode: res.StatusCode, ResponseHeaders: flatten(res.Header),
		ResponseBody: res.BodyExcerpt,
	}
	if res.Err != nil {
		a.Error = res.Err.Error()
	}
	var retryIn time.Duration
	gone := false
	switch res.Outcome {
	case delivery.OutcomeSuccess:
		breaker.Success()
		rec.State, rec.NextRetry, rec.Reason = StateDelivered, nil, ""
	case delivery.OutcomeGone:
		breaker.Failure()
		gone = true
		rec.State, rec.Reason = StateDead, "the endpoint answered 410 Gone and was disabled"
	case delivery.OutcomeBlocked:
		rec.State, rec.Reason = StateDead, "the outbound guard refused the target address"
	default:
		breaker.Failure()
		if a.Error == "" {
			a.Error = fmt.Sprintf("HTTP %d", res.StatusCode)
		}
		delay, giveUp := policyFor(obj).Next(rec.AttemptCount, *rec.FirstAttempt, now, res.RetryAfter, d.Rand)
		if giveUp {
			rec.State, rec.Reason = StateDead, fmt.Sprintf("gave up after %d attempts", rec.AttemptCount)
		} else {
			next := now.Add(delay)
			rec.State, rec.NextRetry, retryIn = StateRetrying, &next, delay
			a.NextRetry = &next
			d.Metrics.Retries.WithLabelValues(obj.Namespace + "/" + obj.Name).Inc()
		}
	}
	if breaker.State() != delivery.StateOpen {
		d.Metrics.CircuitOpen.WithLabelValues(obj.Namespace + "/" + obj.Name).Set(0)
	}
	a.Outcome = rec.State
	if res.Outcome == delivery.OutcomeBlocked {
		a.Outcome = "Blocked"
	}
	d.Metrics.AttemptSeconds.WithLabelValues(obj.Namespace + "/" + obj.Name).Observe(res.Duration.Seconds())
	d.finish(ctx, msg, e, rec, prevState, &a, retryIn, withGone(gone))
}

// heartbeat tells JetStream the message is still being worked on while an
// attempt runs longer than a third of the ack wait, so it is not redelivered
// meanwhile; a crashed receiver stops beating and the message comes back
// after one ack wait.
func (d *Dispatcher) heartbeat(msg jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(d.ackWait() / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { close(done) }
}

// holdBack returns a message whose endpoint cannot take it now (circuit
// open, rate limit, configuration or secret not available) and pauses that
// endpoint's fetching for the same time, so its backlog is not pulled and
// sent back in a loop.
func (d *Dispatcher) holdBack(e *Endpoint, msg jetstream.Msg, delay time.Duration) {
	_ = msg.NakWithDelay(delay)
	e.pauseFor(d.Now(), delay)
}

type finishOpt func(*Outcome)

func withGone(g bool) finishOpt { return func(o *Outcome) { o.Gone = g } }

// finish stores the record, reports the outcome and settles the message:
// ack when the delivery ended, a delayed redelivery when it retries.
func (d *Dispatcher) finish(ctx context.Context, msg jetstream.Msg, e *Endpoint, rec *Record, prevState string, a *Attempt, retryIn time.Duration, opts ...finishOpt) {
	rec.Updated = d.Now()
	if a != nil {
		rec.Attempts = append(rec.Attempts, *a)
		if len(rec.Attempts) > MaxLoggedAttempts {
			rec.Attempts = rec.Attempts[len(rec.Attempts)-MaxLoggedAttempts:]
		}
	}
	if err := d.Log.Put(ctx, rec); err != nil {
		// Not recorded, not settled: the message comes back and the attempt
		// is made again (at-least-once).
		d.Logger.Error(err, "store delivery record", "delivery", rec.ID)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	if e != nil {
		o := Outcome{PrevState: prevState, State: rec.State}
		if a != nil {
			o.Failed = rec.State != StateDelivered
			o.Attempt = miraapi.DeliveryAttempt{
				DeliveryID: rec.ID, Event: rec.EventType, Attempt: int32(a.Number), Time: metav1.NewTime(a.Time),
				StatusCode: int32(a.StatusCode), DurationMilliseconds: a.DurationMillis, Outcome: a.Outcome,
				Error: truncate(a.Error, 500), Payload: rec.Body,
			}
		}
		for _, opt := range opts {
			opt(&o)
		}
		d.Status.Record(ctx, e, o)
		obj := e.Object()
		outcome := rec.State
		if a != nil && a.Outcome == "Blocked" {
			outcome = a.Outcome
		}
		d.Metrics.Deliveries.WithLabelValues(obj.Namespace+"/"+obj.Name, rec.EventType, strings.ToLower(outcome)).Inc()
	}
	if rec.State == StateRetrying {
		_ = msg.NakWithDelay(retryIn)
		return
	}
	_ = msg.Ack()
}

// loadRecord reads the delivery's record, or starts one. The first delivery
// of a first-round message cannot have a record yet (unless a fan-out replay
// queued it twice, which the message-id dedupe prevents), so it skips the read.
func (d *Dispatcher) loadRecord(ctx context.Context, msg jetstream.Msg, dl *Delivery) (*Record, error) {
	var err error
	rec := (*Record)(nil)
	if md, mdErr := msg.Metadata(); mdErr != nil || md.NumDelivered > 1 || dl.Round > 0 {
		rec, _, err = d.Log.Get(ctx, dl.EndpointUID, dl.Created, dl.ID)
	} else {
		err = ErrNotFound
	}
	if errors.Is(err, ErrNotFound) {
		return &Record{
			ID: dl.ID, EventID: dl.EventID, EventType: dl.EventType, Namespace: dl.Namespace, Endpoint: dl.Name,
			UID: dl.EndpointUID, State: StatePending, Round: dl.Round, Created: dl.Created, Body: string(dl.Body),
		}, nil
	}
	return rec, err
}

func isFinal(state string) bool {
	return state == StateDelivered || state == StateDead || state == StateSkipped
}

func skipReason(obj *miraapi.WebhookEndpoint) string {
	if obj.Spec.Suspend {
		return "the endpoint is suspended (spec.suspend)"
	}
	return "the endpoint is disabled"
}

func policyFor(obj *miraapi.WebhookEndpoint) delivery.Policy {
	return delivery.Policy{
		Timeout:          obj.GetTimeout(),
		MaxAttempts:      obj.GetMaxAttempts(),
		MaxRetryDuration: obj.GetMaxRetryDuration(),
		BackoffInitial:   obj.GetBackoffInitial(),
		BackoffMax:       obj.GetBackoffMax(),
		Jitter:           obj.GetJitter(),
	}
}

// flatten turns headers into a map for the log, one value per name.
func flatten(h http.Header) map[string]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = truncate(strings.Join(v, ", "), 1024)
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
