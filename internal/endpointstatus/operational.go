package endpointstatus

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/endpoints"
	evpub "github.com/mira/mira-operator/internal/events"
)

// SetPublisher makes the writer publish the operational events
// endpoint.degraded, endpoint.disabled and endpoint.recovered into the
// endpoint's namespace when its status changes. Only the elected replica
// writes status, so only it publishes; each event id derives from the
// endpoint and the time of the transition, so a repeated publish (a retried
// flush, a new leader) stores the event once.
func (w *Writer) SetPublisher(p evpub.Publisher) { w.publisher = p }

// EndpointEventData is the data of endpoint.degraded, endpoint.disabled and
// endpoint.recovered.
type EndpointEventData struct {
	Namespace      string `json:"namespace"`
	Name           string `json:"name"`
	Reason         string `json:"reason"`
	Message        string `json:"message"`
	LastStatusCode int32  `json:"last_status_code"`
}

// operationalEvent is one event to publish: its type, what makes its id
// unique for this endpoint, and its reason and message.
type operationalEvent struct {
	typ, cause, reason, message string
}

// transitions returns the operational events for a status change from
// (wasDegraded, wasDisabled) to s, in order. A recovery from both at once
// is one endpoint.recovered.
func transitions(s *stats, wasDegraded, wasDisabled bool, disableAfter time.Duration) []operationalEvent {
	var out []operationalEvent
	if s.degraded() && !wasDegraded && s.FailingSince != nil {
		out = append(out, operationalEvent{miraapi.EventEndpointDegraded, "degraded@" + s.FailingSince.UTC().Format(time.RFC3339Nano), miraapi.DeliveriesFailingReason,
			fmt.Sprintf("%d consecutive failed attempts; last: %s; the endpoint is disabled after %s of continuous failure", s.ConsecutiveFailures, lastError(s), disableAfter)})
	}
	if s.Disabled && !wasDisabled && s.DisabledAt != nil {
		out = append(out, operationalEvent{miraapi.EventEndpointDisabled, "disabled@" + s.DisabledAt.UTC().Format(time.RFC3339Nano), s.DisabledReason, s.DisabledMessage})
	}
	switch {
	case !s.Disabled && wasDisabled && s.DisabledAt != nil:
		out = append(out, operationalEvent{miraapi.EventEndpointRecovered, "enabled@" + s.DisabledAt.UTC().Format(time.RFC3339Nano), miraapi.EnabledReason, "deliveries resumed: " + s.DisabledMessage})
	case !s.Disabled && !s.degraded() && wasDegraded && s.LastSuccess != nil:
		out = append(out, operationalEvent{miraapi.EventEndpointRecovered, "healthy@" + s.LastSuccess.UTC().Format(time.RFC3339Nano), miraapi.DeliveriesHealthyReason, "deliveries succeed again"})
	}
	return out
}

// publishOperational publishes the operational events of a status change.
// A failure is logged: status and Kubernetes Events still tell the story.
func (w *Writer) publishOperational(ctx context.Context, obj *miraapi.WebhookEndpoint, s *stats, wasDegraded, wasDisabled bool) {
	if w.publisher == nil {
		return
	}
	for _, t := range transitions(s, wasDegraded, wasDisabled, obj.GetDisableAfter()) {
		data := EndpointEventData{Namespace: obj.Namespace, Name: obj.Name, Reason: t.reason, Message: t.message}
		if s.LastDelivery != nil {
			data.LastStatusCode = s.LastDelivery.StatusCode
		}
		b, _ := json.Marshal(data)
		ev := evpub.Event{
			ID: evpub.DerivedEventID(t.typ, string(obj.UID), t.cause), Type: t.typ, Namespace: obj.Namespace,
			Data: b, Time: w.now().UTC(), Except: string(obj.UID),
		}
		if err := w.publisher.Publish(ctx, ev); err != nil {
			w.log.Error(err, "publish operational event", "endpoint", obj.Namespace+"/"+obj.Name, "type", t.typ)
		}
	}
}

// CountFiltered counts an event the endpoint's spec.filter dropped
// (status.deliveries.filtered). A fan-out redone after a crash may count an
// event twice; the count is a health signal, not a ledger.
func (w *Writer) CountFiltered(ctx context.Context, e *endpoints.Endpoint) {
	w.Record(ctx, e, Outcome{Filtered: true})
}

// DeliveryDeadData is the data of delivery.dead.
type DeliveryDeadData struct {
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	DeliveryID string `json:"delivery_id"`
	EventID    string `json:"event_id"`
	EventType  string `json:"event_type"`
	Attempts   int    `json:"attempts"`
	LastError  string `json:"last_error"`
}

// DeliveryDead publishes delivery.dead for a delivery that just became Dead
// (the dispatcher's OnDead). Its id derives from the delivery and its round,
// so a dispatcher that records the same outcome twice publishes it once.
// A dead delivery of an operational event publishes nothing: two broken
// endpoints subscribed to each other's delivery.dead would otherwise feed
// each other forever.
func (w *Writer) DeliveryDead(ctx context.Context, e *endpoints.Endpoint, rec *datav1.Delivery) {
	if w.publisher == nil || miraapi.IsOperationalEvent(rec.EventType) {
		return
	}
	obj := e.Object()
	data := DeliveryDeadData{Namespace: obj.Namespace, Name: obj.Name, DeliveryID: rec.ID, EventID: rec.EventID,
		EventType: rec.EventType, Attempts: rec.AttemptCount, LastError: rec.Reason}
	if n := len(rec.Attempts); n > 0 && rec.Attempts[n-1].Error != "" {
		data.LastError = rec.Attempts[n-1].Error
	}
	if len(data.LastError) > 512 {
		data.LastError = data.LastError[:512]
	}
	b, _ := json.Marshal(data)
	ev := evpub.Event{
		ID:   evpub.DerivedEventID(miraapi.EventDeliveryDead, rec.ID, strconv.Itoa(rec.Round)),
		Type: miraapi.EventDeliveryDead, Namespace: obj.Namespace, Data: b, Time: w.now().UTC(), Except: string(obj.UID),
	}
	if err := w.publisher.Publish(ctx, ev); err != nil {
		w.log.Error(err, "publish operational event", "endpoint", obj.Namespace+"/"+obj.Name, "type", ev.Type)
	}
}
