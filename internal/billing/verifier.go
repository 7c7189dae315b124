package billing

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// API version policies for VerifierOptions.APIVersionPolicy.
const (
	// APIVersionStrict refuses events whose api_version differs from
	// stripe.APIVersion, the version stripe-go v76 decodes ("2023-10-16").
	// Pin the Stripe webhook endpoint to that version when using it.
	APIVersionStrict = "strict"
	// APIVersionIgnore accepts events of any api_version. Fields that a newer
	// version renamed or moved may then decode as zero values.
	APIVersionIgnore = "ignore"
)

// Errors returned by Verifier.Verify. Each wraps the underlying cause, so
// errors.Is also matches stripe-go's own errors (webhook.ErrTooOld, ...).
var (
	// ErrSignature means the Stripe-Signature header is missing or
	// malformed, no signature matches, or the timestamp is outside the
	// tolerance. Answer every case with the same generic 401.
	ErrSignature = errors.New("stripe signature verification failed")
	// ErrAPIVersion means the event's api_version is not the one this
	// receiver decodes, under the strict policy. Answer 400 with the error
	// text, which names both versions.
	ErrAPIVersion = errors.New("stripe event api_version not supported")
	// ErrPayload means the signature is valid but the body is not a Stripe
	// event. Answer 400.
	ErrPayload = errors.New("stripe event body is not valid")
	// ErrNotConfigured means no signing secret is set yet. Answer 503 so
	// Stripe retries once the secret is in place.
	ErrNotConfigured = errors.New("stripe signing secret not configured")
)

// VerifierOptions configures a Verifier.
type VerifierOptions struct {
	// Secret is the endpoint's signing secret ("whsec_..."), used as-is as
	// the HMAC key. Surrounding whitespace (a trailing newline from a
	// mounted file) is trimmed. Empty means not configured yet: Verify
	// returns ErrNotConfigured until SetSecret is called.
	Secret string
	// Tolerance is the maximum age of the signed timestamp. Zero means
	// webhook.DefaultTolerance (300 s); negative is refused.
	Tolerance time.Duration
	// APIVersionPolicy is APIVersionStrict (the default when empty) or
	// APIVersionIgnore.
	APIVersionPolicy string
}

// Verifier checks Stripe webhook signatures with stripe-go. It is safe for
// concurrent use, including SetSecret while requests are being verified.
type Verifier struct {
	secret    atomic.Pointer[string]
	tolerance time.Duration
	strict    bool
}

// NewVerifier validates the options and returns a Verifier.
func NewVerifier(o VerifierOptions) (*Verifier, error) {
	if o.Tolerance < 0 {
		return nil, fmt.Errorf("stripe verifier: tolerance must not be negative, got %s", o.Tolerance)
	}
	v := &Verifier{tolerance: o.Tolerance}
	if v.tolerance == 0 {
		v.tolerance = webhook.DefaultTolerance
	}
	switch o.APIVersionPolicy {
	case "", APIVersionStrict:
		v.strict = true
	case APIVersionIgnore:
	default:
		return nil, fmt.Errorf("stripe verifier: api version policy %q is not %q or %q",
			o.APIVersionPolicy, APIVersionStrict, APIVersionIgnore)
	}
	v.SetSecret(o.Secret)
	return v, nil
}

// SetSecret replaces the signing secret, for example when the Kubernetes
// Secret holding it changes. An empty secret unconfigures the verifier.
func (v *Verifier) SetSecret(secret string) {
	s := strings.TrimSpace(secret)
	v.secret.Store(&s)
}

// Configured reports whether a signing secret is set.
func (v *Verifier) Configured() bool {
	return *v.secret.Load() != ""
}

// Verify checks sigHeader (the Stripe-Signature header) against the raw
// request body and returns the decoded event. Errors match ErrSignature,
// ErrAPIVersion, ErrPayload or ErrNotConfigured; none of them contains the
// secret or the signature.
func (v *Verifier) Verify(payload []byte, sigHeader string) (stripe.Event, error) {
	secret := *v.secret.Load()
	if secret == "" {
		return stripe.Event{}, ErrNotConfigured
	}
	ev, err := webhook.ConstructEventWithOptions(payload, sigHeader, secret, webhook.ConstructEventOptions{
		Tolerance:                v.tolerance,
		IgnoreAPIVersionMismatch: true,
	})
	if err != nil {
		switch {
		case errors.Is(err, webhook.ErrNotSigned), errors.Is(err, webhook.ErrInvalidHeader),
			errors.Is(err, webhook.ErrNoValidSignature), errors.Is(err, webhook.ErrTooOld):
			return stripe.Event{}, fmt.Errorf("%w: %w", ErrSignature, err)
		default:
			// With the version check disabled, the only other failure is
			// the JSON decoding of a correctly signed body.
			return stripe.Event{}, fmt.Errorf("%w: %w", ErrPayload, err)
		}
	}
	if ev.ID == "" || ev.Type == "" || ev.Data == nil {
		return stripe.Event{}, fmt.Errorf("%w: event has no id, type or data", ErrPayload)
	}
	if v.strict && ev.APIVersion != stripe.APIVersion {
		return stripe.Event{}, fmt.Errorf("%w: event %s has api_version %q but this receiver decodes %q; "+
			"set the Stripe webhook endpoint's API version to %q or run with the %q API version policy",
			ErrAPIVersion, ev.ID, ev.APIVersion, stripe.APIVersion, stripe.APIVersion, APIVersionIgnore)
	}
	return ev, nil
}
