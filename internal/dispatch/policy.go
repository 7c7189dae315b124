package dispatch

import (
	"fmt"
	"time"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	"github.com/mira/mira-operator/internal/delivery"
)

// The decisions of the dispatcher, as pure functions: data in, decision
// out. The dispatcher gathers the inputs, calls these, and does the I/O.

// Action is what becomes of a delivery message before any attempt.
type Action int

const (
	// Attempt: send it now.
	Attempt Action = iota
	// Ack: a replay of a delivery that already ended; nothing to record.
	Ack
	// Wait: a retry redelivered before its time; keep the schedule.
	Wait
	// Hold: the endpoint cannot take it yet; it waits in the queue (state
	// Pending with Reason when not attempted yet).
	Hold
	// End: record State with Reason and settle the message.
	End
)

// Gate is what Admit decides from.
type Gate struct {
	// Round of the message and the record's round and state.
	MsgRound, RecRound int
	RecState           string
	NextRetry          *time.Time
	// Created is when the event happened; Now is now.
	Created, Now time.Time
	// Redelivered is how often JetStream handed out this message (1 first).
	Redelivered uint64
	// EndpointGone: the WebhookEndpoint was deleted.
	EndpointGone bool
	// Suspended (spec.suspend) and Disabled (by the receiver).
	Suspended, Disabled bool
	// Undeliverable says why the endpoint cannot be delivered to yet
	// ("" when it can): generation not reconciled, Secret missing, …
	Undeliverable string
	// MaxRetryDuration of the endpoint: how long a delivery may wait.
	MaxRetryDuration time.Duration
}

// Step is Admit's decision.
type Step struct {
	Action Action
	// State and Reason to record (End, and Hold for a pending delivery).
	State, Reason string
	// Delay before the message comes back (Wait, Hold).
	Delay time.Duration
}

// Reasons the dispatcher records.
const (
	ReasonDeleted   = "the WebhookEndpoint was deleted"
	ReasonSuspended = "the endpoint is suspended (spec.suspend)"
	ReasonDisabled  = "the endpoint is disabled"
	// ReasonFiltered: queued while spec.filter did not compile, then
	// dropped by the fixed filter before any attempt.
	ReasonFiltered = "spec.filter does not match (the event was queued while the filter did not compile)"
)

// MaxHold is the longest a delivery for an undeliverable endpoint waits
// before the dispatcher looks again.
const MaxHold = 10 * time.Second

// Admit decides what to do with a delivery message before any attempt.
func Admit(g Gate) Step {
	switch {
	case g.RecRound > g.MsgRound || (g.RecRound == g.MsgRound && isFinal(g.RecState)):
		return Step{Action: Ack}
	case g.RecRound == g.MsgRound && g.RecState == datav1.StateRetrying && g.NextRetry != nil && g.NextRetry.Sub(g.Now) > 50*time.Millisecond:
		// Redelivered before its time (after a restart, the ack wait expired).
		return Step{Action: Wait, Delay: g.NextRetry.Sub(g.Now)}
	case g.EndpointGone:
		return Step{Action: End, State: datav1.StateDead, Reason: ReasonDeleted}
	case g.Suspended:
		return Step{Action: End, State: datav1.StateSkipped, Reason: ReasonSuspended}
	case g.Disabled:
		return Step{Action: End, State: datav1.StateSkipped, Reason: ReasonDisabled}
	case g.Undeliverable != "":
		if g.Now.Sub(g.Created) > g.MaxRetryDuration {
			return Step{Action: End, State: datav1.StateDead, Reason: fmt.Sprintf(
				"not deliverable within maxRetryDuration %s: %s", g.MaxRetryDuration, g.Undeliverable)}
		}
		state := g.RecState
		if g.RecRound < g.MsgRound {
			state = datav1.StatePending
		}
		return Step{Action: Hold, State: state, Reason: "waiting: " + g.Undeliverable, Delay: HoldDelay(g.Redelivered)}
	}
	return Step{Action: Attempt}
}

// HoldDelay is how long a delivery for an undeliverable endpoint waits the
// n-th time it comes back: 1 s doubling, at most MaxHold, so a fixed
// Secret or a reconciled spec is noticed within seconds.
func HoldDelay(n uint64) time.Duration {
	d := time.Second
	for i := uint64(1); i < n && d < MaxHold; i++ {
		d *= 2
	}
	return min(d, MaxHold)
}

