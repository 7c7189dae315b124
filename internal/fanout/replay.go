package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	"github.com/mira/mira-operator/internal/delivery"
	"github.com/mira/mira-operator/internal/deliverylog"
	"github.com/mira/mira-operator/internal/endpoints"
	"github.com/mira/mira-operator/internal/eventfilter"
	"github.com/mira/mira-operator/internal/events"
	"github.com/mira/mira-operator/internal/queue"
)

// ReplayOptions choose the stored events a replay queues.
type ReplayOptions struct {
	// Since and Until bound the events' storage times: [Since, Until).
	// A zero Until means now.
	Since, Until time.Time
	// EventType, when set, replays only events of this type.
	EventType string
	// IncludeDelivered queues deliveries the endpoint already received
	// again, as a new round; without it they are skipped.
	IncludeDelivered bool
}

// ReplayResult counts what a replay did.
type ReplayResult struct {
	// Queued deliveries (new ones, and new rounds of dead, skipped or, with
	// IncludeDelivered, delivered ones).
	Queued int
	// Skipped: already delivered, or queued and not finished yet.
	Skipped int
	// Filtered: the endpoint subscribes to the type but its filter drops it.
	Filtered int
}

// replayFetch is how many events a replay reads per fetch.
const replayFetch = 256

// Replay queues deliveries to e for the events of its namespace stored in
// the window (read from the events stream, as far back as its retention
// keeps them, including events from before e existed) that e subscribes to
// now and that pass its filter. The delivery of an event that never reached
// e is created as the fan-out would have (same id, so a replay racing the
// fan-out makes one delivery); one already delivered, or still under way, is
// skipped unless IncludeDelivered; a dead or skipped one gets a new round.
func Replay(ctx context.Context, js jetstream.JetStream, log *deliverylog.Store, e *endpoints.Endpoint, o ReplayOptions) (ReplayResult, error) {
	var res ReplayResult
	obj := e.Object()
	until := o.Until
	if until.IsZero() {
		until = time.Now()
	}
	cons, err := js.OrderedConsumer(ctx, queue.EventsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{queue.EventsSubject + "." + obj.Namespace + ".>"},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy, OptStartTime: &o.Since,
	})
	if err != nil {
		return res, fmt.Errorf("read events of %s: %w", obj.Namespace, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return res, fmt.Errorf("read events of %s: %w", obj.Namespace, err)
	}
	pending := info.NumPending
	f := &Fanout{JS: js, Log: log}
	for pending > 0 {
		// Ask for no more than is pending: a fetch returns once its batch
		// is full, rather than waiting out its maximum wait.
		batch, err := cons.Fetch(int(min(pending, replayFetch)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return res, fmt.Errorf("read events of %s: %w", obj.Namespace, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			md, err := msg.Metadata()
			if err != nil {
				return res, fmt.Errorf("read event metadata: %w", err)
			}
			pending = md.NumPending
			if !md.Timestamp.Before(until) {
				return res, nil
			}
			if err := f.replayOne(ctx, e, msg.Data(), o, &res); err != nil {
				return res, err
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return res, fmt.Errorf("read events of %s: %w", obj.Namespace, err)
		}
		if n == 0 {
			break // nothing more arrived within the wait
		}
	}
	return res, nil
}

// replayOne queues the delivery of one stored event to e when it applies.
func (f *Fanout) replayOne(ctx context.Context, e *endpoints.Endpoint, data []byte, o ReplayOptions, res *ReplayResult) error {
	var ev events.Event
	if err := json.Unmarshal(data, &ev); err != nil || ev.ID == "" || ev.Only != "" {
		return nil // malformed, or a test event for one endpoint
	}
	obj := e.Object()
	if (o.EventType != "" && ev.Type != o.EventType) || !obj.Subscribes(ev.Type) || ev.Namespace != obj.Namespace {
		return nil
	}
	var act *eventfilter.Activation
	d := Accepts(ev, e, &act)
	if !d.Deliver {
		if d.Filtered {
			res.Filtered++
		}
		return nil
	}
	body, err := delivery.BuildBody(ev.Type, ev.Data, ev.Time)
	if err != nil {
		return nil // the fan-out drops it too
	}
	m := newMessage(ev, e, body, d)
	rec, _, err := f.Log.Get(ctx, m.EndpointUID, m.Created, m.ID)
	switch {
	case errors.Is(err, deliverylog.ErrNotFound):
		queueIt, err := f.createRecord(ctx, &m)
		if err != nil {
			return err
		}
		if !queueIt {
			res.Skipped++
			return nil
		}
		if _, err := f.JS.PublishMsg(ctx, m.NewMsg(), jetstream.WithMsgID(m.ID)); err != nil {
			return fmt.Errorf("queue delivery %s: %w", m.ID, err)
		}
	case err != nil:
		return err
	case rec.State == datav1.StateDead || rec.State == datav1.StateSkipped ||
		(rec.State == datav1.StateDelivered && o.IncludeDelivered):
		if err := Requeue(ctx, f.JS, rec); err != nil {
			return err
		}
	default:
		// Delivered, or pending or retrying: it is under way already.
		res.Skipped++
		return nil
	}
	res.Queued++
	return nil
}
