package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stripe/stripe-go/v76"
)

// Outcome says what Apply did with an event.
type Outcome string

// Outcomes of Apply.
const (
	// OutcomeApplied: the event changed the stored state.
	OutcomeApplied Outcome = "applied"
	// OutcomeStale: a newer event for the same object was already applied;
	// nothing changed.
	OutcomeStale Outcome = "stale"
	// OutcomeDuplicate: this event id was already applied; nothing changed.
	OutcomeDuplicate Outcome = "duplicate"
	// OutcomeIgnored: the event type (or checkout mode) is not billing
	// state; nothing changed.
	OutcomeIgnored Outcome = "ignored"
	// OutcomeInvalid: the event cannot be applied (no customer, malformed
	// object); Apply also returns an error matching ErrInvalidEvent.
	OutcomeInvalid Outcome = "invalid"
	// OutcomeError: a transient failure (bucket unavailable, too many
	// conflicts); retrying the event later is safe.
	OutcomeError Outcome = "error"
)

// Errors returned by Apply.
var (
	// ErrInvalidEvent marks an event that will never apply: acknowledge and
	// drop it rather than retrying.
	ErrInvalidEvent = errors.New("invalid stripe event")
	// ErrConflict means concurrent writers kept changing a record for
	// maxAttempts tries; retrying the event later is safe.
	ErrConflict = errors.New("billing record kept changing concurrently")
)

// maxAttempts bounds the compare-and-set retries of one record update.
const maxAttempts = 10

// Processor applies verified Stripe events to the billing bucket. It is safe
// for concurrent use, and several processors (one per receiver) may share a
// bucket.
type Processor struct {
	kv      jetstream.KeyValue
	metrics *metrics
	now     func() time.Time
	// subs, when set, retrieves the subscription a checkout names.
	subs SubscriptionSource
	// beforeWrite, when set (tests only), runs between reading a record and
	// writing it back, to provoke revision conflicts deterministically.
	beforeWrite func(key string)
}

// NewProcessor returns a Processor over kv (see EnsureBucket) and registers
// its metrics on reg; a nil reg leaves them unregistered.
func NewProcessor(kv jetstream.KeyValue, reg prometheus.Registerer) (*Processor, error) {
	if kv == nil {
		return nil, errors.New("new billing processor: nil key-value bucket")
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("new billing processor: %w", err)
	}
	return &Processor{kv: kv, metrics: m, now: time.Now}, nil
}

// WithKV returns a processor that shares p's metrics and subscription
// source but keeps its records in kv, for example a workspace's scoped
// view of the billing bucket (internal/workspace.KV).
func (p *Processor) WithKV(kv jetstream.KeyValue) *Processor {
	q := *p
	q.kv = kv
	return &q
}

// KV is the bucket p keeps its records in.
func (p *Processor) KV() jetstream.KeyValue { return p.kv }

// SetSubscriptionSource makes checkout.session.completed retrieve the
// subscription it names, so the customer record is complete at once.
func (p *Processor) SetSubscriptionSource(s SubscriptionSource) { p.subs = s }

// change is one event's effect on a customer record.
type change struct {
	customerID string
	// object is the key of Customer.Updated this event orders against.
	object string
	// staleAt reports, for a record whose Updated[object] equals the
	// event's created time, whether the event must still be dropped.
	staleAt func(c *Customer) bool
	apply   func(c *Customer)
}

// Apply applies one verified event. The returned error matches
// ErrInvalidEvent for events that will never apply (drop them); any other
// error is transient (retry the event; Apply is idempotent).
func (p *Processor) Apply(ctx context.Context, ev stripe.Event) (Outcome, error) {
	out, err := p.apply(ctx, ev)
	if err != nil && out == "" {
		out = OutcomeError
	}
	typ := string(ev.Type)
	p.metrics.events.WithLabelValues(typeLabel(typ), string(out)).Inc()
	if typ == "invoice.payment_failed" && out == OutcomeApplied {
		p.metrics.paymentFailures.Inc()
	}
	return out, err
}

