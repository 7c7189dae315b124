package endpoints

import (
	"fmt"
	"sync"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/delivery"
)

// Endpoint is the delivery-side state of one WebhookEndpoint: its latest
// object, signing material, TLS sender and flow control.
type Endpoint struct {
	UID types.UID

	mu  sync.Mutex
	obj *miraapi.WebhookEndpoint
	// Signing material, recomputed when the Secret's resourceVersion changes.
	secretRV   string
	secretName string    // the Secret secretRV is of
	secretRead time.Time // when it was read last (see secretRecheck)
	current    string
	previous   string
	previousAt time.Time
	// The endpoint's own sender, rebuilt when its key (target kind,
	// maxConcurrency, TLS Secrets' versions) changes.
	senderKey string
	sender    *delivery.Sender

	breaker *delivery.Breaker
	rate    *delivery.RateLimit
	// paused holds fetching back until this time (see PauseFor).
	paused time.Time
	// filter is spec.filter compiled for the current generation.
	filter compiledFilter
}

func newEndpoint(w *miraapi.WebhookEndpoint) *Endpoint {
	return &Endpoint{UID: w.UID, breaker: newBreaker(), rate: newRateLimit(w.GetRateLimit())}
}

// Object returns the latest snapshot of the WebhookEndpoint; do not modify it.
func (e *Endpoint) Object() *miraapi.WebhookEndpoint {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.obj
}

// RateWait takes a token of the endpoint's rate limit, or returns how long
// until one is available (0: go ahead).
func (e *Endpoint) RateWait() time.Duration {
	e.mu.Lock()
	r := e.rate
	e.mu.Unlock()
	ok, wait := r.Take()
	if ok {
		return 0
	}
	return wait
}

// CircuitBreaker returns the endpoint's breaker.
func (e *Endpoint) CircuitBreaker() *delivery.Breaker {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.breaker
}

// PauseFor stops fetching for this endpoint until now+d (the later of the
// current pause and this one).
func (e *Endpoint) PauseFor(now time.Time, d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if until := now.Add(d); until.After(e.paused) {
		e.paused = until
	}
}

// PausedUntil is when fetching for this endpoint may resume.
func (e *Endpoint) PausedUntil() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.paused
}

// ResetFlowControl closes the breaker and ends any pause (a re-enabled
// endpoint starts afresh).
func (e *Endpoint) ResetFlowControl() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.breaker = newBreaker()
	e.paused = time.Time{}
}

func newBreaker() *delivery.Breaker {
	b, err := delivery.NewBreaker(delivery.BreakerOptions{})
	if err != nil {
		panic(err) // the defaults are valid
	}
	return b
}

// newRateLimit returns the endpoint's rate limit, nil (unlimited) for 0.
func newRateLimit(perSecond int) *delivery.RateLimit {
	if perSecond <= 0 {
		return nil
	}
	r, _ := delivery.NewRateLimit(float64(perSecond), perSecond, nil)
	return r
}

// Deliverable reports whether deliveries to the endpoint can go out now as
// far as its configuration goes: the controller found its current
// generation valid (Ready, or not Ready only because it is suspended or
// disabled) and
// resolved its target. When not, reason says what is missing; deliveries
// then wait in the queue.
func Deliverable(w *miraapi.WebhookEndpoint) (ok bool, reason string) {
	c := apimeta.FindStatusCondition(w.Status.Conditions, miraapi.ReadyCondition)
	switch {
	case c == nil:
		return false, "the WebhookEndpoint is not reconciled yet"
	case c.ObservedGeneration != w.Generation:
		return false, fmt.Sprintf("generation %d of the WebhookEndpoint is not reconciled yet", w.Generation)
	case c.Status != metav1.ConditionTrue && c.Reason != miraapi.SuspendedReason && c.Reason != miraapi.DisabledReason:
		// Suspended and Disabled are not about configuration: the dispatcher
		// records those deliveries as skipped.
		return false, fmt.Sprintf("the WebhookEndpoint is not Ready (%s: %s)", c.Reason, c.Message)
	}
	if _, err := w.Target(); err != nil {
		return false, "the WebhookEndpoint has no usable target: " + err.Error()
	}
	return true, ""
}

// Configured reports whether Deliverable is true.
func Configured(w *miraapi.WebhookEndpoint) bool {
	ok, _ := Deliverable(w)
	return ok
}

// Target returns the URL to POST to, derived from the spec: never from
// status.targetURL, which is display-only (redacted) and which anyone who
// may patch status could rewrite.
func Target(w *miraapi.WebhookEndpoint) (string, error) {
	return w.Target()
}

// closeIdle closes the idle connections of the endpoint's sender.
func (e *Endpoint) closeIdle() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sender != nil {
		e.sender.CloseIdleConnections()
	}
}

// secretRecheck is how long SigningSecrets reuses the signing values it read
// last before reading the Secret again (itself cached by the secret cache).
const secretRecheck = time.Second

// recentSecrets returns the signing values read within secretRecheck from
// the Secret named name (ok false: read it again).
func (e *Endpoint) recentSecrets(name string, now time.Time, grace time.Duration) (string, []string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.current == "" || e.secretName != name || now.Before(e.secretRead) || now.Sub(e.secretRead) >= secretRecheck {
		return "", nil, false
	}
	return e.current, e.previousWithin(now, grace), true
}

// previousWithin returns the previous signing secret while it is within the
// rotation grace period; e.mu is held.
func (e *Endpoint) previousWithin(now time.Time, grace time.Duration) []string {
	if e.previous != "" && e.previous != e.current && now.Sub(e.previousAt) < grace {
		return []string{e.previous}
	}
	return nil
}
