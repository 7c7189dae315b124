package delivery

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Breaker defaults.
const (
	// DefaultFailureThreshold is how many consecutive failures open the breaker.
	DefaultFailureThreshold = 5
	// DefaultOpenFor is how long the breaker first stays open.
	DefaultOpenFor = 30 * time.Second
	// DefaultMaxOpenFor caps the open period, which doubles after every failed probe.
	DefaultMaxOpenFor = 10 * time.Minute
	// DefaultProbeTimeout is how long a half-open probe may stay unreported
	// before another probe is let through.
	DefaultProbeTimeout = 2 * MaxTimeout
)

// BreakerState is the state of a Breaker.
type BreakerState int

const (
	// StateClosed lets every attempt through.
	StateClosed BreakerState = iota
	// StateOpen refuses attempts until the open period ends.
	StateOpen
	// StateHalfOpen lets one probe through and refuses the rest.
	StateHalfOpen
)

// String returns the state's name.
func (s BreakerState) String() string {
	switch s {
	case StateOpen:
		return "Open"
	case StateHalfOpen:
		return "HalfOpen"
	default:
		return "Closed"
	}
}

// BreakerOptions configures NewBreaker; zero fields mean the defaults.
type BreakerOptions struct {
	// FailureThreshold is how many consecutive failures open the breaker.
	FailureThreshold int
	// OpenFor is the first open period.
	OpenFor time.Duration
	// MaxOpenFor caps the open period; it must not be below OpenFor.
	MaxOpenFor time.Duration
	// ProbeTimeout frees the probe slot of a probe never reported.
	ProbeTimeout time.Duration
	// Clock is the time source; nil is the system clock.
	Clock Clock
}

// Breaker is a per-endpoint circuit breaker. Closed, it counts consecutive
// failures and opens at FailureThreshold. Open, it refuses until OpenFor
// has passed, then turns half-open and lets exactly one probe through. A
// successful probe closes it; a failed one opens it again for twice as long,
// up to MaxOpenFor. Report exactly one Success, Failure or Release for every
// allowed attempt. It is safe for concurrent use.
type Breaker struct {
	threshold    int
	baseOpen     time.Duration
	maxOpen      time.Duration
	probeTimeout time.Duration
	clock        Clock

	mu         sync.Mutex
	state      BreakerState
	failures   int
	openFor    time.Duration
	openUntil  time.Time
	probing    bool
	probeStart time.Time
}

// NewBreaker validates opts and returns a closed Breaker.
func NewBreaker(opts BreakerOptions) (*Breaker, error) {
	if opts.FailureThreshold < 0 || opts.OpenFor < 0 || opts.MaxOpenFor < 0 || opts.ProbeTimeout < 0 {
		return nil, errors.New("new breaker: negative option")
	}
	if opts.FailureThreshold == 0 {
		opts.FailureThreshold = DefaultFailureThreshold
	}
	if opts.OpenFor == 0 {
		opts.OpenFor = DefaultOpenFor
	}
	if opts.MaxOpenFor == 0 {
		opts.MaxOpenFor = max(DefaultMaxOpenFor, opts.OpenFor)
	}
	if opts.ProbeTimeout == 0 {
		opts.ProbeTimeout = DefaultProbeTimeout
	}
	if opts.MaxOpenFor < opts.OpenFor {
		return nil, fmt.Errorf("new breaker: max open period %s is below open period %s", opts.MaxOpenFor, opts.OpenFor)
	}
	return &Breaker{
		threshold:    opts.FailureThreshold,
		baseOpen:     opts.OpenFor,
		maxOpen:      opts.MaxOpenFor,
		probeTimeout: opts.ProbeTimeout,
		clock:        clockOrSystem(opts.Clock),
		openFor:      opts.OpenFor,
	}, nil
}

// Allow reports whether an attempt may start now. When it may not, retryIn
// is how long to wait: the rest of the open period, or, while a probe is in
// flight, the current open period.
func (b *Breaker) Allow() (ok bool, retryIn time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	switch b.state {
	case StateOpen:
		if wait := b.openUntil.Sub(now); wait > 0 {
			return false, wait
		}
		b.state = StateHalfOpen
		b.probing, b.probeStart = true, now
		return true, 0
	case StateHalfOpen:
		if b.probing && now.Sub(b.probeStart) < b.probeTimeout {
			return false, b.openFor
		}
		b.probing, b.probeStart = true, now
		return true, 0
	default:
		return true, 0
	}
}

// Success records a successful attempt: the breaker closes and its open
// period returns to OpenFor.
func (b *Breaker) Success() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state = StateClosed
	b.failures = 0
	b.openFor = b.baseOpen
	b.probing = false
}

// Failure records a failed attempt. Closed, it opens the breaker at the
// threshold; half-open, it re-opens it for twice the last period (capped);
// open, it changes nothing.
func (b *Breaker) Failure() {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	switch b.state {
	case StateClosed:
		b.failures++
		if b.failures >= b.threshold {
			b.open(now)
		}
	case StateHalfOpen:
		b.openFor = min(2*b.openFor, b.maxOpen)
		b.open(now)
	}
}

// Release records that an allowed attempt produced no verdict on the
// endpoint's health: it was not made after all (shutdown), or the outbound
// guard refused its address. Half-open, the probe slot is free again at once;
// without Release it would stay taken for ProbeTimeout (two minutes by
// default) and hold every delivery back meanwhile. Closed or open, nothing
// changes.
func (b *Breaker) Release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == StateHalfOpen {
		b.probing = false
	}
}

// open moves to StateOpen for the current open period. Callers hold mu.
func (b *Breaker) open(now time.Time) {
	b.state = StateOpen
	b.failures = 0
	b.probing = false
	b.openUntil = now.Add(b.openFor)
}

// State returns the current state. An open breaker whose period has passed
// reports StateOpen until the next Allow lets the probe through.
func (b *Breaker) State() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}
