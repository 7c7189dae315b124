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

// Accepts reports whether an event that targets e (see Targets) is
// delivered to it: never an operational event about e itself, and only an
// event that passes e's spec.filter; an operational event only within its
// namespace. Test events (Only) skip the filter. An
// endpoint without a filter costs no CEL call. act is shared by the
// endpoints of one event (event.data is decoded once); filtered is true when
// the filter dropped the event, err when its evaluation failed (the event
// then does not match: a filter that cannot be evaluated must not leak
// events it was meant to hold back).
//
// A filter that does not compile accepts every event: the controller holds
// the endpoint not Ready (InvalidFilter) and the deliveries wait in the
// queue, marked FilterPending, so fixing the filter loses nothing and the
// fixed filter still decides (RecheckFilter).
func Accepts(ev events.Event, e *endpoints.Endpoint, act **eventfilter.Activation) (ok, filtered bool, err error) {
	if ev.Except != "" && string(e.UID) == ev.Except {
		return false, false, nil
	}
	if miraapi.IsOperationalEvent(ev.Type) && ev.Namespace != e.Object().Namespace {
		// An endpoint's health is its workspace's business only.
		return false, false, nil
	}
	if ev.Only != "" {
		return true, false, nil
	}
	f, cerr := e.Filter()
	if f == nil || cerr != nil {
		return true, false, nil
	}
	if *act == nil {
		*act = eventfilter.NewActivation(eventfilter.Event{ID: ev.ID, Type: ev.Type, Data: ev.Data, Timestamp: ev.Time})
	}
	match, err := f.Match(*act)
	return match, !match, err
}

// RecheckFilter applies e's spec.filter to a delivery queued while the
// filter did not compile (Message.FilterPending). decided is false while the
// filter still does not compile (hold the delivery); otherwise match says
// whether to deliver: no filter any more, or a filter the event passes. An
// evaluation error counts as no match, as in the fan-out.
func RecheckFilter(e *endpoints.Endpoint, m *Message) (match, decided bool, err error) {
	f, cerr := e.Filter()
	if cerr != nil {
		return false, false, nil
	}
	if f == nil {
		return true, true, nil
	}
	var body struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(m.Body, &body); err != nil {
		return false, true, fmt.Errorf("read the event data of delivery %s: %w", m.ID, err)
	}
	act := eventfilter.NewActivation(eventfilter.Event{ID: m.EventID, Type: m.EventType, Data: body.Data, Timestamp: m.Created})
	match, err = f.Match(act)
	return match, true, err
}

// accepts applies Accepts in the fan-out: it counts and (once per filter)
// logs what the filter dropped.
func (f *Fanout) accepts(ctx context.Context, ev events.Event, e *endpoints.Endpoint, act **eventfilter.Activation) bool {
	ok, filtered, err := Accepts(ev, e, act)
	if err != nil && e.FirstFilterError() {
		obj := e.Object()
		// The error names fields and types, never event values.
		f.Logger.Info("filter evaluation failed; the event counts as filtered (logged once per filter)",
			"endpoint", obj.Namespace+"/"+obj.Name, "event", ev.ID, "error", err.Error())
	}
	if filtered && f.Filtered != nil {
		f.Filtered.CountFiltered(ctx, e)
	}
	return ok
}
