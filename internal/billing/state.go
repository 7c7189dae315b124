package billing

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stripe/stripe-go/v76"
)

// BucketName is the JetStream key-value bucket holding billing state.
const BucketName = "mira-billing"

// Object names used as keys of Customer.Updated.
const (
	ObjectCheckout     = "checkout"
	ObjectSubscription = "subscription"
	ObjectInvoice      = "invoice"
)

// maxIDLength bounds the ids accepted as keys (Stripe ids are far shorter).
const maxIDLength = 255

// recentEventIDs is how many applied event ids a customer record remembers
// to recognise Stripe's duplicate deliveries.
const recentEventIDs = 32

// ErrNotFound is returned by the getters when no record exists.
var ErrNotFound = errors.New("billing record not found")

// ErrInvalidID is returned for an id that is empty or too long to be a key.
var ErrInvalidID = errors.New("invalid billing id")

// Customer is the billing state of one Stripe customer, stored as JSON under
// CustomerKey(ID).
type Customer struct {
	// ID is the Stripe customer id (cus_...).
	ID string `json:"id"`
	// UserID is the Mira user who completed checkout for this customer.
	UserID string `json:"user_id,omitempty"`
	// SubscriptionID is the customer's current subscription (sub_...).
	SubscriptionID string `json:"subscription_id,omitempty"`
	// Status is the subscription status (active, past_due, canceled, ...).
	Status stripe.SubscriptionStatus `json:"status,omitempty"`
	// PriceID is the price of the subscription's first item.
	PriceID string `json:"price_id,omitempty"`
	// CurrentPeriodEnd is when the current billing period ends.
	CurrentPeriodEnd time.Time `json:"current_period_end,omitzero"`
	// CancelAtPeriodEnd is true when the subscription ends with the period.
	CancelAtPeriodEnd bool `json:"cancel_at_period_end,omitempty"`
	// Invoice is the last invoice a payment event reported.
	Invoice *Invoice `json:"invoice,omitempty"`
	// ActionRequired is true after a failed payment until a later payment
	// succeeds: the user should pay through Invoice.HostedInvoiceURL.
	ActionRequired bool `json:"action_required,omitempty"`
	// Updated maps an object name (ObjectCheckout, ObjectSubscription,
	// ObjectInvoice) to the Stripe `created` time (unix seconds) of the last
	// event applied for it. Older events for that object are stale. As
	// `created` has one-second resolution, an event of the same second
	// applies, except that an update cannot revive a subscription that a
	// deletion of that second canceled.
	Updated map[string]int64 `json:"updated,omitempty"`
	// LastEventID is the id of the last event applied.
	LastEventID string `json:"last_event_id,omitempty"`
	// RecentEventIDs are the ids of the last applied events, newest last,
	// at most 32, so a redelivered event is recognised as a duplicate.
	RecentEventIDs []string `json:"recent_event_ids,omitempty"`
	// UpdatedAt is when this record was last written.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Invoice is the part of a Stripe invoice that billing state keeps.
type Invoice struct {
	// ID is the Stripe invoice id (in_...).
	ID string `json:"id"`
	// Status is the invoice status (open, paid, ...).
	Status stripe.InvoiceStatus `json:"status,omitempty"`
	// AmountDue is in the currency's smallest unit.
	AmountDue int64 `json:"amount_due"`
	// AmountPaid is in the currency's smallest unit.
	AmountPaid int64 `json:"amount_paid"`
	// AttemptCount is how many payment attempts were made.
	AttemptCount int64 `json:"attempt_count"`
	// NextPaymentAttempt is the unix time of Stripe's next automatic retry;
	// 0 means no further retry is scheduled.
	NextPaymentAttempt int64 `json:"next_payment_attempt"`
	// HostedInvoiceURL is the page where the customer can pay.
	HostedInvoiceURL string `json:"hosted_invoice_url,omitempty"`
	// Currency is the three-letter ISO code, lowercase.
	Currency stripe.Currency `json:"currency,omitempty"`
}

// User links a Mira user to the Stripe customers created for them, stored as
// JSON under UserKey(ID).
type User struct {
	// ID is the Mira user id.
	ID string `json:"id"`
	// CustomerIDs are the Stripe customers linked through checkout, in the
	// order they were linked.
	CustomerIDs []string `json:"customer_ids"`
}

// CustomerKey returns the bucket key of a customer: "customer." + EncodeID(id).
func CustomerKey(id string) (string, error) {
	enc, err := EncodeID(id)
	if err != nil {
		return "", err
	}
	return "customer." + enc, nil
}

// UserKey returns the bucket key of a user: "user." + EncodeID(id).
func UserKey(id string) (string, error) {
	enc, err := EncodeID(id)
	if err != nil {
		return "", err
	}
	return "user." + enc, nil
}

// EncodeID turns an id into a key token made of [A-Za-z0-9_-] only, without
// collisions. An id made of [A-Za-z0-9_] alone (every Stripe id, most user
// ids) is kept as it is, so keys stay readable; any other id becomes "-"
// followed by its unpadded base64url encoding. Plain tokens never contain
// "-", so the two forms cannot collide. Empty ids and ids longer than 255
// bytes are refused with ErrInvalidID.
func EncodeID(id string) (string, error) {
	if id == "" || len(id) > maxIDLength {
		return "", fmt.Errorf("%w: length %d is not between 1 and %d", ErrInvalidID, len(id), maxIDLength)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return "-" + base64.RawURLEncoding.EncodeToString([]byte(id)), nil
		}
	}
	return id, nil
}

// EnsureBucket creates the billing bucket or updates its configuration (one
// value per key, file storage). It is idempotent and safe to run from several
// receivers at once. replicas is 1 for the embedded server, 3 on a cluster.
func EnsureBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	if js == nil {
		return nil, errors.New("ensure billing bucket: nil JetStream context")
	}
	if replicas < 1 || replicas > 5 {
		return nil, fmt.Errorf("ensure billing bucket: replicas must be between 1 and 5, got %d", replicas)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketName,
		Description: "Stripe billing state per customer and user",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("ensure billing bucket %s: %w", BucketName, err)
	}
	return kv, nil
}
