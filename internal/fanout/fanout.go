// Package fanout turns each stored event into one delivery per subscribed
// WebhookEndpoint: a message in the deliveries stream (and, when the fan-out
// of an event is redone, a pending record in the delivery log first). It never judges whether an endpoint can be delivered
// to: every (event, subscribed endpoint) pair gets a delivery, and the
// dispatcher holds it until the endpoint is deliverable (or skips it while
// the endpoint is suspended or disabled).
package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	k8stypes "k8s.io/apimachinery/pkg/types"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	"github.com/mira/mira-operator/internal/delivery"
	"github.com/mira/mira-operator/internal/deliverylog"
	"github.com/mira/mira-operator/internal/endpoints"
	"github.com/mira/mira-operator/internal/eventfilter"
	"github.com/mira/mira-operator/internal/events"
	"github.com/mira/mira-operator/internal/queue"
)

// Fanout consumes the events stream.
type Fanout struct {
	JS       jetstream.JetStream
	Consumer jetstream.Consumer
	Registry *endpoints.Registry
	Log      *deliverylog.Store
	// EventsIn counts events by type (mira_events_total); optional.
	EventsIn *prometheus.CounterVec
	// NoWorkspace counts events without a namespace, which reach no
	// endpoint (mira_events_without_namespace_total); optional.
	NoWorkspace prometheus.Counter
	Logger      logr.Logger
	Workers     int
	// Filtered counts events dropped by endpoints' filters; optional.
	Filtered FilteredCounter
	// Queued, if set, is told the subject of every delivery queued (once
	// the stream stored it), so the dispatcher starts that endpoint's lane
	// at once instead of at its next scan of the stream.
	Queued func(subject string)

	warnOnce sync.Once
}

// noWorkspace logs the first event without a namespace (and counts every
// one, when NoWorkspace is set).
func (f *Fanout) noWorkspace(ev events.Event) {
	if f.NoWorkspace != nil {
		f.NoWorkspace.Inc()
	}
	f.warnOnce.Do(func() {
		f.Logger.Info("event without a namespace reaches no endpoint (logged once; counted in mira_events_without_namespace_total)",
			"event", ev.ID, "type", ev.Type)
	})
}

// Run fans out until ctx ends.
func (f *Fanout) Run(ctx context.Context) error {
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

// Targets returns the endpoints an event goes to, only ever in the event's
// namespace (its workspace): the one named by Only (test events), else every
// endpoint subscribed to its type, whatever its Ready state. An event
// without a namespace goes nowhere. It reads the registry's per-namespace,
// per-type index, so endpoints of other namespaces or not subscribed cost
// nothing per event. The slice may be shared: do not modify it.
func Targets(ev events.Event, reg *endpoints.Registry) []*endpoints.Endpoint {
	if ev.Namespace == "" {
		return nil
	}
	if ev.Only != "" {
		e := reg.Get(k8stypes.UID(ev.Only))
		if e == nil || e.Object().Namespace != ev.Namespace {
			return nil
		}
		return []*endpoints.Endpoint{e}
	}
	return reg.Subscribed(ev.Namespace, ev.Type)
}

func (f *Fanout) handle(ctx context.Context, msg jetstream.Msg) error {
	var ev events.Event
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
	if f.EventsIn != nil {
		f.EventsIn.WithLabelValues(ev.Type).Inc()
	}
	if ev.Namespace == "" {
		// Written before workspaces, or by a publisher that forgot the
		// namespace: it belongs to no workspace, so it reaches nobody.
		f.noWorkspace(ev)
		return nil
	}
	redone := true
	if md, err := msg.Metadata(); err == nil {
		redone = md.NumDelivered > 1
	}
	return f.fanOut(ctx, ev, body, redone)
}

// fanOut queues the deliveries of one event whose body is built.
//
// The first fan-out of an event only queues messages: the queued message is
// the delivery's pending record, and the dispatcher writes the record in the
// delivery log at the first outcome (create-if-absent), or a Pending record
// with its reason when it holds the delivery. A fan-out redone (the event
// handed out again after a crash or a failed publish) may come after the
// deliveries stream forgot the message ids, so it first creates each record
// if absent and skips deliveries already under way: a redone fan-out never
// resets a delivery's history nor queues it twice.
func (f *Fanout) fanOut(ctx context.Context, ev events.Event, body []byte, redone bool) error {
	var futures []jetstream.PubAckFuture
	var act *eventfilter.Activation
	var subjects []string
	for _, e := range Targets(ev, f.Registry) {
		d := f.accepts(ctx, ev, e, &act)
		if !d.Deliver {
			continue
		}
		m := newMessage(ev, e, body, d)
		if redone {
			queueIt, err := f.createRecord(ctx, &m)
			if err != nil {
				return err
			}
			if !queueIt {
				continue
			}
		}
		fut, err := f.JS.PublishMsgAsync(m.NewMsg(), jetstream.WithMsgID(m.ID))
		if err != nil {
			return fmt.Errorf("queue delivery %s: %w", m.ID, err)
		}
		futures = append(futures, fut)
		subjects = append(subjects, fut.Msg().Subject)
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
	if f.Queued != nil {
		for _, s := range subjects {
			f.Queued(s)
		}
	}
	return nil
}

// createRecord writes the delivery's pending record only if none exists:
// a fan-out redone after the stream's dedupe window must not reset the
// history of a delivery already under way. It reports whether the message
// still needs queuing (a new record, or one still pending because an earlier
// fan-out stopped between the record and the message).
func (f *Fanout) createRecord(ctx context.Context, m *Message) (bool, error) {
	rev, err := f.Log.Create(ctx, m.NewRecord())
	if err == nil {
		m.RecordRev = rev
		return true, nil
	}
	if !errors.Is(err, deliverylog.ErrConflict) {
		return false, err
	}
	rec, _, err := f.Log.Get(ctx, m.EndpointUID, m.Created, m.ID)
	if errors.Is(err, deliverylog.ErrNotFound) {
		return true, nil // expired meanwhile
	}
	if err != nil {
		return false, err
	}
	return rec.Round == 0 && rec.State == datav1.StatePending, nil
}
