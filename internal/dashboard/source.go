package dashboard

import (
	"context"
	"time"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	"github.com/mira/mira-operator/internal/scoring"
)

// Log reads the delivery log and reports. `kubectl mira dashboard`
// implements it over the aggregated API data.platform.mira.io with the
// user's credentials (internal/cli/dashboard.go); errors keep the API
// server's type, so a Forbidden reaches the page as such.
type Log interface {
	// Deliveries lists an endpoint's deliveries, newest first.
	Deliveries(ctx context.Context, namespace, endpoint string, q Query) (Page, error)
	// Delivery returns one delivery with every attempt.
	Delivery(ctx context.Context, id string) (*Delivery, error)
	// Report returns one coaching report.
	Report(ctx context.Context, id string) (*scoring.Report, error)
}

// Query filters a delivery listing the way the aggregated API and
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

// The delivery log's records are the types clients read, from
// api/data/v1alpha1 (no server code comes with them).
type (
	// Page is one page of a delivery listing.
	Page = datav1.DeliveryPage
	// Delivery is one delivery with its attempts.
	Delivery = datav1.Delivery
	// Attempt is one HTTP attempt of a delivery.
	Attempt = datav1.Attempt
)

// Delivery states.
const (
	StatePending   = datav1.StatePending
	StateDelivered = datav1.StateDelivered
	StateRetrying  = datav1.StateRetrying
	StateDead      = datav1.StateDead
	StateSkipped   = datav1.StateSkipped
)

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
