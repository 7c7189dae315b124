package dispatch

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the dispatcher's Prometheus metrics. Label values are bounded:
// endpoints are "namespace/name" of existing objects, events the known
// types, outcomes a fixed set.
type Metrics struct {
	Deliveries     *prometheus.CounterVec
	AttemptSeconds *prometheus.HistogramVec
	Retries        *prometheus.CounterVec
	InFlight       prometheus.Gauge
	CircuitOpen    *prometheus.GaugeVec
}

// NewMetrics creates and registers the metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mira_deliveries_total", Help: "Delivery attempts by endpoint, event type and outcome (delivered, retrying, dead, skipped, blocked).",
		}, []string{"endpoint", "event", "outcome"}),
		AttemptSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mira_delivery_attempt_duration_seconds", Help: "Duration of HTTP delivery attempts.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"endpoint"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mira_delivery_retries_total", Help: "Deliveries scheduled for another attempt.",
		}, []string{"endpoint"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mira_deliveries_in_flight", Help: "HTTP delivery attempts in progress.",
		}),
		CircuitOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mira_endpoint_circuit_open", Help: "1 while an endpoint's circuit breaker holds deliveries back.",
		}, []string{"endpoint"}),
	}
	if reg != nil {
		reg.MustRegister(m.Deliveries, m.AttemptSeconds, m.Retries, m.InFlight, m.CircuitOpen)
	}
	return m
}
