package delivery

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultConcurrency is how many attempts to one endpoint may be in flight.
const DefaultConcurrency = 4

// Concurrency limits the attempts in flight to one endpoint. It never
// blocks. It is safe for concurrent use.
type Concurrency struct {
	mu       sync.Mutex
	limit    int
	inFlight int
}

// NewConcurrency returns a limiter of limit slots; 0 means DefaultConcurrency.
func NewConcurrency(limit int) (*Concurrency, error) {
	if limit < 0 {
		return nil, fmt.Errorf("new concurrency limiter: limit %d is negative", limit)
	}
	if limit == 0 {
		limit = DefaultConcurrency
	}
	return &Concurrency{limit: limit}, nil
}

// TryAcquire takes a slot if one is free. Call Release after the attempt.
func (c *Concurrency) TryAcquire() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inFlight >= c.limit {
		return false
	}
	c.inFlight++
	return true
}

// Release frees a slot taken by TryAcquire. Extra releases are ignored.
func (c *Concurrency) Release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inFlight > 0 {
		c.inFlight--
	}
}

// InFlight returns the slots taken.
func (c *Concurrency) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inFlight
}

// RateLimit is an optional per-endpoint token bucket. A nil *RateLimit is
// unlimited. It never blocks: Take reports how long until the next token.
// It is safe for concurrent use.
type RateLimit struct {
	mu    sync.Mutex
	lim   *rate.Limiter
	per   float64
	clock Clock
}

// NewRateLimit returns a bucket refilling perSecond tokens a second and
// holding up to burst (0 means 1). perSecond must be positive and finite.
func NewRateLimit(perSecond float64, burst int, clock Clock) (*RateLimit, error) {
	if !(perSecond > 0) || math.IsInf(perSecond, 0) {
		return nil, errors.New("new rate limit: rate must be positive and finite")
	}
	if burst < 0 {
		return nil, fmt.Errorf("new rate limit: burst %d is negative", burst)
	}
	if burst == 0 {
		burst = 1
	}
	l := &RateLimit{per: perSecond, clock: clockOrSystem(clock)}
	l.lim = rate.NewLimiter(rate.Limit(perSecond), burst)
	// Start full, counted from the injected clock rather than the wall clock.
	l.lim.SetBurstAt(l.clock.Now(), burst)
	return l, nil
}

// Take takes a token if one is available now (ok true). Otherwise it takes
// nothing and returns how long until the next token.
func (l *RateLimit) Take() (ok bool, wait time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	if l.lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - l.lim.TokensAt(now)
	wait = time.Duration(math.Ceil(missing / l.per * float64(time.Second)))
	return false, max(wait, time.Nanosecond)
}