func isFinal(state string) bool {
	return state == datav1.StateDelivered || state == datav1.StateDead || state == datav1.StateSkipped
}

// BreakerReport is what an attempt tells the endpoint's circuit breaker.
type BreakerReport int

const (
	// BreakerSuccess closes the breaker.
	BreakerSuccess BreakerReport = iota
	// BreakerFailure counts towards opening it.
	BreakerFailure
	// BreakerRelease frees a half-open probe slot: the attempt said nothing
	// about the endpoint's health (a refused address).
	BreakerRelease
)

// Verdict is Judge's decision after an attempt.
type Verdict struct {
	// State of the delivery afterwards: Delivered, Retrying or Dead.
	State  string
	Reason string
	// RetryIn is the delay before the next attempt (Retrying).
	RetryIn time.Duration
	// Breaker is what to report to the circuit breaker.
	Breaker BreakerReport
	// Disable: the endpoint asked to be disabled (410 Gone).
	Disable bool
	// Outcome of the attempt as logged: the state, or Blocked.
	Outcome string
	// Error to log when the result carried none (an HTTP status).
	Error string
}

// Judge decides what follows an attempt: attempt is its number in the
// round (1-based), firstAttempt when the round's first attempt started.
func Judge(res delivery.Result, p delivery.Policy, attempt int, firstAttempt, now time.Time, rnd func() float64) Verdict {
	switch res.Outcome {
	case delivery.OutcomeSuccess:
		return Verdict{State: datav1.StateDelivered, Breaker: BreakerSuccess, Outcome: datav1.StateDelivered}
	case delivery.OutcomeGone:
		return Verdict{State: datav1.StateDead, Reason: "the endpoint answered 410 Gone and was disabled",
			Breaker: BreakerFailure, Disable: true, Outcome: datav1.StateDead}
	case delivery.OutcomeBlocked:
		return Verdict{State: datav1.StateDead, Reason: "the outbound guard refused the target address",
			Breaker: BreakerRelease, Outcome: datav1.OutcomeBlocked}
	}
	v := Verdict{Breaker: BreakerFailure}
	if res.Err == nil {
		v.Error = fmt.Sprintf("HTTP %d", res.StatusCode)
	}
	delay, giveUp := p.Next(attempt, firstAttempt, now, res.RetryAfter, rnd)
	if giveUp {
		v.State, v.Reason = datav1.StateDead, fmt.Sprintf("gave up after %d attempts", attempt)
	} else {
		v.State, v.RetryIn = datav1.StateRetrying, delay
	}
	v.Outcome = v.State
	return v
}

// report tells the breaker what Judge decided.
func report(b *delivery.Breaker, r BreakerReport) {
	switch r {
	case BreakerSuccess:
		b.Success()
	case BreakerFailure:
		b.Failure()
	default:
		b.Release()
	}
}

// slots counts an endpoint lane's free workers (its maxConcurrency): a
// fetch asks for every free one, what the fetch did not fill is free again
// at once, and each finished delivery frees one.
type slots struct {
	free, size int
}

func newSlots(size int) slots { return slots{free: max(size, 1), size: max(size, 1)} }

// take reserves every free slot for one fetch and returns how many.
func (s *slots) take() int {
	n := s.free
	s.free = 0
	return n
}

// unfilled returns the slots a fetch of asked messages got got messages for.
func (s *slots) unfilled(asked, got int) { s.free = min(s.free+max(asked-got, 0), s.size) }

// done frees the slot of one finished delivery.
func (s *slots) done() { s.free = min(s.free+1, s.size) }

// RecordRetryDelay is how long a delivery whose outcome could not be
// recorded waits before it comes back, by how often it was delivered:
// 1 s, doubling, at most 5 min, so a log that keeps refusing writes never
// makes a tight re-send loop.
func RecordRetryDelay(numDelivered uint64) time.Duration {
	const maxDelay = 5 * time.Minute
	if numDelivered < 1 {
		numDelivered = 1
	}
	if numDelivered > 10 {
		return maxDelay
	}
	return min(time.Second<<(numDelivered-1), maxDelay)
}
