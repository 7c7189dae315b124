package dispatch

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/delivery"
	"github.com/mira/mira-operator/internal/deliverylog"
	"github.com/mira/mira-operator/internal/endpoints"
	"github.com/mira/mira-operator/internal/endpointstatus"
	"github.com/mira/mira-operator/internal/fanout"
	"github.com/mira/mira-operator/internal/queue"
)

// handle processes one delivery message: Admit, then the attempt and Judge.
func (d *Dispatcher) handle(ctx context.Context, msg jetstream.Msg) {
	m, err := fanout.DecodeMessage(msg.Headers(), msg.Data())
	if err != nil {
		d.Logger.Error(err, "drop malformed delivery message")
		_ = msg.Term()
		return
	}
	delivered := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
	}
	rec, rev, err := d.loadRecord(ctx, &m, delivered)
	if err != nil {
		d.Logger.Error(err, "read delivery record", "delivery", m.ID)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	e := d.Registry.Get(types.UID(m.EndpointUID))
	g := Gate{MsgRound: m.Round, RecRound: rec.Round, RecState: rec.State, NextRetry: rec.NextRetry,
		Created: m.Created, Now: d.Now(), Redelivered: delivered, EndpointGone: e == nil}
	var secret string
	var previous []string
	var sender *delivery.Sender
	var target string
	var headers map[string][]byte
	if e != nil {
		obj := e.Object()
		g.Suspended, g.Disabled, g.MaxRetryDuration = obj.Spec.Suspend, d.Status.Disabled(e), obj.GetMaxRetryDuration()
		if ok, why := endpoints.Deliverable(obj); !ok {
			g.Undeliverable = why
		} else if secret, previous, err = d.Registry.SigningSecrets(ctx, e); err != nil {
			g.Undeliverable = err.Error()
		} else if sender, err = d.Registry.Sender(ctx, e); err != nil {
			g.Undeliverable = err.Error()
		} else if target, err = endpoints.Target(obj); err != nil {
			g.Undeliverable = err.Error()
		} else if headers, err = d.Registry.Headers(ctx, e); err != nil {
			g.Undeliverable = err.Error()
		}
	}
	step := Admit(g)
	if rec.Round < m.Round && step.Action != Ack {
		// A redelivery starts a new round; the state stays until it changes
		// so that the status counts move from the old state.
		rec.Round, rec.AttemptCount, rec.FirstAttempt, rec.NextRetry, rec.Reason = m.Round, 0, nil, nil, ""
	}
	prevState := rec.State
	switch step.Action {
	case Ack:
		_ = msg.Ack()
		return
	case Wait:
		_ = msg.NakWithDelay(step.Delay)
		return
	case Hold:
		d.hold(ctx, e, msg, rec, rev, step)
		return
	case End:
		rec.State, rec.Reason = step.State, step.Reason
		d.finish(ctx, msg, e, rec, rev, prevState, nil, 0, false)
		return
	}

	// Queued while the endpoint's filter did not compile: the fixed filter
	// decides before the first attempt.
	if m.FilterPending && rec.AttemptCount == 0 {
		fd := fanout.RecheckFilter(e, &m)
		switch {
		case fd.Unchecked:
			d.hold(ctx, e, msg, rec, rev, Step{Action: Hold, State: datav1.StatePending,
				Reason: "waiting: spec.filter does not compile", Delay: HoldDelay(delivered)})
			return
		case !fd.Deliver:
			rec.State, rec.Reason = datav1.StateSkipped, ReasonFiltered
			if fd.Err != nil {
				rec.Reason += " (evaluation failed: " + fd.Err.Error() + ")"
			}
			d.finish(ctx, msg, e, rec, rev, prevState, nil, 0, false)
			return
		}
	}

	// Flow control; neither counts as an attempt. The breaker comes last:
	// once it allows a (probe) attempt, that attempt must report back.
	if wait := e.RateWait(); wait > 0 {
		d.holdBack(e, msg, wait)
		return
	}
	obj := e.Object()
	ns, name := obj.Namespace, obj.Name
	breaker := e.CircuitBreaker()
	if ok, retryIn := breaker.Allow(); !ok {
		d.Metrics.CircuitOpen.WithLabelValues(ns, name).Set(1)
		d.holdBack(e, msg, retryIn+time.Duration(d.Rand()*float64(time.Second)))
		return
	}

	now := d.Now()
	req, err := delivery.NewRequest(ctx, target, delivery.Message{
		ID: m.ID, EventType: m.EventType, Body: m.Body, Secret: secret, PreviousSecrets: previous,
	}, now)
	if err == nil {
		err = delivery.SetCustomHeaders(req.Header, headers)
	}
	if err != nil {
		breaker.Release()
		rec.State, rec.Reason = datav1.StateDead, "cannot build request: "+err.Error()
		d.finish(ctx, msg, e, rec, rev, prevState, nil, 0, false)
		return
	}
	d.Metrics.InFlight.Inc()
	stopBeat := d.heartbeat(msg)
	res := sender.Send(ctx, req, obj.GetTimeout())
	stopBeat()
	d.Metrics.InFlight.Dec()
	if ctx.Err() != nil {
		// Shutting down: this attempt does not count, the message stays queued.
		breaker.Release()
		_ = msg.Nak()
		return
	}

	if rec.FirstAttempt == nil {
		rec.FirstAttempt = &now
	}
	rec.AttemptCount++
	shown := miraapi.RedactURL(target) // the log is read by many: no tokens
	rec.URL = shown
	v := Judge(res, policyFor(obj), rec.AttemptCount, *rec.FirstAttempt, now, d.Rand)
	report(breaker, v.Breaker)
	if breaker.State() != delivery.StateOpen {
		d.Metrics.CircuitOpen.WithLabelValues(ns, name).Set(0)
	}
	a := datav1.Attempt{
		Number: rec.AttemptCount, Round: rec.Round, Time: now, DurationMillis: res.Duration.Milliseconds(), URL: shown,
		RequestHeaders: delivery.MaskCustomHeaders(flatten(req.Header), headers), StatusCode: res.StatusCode, ResponseHeaders: flatten(res.Header),
		ResponseBody: res.BodyExcerpt, Error: v.Error, Outcome: v.Outcome,
	}
	if res.Err != nil {
		a.Error = res.Err.Error()
	}
	rec.State, rec.Reason, rec.NextRetry = v.State, v.Reason, nil
	if v.State == datav1.StateRetrying {
		next := now.Add(v.RetryIn)
		rec.NextRetry, a.NextRetry = &next, &next
		d.Metrics.Retries.WithLabelValues(ns, name).Inc()
	}
	d.Metrics.AttemptSeconds.WithLabelValues(ns, name).Observe(res.Duration.Seconds())
	d.finish(ctx, msg, e, rec, rev, prevState, &a, v.RetryIn, v.Disable)
}

