package fanout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	"github.com/mira/mira-operator/internal/endpoints"
	"github.com/mira/mira-operator/internal/events"
	"github.com/mira/mira-operator/internal/queue"
)

// Message is one (event, endpoint) delivery in the deliveries stream. The
// body is built once at fan-out so every retry sends identical bytes.
type Message struct {
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
	// RecordRev is the delivery-log revision of the record the fan-out
	// created for this message (0: unknown). The first hand-out of the
	// message starts from NewRecord at this revision instead of reading the
	// record; the store's compare-and-set catches a record changed meanwhile.
	RecordRev uint64 `json:"recordRev,omitempty"`
	// FilterPending: the endpoint's spec.filter did not compile when the
	// event was fanned out, so the delivery was queued unfiltered (nothing
	// is lost while the filter is broken); the dispatcher applies the
	// filter before the first attempt, once the endpoint is deliverable
	// again (RecheckFilter), so fixing a filter does not release the events
	// it was written to hold back.
	FilterPending bool `json:"filterPending,omitempty"`
}

// newMessage is the delivery of event ev, whose body is built, to e as
// Accepts decided it.
func newMessage(ev events.Event, e *endpoints.Endpoint, body []byte, d Decision) Message {
	obj := e.Object()
	return Message{
		ID: DeliveryID(ev.ID, string(e.UID)), EventID: ev.ID, EventType: ev.Type, EndpointUID: string(e.UID),
		Namespace: obj.Namespace, Name: obj.Name, Body: body, Created: ev.Time, FilterPending: d.Unchecked,
	}
}

// NewRecord is the delivery-log record of a message not attempted yet.
func (m *Message) NewRecord() *datav1.Delivery {
	return &datav1.Delivery{
		ID: m.ID, EventID: m.EventID, EventType: m.EventType, Namespace: m.Namespace, Endpoint: m.Name,
		UID: m.EndpointUID, State: datav1.StatePending, Round: m.Round, Created: m.Created, Updated: m.Created, Body: string(m.Body),
	}
}

// Subject is the deliveries-stream subject of an endpoint:
// mira.outbox.<namespace>.<endpoint uid>.
func Subject(namespace, endpointUID string) string {
	return queue.DeliveriesSubjectOf(namespace, endpointUID)
}

// DeliveryID is deterministic in the event and the endpoint, so a replayed
// event never makes a second delivery.
func DeliveryID(eventID, endpointUID string) string {
	h := sha256.Sum256([]byte(eventID + "\x00" + endpointUID))
	return "dlv_" + hex.EncodeToString(h[:13])
}

// Requeue publishes a stored delivery again as a new round (a manual
// redelivery); the message id includes the round so it is not deduplicated
// against the original.
func Requeue(ctx context.Context, js jetstream.JetStream, rec *datav1.Delivery) error {
	m := Message{
		ID: rec.ID, EventID: rec.EventID, EventType: rec.EventType, EndpointUID: rec.UID,
		Namespace: rec.Namespace, Name: rec.Endpoint, Body: []byte(rec.Body), Created: rec.Created, Round: rec.Round + 1,
	}
	if _, err := js.PublishMsg(ctx, m.NewMsg(), jetstream.WithMsgID(fmt.Sprintf("%s.r%d", rec.ID, m.Round))); err != nil {
		return fmt.Errorf("requeue delivery %s: %w", rec.ID, err)
	}
	return nil
}
