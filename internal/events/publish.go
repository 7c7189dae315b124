package events

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mira/mira-operator/internal/queue"
)

// Publisher stores events. It is the one thing the producers of events (the
// inbound pipeline, the API, the annotation actions) need from this stage.
type Publisher interface {
	// Publish returns once the event is stored durably; publishing the same
	// event id twice stores it once.
	Publish(ctx context.Context, ev Event) error
}

// Stream publishes events to the JetStream events stream.
type Stream struct {
	JS jetstream.JetStream
}

// Publish stores an event and returns once JetStream acknowledged it; the
// event id is the message id, so publishing the same event twice stores it once.
func (s *Stream) Publish(ctx context.Context, ev Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	if _, err := s.JS.Publish(ctx, queue.EventSubject(ev.Namespace, ev.Type), b, jetstream.WithMsgID(ev.ID)); err != nil {
		return fmt.Errorf("store event %s: %w", ev.ID, err)
	}
	return nil
}
