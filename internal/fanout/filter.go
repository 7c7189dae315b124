package fanout

import (
	"context"
	"encoding/json"
	"fmt"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/endpoints"
	"github.com/mira/mira-operator/internal/eventfilter"
	"github.com/mira/mira-operator/internal/events"
)

// FilteredCounter counts the events an endpoint's spec.filter dropped
// (status.deliveries.filtered).
type FilteredCounter interface {
	CountFiltered(ctx context.Context, e *endpoints.Endpoint)
}

// Decision is what Accepts decided for one event and one endpoint.
type Decision struct {
	// Deliver: queue a delivery of the event to the endpoint.
	Deliver bool
	// Filtered: the endpoint's spec.filter dropped the event.
	Filtered bool
	// Unchecked: delivered without applying spec.filter, which does not
	// compile; the delivery is queued FilterPending (see Message).
	Unchecked bool
	// Err: the filter's evaluation failed; the event does not match (a
	// filter that cannot be evaluated must not leak events it was meant to
	// hold back).
	Err error
}

// Accepts decides whether an event that targets e (see Targets) is
// delivered to it: never an operational event about e itself, and only an
// event that passes e's spec.filter; an operational event only within its
// namespace. Test events (Only) skip the filter. An endpoint without a
// filter costs no CEL call. act is shared by the endpoints of one event
// (event.data is decoded once).
//
// A filter that does not compile lets every event through, Unchecked: the
// controller holds the endpoint not Ready (InvalidFilter) and the
// deliveries wait in the queue, so fixing the filter loses nothing, and the
// fixed filter still decides before their first attempt (RecheckFilter).
func Accepts(ev events.Event, e *endpoints.Endpoint, act **eventfilter.Activation) Decision {
	if ev.Except != "" && string(e.UID) == ev.Except {
		return Decision{}
	}
	if miraapi.IsOperationalEvent(ev.Type) && ev.Namespace != e.Object().Namespace {
		// An endpoint's health is its workspace's business only.
		return Decision{}
	}
	if ev.Only != "" {
		return Decision{Deliver: true}
	}
	f, cerr := e.Filter()
	if cerr != nil {
		return Decision{Deliver: true, Unchecked: true}
	}
	if f == nil {
		return Decision{Deliver: true}
	}
	if *act == nil {
		*act = eventfilter.NewActivation(eventfilter.Event{ID: ev.ID, Type: ev.Type, Data: ev.Data, Timestamp: ev.Time})
	}
	match, err := f.Match(*act)
	return Decision{Deliver: match, Filtered: !match, Err: err}
}

// RecheckFilter applies e's spec.filter, through Accepts, to a delivery
// queued while the filter did not compile (Message.FilterPending). The
// decision is Unchecked while the filter still does not compile (hold the
// delivery).
func RecheckFilter(e *endpoints.Endpoint, m *Message) Decision {
	var body struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(m.Body, &body); err != nil {
		return Decision{Filtered: true, Err: fmt.Errorf("read the event data of delivery %s: %w", m.ID, err)}
	}
	var act *eventfilter.Activation
	return Accepts(events.Event{ID: m.EventID, Type: m.EventType, Namespace: m.Namespace, Data: body.Data, Time: m.Created}, e, &act)
}

// accepts applies Accepts in the fan-out: it counts and (once per filter)
// logs what the filter dropped.
func (f *Fanout) accepts(ctx context.Context, ev events.Event, e *endpoints.Endpoint, act **eventfilter.Activation) Decision {
	d := Accepts(ev, e, act)
	if d.Err != nil && e.FirstFilterError() {
		obj := e.Object()
		// The error names fields and types, never event values.
		f.Logger.Info("filter evaluation failed; the event counts as filtered (logged once per filter)",
			"endpoint", obj.Namespace+"/"+obj.Name, "event", ev.ID, "error", d.Err.Error())
	}
	if d.Filtered && f.Filtered != nil {
		f.Filtered.CountFiltered(ctx, e)
	}
	return d
}
