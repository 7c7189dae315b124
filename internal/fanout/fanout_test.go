package fanout

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go/jetstream"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/deliverylog"
	"github.com/mira/mira-operator/internal/endpoints"
	"github.com/mira/mira-operator/internal/events"
	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/queue/queuetest"
)

func setup(t *testing.T) (*Fanout, jetstream.JetStream, *endpoints.Registry) {
	t.Helper()
	ctx := context.Background()
	_, js := queuetest.Start(t)
	if err := queue.Ensure(ctx, js, queue.Config{}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, queue.DeliveryLogBucket)
	if err != nil {
		t.Fatal(err)
	}
	log, _ := deliverylog.New(kv)
	reg, err := endpoints.NewRegistry(endpoints.RegistryOptions{Reader: fake.NewClientBuilder().WithScheme(runtime.NewScheme()).Build()})
	if err != nil {
		t.Fatal(err)
	}
	return &Fanout{JS: js, Registry: reg, Log: log, Logger: logr.Discard()}, js, reg
}

func queued(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), queue.DeliveriesStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func endpoint(uid, name string, events []string, ready bool) *miraapi.WebhookEndpoint {
	w := &miraapi.WebhookEndpoint{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: k8stypes.UID("uid-" + uid), Generation: 2, ResourceVersion: "1"},
		Spec:       miraapi.WebhookEndpointSpec{URL: "https://example.com/" + name, Events: events},
	}
	if ready {
		w.Status.TargetURL = w.Spec.URL
		w.Status.Conditions = []metav1.Condition{{Type: miraapi.ReadyCondition, Status: metav1.ConditionTrue, ObservedGeneration: 2}}
	}
	return w
}

