package v1alpha1

import "time"

// Delivery states, as stored in the delivery log, served by the API and
// counted in WebhookEndpoint status.
const (
	// StatePending: queued, not attempted yet, or waiting for its endpoint
	// to become deliverable (Reason says why).
	StatePending = "Pending"
	// StateDelivered: the endpoint answered 2xx.
	StateDelivered = "Delivered"
	// StateRetrying: an attempt failed; another one is scheduled (NextRetry).
	StateRetrying = "Retrying"
	// StateDead: no further attempt will be made (Reason says why).
	StateDead = "Dead"
	// StateSkipped: not attempted because the endpoint is suspended or
	// disabled; it can be redelivered.
	StateSkipped = "Skipped"
)

// OutcomeBlocked is the outcome of an attempt the outbound guard refused.
const OutcomeBlocked = "Blocked"

// MaxLoggedAttempts bounds the attempts kept in full in one Delivery; older
// ones are folded into OlderAttempts.
const MaxLoggedAttempts = 10

// MaxSummaryCodes bounds AttemptSummary.LastCodes.
const MaxSummaryCodes = 10

// Delivery is the durable log of one (event, endpoint) delivery: every
// attempt with its request and response. The receiver stores it in the
// delivery-log bucket under "<endpoint uid>.<creation ms>.<delivery id>".
type Delivery struct {
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
	// Attempts, oldest first; at most MaxLoggedAttempts are kept in full,
	// fewer when the record would outgrow its byte budget.
	Attempts []Attempt `json:"attempts"`
	// OlderAttempts summarises the attempts dropped from Attempts.
	OlderAttempts *AttemptSummary `json:"older_attempts,omitempty"`
	// BodyOmitted is set when Body was dropped to keep the record within
	// its byte budget (the queued message still carries it).
	BodyOmitted bool   `json:"body_omitted,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// AttemptSummary stands for attempts no longer kept in full.
type AttemptSummary struct {
	// Count of summarised attempts.
	Count int `json:"count"`
	// First and Last are the times of the oldest and newest summarised attempt.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	// LastCodes are the status codes (0: no response) of the newest
	// summarised attempts, oldest first, at most MaxSummaryCodes.
	LastCodes []int `json:"last_codes,omitempty"`
}

// Final reports whether the delivery ended (nothing more happens to it
// unless it is redelivered).
func (d *Delivery) Final() bool {
	return d.State == StateDelivered || d.State == StateDead || d.State == StateSkipped
}

// LastCode is the last attempt's HTTP status, 0 when none answered.
func (d *Delivery) LastCode() int {
	if len(d.Attempts) == 0 {
		return 0
	}
	return d.Attempts[len(d.Attempts)-1].StatusCode
}

// Failed reports whether the delivery is failing (retrying or dead).
func (d *Delivery) Failed() bool { return d.State == StateRetrying || d.State == StateDead }

// Attempt is one HTTP attempt of a delivery.
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

// DeliveryPage is one page of an endpoint's deliveries, newest first.
type DeliveryPage struct {
	Items      []Delivery `json:"items"`
	NextCursor string     `json:"next_cursor,omitempty"`
}
