package delivery

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

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
