package dispatch

import (
	"errors"
	"testing"
	"time"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	"github.com/mira/mira-operator/internal/delivery"
)

func TestAdmit(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	later := t0.Add(time.Minute)
	soon := t0.Add(10 * time.Millisecond)
	base := Gate{RecState: datav1.StatePending, Created: t0.Add(-time.Minute), Now: t0, Redelivered: 1, MaxRetryDuration: time.Hour}
	with := func(f func(*Gate)) Gate { g := base; f(&g); return g }
	tests := []struct {
		name string
		g    Gate
		want Step
	}{
		{"fresh delivery, deliverable", base, Step{Action: Attempt}},
		{"replay of a delivered one", with(func(g *Gate) { g.RecState = datav1.StateDelivered }), Step{Action: Ack}},
		{"replay of an older round", with(func(g *Gate) { g.RecRound = 2; g.MsgRound = 1 }), Step{Action: Ack}},
		{"redelivery of a dead one starts a new round", with(func(g *Gate) { g.RecState = datav1.StateDead; g.MsgRound = 1 }), Step{Action: Attempt}},
		{"retry redelivered early keeps its schedule", with(func(g *Gate) { g.RecState = datav1.StateRetrying; g.NextRetry = &later }),
			Step{Action: Wait, Delay: time.Minute}},
		{"retry due within 50ms goes now", with(func(g *Gate) { g.RecState = datav1.StateRetrying; g.NextRetry = &soon }), Step{Action: Attempt}},
		{"endpoint deleted", with(func(g *Gate) { g.EndpointGone = true }), Step{Action: End, State: datav1.StateDead, Reason: ReasonDeleted}},
		{"suspended", with(func(g *Gate) { g.Suspended = true; g.Undeliverable = "x" }), Step{Action: End, State: datav1.StateSkipped, Reason: ReasonSuspended}},
		{"disabled", with(func(g *Gate) { g.Disabled = true }), Step{Action: End, State: datav1.StateSkipped, Reason: ReasonDisabled}},
		{"secret missing: held as pending", with(func(g *Gate) { g.Undeliverable = "read signing Secret s: not found" }),
			Step{Action: Hold, State: datav1.StatePending, Reason: "waiting: read signing Secret s: not found", Delay: time.Second}},
		{"held the fourth time waits longer", with(func(g *Gate) { g.Undeliverable = "u"; g.Redelivered = 4 }),
			Step{Action: Hold, State: datav1.StatePending, Reason: "waiting: u", Delay: 8 * time.Second}},
		{"a retrying delivery keeps its state while held", with(func(g *Gate) { g.RecState = datav1.StateRetrying; g.Undeliverable = "u" }),
			Step{Action: Hold, State: datav1.StateRetrying, Reason: "waiting: u", Delay: time.Second}},
		{"a redelivered dead one is pending while held", with(func(g *Gate) { g.RecState = datav1.StateDead; g.MsgRound = 1; g.Undeliverable = "u" }),
			Step{Action: Hold, State: datav1.StatePending, Reason: "waiting: u", Delay: time.Second}},
		{"undeliverable past maxRetryDuration is dead with the reason", with(func(g *Gate) { g.Undeliverable = "u"; g.Created = t0.Add(-2 * time.Hour) }),
			Step{Action: End, State: datav1.StateDead, Reason: "not deliverable within maxRetryDuration 1h0m0s: u"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Admit(tt.g); got != tt.want {
				t.Fatalf("Admit = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestHoldDelay(t *testing.T) {
	for n, want := range map[uint64]time.Duration{0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 100: 10 * time.Second} {
		if got := HoldDelay(n); got != want {
			t.Errorf("HoldDelay(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestJudge(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	noJitter := func() float64 { return 0 }
	p := delivery.Policy{MaxAttempts: 3, MaxRetryDuration: time.Hour, BackoffInitial: 5 * time.Second, BackoffMax: time.Minute, Jitter: 0.5}
	tests := []struct {
		name    string
		res     delivery.Result
		attempt int
		first   time.Time
		want    Verdict
	}{
		{"2xx delivers", delivery.Result{Outcome: delivery.OutcomeSuccess, StatusCode: 204}, 1, t0,
			Verdict{State: datav1.StateDelivered, Breaker: BreakerSuccess, Outcome: datav1.StateDelivered}},
		{"500 retries after the backoff", delivery.Result{Outcome: delivery.OutcomeRetry, StatusCode: 500}, 1, t0,
			Verdict{State: datav1.StateRetrying, RetryIn: 5 * time.Second, Breaker: BreakerFailure, Outcome: datav1.StateRetrying, Error: "HTTP 500"}},
		{"second failure doubles", delivery.Result{Outcome: delivery.OutcomeRetry, StatusCode: 503}, 2, t0,
			Verdict{State: datav1.StateRetrying, RetryIn: 10 * time.Second, Breaker: BreakerFailure, Outcome: datav1.StateRetrying, Error: "HTTP 503"}},
		{"a longer Retry-After wins", delivery.Result{Outcome: delivery.OutcomeRetry, StatusCode: 429, RetryAfter: 30 * time.Second}, 1, t0,
			Verdict{State: datav1.StateRetrying, RetryIn: 30 * time.Second, Breaker: BreakerFailure, Outcome: datav1.StateRetrying, Error: "HTTP 429"}},
		{"a connection error keeps its own message", delivery.Result{Outcome: delivery.OutcomeRetry, Err: errors.New("connection refused")}, 1, t0,
			Verdict{State: datav1.StateRetrying, RetryIn: 5 * time.Second, Breaker: BreakerFailure, Outcome: datav1.StateRetrying}},
		{"last attempt gives up", delivery.Result{Outcome: delivery.OutcomeRetry, StatusCode: 500}, 3, t0,
			Verdict{State: datav1.StateDead, Reason: "gave up after 3 attempts", Breaker: BreakerFailure, Outcome: datav1.StateDead, Error: "HTTP 500"}},
		{"past maxRetryDuration gives up", delivery.Result{Outcome: delivery.OutcomeRetry, StatusCode: 500}, 1, t0.Add(-time.Hour),
			Verdict{State: datav1.StateDead, Reason: "gave up after 1 attempts", Breaker: BreakerFailure, Outcome: datav1.StateDead, Error: "HTTP 500"}},
		{"410 disables", delivery.Result{Outcome: delivery.OutcomeGone, StatusCode: 410}, 1, t0,
			Verdict{State: datav1.StateDead, Reason: "the endpoint answered 410 Gone and was disabled", Breaker: BreakerFailure, Disable: true, Outcome: datav1.StateDead}},
		{"a refused address releases the probe", delivery.Result{Outcome: delivery.OutcomeBlocked}, 1, t0,
			Verdict{State: datav1.StateDead, Reason: "the outbound guard refused the target address", Breaker: BreakerRelease, Outcome: datav1.OutcomeBlocked}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Judge(tt.res, p, tt.attempt, tt.first, t0, noJitter); got != tt.want {
				t.Fatalf("Judge = %+v\nwant   %+v", got, tt.want)
			}
		})
	}
}

// A half-open breaker lets one probe through. When that probe's address is
// refused by the guard, the attempt says nothing about the endpoint: the
// next delivery may probe at once instead of waiting out the probe timeout
// (two minutes by default).
func TestBlockedProbeDoesNotHoldTheBreaker(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	b, err := delivery.NewBreaker(delivery.BreakerOptions{FailureThreshold: 1, OpenFor: time.Second, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	b.Failure() // open
	clock.t = clock.t.Add(2 * time.Second)
	if ok, _ := b.Allow(); !ok {
		t.Fatal("the half-open breaker refused the probe")
	}
	report(b, Judge(delivery.Result{Outcome: delivery.OutcomeBlocked}, delivery.Policy{}, 1, clock.t, clock.t, nil).Breaker)
	clock.t = clock.t.Add(time.Millisecond)
	if ok, retryIn := b.Allow(); !ok {
		t.Fatalf("after a blocked probe the breaker holds deliveries back for %s", retryIn)
	}
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

// The fetch-slot accounting of one lane (maxConcurrency 4).
func TestSlots(t *testing.T) {
	s := newSlots(4)
	steps := []struct {
		name string
		do   func() int
		want int // free slots afterwards
		ret  int // what the step returned (take), -1 when nothing
	}{
		{"a fetch asks for all four", func() int { return s.take() }, 0, 4},
		{"it got three: one is free again", func() int { s.unfilled(4, 3); return -1 }, 1, -1},
		{"the next fetch asks for that one", func() int { return s.take() }, 0, 1},
		{"it got nothing", func() int { s.unfilled(1, 0); return -1 }, 1, -1},
		{"two deliveries finish", func() int { s.done(); s.done(); return -1 }, 3, -1},
		{"a fetch asks for three", func() int { return s.take() }, 0, 3},
		{"it got three; all four finish", func() int {
			s.unfilled(3, 3)
			s.done()
			s.done()
			s.done()
			s.done()
			return -1
		}, 4, -1},
		{"an extra release never exceeds the size", func() int { s.done(); return -1 }, 4, -1},
	}
	for _, st := range steps {
		got := st.do()
		if got != st.ret || s.free != st.want {
			t.Fatalf("%s: returned %d with %d free, want %d with %d free", st.name, got, s.free, st.ret, st.want)
		}
	}
	if z := newSlots(0); z.free != 1 {
		t.Fatalf("a lane of 0 slots has %d free, want 1", z.free)
	}
}

func TestRecordRetryDelay(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want time.Duration
	}{
		{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second},
		{9, 256 * time.Second}, {10, 5 * time.Minute}, {1000, 5 * time.Minute},
	} {
		if got := RecordRetryDelay(tc.n); got != tc.want {
			t.Errorf("RecordRetryDelay(%d) = %s, want %s", tc.n, got, tc.want)
		}
	}
}
