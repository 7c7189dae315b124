package dashboard

import (
	"context"
	"time"

	"github.com/mira/mira-operator/internal/scoring"
)

// Log reads the delivery log and reports. Today `kubectl mira` implements it
// with the receiver's HTTP API; when the data.platform.mira.io aggregated API
// exists, one implementation of this interface over that API replaces it and
// nothing else changes.
type Log interface {
	// Deliveries lists an endpoint's deliveries, newest first.
	Deliveries(ctx context.Context, namespace, endpoint string, q Query) (Page, error)
	// Delivery returns one delivery with every attempt.
	Delivery(ctx context.Context, id string) (*Delivery, error)
	// Report returns one coaching report.
	Report(ctx context.Context, id string) (*scoring.Report, error)
}

// Query filters a delivery listing the way the receiver API and
// `kubectl mira deliveries` do.
type Query struct {
	// Outcome: "", delivered, retrying, dead, skipped, pending or failed.
	Outcome string
	// Since, when not zero, keeps deliveries created at or after it.
	Since time.Time
	// Limit is the page size.
	Limit int
	// Cursor continues a previous page.
	Cursor string
}

// Page is one page of a delivery listing.
type Page struct {
	Items      []Delivery `json:"items"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

// Delivery states.
const (
	StatePending   = "Pending"
	StateDelivered = "Delivered"
	StateRetrying  = "Retrying"
	StateDead      = "Dead"
	StateSkipped   = "Skipped"
)

// Delivery is one delivery record in the documented wire shape of the
// delivery log (docs/api.md), decoded by the dashboard itself so that it does
// not depend on the receiver's packages.
type Delivery struct {
	ID           string     `json:"id"`
	EventID      string     `json:"event_id"`
	EventType    string     `json:"event"`
	Namespace    string     `json:"namespace"`
	Endpoint     string     `json:"endpoint"`
	EndpointUID  string     `json:"endpoint_uid"`
	URL          string     `json:"url,omitempty"`
	State        string     `json:"state"`
	Round        int        `json:"round,omitempty"`
	Created      time.Time  `json:"created"`
	Updated      time.Time  `json:"updated"`
	NextRetry    *time.Time `json:"next_retry,omitempty"`
	Body         string     `json:"body"`
	AttemptCount int        `json:"attempt_count"`
	Attempts     []Attempt  `json:"attempts"`
	Reason       string     `json:"reason,omitempty"`
}

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

// LastCode is the last attempt's HTTP status, 0 when none answered.
func (d *Delivery) LastCode() int {
	if len(d.Attempts) == 0 {
		return 0
	}
	return d.Attempts[len(d.Attempts)-1].StatusCode
}

// Failed reports whether the delivery is failing (retrying or dead).
func (d *Delivery) Failed() bool { return d.State == StateRetrying || d.State == StateDead }

// Action is one operator request, made with the same Kubernetes operations
// as the `kubectl mira` command of the same name.
type Action struct {
	// Kind: redeliver, redeliver-failed, test, enable or rotate-secret.
	Kind      string
	Namespace string
	Endpoint  string
	// DeliveryID for redeliver.
	DeliveryID string
	// Since for redeliver-failed.
	Since time.Time
}

// Action kinds.
const (
	ActionRedeliver       = "redeliver"
	ActionRedeliverFailed = "redeliver-failed"
	ActionTest            = "test"
	ActionEnable          = "enable"
	ActionRotateSecret    = "rotate-secret"
)

// ActionResult says how the operator handled an action.
type ActionResult struct {
	// Annotation and Value are the request as written on the endpoint.
	Annotation string
	Value      string
	// EventReason and EventMessage are the Kubernetes Event the operator
	// emitted for it, when one arrived.
	EventType, EventReason, EventMessage string
}

// Actions asks the operator to act. Errors from the API server keep their
// type (apierrors.IsForbidden works on them).
type Actions interface {
	Do(ctx context.Context, a Action) (ActionResult, error)
}
