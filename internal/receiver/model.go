// Package receiver is the data plane: `mira-operator receiver`. It takes Mira
// events (from its API and from the inbound pipeline), fans each out to the
// subscribed WebhookEndpoints, delivers signed POSTs with retries, keeps a
// durable log of every attempt and writes delivery health back to each
// endpoint's status.
package receiver

import (
	"encoding/json"
	"time"
)

// Event is one Mira event as stored in the events stream.
type Event struct {
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
	Time time.Time       `json:"time"`
	// Only, when set, restricts the fan-out to one endpoint uid regardless
	// of subscriptions (test events).
	Only string `json:"only,omitempty"`
}

// Delivery is one (event, endpoint) message in the deliveries stream. The
// body is built once at fan-out so every retry sends identical bytes.
type Delivery struct {
	ID          string    `json:"id"`
	EventID     string    `json:"eventID"`
	EventType   string    `json:"eventType"`
	EndpointUID string    `json:"endpointUID"`
	Namespace   string    `json:"namespace"`
	Name        string    `json:"name"`
	Body        []byte    `json:"body"`
	Created     time.Time `json:"created"`
	// Round counts manual redeliveries; attempts restart in a new round.
	Round int `json:"round,omitempty"`
}

// Delivery states, as served by the API and counted in status.
const (
	StatePending   = "Pending"
	StateDelivered = "Delivered"
	StateRetrying  = "Retrying"
	StateDead      = "Dead"
	StateSkipped   = "Skipped"
)

// Record is the durable log of one delivery: every attempt with its request
// and response. Stored in the delivery-log bucket under
// "<endpoint uid>.<delivery id>".
type Record struct {
	ID        string    `json:"id"`
	EventID   string    `json:"event_id"`
	EventType string    `json:"event"`
	Namespace string    `json:"namespace"`
	Endpoint  string    `json:"endpoint"`
	UID       string    `json:"endpoint_uid"`
	URL       string    `json:"url,omitempty"`
	State     string    `json:"state"`
	Round     int       `json:"round,omitempty"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
	// FirstAttempt of the current round, for the max retry duration.
	FirstAttempt *time.Time `json:"first_attempt,omitempty"`
	NextRetry    *time.Time `json:"next_retry,omitempty"`
	Body         string     `json:"body"`
	// AttemptCount counts attempts in the current round.
	AttemptCount int `json:"attempt_count"`
	// Attempts, oldest first; at most MaxLoggedAttempts are kept.
	Attempts []Attempt `json:"attempts"`
	Reason   string    `json:"reason,omitempty"`
}

// MaxLoggedAttempts bounds the attempts kept in one record.
const MaxLoggedAttempts = 50

// Attempt is one HTTP attempt.
type Attempt struct {
	Number          int               `json:"attempt"`
	Round           int               `json:"round,omitempty"`
	Time            time.Time         `json:"time"`
	DurationMillis  int64             `json:"duration_ms"`
	URL             string            `json:"url"`
	RequestHeaders  map[string]string `json:"request_headers"`
	StatusCode      int               `json:"status_code,omitempty"`
	ResponseHeaders map[string]string `json:"response_headers,omitempty"`
	ResponseBody    string            `json:"response_body,omitempty"`
	Error           string            `json:"error,omitempty"`
	Outcome         string            `json:"outcome"`
	NextRetry       *time.Time        `json:"next_retry,omitempty"`
}