// hold leaves a delivery whose endpoint cannot be delivered to yet in the
// queue. A delivery not attempted yet shows state Pending with the reason,
// written when the reason changes.
func (d *Dispatcher) hold(ctx context.Context, e *endpoints.Endpoint, msg jetstream.Msg, rec *datav1.Delivery, rev uint64, step Step) {
	if step.State == datav1.StatePending && (rec.State != datav1.StatePending || rec.Reason != step.Reason || rev == 0) {
		prev := rec.State
		rec.State, rec.Reason, rec.Updated = datav1.StatePending, step.Reason, d.Now()
		if _, err := d.Log.Update(ctx, rec, rev); err != nil {
			if !errors.Is(err, deliverylog.ErrConflict) {
				d.Logger.Error(err, "store delivery record", "delivery", rec.ID)
			}
		} else if prev != datav1.StatePending {
			d.Status.Record(ctx, e, endpointstatus.Outcome{PrevState: prev, State: datav1.StatePending})
		}
	}
	d.holdBack(e, msg, step.Delay)
}

// heartbeat tells JetStream the message is still being worked on while an
// attempt runs longer than a third of the ack wait, so it is not redelivered
// meanwhile; a crashed receiver stops beating and the message comes back
// after one ack wait.
func (d *Dispatcher) heartbeat(msg jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(queue.DefaultAckWait / 3)
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
// open, rate limit, not deliverable yet) and pauses that endpoint's
// fetching for the same time, so its backlog is not pulled and sent back in
// a loop.
func (d *Dispatcher) holdBack(e *endpoints.Endpoint, msg jetstream.Msg, delay time.Duration) {
	_ = msg.NakWithDelay(delay)
	if e != nil {
		e.PauseFor(d.Now(), delay)
	}
}

// finish stores the record, reports the outcome and settles the message:
// ack when the delivery ended, a delayed redelivery when it retries.
func (d *Dispatcher) finish(ctx context.Context, msg jetstream.Msg, e *endpoints.Endpoint, rec *datav1.Delivery, rev uint64,
	prevState string, a *datav1.Attempt, retryIn time.Duration, gone bool) {
	rec.Updated = d.Now()
	if a != nil {
		// The log bounds the record so that it always fits a NATS message.
		rec.Attempts = append(rec.Attempts, *a)
	}
	if _, err := d.store(ctx, rec, rev); err != nil {
		d.Logger.Error(err, "store delivery record", "delivery", rec.ID)
		stored := false
		if a != nil && !errors.Is(err, deliverylog.ErrConflict) {
			// The attempt was made: settle it with a minimal record (state,
			// counts, reason) rather than sending it again.
			m := minimalRecord(rec)
			if _, err := d.Log.Update(ctx, m, rev); err != nil {
				d.Logger.Error(err, "store minimal delivery record", "delivery", rec.ID)
			} else {
				rec, stored = m, true
			}
		}
		if !stored {
			// Not recorded, not settled: the message comes back and the
			// attempt is made again (at-least-once), later each time.
			n := uint64(1)
			if md, err := msg.Metadata(); err == nil {
				n = md.NumDelivered
			}
			_ = msg.NakWithDelay(RecordRetryDelay(n))
			return
		}
	}
	if e != nil {
		o := endpointstatus.Outcome{PrevState: prevState, State: rec.State, Gone: gone}
		if a != nil {
			o.Failed = rec.State != datav1.StateDelivered
			o.Attempt = miraapi.DeliveryAttempt{
				DeliveryID: rec.ID, Event: rec.EventType, Attempt: clampInt32(a.Number), Time: metav1.NewTime(a.Time),
				StatusCode: clampInt32(a.StatusCode), DurationMilliseconds: a.DurationMillis, Outcome: a.Outcome,
				Error: truncate(a.Error, 500), Payload: rec.Body,
			}
		}
		d.Status.Record(ctx, e, o)
		if rec.State == datav1.StateDead && prevState != datav1.StateDead && d.OnDead != nil {
			d.OnDead(ctx, e, rec)
		}
		obj := e.Object()
		outcome := rec.State
		if a != nil && a.Outcome == datav1.OutcomeBlocked {
			outcome = a.Outcome
		}
		d.Metrics.Deliveries.WithLabelValues(obj.Namespace, obj.Name, rec.EventType, strings.ToLower(outcome)).Inc()
		if a != nil && rec.State == datav1.StateDelivered && rec.Round == 0 {
			d.Metrics.Latency.WithLabelValues(rec.EventType).Observe(rec.Updated.Sub(rec.Created).Seconds())
		}
	}
	if rec.State == datav1.StateRetrying {
		_ = msg.NakWithDelay(retryIn)
		return
	}
	_ = msg.Ack()
}

// minimalRecord is rec without its attempt log and body, for when the full
// record cannot be stored.
func minimalRecord(rec *datav1.Delivery) *datav1.Delivery {
	m := *rec
	m.Attempts = append([]datav1.Attempt(nil), rec.Attempts...)
	if m.OlderAttempts != nil {
		s := *m.OlderAttempts
		s.LastCodes = append([]int(nil), s.LastCodes...)
		m.OlderAttempts = &s
	}
	if m.Body != "" {
		m.Body, m.BodyOmitted = "", true
	}
	deliverylog.Bound(&m, 0) // the smallest budget: folds what does not fit
	return &m
}

// loadRecord reads the delivery's record, or starts one.
//
// The first hand-out of a message needs no read in two cases: the message
// carries the revision of the record a redone fan-out created (the record is
// NewRecord at that revision unless something changed it, and then the
// compare-and-set write of the outcome fails), or it is a first-round
// message of a first fan-out, which wrote no record: its record is NewRecord,
// created if absent at the first outcome (rev 0). A record that exists after
// all (a fan-out redone after a crash) makes that create fail; store then
// adopts a still untouched pending record, and otherwise the message is not
// acked and its next hand-out reads the record. This saves one KV read per
// delivery, and the fan-out's KV write.
func (d *Dispatcher) loadRecord(ctx context.Context, m *fanout.Message, delivered uint64) (*datav1.Delivery, uint64, error) {
	if delivered == 1 && m.RecordRev != 0 {
		return m.NewRecord(), m.RecordRev, nil
	}
	if delivered == 1 && m.Round == 0 {
		return m.NewRecord(), 0, nil
	}
	rec, rev, err := d.Log.Get(ctx, m.EndpointUID, m.Created, m.ID)
	if errors.Is(err, deliverylog.ErrNotFound) {
		return m.NewRecord(), 0, nil
	}
	return rec, rev, err
}

// store writes rec read at revision rev (0: create it). When the create
// finds a record that no outcome has touched yet (pending, same round, no
// attempt: written by a redone fan-out, or by another replica holding the
// delivery), rec replaces it, so the attempt just made is recorded instead
// of being made again.
func (d *Dispatcher) store(ctx context.Context, rec *datav1.Delivery, rev uint64) (uint64, error) {
	newRev, err := d.Log.Update(ctx, rec, rev)
	if rev != 0 || !errors.Is(err, deliverylog.ErrConflict) {
		return newRev, err
	}
	cur, curRev, gerr := d.Log.Get(ctx, rec.UID, rec.Created, rec.ID)
	if gerr != nil || cur.State != datav1.StatePending || cur.Round != rec.Round || cur.AttemptCount != 0 {
		return 0, err
	}
	return d.Log.Update(ctx, rec, curRev)
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

// clampInt32 converts attempt numbers and status codes (small by nature)
// for the status fields, saturating instead of wrapping.
func clampInt32(v int) int32 {
	return int32(min(max(v, math.MinInt32), math.MaxInt32)) //nolint:gosec // G115: clamped on this line
}
