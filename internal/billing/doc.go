// Package billing verifies Stripe webhooks and keeps each customer's billing
// state in a JetStream key-value bucket.
//
// Verification uses stripe-go's own verifier (webhook.ConstructEventWithOptions)
// over the raw body, before any other decoding. Failures map to sentinels the
// HTTP layer turns into answers: ErrSignature (401, one generic reply for
// every signature problem), ErrAPIVersion (400 with an explanation),
// ErrPayload (400) and ErrNotConfigured (503: no secret yet).
//
// The Processor applies verified events to the bucket. It is idempotent
// (a repeated event id is a no-op), out-of-order safe (per object, an event
// older than the state it would overwrite is dropped as stale) and safe to run
// from several receivers at once (every write is a compare-and-set on the
// key's revision, retried a bounded number of times).
//
// The model assumes one active subscription per customer, which is what the
// Mira checkout creates.
package billing
