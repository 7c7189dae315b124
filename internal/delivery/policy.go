package delivery

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

// Policy defaults, applied by WithDefaults to zero fields. They are the
// WebhookEndpoint API's defaults (one source of truth, documented in the
// CRD): a 15 s timeout, and retries spread over a day with exponential
// backoff and jitter, as the Standard Webhooks recommendations suggest.
const (
	// DefaultTimeout is the per-attempt timeout.
	DefaultTimeout = miraapi.DefaultTimeout
	// DefaultMaxAttempts is the number of attempts, the first included.
	DefaultMaxAttempts = miraapi.DefaultMaxAttempts
	// DefaultMaxRetryDuration is how long after the first attempt retries stop.
	DefaultMaxRetryDuration = miraapi.DefaultMaxRetryDuration
	// DefaultBackoffInitial is the delay after the first failed attempt.
	DefaultBackoffInitial = miraapi.DefaultBackoffInitial
	// DefaultBackoffMax caps the exponential backoff.
	DefaultBackoffMax = miraapi.DefaultBackoffMax
	// DefaultJitter is the fraction by which a delay may be shortened at random.
	DefaultJitter = miraapi.DefaultJitterPercent / 100.0

	// MaxTimeout bounds Policy.Timeout; it is also the Sender's response
	// header timeout.
	MaxTimeout = 60 * time.Second
	// MinRetryAfterCap is the least a Retry-After is honoured up to: the cap
	// is max(BackoffMax, MinRetryAfterCap).
	MinRetryAfterCap = time.Hour
)

// Policy decides timeouts and retries of one endpoint's deliveries. Zero
// fields mean the defaults above, in every method.
type Policy struct {
	// Timeout of one attempt, at most MaxTimeout.
	Timeout time.Duration
	// MaxAttempts is the number of attempts, the first included.
	MaxAttempts int
	// MaxRetryDuration is how long after the first attempt a retry may start.
	MaxRetryDuration time.Duration
	// BackoffInitial is the delay after the first failed attempt; it doubles
	// with every further failure.
	BackoffInitial time.Duration
	// BackoffMax caps the backoff; it must not be below BackoffInitial.
	BackoffMax time.Duration
	// Jitter in [0, 1] shortens each delay by up to that fraction, at random.
	// Zero means DefaultJitter: jitter cannot be switched off, because
	// synchronised retries hammer a recovering consumer.
	Jitter float64
}

// WithDefaults returns p with zero fields replaced by the defaults.
func (p Policy) WithDefaults() Policy {
	if p.Timeout == 0 {
		p.Timeout = DefaultTimeout
	}
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.MaxRetryDuration == 0 {
		p.MaxRetryDuration = DefaultMaxRetryDuration
	}
	if p.BackoffInitial == 0 {
		p.BackoffInitial = DefaultBackoffInitial
	}
	if p.BackoffMax == 0 {
		p.BackoffMax = DefaultBackoffMax
	}
	if p.Jitter == 0 {
		p.Jitter = DefaultJitter
	}
	return p
}

// Validate reports the first field out of range, after defaults.
func (p Policy) Validate() error {
	d := p.WithDefaults()
	var errs []error
	if d.Timeout < 0 || d.Timeout > MaxTimeout {
		errs = append(errs, fmt.Errorf("timeout %s outside 0..%s", d.Timeout, MaxTimeout))
	}
	if d.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("max attempts %d is negative", d.MaxAttempts))
	}
	if d.MaxRetryDuration < 0 {
		errs = append(errs, fmt.Errorf("max retry duration %s is negative", d.MaxRetryDuration))
	}
	if d.BackoffInitial < 0 {
		errs = append(errs, fmt.Errorf("initial backoff %s is negative", d.BackoffInitial))
	}
	if d.BackoffMax < d.BackoffInitial {
		errs = append(errs, fmt.Errorf("maximum backoff %s is below initial backoff %s", d.BackoffMax, d.BackoffInitial))
	}
	if d.Jitter < 0 || d.Jitter > 1 {
		errs = append(errs, fmt.Errorf("jitter %g outside 0..1", d.Jitter))
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid delivery policy: %w", errors.Join(errs...))
	}
	return nil
}

// RetryAfterCap is the longest Retry-After that Next honours:
// max(BackoffMax, MinRetryAfterCap).
func (p Policy) RetryAfterCap() time.Duration {
	return max(p.WithDefaults().BackoffMax, MinRetryAfterCap)
}

// Backoff returns the delay after the attempt-th failed attempt (1-based):
// BackoffInitial×2^(attempt-1) capped at BackoffMax, then shortened to
// d×(1 − Jitter×rnd()). rnd returns values in [0, 1); nil means math/rand.
func (p Policy) Backoff(attempt int, rnd func() float64) time.Duration {
	p = p.WithDefaults()
	attempt = max(attempt, 1)
	d := p.BackoffInitial
	for i := 1; i < attempt && d < p.BackoffMax && d <= math.MaxInt64/2; i++ {
		d *= 2
	}
	d = min(d, p.BackoffMax)
	if rnd == nil {
		rnd = rand.Float64
	}
	r := min(max(rnd(), 0), 1)
	return time.Duration(float64(d) * (1 - p.Jitter*r))
}

// Next decides what follows the attempt-th failed attempt (1-based) of a
// delivery first attempted at firstAttempt, now. The delay is the backoff,
// or the endpoint's retryAfter when that is longer, bounded by
// RetryAfterCap. giveUp is true (and delay 0) when attempt reached
// MaxAttempts or when the retry would start after
// firstAttempt+MaxRetryDuration.
func (p Policy) Next(attempt int, firstAttempt, now time.Time, retryAfter time.Duration, rnd func() float64) (delay time.Duration, giveUp bool) {
	p = p.WithDefaults()
	if attempt >= p.MaxAttempts {
		return 0, true
	}
	delay = p.Backoff(attempt, rnd)
	if retryAfter > delay {
		delay = min(retryAfter, p.RetryAfterCap())
	}
	if now.Add(delay).After(firstAttempt.Add(p.MaxRetryDuration)) {
		return 0, true
	}
	return delay, false
}