func (p *Processor) apply(ctx context.Context, ev stripe.Event) (Outcome, error) {
	if !handledTypes[string(ev.Type)] {
		return OutcomeIgnored, nil
	}
	if ev.ID == "" || ev.Data == nil || len(ev.Data.Raw) == 0 {
		return OutcomeInvalid, fmt.Errorf("%w: %s event without id or data", ErrInvalidEvent, ev.Type)
	}
	var (
		ch  change
		err error
	)
	switch ev.Type {
	case "checkout.session.completed":
		var userID string
		ch, userID, err = p.checkoutChange(ctx, ev)
		if err == nil && ch.apply == nil {
			return OutcomeIgnored, nil
		}
		if err == nil && userID != "" {
			// Link the user first: it is idempotent, so a crash before the
			// customer write is repaired by the redelivery. A stale
			// checkout still links: the user did pay for that customer.
			if err := p.linkUser(ctx, userID, ch.customerID); err != nil {
				return "", err
			}
		}
	case "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted":
		ch, err = subscriptionChange(ev)
	case "invoice.payment_succeeded", "invoice.payment_failed":
		ch, err = invoiceChange(ev)
	}
	if err != nil && !errors.Is(err, ErrInvalidEvent) {
		// Retrieving the subscription failed: retry the event later.
		return "", err
	}
	if err != nil {
		return OutcomeInvalid, err
	}
	return p.updateCustomer(ctx, ev, ch)
}

func decodeObject(ev stripe.Event, into any) error {
	if err := json.Unmarshal(ev.Data.Raw, into); err != nil {
		return fmt.Errorf("%w: decode %s object of event %s: %w", ErrInvalidEvent, ev.Type, ev.ID, err)
	}
	return nil
}

func (p *Processor) checkoutChange(ctx context.Context, ev stripe.Event) (change, string, error) {
	var s stripe.CheckoutSession
	if err := decodeObject(ev, &s); err != nil {
		return change{}, "", err
	}
	if s.Mode != stripe.CheckoutSessionModeSubscription {
		return change{}, "", nil
	}
	if s.Customer == nil || s.Customer.ID == "" {
		return change{}, "", fmt.Errorf("%w: checkout session %s of event %s has no customer", ErrInvalidEvent, s.ID, ev.ID)
	}
	userID := s.ClientReferenceID
	if userID == "" {
		userID = s.Metadata["user_id"]
	}
	if userID != "" {
		if _, err := EncodeID(userID); err != nil {
			return change{}, "", fmt.Errorf("%w: user id of checkout session %s: %w", ErrInvalidEvent, s.ID, err)
		}
	}
	var subID string
	if s.Subscription != nil {
		subID = s.Subscription.ID
	}
	// The session only names the subscription: retrieve it (with an API
	// key) so status and price are there before the next subscription event.
	var sub *stripe.Subscription
	if subID != "" && p.subs != nil {
		got, err := p.subs.Subscription(ctx, subID)
		switch {
		case err == nil && got != nil && got.ID != "":
			sub = got
		case err != nil && !errors.Is(err, ErrNoAPIKey):
			// Transient or not, retrying the event later is safe.
			return change{}, "", fmt.Errorf("checkout session %s: %w", s.ID, err)
		}
	}
	return change{
		customerID: s.Customer.ID,
		object:     ObjectCheckout,
		apply: func(c *Customer) {
			if userID != "" {
				c.UserID = userID
			}
			// The subscription's own events carry its state; checkout only
			// names it when no newer subscription event has.
			if subID != "" && (c.SubscriptionID == "" || ev.Created > c.Updated[ObjectSubscription]) {
				switch {
				case sub != nil:
					subscriptionFields(c, sub, sub.Status)
					// Retrieved now: older subscription events are stale.
					if c.Updated == nil {
						c.Updated = map[string]int64{}
					}
					c.Updated[ObjectSubscription] = max(c.Updated[ObjectSubscription], ev.Created)
				case c.SubscriptionID != subID || c.Status == "":
					// Without an API key: known to exist, state unknown
					// until customer.subscription.created/updated.
					c.SubscriptionID, c.Status = subID, StatusPendingUpdate
				}
			}
		},
	}, userID, nil
}

