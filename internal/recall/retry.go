package recall

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrRetryBudgetExceeded is wrapped by the error a Client returns when a
// request still failed with a retryable error after MaxRetryDuration.
var ErrRetryBudgetExceeded = errors.New("retry budget for the Recall.ai API exceeded")

// Retry timings. They follow Recall's documented error handling: honour
// Retry-After on 429, back off on 5xx, retry about every 30 s on 507.
const (
	// DefaultRetryAfter is the wait after a 429 without a usable Retry-After.
	DefaultRetryAfter = 5 * time.Second
	// InitialBackoff is the first wait after a 5xx or network error; it
	// doubles on each further failure up to MaxBackoff.
	InitialBackoff = time.Second
	// MaxBackoff caps the exponential backoff.
	MaxBackoff = 30 * time.Second
	// InsufficientStorageWait is the wait after a 507.
	InsufficientStorageWait = 30 * time.Second
)

// Clock is the client's view of time, injectable so that tests do not wait.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// Sleep waits for d or until ctx is done, returning ctx's error then.
	Sleep(ctx context.Context, d time.Duration) error
}

// realClock is the wall clock.
type realClock struct{}

// Now returns time.Now().
func (realClock) Now() time.Time { return time.Now() }

// Sleep waits for d or ctx.
func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// APIError is a non-2xx answer from the Recall API (or the transcript
// download host). It carries no URL: pre-signed download URLs are
// credentials.
type APIError struct {
	// StatusCode is the HTTP status of the last response.
	StatusCode int
	// Op names the request that failed, e.g. "retrieve bot".
	Op string
}

// Error implements error.
func (e *APIError) Error() string {
	return fmt.Sprintf("recall %s: HTTP %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
}

// Permanent reports whether retrying the same request cannot help: every
// status other than 429, 500, 502, 503, 504 and 507.
func (e *APIError) Permanent() bool {
	_, retry := retryWait(e.StatusCode, "", 0, time.Time{})
	return !retry
}

// retryWait says whether a response status is retryable and how long to wait
// first. failures is the number of consecutive failures before this one.
func retryWait(status int, retryAfter string, failures int, now time.Time) (time.Duration, bool) {
	switch status {
	case http.StatusTooManyRequests:
		if d, ok := parseRetryAfter(retryAfter, now); ok {
			return d, true
		}
		return DefaultRetryAfter, true
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return backoff(failures), true
	case http.StatusInsufficientStorage:
		return InsufficientStorageWait, true
	}
	return 0, false
}

// backoff is InitialBackoff doubled per earlier failure, capped at MaxBackoff.
func backoff(failures int) time.Duration {
	d := InitialBackoff
	for i := 0; i < failures && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		// Anything beyond a day is nonsense; the budget caps it anyway.
		return time.Duration(min(secs, 86400)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
