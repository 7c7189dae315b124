// Package actions acts on the action annotations of WebhookEndpoints
// (redeliver, test, enable) on the elected receiver: each new annotation
// value is acted on once and recorded as handled in status.
package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"
	kevents "k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/deliverylog"
	"github.com/mira/mira-operator/internal/endpoints"
	"github.com/mira/mira-operator/internal/endpointstatus"
	"github.com/mira/mira-operator/internal/events"
	"github.com/mira/mira-operator/internal/fanout"
)

// Actions handles the action annotations of WebhookEndpoints: redeliver,
// test and enable. Each annotation value is acted on once; the handled
// value is recorded in status.
type Actions struct {
	client.Client
	JS        jetstream.JetStream
	Publisher events.Publisher
	Registry  *endpoints.Registry
	Log       *deliverylog.Store
	Status    *endpointstatus.Writer
	Recorder  kevents.EventRecorder
	Now       func() time.Time
}

// SetupWithManager registers the handler for annotation and spec changes.
func (a *Actions) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&miraapi.WebhookEndpoint{}, builder.WithPredicates(predicate.Or(predicate.AnnotationChangedPredicate{}, predicate.GenerationChangedPredicate{}))).
		Named("webhookendpoint-actions").
		// Several receivers share a process in benchmarks; names need not be unique.
		WithOptions(controller.Options{SkipNameValidation: ptr.To(true)}).
		Complete(a)
}

// Reconcile acts on new annotation values.
func (a *Actions) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	// Read from the cache rather than the registry: the registry's informer
	// handler may not have seen this update yet.
	obj := &miraapi.WebhookEndpoint{}
	if err := a.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	e := a.Registry.Observe(obj)
	// A spec change re-enables a disabled endpoint.
	a.Status.ReenableOnSpecChange(ctx, e)
	ann := obj.Annotations
	if v := ann[miraapi.EnableAnnotation]; v != "" && v != a.Status.Handled(ctx, e, miraapi.EnableAnnotation) {
		a.Status.Enable(ctx, e, v)
	}
	if v := ann[miraapi.TestAnnotation]; v != "" && v != a.Status.Handled(ctx, e, miraapi.TestAnnotation) {
		id, err := a.SendTest(ctx, e, v)
		if err != nil {
			return ctrl.Result{}, err
		}
		a.Status.SetHandled(ctx, e, miraapi.TestAnnotation, v)
		a.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, "TestQueued", "Test", "queued a webhook.test event %s", id)
	}
	if v := ann[miraapi.RedeliverAnnotation]; v != "" && v != a.Status.Handled(ctx, e, miraapi.RedeliverAnnotation) {
		n, err := a.Redeliver(ctx, e, v)
		if err != nil {
			if isBadRequest(err) {
				a.Status.SetHandled(ctx, e, miraapi.RedeliverAnnotation, v)
				a.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, "RedeliverRefused", "Redeliver", "%s", err.Error())
				return ctrl.Result{}, nil
			}
			return ctrl.Result{}, err
		}
		a.Status.SetHandled(ctx, e, miraapi.RedeliverAnnotation, v)
		a.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, "Redelivered", "Redeliver", "queued %d deliveries again (%s)", n, v)
	}
	if v := ann[miraapi.ReplayAnnotation]; v != "" && v != a.Status.Handled(ctx, e, miraapi.ReplayAnnotation) {
		if err := a.replay(ctx, e, v); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, nil
}

// SendTest queues a webhook.test event for this endpoint only. The event id
// derives from the request so a repeated request queues nothing new.
func (a *Actions) SendTest(ctx context.Context, e *endpoints.Endpoint, request string) (string, error) {
	obj := e.Object()
	now := a.now()
	data, _ := json.Marshal(map[string]string{
		"endpoint": obj.Namespace + "/" + obj.Name,
		"message":  "test event from Mira; no action needed",
		"request":  request,
	})
	ev := events.Event{ID: events.DerivedEventID("webhook.test", string(e.UID), request), Type: miraapi.EventWebhookTest, Data: data, Time: now, Only: string(e.UID), Namespace: obj.Namespace}
	return ev.ID, a.Publisher.Publish(ctx, ev)
}

type badRequest struct{ error }

func isBadRequest(err error) bool {
	_, ok := err.(badRequest)
	return ok
}

// Redeliver queues one delivery id ("dlv_…", or "dlv_…@<nonce>" to ask for
// the same delivery once more), or with "since=<RFC 3339>[;until=<RFC 3339>]"
// every retrying, dead or skipped delivery created in that window. It
// returns how many it queued.
func (a *Actions) Redeliver(ctx context.Context, e *endpoints.Endpoint, value string) (int, error) {
	if since, ok := strings.CutPrefix(value, "since="); ok {
		since, untilS, hasUntil := strings.Cut(since, ";until=")
		t, err := time.Parse(time.RFC3339, since)
		if err != nil {
			return 0, badRequest{fmt.Errorf("redeliver %q: since must be an RFC 3339 time", value)}
		}
		var until time.Time
		if hasUntil {
			if until, err = time.Parse(time.RFC3339, untilS); err != nil || !until.After(t) {
				return 0, badRequest{fmt.Errorf("redeliver %q: until must be an RFC 3339 time after since", value)}
			}
		}
		n := 0
		cursor := ""
		for {
			page, next, err := a.Log.List(ctx, string(e.UID), deliverylog.ListOptions{
				States: []string{datav1.StateRetrying, datav1.StateDead, datav1.StateSkipped}, Since: t, Limit: 500, After: cursor,
			})
			if err != nil {
				return n, err
			}
			for i := range page {
				if !until.IsZero() && !page[i].Created.Before(until) {
					continue
				}
				if err := fanout.Requeue(ctx, a.JS, &page[i]); err != nil {
					return n, err
				}
				n++
			}
			if next == "" {
				return n, nil
			}
			cursor = next
		}
	}
	// "<id>@<nonce>" asks for the same delivery again: each new value is a
	// new request.
	id, _, _ := strings.Cut(value, "@")
	rec, err := a.Log.Find(ctx, id)
	if err != nil || rec.UID != string(e.UID) {
		return 0, badRequest{fmt.Errorf("redeliver %q: no such delivery for this endpoint", value)}
	}
	return 1, fanout.Requeue(ctx, a.JS, rec)
}

func (a *Actions) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}
