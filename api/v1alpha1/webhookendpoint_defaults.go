package v1alpha1

import (
	"time"
)

// Delivery policy defaults, applied by the getters below. With them, retries
// of one delivery spread over about 24 hours (5 s doubling to 4 h, 18
// attempts, cut at maxRetryDuration), like the providers Mira's consumers
// already know.
const (
	DefaultTimeout          = 15 * time.Second
	DefaultMaxAttempts      = 18
	DefaultMaxRetryDuration = 24 * time.Hour
	DefaultBackoffInitial   = 5 * time.Second
	DefaultBackoffMax       = 4 * time.Hour
	DefaultJitterPercent    = 20
	DefaultMaxConcurrency   = 16
	DefaultDisableAfter     = 72 * time.Hour
	// DegradedAfterFailures is how many consecutive failed attempts mark an
	// endpoint Degraded.
	DegradedAfterFailures = 5
)

// SigningSecretName returns the Secret that holds the signing secret.
func (w *WebhookEndpoint) SigningSecretName() string {
	if w.Spec.SecretRef != nil && w.Spec.SecretRef.Name != "" {
		return w.Spec.SecretRef.Name
	}
	return w.GeneratedSecretName()
}

// SigningSecretKey returns the key of the signing secret in its Secret.
func (w *WebhookEndpoint) SigningSecretKey() string {
	if w.Spec.SecretRef != nil && w.Spec.SecretRef.Key != "" {
		return w.Spec.SecretRef.Key
	}
	return SigningSecretKey
}

// GeneratedSecretName is the name of the Secret the controller generates when
// spec.secretRef names none.
func (w *WebhookEndpoint) GeneratedSecretName() string {
	return w.Name + "-signing-secret"
}

// UsesGeneratedSecret reports whether the controller owns the signing Secret.
func (w *WebhookEndpoint) UsesGeneratedSecret() bool {
	return w.Spec.SecretRef == nil || w.Spec.SecretRef.Name == ""
}

// Subscribes reports whether the endpoint wants events of this type; "*"
// does not match operational events.
func (w *WebhookEndpoint) Subscribes(eventType string) bool {
	for _, e := range w.Spec.Events {
		if e == eventType || (e == EventAll && !IsOperationalEvent(eventType)) {
			return true
		}
	}
	return false
}

// ServiceNamespace returns the namespace of the target Service.
func (w *WebhookEndpoint) ServiceNamespace() string {
	if w.Spec.Service != nil && w.Spec.Service.Namespace != "" {
		return w.Spec.Service.Namespace
	}
	return w.Namespace
}

func (w *WebhookEndpoint) policy() DeliveryPolicy {
	if w.Spec.Delivery == nil {
		return DeliveryPolicy{}
	}
	return *w.Spec.Delivery
}

// GetTimeout returns the per-attempt timeout.
func (w *WebhookEndpoint) GetTimeout() time.Duration {
	if p := w.policy(); p.Timeout != nil {
		return p.Timeout.Duration
	}
	return DefaultTimeout
}

// GetMaxAttempts returns how many attempts a delivery gets.
func (w *WebhookEndpoint) GetMaxAttempts() int {
	if p := w.policy(); p.MaxAttempts != nil {
		return int(*p.MaxAttempts)
	}
	return DefaultMaxAttempts
}

// GetMaxRetryDuration returns how long after the first attempt retries go on.
func (w *WebhookEndpoint) GetMaxRetryDuration() time.Duration {
	if p := w.policy(); p.MaxRetryDuration != nil {
		return p.MaxRetryDuration.Duration
	}
	return DefaultMaxRetryDuration
}

// GetBackoffInitial returns the first retry delay.
func (w *WebhookEndpoint) GetBackoffInitial() time.Duration {
	if p := w.policy(); p.Backoff != nil && p.Backoff.Initial != nil {
		return p.Backoff.Initial.Duration
	}
	return DefaultBackoffInitial
}

// GetBackoffMax returns the longest retry delay.
func (w *WebhookEndpoint) GetBackoffMax() time.Duration {
	if p := w.policy(); p.Backoff != nil && p.Backoff.Max != nil {
		return p.Backoff.Max.Duration
	}
	return DefaultBackoffMax
}

// GetJitter returns the jitter as a fraction between 0 and 1.
func (w *WebhookEndpoint) GetJitter() float64 {
	if p := w.policy(); p.Backoff != nil && p.Backoff.Jitter != nil {
		return float64(*p.Backoff.Jitter) / 100
	}
	return DefaultJitterPercent / 100.0
}

// GetMaxConcurrency returns the per-endpoint in-flight limit.
func (w *WebhookEndpoint) GetMaxConcurrency() int {
	if p := w.policy(); p.MaxConcurrency != nil {
		return int(*p.MaxConcurrency)
	}
	return DefaultMaxConcurrency
}

// GetRateLimit returns attempts per second, 0 for no limit.
func (w *WebhookEndpoint) GetRateLimit() int {
	if p := w.policy(); p.RateLimit != nil {
		return int(*p.RateLimit)
	}
	return 0
}

// GetDisableAfter returns how long continuous failure lasts before disabling.
func (w *WebhookEndpoint) GetDisableAfter() time.Duration {
	if p := w.policy(); p.DisableAfter != nil {
		return p.DisableAfter.Duration
	}
	return DefaultDisableAfter
}
