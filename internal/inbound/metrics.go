package inbound

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Route labels of mira_inbound_requests_total.
const (
	routeRecall   = "recall"
	routeStripe   = "stripe"
	routeRoleplay = "roleplays"
)

// Outcome labels of mira_inbound_requests_total.
const (
	outcomeStored        = "stored"
	outcomeDuplicate     = "duplicate"
	outcomeUnauthorized  = "unauthorized"
	outcomeTooLarge      = "too_large"
	outcomeInvalid       = "invalid"
	outcomeNotConfigured = "not_configured"
	outcomeStoreFailed   = "store_failed"
	outcomeIgnored       = "ignored"
)

// metrics of the inbound routes and the pipeline.
type metrics struct {
	requests *prometheus.CounterVec
	pipeline *prometheus.CounterVec
	ignored  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mira_inbound_requests_total",
			Help: "Inbound requests by route (recall, stripe, roleplays) and outcome (stored, duplicate, ignored, unauthorized, too_large, invalid, not_configured, store_failed).",
		}, []string{"route", "outcome"}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mira_inbound_ignored_total",
			Help: "Signature-valid webhooks answered 200 \"ignored\" because no retry could ever make them acceptable, by route (recall, stripe) and reason (not_an_event, id_too_long, api_version, invalid_payload).",
		}, []string{"route", "reason"}),
		pipeline: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mira_inbound_pipeline_total",
			Help: "Inbound messages processed by the pipeline, by source (recall, stripe, roleplay), kind (recall: bot_status, transcript_done, transcript_failed, unknown; else the source) and outcome (completed, failed, ignored, replayed, retried, invalid).",
		}, []string{"source", "kind", "outcome"}),
	}
	for i, c := range []*prometheus.CounterVec{m.requests, m.pipeline, m.ignored} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("register inbound metrics: %w", err)
			}
			// A second Setup in one process (tests) shares the counters.
			existing := are.ExistingCollector.(*prometheus.CounterVec)
			switch i {
			case 0:
				m.requests = existing
			case 1:
				m.pipeline = existing
			default:
				m.ignored = existing
			}
		}
	}
	return m, nil
}