func subscriptionChange(ev stripe.Event) (change, error) {
	var s stripe.Subscription
	if err := decodeObject(ev, &s); err != nil {
		return change{}, err
	}
	if s.Customer == nil || s.Customer.ID == "" {
		return change{}, fmt.Errorf("%w: subscription %s of event %s has no customer", ErrInvalidEvent, s.ID, ev.ID)
	}
	deleted := ev.Type == "customer.subscription.deleted"
	status := s.Status
	if deleted {
		status = stripe.SubscriptionStatusCanceled
	}
	return change{
		customerID: s.Customer.ID,
		object:     ObjectSubscription,
		// Within one second, a deletion wins: canceled is final for a
		// subscription, so an update of the same second cannot revive it.
		staleAt: func(c *Customer) bool {
			return !deleted && c.SubscriptionID == s.ID && c.Status == stripe.SubscriptionStatusCanceled
		},
		apply: func(c *Customer) {
			subscriptionFields(c, &s, status)
		},
	}, nil
}

func invoiceChange(ev stripe.Event) (change, error) {
	var in stripe.Invoice
	if err := decodeObject(ev, &in); err != nil {
		return change{}, err
	}
	if in.Customer == nil || in.Customer.ID == "" {
		return change{}, fmt.Errorf("%w: invoice %s of event %s has no customer", ErrInvalidEvent, in.ID, ev.ID)
	}
	failed := ev.Type == "invoice.payment_failed"
	inv := &Invoice{
		ID:                 in.ID,
		Status:             in.Status,
		AmountDue:          in.AmountDue,
		AmountPaid:         in.AmountPaid,
		AttemptCount:       in.AttemptCount,
		NextPaymentAttempt: in.NextPaymentAttempt, // JSON null decodes as 0: no further retry
		HostedInvoiceURL:   in.HostedInvoiceURL,
		Currency:           in.Currency,
	}
	return change{
		customerID: in.Customer.ID,
		object:     ObjectInvoice,
		apply: func(c *Customer) {
			c.Invoice = inv
			c.ActionRequired = failed
		},
	}, nil
}

// updateCustomer applies ch to the customer record with compare-and-set.
func (p *Processor) updateCustomer(ctx context.Context, ev stripe.Event, ch change) (Outcome, error) {
	key, err := CustomerKey(ch.customerID)
	if err != nil {
		return OutcomeInvalid, fmt.Errorf("%w: customer of event %s: %w", ErrInvalidEvent, ev.ID, err)
	}
	var out Outcome
	err = p.modify(ctx, key, func(val []byte) ([]byte, error) {
		c := Customer{ID: ch.customerID}
		if val != nil {
			if err := json.Unmarshal(val, &c); err != nil {
				return nil, fmt.Errorf("decode customer record %s: %w", key, err)
			}
		}
		switch last, seen := c.Updated[ch.object]; {
		case slices.Contains(c.RecentEventIDs, ev.ID):
			out = OutcomeDuplicate
			return nil, nil
		case seen && ev.Created < last,
			seen && ev.Created == last && ch.staleAt != nil && ch.staleAt(&c):
			out = OutcomeStale
			return nil, nil
		}
		ch.apply(&c)
		if c.Updated == nil {
			c.Updated = map[string]int64{}
		}
		c.Updated[ch.object] = ev.Created
		c.LastEventID = ev.ID
		c.RecentEventIDs = append(c.RecentEventIDs, ev.ID)
		if n := len(c.RecentEventIDs); n > recentEventIDs {
			c.RecentEventIDs = slices.Clone(c.RecentEventIDs[n-recentEventIDs:])
		}
		c.UpdatedAt = p.now().UTC()
		b, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("encode customer record %s: %w", key, err)
		}
		out = OutcomeApplied
		return b, nil
	})
	if err != nil {
		return "", err
	}
	return out, nil
}

