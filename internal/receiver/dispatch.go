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
	"github.com/nats-io/nats.go/jetstream"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/delivery"
)

// Dispatcher consumes the deliveries stream: sign, POST, record the attempt,
// then ack, retry later (a delayed redelivery of the same message) or give up.
type Dispatcher struct {
	Consumer jetstream.Consumer
	Log      *LogStore
	Registry *Registry
	Status   *StatusWriter
	Metrics  *Metrics
	Logger   logr.Logger
	// Workers bounds attempts in flight across all endpoints.
	Workers int
	// ShutdownGrace is how long in-flight attempts may finish after Run's
	// context ends; the rest stay queued.
	ShutdownGrace time.Duration
	Now           func() time.Time
	Rand          func() float64
}

// Run dispatches until ctx ends, then lets in-flight attempts finish within
// ShutdownGrace.
func (d *Dispatcher) Run(ctx context.Context) error {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Float64
	}
	workers := max(d.Workers, 1)
	it, err := d.Consumer.Messages(jetstream.PullMaxMessages(min(workers, 1000)))
	if err != nil {
		return fmt.Errorf("consume deliveries: %w", err)
	}
	// In-flight attempts get their own context so a shutdown does not cut
	// them off at once.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				break
			}
			d.Logger.Error(err, "fetch deliveries")
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d.handle(work, msg)
		}()
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

// handle processes one delivery message.
func (d *Dispatcher) handle(ctx context.Context, msg jetstream.Msg) {
	var dl Delivery
	if err := json.Unmarshal(msg.Data(), &dl); err != nil || dl.ID == "" {
		d.Logger.Error(err, "drop malformed delivery message")
		_ = msg.Term()
		return
	}
	uid := types.UID(dl.EndpointUID)
	rec, err := d.loadRecord(ctx, &dl)
	if err != nil {
		d.Logger.Error(err, "read delivery record", "delivery", dl.ID)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	if rec.Round > dl.Round || (rec.Round == dl.Round && isFinal(rec.State)) {
		_ = msg.Ack() // a replay of a delivery that already ended
		return
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
		_ = msg.NakWithDelay(10 * time.Second)
		return
	}

	// Flow control: none of these count as an attempt.
	lim := e.Limits()
	if !lim.TryAcquire() {
		_ = msg.NakWithDelay(time.Duration(50+d.Rand()*150) * time.Millisecond)
		return
	}
	defer lim.Release()
	if wait := lim.Wait(); wait > 0 {
		_ = msg.NakWithDelay(wait)
		return
	}
	breaker := e.CircuitBreaker()
	if ok, retryIn := breaker.Allow(); !ok {
		d.Metrics.CircuitOpen.WithLabelValues(obj.Namespace + "/" + obj.Name).Set(1)
		_ = msg.NakWithDelay(retryIn + time.Duration(d.Rand()*float64(time.Second)))
		return
	}
	secret, previous, err := d.Registry.SigningSecrets(ctx, e)
	if err != nil {
		d.Logger.Info("signing secret unavailable, delivery waits", "endpoint", obj.Namespace+"/"+obj.Name, "error", err.Error())
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	sender, err := d.Registry.Sender(ctx, e)
	if err != nil {
		d.Logger.Info("TLS settings unavailable, delivery waits", "endpoint", obj.Namespace+"/"+obj.Name, "error", err.Error())
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	target, err := Target(obj)
	if err != nil {
		_ = msg.NakWithDelay(5 * time.Second)
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
	res := sender.Send(ctx, req, obj.GetTimeout())
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
		d.Metrics.Deliveries.WithLabelValues(obj.Namespace+"/"+obj.Name, rec.EventType, strings.ToLower(rec.State)).Inc()
	}
	if rec.State == StateRetrying {
		_ = msg.NakWithDelay(retryIn)
		return
	}
	_ = msg.Ack()
}

func (d *Dispatcher) loadRecord(ctx context.Context, dl *Delivery) (*Record, error) {
	rec, _, err := d.Log.Get(ctx, dl.EndpointUID, dl.Created, dl.ID)
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
