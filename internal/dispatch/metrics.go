package dispatch

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the dispatcher's Prometheus metrics. Label values are bounded:
// endpoints are the namespace and name of existing objects (their series are
// deleted with them), events the known types, outcomes a fixed set.
type Metrics struct {
	Deliveries     *prometheus.CounterVec
	AttemptSeconds *prometheus.HistogramVec
	Retries        *prometheus.CounterVec
	InFlight       prometheus.Gauge
	CircuitOpen    *prometheus.GaugeVec
	// Latency is event stored → delivered, first round only (a manual
	// redelivery would count the time before someone asked for it).
	Latency *prometheus.HistogramVec
	// BacklogAge is the age of an endpoint's oldest delivery not yet ended.
	BacklogAge *prometheus.GaugeVec
}

// endpointLabels are the labels that name a WebhookEndpoint.
var endpointLabels = []string{"namespace", "name"}

// NewMetrics creates and registers the metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mira_deliveries_total",
			Help: "Deliveries that reached a state, by endpoint, event type and outcome (delivered, retrying, dead, skipped; blocked: dead because the outbound guard refused the address).",
		}, append(endpointLabels, "event", "outcome")),
		AttemptSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mira_delivery_attempt_duration_seconds", Help: "Duration of HTTP delivery attempts.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, endpointLabels),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mira_delivery_retries_total", Help: "Deliveries scheduled for another attempt.",
		}, endpointLabels),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mira_deliveries_in_flight", Help: "HTTP delivery attempts in progress.",
		}),
		CircuitOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mira_endpoint_circuit_open", Help: "1 while an endpoint's circuit breaker holds deliveries back.",
		}, endpointLabels),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mira_delivery_latency_seconds",
			Help:    "End-to-end delivery latency: from the event being stored to the consumer's 2xx, retries included (first round only).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400},
		}, []string{"event"}),
		BacklogAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mira_endpoint_backlog_age_seconds",
			Help: "Age of an endpoint's oldest delivery that has not ended (queued, pending or retrying); 0 when none.",
		}, endpointLabels),
	}
	if reg != nil {
		reg.MustRegister(m.Deliveries, m.AttemptSeconds, m.Retries, m.InFlight, m.CircuitOpen, m.Latency, m.BacklogAge)
	}
	return m
}

// Forget deletes every series of an endpoint (it was deleted).
func (m *Metrics) Forget(namespace, name string) {
	l := prometheus.Labels{"namespace": namespace, "name": name}
	m.Deliveries.DeletePartialMatch(l)
	m.AttemptSeconds.DeletePartialMatch(l)
	m.Retries.DeletePartialMatch(l)
	m.CircuitOpen.DeletePartialMatch(l)
	m.BacklogAge.DeletePartialMatch(l)
}
