package delivery

import (
	"fmt"
	"testing"
	"time"
)

func TestBreakerStateMachine(t *testing.T) {
	clock := newFakeClock()
	b, err := NewBreaker(BreakerOptions{FailureThreshold: 3, OpenFor: 10 * time.Second, MaxOpenFor: 35 * time.Second, ProbeTimeout: time.Minute, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		do        string // allow, success, failure, advance
		d         time.Duration
		wantOK    bool
		wantRetry time.Duration
		wantState BreakerState
	}
	allow := func(ok bool, retry time.Duration, s BreakerState) step {
		return step{do: "allow", wantOK: ok, wantRetry: retry, wantState: s}
	}
	fail := func(s BreakerState) step { return step{do: "failure", wantState: s} }
	succeed := func(s BreakerState) step { return step{do: "success", wantState: s} }
	advance := func(d time.Duration, s BreakerState) step { return step{do: "advance", d: d, wantState: s} }
	steps := []step{
		allow(true, 0, StateClosed),
		fail(StateClosed), fail(StateClosed),
		succeed(StateClosed), // resets the consecutive count
		fail(StateClosed), fail(StateClosed),
		fail(StateOpen), // 3rd consecutive failure
		allow(false, 10*time.Second, StateOpen),
		advance(4*time.Second, StateOpen),
		allow(false, 6*time.Second, StateOpen),
		fail(StateOpen), // late report of an earlier attempt changes nothing
		allow(false, 6*time.Second, StateOpen),
		advance(6*time.Second, StateOpen),
		allow(true, 0, StateHalfOpen),               // the probe
		allow(false, 10*time.Second, StateHalfOpen), // exactly one probe
		fail(StateOpen),                             // failed probe: open for 20 s
		allow(false, 20*time.Second, StateOpen),
		advance(20*time.Second, StateOpen),
		allow(true, 0, StateHalfOpen),
		fail(StateOpen), // 40 s capped at 35 s
		allow(false, 35*time.Second, StateOpen),
		advance(35*time.Second, StateOpen),
		allow(true, 0, StateHalfOpen),
		fail(StateOpen), // stays at the cap
		allow(false, 35*time.Second, StateOpen),
		advance(35*time.Second, StateOpen),
		allow(true, 0, StateHalfOpen),
		succeed(StateClosed), // successful probe closes
		allow(true, 0, StateClosed),
		allow(true, 0, StateClosed),
		fail(StateClosed), fail(StateClosed), fail(StateOpen),
		allow(false, 10*time.Second, StateOpen), // open period back to OpenFor
		advance(10*time.Second, StateOpen),
		allow(true, 0, StateHalfOpen), // probe never reported...
		advance(59*time.Second, StateHalfOpen),
		allow(false, 10*time.Second, StateHalfOpen),
		advance(time.Second, StateHalfOpen),
		allow(true, 0, StateHalfOpen), // ...so after ProbeTimeout another probe goes
		allow(false, 10*time.Second, StateHalfOpen),
	}
	for i, s := range steps {
		where := fmt.Sprintf("step %d (%s)", i, s.do)
		switch s.do {
		case "allow":
			ok, retry := b.Allow()
			if ok != s.wantOK || retry != s.wantRetry {
				t.Fatalf("%s: Allow = (%v, %s), want (%v, %s)", where, ok, retry, s.wantOK, s.wantRetry)
			}
		case "success":
			b.Success()
		case "failure":
			b.Failure()
		case "advance":
			clock.Advance(s.d)
		}
		if got := b.State(); got != s.wantState {
			t.Fatalf("%s: state %v, want %v", where, got, s.wantState)
		}
	}
}

func TestBreakerDefaults(t *testing.T) {
	clock := newFakeClock()
	b, err := NewBreaker(BreakerOptions{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		b.Failure()
	}
	if b.State() != StateClosed {
		t.Fatalf("open after 4 failures, want the default threshold of 5")
	}
	b.Failure()
	if ok, retry := b.Allow(); ok || retry != 30*time.Second {
		t.Fatalf("Allow = (%v, %s), want (false, 30s)", ok, retry)
	}
	// Ten failed probes: 30s, 1m, 2m, 4m, 8m, then capped at 10m.
	for _, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 10 * time.Minute, 10 * time.Minute} {
		_, wait := b.Allow()
		clock.Advance(wait)
		if ok, _ := b.Allow(); !ok {
			t.Fatal("no probe after the open period")
		}
		b.Failure()
		if _, got := b.Allow(); got != want {
			t.Fatalf("open period %s, want %s", got, want)
		}
	}
}

func TestNewBreakerRejects(t *testing.T) {
	tests := []BreakerOptions{
		{FailureThreshold: -1},
		{OpenFor: -time.Second},
		{OpenFor: time.Minute, MaxOpenFor: time.Second},
		{ProbeTimeout: -1},
	}
	for _, opts := range tests {
		if _, err := NewBreaker(opts); err == nil {
			t.Errorf("NewBreaker(%+v) accepted", opts)
		}
	}
}
