package billing

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// typeOther is the events_total type label of every event type the
// Processor does not handle, so the label stays bounded.
const typeOther = "other"

// handledTypes are the event types the Processor applies; they are also the
// type label values of mira_billing_events_total, besides "other".
var handledTypes = map[string]bool{
	"checkout.session.completed":    true,
	"customer.subscription.created": true,
	"customer.subscription.updated": true,
	"customer.subscription.deleted": true,
	"invoice.payment_succeeded":     true,
	"invoice.payment_failed":        true,
}

// metrics are the Processor's Prometheus counters.
type metrics struct {
	events          *prometheus.CounterVec
	paymentFailures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mira_billing_events_total",
			Help: "Stripe events seen by the billing processor, by type (handled types or \"other\") and outcome (applied, stale, duplicate, ignored, invalid, error).",
		}, []string{"type", "outcome"}),
		paymentFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mira_billing_payment_failures_total",
			Help: "invoice.payment_failed events applied to billing state (duplicates and stale redeliveries are not counted).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.events, m.paymentFailures} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register billing metrics: %w", err)
		}
	}
	return m, nil
}

func typeLabel(t string) string {
	if handledTypes[t] {
		return t
	}
	return typeOther
}
