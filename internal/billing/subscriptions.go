package billing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// DefaultStripeAPIURL is Stripe's API.
const DefaultStripeAPIURL = "https://api.stripe.com"

// StatusPendingUpdate is the status a customer record gets when checkout
// named a subscription that Mira could not retrieve (no Stripe API key): its
// real status arrives with customer.subscription.created or .updated.
const StatusPendingUpdate stripe.SubscriptionStatus = "incomplete_pending_update"

// ErrNoAPIKey means no Stripe API key is configured.
var ErrNoAPIKey = errors.New("no Stripe API key configured")

// SubscriptionSource retrieves a subscription from Stripe.
type SubscriptionSource interface {
	// Subscription returns the subscription, or an error matching
	// ErrNoAPIKey when none can be retrieved for lack of a key.
	Subscription(ctx context.Context, id string) (*stripe.Subscription, error)
}

// StripeSubscriptions retrieves subscriptions with stripe-go's client
// against a configurable backend URL (tests use an httptest server that
// speaks Stripe's wire format).
type StripeSubscriptions struct {
	// Key returns the current API key ("" when none).
	Key func(ctx context.Context) string
	// URL is the API base; default DefaultStripeAPIURL.
	URL string
	// HTTPClient sends the requests; default stripe-go's.
	HTTPClient *http.Client
}

// Subscription implements SubscriptionSource.
func (s *StripeSubscriptions) Subscription(ctx context.Context, id string) (*stripe.Subscription, error) {
	key := ""
	if s.Key != nil {
		key = strings.TrimSpace(s.Key(ctx))
	}
	if key == "" {
		return nil, ErrNoAPIKey
	}
	u := s.URL
	if u == "" {
		u = DefaultStripeAPIURL
	}
	retries := int64(2)
	sc := client.New(key, stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL: stripe.String(strings.TrimRight(u, "/")), HTTPClient: s.HTTPClient, MaxNetworkRetries: &retries,
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	}))
	params := &stripe.SubscriptionParams{}
	params.Context = ctx
	sub, err := sc.Subscriptions.Get(id, params)
	if err != nil {
		return nil, fmt.Errorf("retrieve Stripe subscription %s: %w", id, err)
	}
	return sub, nil
}

// subscriptionFields applies a retrieved (or event) subscription to c.
func subscriptionFields(c *Customer, s *stripe.Subscription, status stripe.SubscriptionStatus) {
	c.SubscriptionID = s.ID
	c.Status = status
	if s.Items != nil && len(s.Items.Data) > 0 && s.Items.Data[0] != nil && s.Items.Data[0].Price != nil && s.Items.Data[0].Price.ID != "" {
		c.PriceID = s.Items.Data[0].Price.ID
	}
	c.CurrentPeriodEnd = time.Time{}
	if s.CurrentPeriodEnd > 0 {
		c.CurrentPeriodEnd = time.Unix(s.CurrentPeriodEnd, 0).UTC()
	}
	c.CancelAtPeriodEnd = s.CancelAtPeriodEnd
}
