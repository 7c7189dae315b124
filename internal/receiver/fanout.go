package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mira/mira-operator/internal/delivery"
	"github.com/mira/mira-operator/internal/queue"
)

// Publisher stores events durably in the events stream.
type Publisher struct {
	JS jetstream.JetStream
}

// Publish stores an event and returns once JetStream acknowledged it; the
// event id is the message id, so publishing the same event twice stores it once.
func (p *Publisher) Publish(ctx context.Context, ev Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	if _, err := p.JS.Publish(ctx, queue.EventsSubject+"."+ev.Type, b, jetstream.WithMsgID(ev.ID)); err != nil {
		return fmt.Errorf("store event %s: %w", ev.ID, err)
	}
	return nil
}

// Fanout turns each event into one delivery per subscribed endpoint.
type Fanout struct {
	JS       jetstream.JetStream
	Consumer jetstream.Consumer
	Registry *Registry
	Log      *LogStore
	Status   *StatusWriter
	Metrics  *Metrics
	Logger   logr.Logger
	Workers  int
	Now      func() time.Time
}

// Run fans out until ctx ends.
func (f *Fanout) Run(ctx context.Context) error {
	if f.Now == nil {
		f.Now = time.Now
	}
	return queue.Consume(ctx, f.Consumer, f.Workers, f.Logger, func(ctx context.Context, msg jetstream.Msg) {
		// Finish queuing an event's deliveries even while shutting down.
		if err := f.handle(context.WithoutCancel(ctx), msg); err != nil {
			f.Logger.Error(err, "fan out event; retrying")
			_ = msg.NakWithDelay(time.Second)
			return
		}
		_ = msg.Ack()
	})
}

func (f *Fanout) handle(ctx context.Context, msg jetstream.Msg) error {
	var ev Event
	if err := json.Unmarshal(msg.Data(), &ev); err != nil || ev.ID == "" {
		f.Logger.Error(err, "drop malformed event message")
		_ = msg.Term()
		return nil
	}
	body, err := delivery.BuildBody(ev.Type, ev.Data, ev.Time)
	if err != nil {
		f.Logger.Error(err, "drop event whose body cannot be built", "event", ev.ID)
		_ = msg.Term()
		return nil
	}
	f.Metrics.EventsIn.WithLabelValues(ev.Type).Inc()
	var futures []jetstream.PubAckFuture
	for _, e := range f.Registry.All() {
		obj := e.Object()
		if ev.Only != "" {
			if string(e.UID) != ev.Only {
				continue
			}
		} else if !Configured(obj) || !obj.Subscribes(ev.Type) {
			continue
		}
		dl := Delivery{
			ID: DeliveryID(ev.ID, string(e.UID)), EventID: ev.ID, EventType: ev.Type, EndpointUID: string(e.UID),
			Namespace: obj.Namespace, Name: obj.Name, Body: body, Created: ev.Time,
		}
		if obj.Spec.Suspend || f.Status.Disabled(ctx, e) {
			if err := f.skip(ctx, e, &dl, skipReason(obj)); err != nil {
				return err
			}
			continue
		}
		b, err := json.Marshal(dl)
		if err != nil {
			return err
		}
		fut, err := f.JS.PublishAsync(queue.DeliveriesSubject+"."+dl.EndpointUID, b, jetstream.WithMsgID(dl.ID))
		if err != nil {
			return fmt.Errorf("queue delivery %s: %w", dl.ID, err)
		}
		futures = append(futures, fut)
	}
	for _, fut := range futures {
		select {
		case <-fut.Ok():
		case err := <-fut.Err():
			return fmt.Errorf("queue delivery: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// skip records a delivery that is not attempted because its endpoint is
// suspended or disabled; it can be redelivered later.
func (f *Fanout) skip(ctx context.Context, e *Endpoint, dl *Delivery, reason string) error {
	if _, _, err := f.Log.Get(ctx, dl.EndpointUID, dl.Created, dl.ID); err == nil {
		return nil // already recorded (a replayed event)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	rec := &Record{
		ID: dl.ID, EventID: dl.EventID, EventType: dl.EventType, Namespace: dl.Namespace, Endpoint: dl.Name,
		UID: dl.EndpointUID, State: StateSkipped, Created: dl.Created, Updated: f.Now(), Body: string(dl.Body), Reason: reason,
	}
	if err := f.Log.Put(ctx, rec); err != nil {
		return err
	}
	f.Status.Record(ctx, e, Outcome{State: StateSkipped})
	obj := e.Object()
	f.Metrics.Deliveries.WithLabelValues(obj.Namespace+"/"+obj.Name, dl.EventType, "skipped").Inc()
	return nil
}

// Requeue publishes a stored delivery again as a new round (a manual
// redelivery); the message id includes the round so it is not deduplicated
// against the original.
func Requeue(ctx context.Context, js jetstream.JetStream, rec *Record) error {
	dl := Delivery{
		ID: rec.ID, EventID: rec.EventID, EventType: rec.EventType, EndpointUID: rec.UID,
		Namespace: rec.Namespace, Name: rec.Endpoint, Body: []byte(rec.Body), Created: rec.Created, Round: rec.Round + 1,
	}
	b, err := json.Marshal(dl)
	if err != nil {
		return err
	}
	if _, err := js.Publish(ctx, queue.DeliveriesSubject+"."+rec.UID, b, jetstream.WithMsgID(fmt.Sprintf("%s.r%d", rec.ID, dl.Round))); err != nil {
		return fmt.Errorf("requeue delivery %s: %w", rec.ID, err)
	}
	return nil
}