// linkUser adds customerID to the user's record, unless it is there already.
func (p *Processor) linkUser(ctx context.Context, userID, customerID string) error {
	key, err := UserKey(userID)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	return p.modify(ctx, key, func(val []byte) ([]byte, error) {
		u := User{ID: userID}
		if val != nil {
			if err := json.Unmarshal(val, &u); err != nil {
				return nil, fmt.Errorf("decode user record %s: %w", key, err)
			}
		}
		if slices.Contains(u.CustomerIDs, customerID) {
			return nil, nil
		}
		u.CustomerIDs = append(u.CustomerIDs, customerID)
		b, err := json.Marshal(u)
		if err != nil {
			return nil, fmt.Errorf("encode user record %s: %w", key, err)
		}
		return b, nil
	})
}

// modify reads key, passes its value (nil when absent) to decide and writes
// the result back if the key's revision is unchanged, retrying on conflict
// up to maxAttempts times. decide returning nil means no write.
func (p *Processor) modify(ctx context.Context, key string, decide func(val []byte) ([]byte, error)) error {
	for range maxAttempts {
		var (
			val []byte
			rev uint64
		)
		entry, err := p.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("read billing record %s: %w", key, err)
		default:
			val, rev = entry.Value(), entry.Revision()
		}
		next, err := decide(val)
		if err != nil || next == nil {
			return err
		}
		if p.beforeWrite != nil {
			p.beforeWrite(key)
		}
		if rev == 0 {
			_, err = p.kv.Create(ctx, key, next)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
		} else {
			_, err = p.kv.Update(ctx, key, next, rev)
			if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("write billing record %s: %w", key, err)
		}
		return nil
	}
	return fmt.Errorf("write billing record %s: %w after %d attempts", key, ErrConflict, maxAttempts)
}

// Customer returns the billing state of a Stripe customer, or an error
// matching ErrNotFound.
func (p *Processor) Customer(ctx context.Context, id string) (Customer, error) {
	key, err := CustomerKey(id)
	if err != nil {
		return Customer{}, fmt.Errorf("get customer: %w", err)
	}
	var c Customer
	if err := p.get(ctx, key, &c); err != nil {
		return Customer{}, err
	}
	return c, nil
}

// User returns a user's record and the billing state of each linked
// customer that has a record, in link order. A missing user is an error
// matching ErrNotFound.
func (p *Processor) User(ctx context.Context, id string) (User, []Customer, error) {
	key, err := UserKey(id)
	if err != nil {
		return User{}, nil, fmt.Errorf("get user: %w", err)
	}
	var u User
	if err := p.get(ctx, key, &u); err != nil {
		return User{}, nil, err
	}
	customers := make([]Customer, 0, len(u.CustomerIDs))
	for _, cid := range u.CustomerIDs {
		c, err := p.Customer(ctx, cid)
		if errors.Is(err, ErrNotFound) {
			// Linked but not written yet (the customer write follows the
			// link): its event's redelivery will create it.
			continue
		}
		if err != nil {
			return User{}, nil, fmt.Errorf("get customers of user %s: %w", key, err)
		}
		customers = append(customers, c)
	}
	return u, customers, nil
}

func (p *Processor) get(ctx context.Context, key string, into any) error {
	entry, err := p.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("get billing record %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("get billing record %s: %w", key, err)
	}
	if err := json.Unmarshal(entry.Value(), into); err != nil {
		return fmt.Errorf("decode billing record %s: %w", key, err)
	}
	return nil
}
