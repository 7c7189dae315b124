package inbound

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stripe/stripe-go/v76"

	"github.com/mira/mira-operator/internal/billing"
)

// StripeAPIKeyKey is the optional integrations Secret key holding a Stripe
// API key (a restricted key with read access to subscriptions suffices).
// With it, checkout.session.completed retrieves the subscription it names;
// without it the customer's status is incomplete_pending_update until
// customer.subscription.created or .updated arrives.
const StripeAPIKeyKey = "stripe-api-key" //nolint:gosec // G101: the name of a Secret key, not a credential

// handleStripe applies a stored (already verified) Stripe event to the
// billing state. Applying is idempotent and out-of-order safe.
func (in *Inbound) handleStripe(ctx context.Context, msg jetstream.Msg) error {
	var ev stripe.Event
	if err := json.Unmarshal(msg.Data(), &ev); err != nil {
		in.log.Error(err, "dropping a stored Stripe event that does not decode")
		in.countPipeline(routeStripe, routeStripe, resultInvalid)
		return nil
	}
	outcome, err := in.billingOf(ctx).Apply(ctx, ev)
	if errors.Is(err, billing.ErrInvalidEvent) {
		in.log.Info("Stripe event cannot be applied; acknowledged", "event", ev.ID, "type", ev.Type, "reason", err.Error())
		in.countPipeline(routeStripe, routeStripe, resultInvalid)
		return nil
	}
	if err != nil {
		return err
	}
	in.log.V(1).Info("Stripe event processed", "event", ev.ID, "type", ev.Type, "outcome", outcome)
	result := resultCompleted
	switch outcome {
	case billing.OutcomeDuplicate, billing.OutcomeStale:
		result = resultReplayed
	case billing.OutcomeIgnored:
		result = resultIgnored
	}
	in.countPipeline(routeStripe, routeStripe, result)
	return nil
}

// stripeAPIKey reads the optional Stripe API key.
func (in *Inbound) stripeAPIKey(ctx context.Context) string {
	return in.secret(ctx).Value(ctx, StripeAPIKeyKey)
}