// Every subscribed endpoint gets a message, Ready or not (a spec not
// reconciled yet, a Secret still missing); endpoints that do not subscribe
// get nothing. The first fan-out writes no record: the message is the
// pending delivery until the dispatcher records its first outcome. A redone
// fan-out writes a pending record per delivery before queuing it.
func TestEverySubscribedEndpointGetsADelivery(t *testing.T) {
	for _, redone := range []bool{false, true} {
		t.Run(fmt.Sprintf("redone=%t", redone), func(t *testing.T) {
			f, js, reg := setup(t)
			ctx := context.Background()
			reg.Observe(endpoint("a", "ready", []string{miraapi.EventReportCompleted}, true))
			reg.Observe(endpoint("b", "not-ready", []string{miraapi.EventAll}, false))
			reg.Observe(endpoint("c", "other", []string{miraapi.EventMeetingFailed}, true))
			var woken []string
			f.Queued = func(s string) { woken = append(woken, s) }
			ev := events.Event{ID: "evt_1", Namespace: "ns", Type: miraapi.EventReportCompleted, Data: json.RawMessage(`{}`), Time: time.Now().UTC()}
			if err := f.fanOut(ctx, ev, []byte(`{"event":"report.completed"}`), redone); err != nil {
				t.Fatal(err)
			}
			if n := queued(t, js); n != 2 {
				t.Fatalf("%d deliveries queued, want 2 (the ready and the not-ready subscriber)", n)
			}
			sort.Strings(woken) // the registry has no order
			if len(woken) != 2 || woken[0] != Subject("ns", "uid-a") || woken[1] != Subject("ns", "uid-b") {
				t.Fatalf("Queued told %v, want the subjects of uid-a and uid-b", woken)
			}
			for _, uid := range []string{"uid-a", "uid-b"} {
				rec, _, err := f.Log.Get(ctx, uid, ev.Time, DeliveryID(ev.ID, uid))
				if !redone {
					if err != deliverylog.ErrNotFound {
						t.Fatalf("record of %s at the first fan-out: %+v, %v; want none", uid, rec, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("record of %s: %v", uid, err)
				}
				if rec.State != datav1.StatePending || rec.EventID != ev.ID {
					t.Fatalf("record of %s: %+v", uid, rec)
				}
			}
			if _, _, err := f.Log.Get(ctx, "uid-c", ev.Time, DeliveryID(ev.ID, "uid-c")); err != deliverylog.ErrNotFound {
				t.Fatalf("a record for an endpoint that does not subscribe: %v", err)
			}
		})
	}
}

// A fan-out redone after the deliveries stream's dedupe window (a stalled
// fan-out, a replayed event) must not reset the history of a delivery that
// already went out, nor queue it again.
func TestLateFanoutKeepsDeliveryHistory(t *testing.T) {
	f, js, reg := setup(t)
	ctx := context.Background()
	reg.Observe(endpoint("a", "crm", []string{miraapi.EventReportCompleted}, true))
	reg.Observe(endpoint("p", "pending", []string{miraapi.EventReportCompleted}, true))
	ev := events.Event{ID: "evt_2", Namespace: "ns", Type: miraapi.EventReportCompleted, Data: json.RawMessage(`{}`), Time: time.Now().UTC()}
	delivered := &datav1.Delivery{
		ID: DeliveryID(ev.ID, "uid-a"), EventID: ev.ID, EventType: ev.Type, UID: "uid-a", Namespace: "ns", Endpoint: "crm",
		State: datav1.StateDelivered, Created: ev.Time, AttemptCount: 3,
		Attempts: []datav1.Attempt{{Number: 1, StatusCode: 500}, {Number: 2, StatusCode: 503}, {Number: 3, StatusCode: 204}},
	}
	if _, err := f.Log.Create(ctx, delivered); err != nil {
		t.Fatal(err)
	}
	// The other endpoint's record exists but its message never made it (the
	// first fan-out stopped in between): that one is queued.
	stalled := &datav1.Delivery{ID: DeliveryID(ev.ID, "uid-p"), EventID: ev.ID, UID: "uid-p", State: datav1.StatePending, Created: ev.Time}
	if _, err := f.Log.Create(ctx, stalled); err != nil {
		t.Fatal(err)
	}
	if err := f.fanOut(ctx, ev, []byte(`{}`), true); err != nil {
		t.Fatal(err)
	}
	rec, _, err := f.Log.Get(ctx, "uid-a", ev.Time, delivered.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != datav1.StateDelivered || rec.AttemptCount != 3 || len(rec.Attempts) != 3 {
		t.Fatalf("the late fan-out reset the delivery: %+v", rec)
	}
	if n := queued(t, js); n != 1 {
		t.Fatalf("%d deliveries queued, want 1 (only the one whose message was missing)", n)
	}
}

// Fan-out never crosses a workspace: an event reaches only endpoints of its
// own namespace (test events too), and an event without a namespace
// reaches nobody.
func TestTargetsStayInTheEventsNamespace(t *testing.T) {
	inNS := func(ns string, w *miraapi.WebhookEndpoint) *miraapi.WebhookEndpoint {
		w.Namespace = ns
		return w
	}
	reg, err := endpoints.NewRegistry(endpoints.RegistryOptions{Reader: fake.NewClientBuilder().WithScheme(runtime.NewScheme()).Build()})
	if err != nil {
		t.Fatal(err)
	}
	reg.Observe(inNS("team-a", endpoint("a", "a", []string{miraapi.EventAll}, true)))
	reg.Observe(inNS("team-b", endpoint("b", "b", []string{miraapi.EventAll}, true)))
	names := func(es []*endpoints.Endpoint) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Object().Namespace+"/"+e.Object().Name)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		ev   events.Event
		want []string
	}{
		{"team-a", events.Event{Namespace: "team-a", Type: miraapi.EventReportCompleted}, []string{"team-a/a"}},
		{"team-b", events.Event{Namespace: "team-b", Type: miraapi.EventReportCompleted}, []string{"team-b/b"}},
		{"no namespace", events.Event{Type: miraapi.EventReportCompleted}, nil},
		{"other namespace", events.Event{Namespace: "team-c", Type: miraapi.EventReportCompleted}, nil},
		{"test event in its namespace", events.Event{Namespace: "team-a", Type: miraapi.EventWebhookTest, Only: "uid-a"}, []string{"team-a/a"}},
		{"test event naming another namespace's endpoint", events.Event{Namespace: "team-a", Type: miraapi.EventWebhookTest, Only: "uid-b"}, nil},
	} {
		got := names(Targets(tc.ev, reg))
		if len(got) != len(tc.want) || (len(got) == 1 && got[0] != tc.want[0]) {
			t.Errorf("%s: targets %v, want %v", tc.name, got, tc.want)
		}
	}
}

// An event without a namespace is acknowledged and queues nothing.
func TestEventWithoutNamespaceQueuesNothing(t *testing.T) {
	f, js, reg := setup(t)
	reg.Observe(endpoint("a", "all", []string{miraapi.EventAll}, true))
	ev := events.Event{ID: "evt_3", Type: miraapi.EventReportCompleted, Data: json.RawMessage(`{}`), Time: time.Now().UTC()}
	if err := f.fanOut(context.Background(), ev, []byte(`{}`), false); err != nil {
		t.Fatal(err)
	}
	if n := queued(t, js); n != 0 {
		t.Fatalf("%d deliveries queued for an event without a namespace", n)
	}
}
