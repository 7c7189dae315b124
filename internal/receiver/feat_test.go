package receiver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/deliverylog"
	"github.com/mira/mira-operator/internal/dispatch"
	"github.com/mira/mira-operator/internal/events"
	"github.com/mira/mira-operator/internal/fanout"
	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/signing"
)

// publishIn stores an event of a workspace through the receiver's publisher.
func publishIn(t *testing.T, ns, typ string, data any) events.Event {
	t.Helper()
	b, _ := json.Marshal(data)
	now := time.Now().UTC()
	ev := events.Event{ID: events.NewEventID(now), Type: typ, Namespace: ns, Data: b, Time: now}
	if err := recv.Publisher.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// wireBody is the outgoing JSON body.
type wireBody struct {
	Event string         `json:"event"`
	Data  map[string]any `json:"data"`
}

func bodies(t *testing.T, got []received) []wireBody {
	t.Helper()
	out := make([]wireBody, 0, len(got))
	for _, r := range got {
		var b wireBody
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Fatalf("body %s: %v", r.Body, err)
		}
		out = append(out, b)
	}
	return out
}

func TestCustomHeadersArriveAndAreMasked(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	const token = "Bearer s3cr3t-header-token"
	if err := k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api-headers"},
		Data: map[string][]byte{"Authorization": []byte(token), "X-Api-Key": []byte("s3cr3t-key")}}); err != nil {
		t.Fatal(err)
	}
	c := newConsumer(nil)
	srv := httptest.NewServer(c)
	defer srv.Close()
	w, secret := createEndpoint(t, ns, "hdr", srv.URL, []string{miraapi.EventReportCompleted}, func(w *miraapi.WebhookEndpoint) {
		w.Spec.HeadersSecretRef = &miraapi.LocalSecretReference{Name: "api-headers"}
	})
	ev := publishIn(t, ns, miraapi.EventReportCompleted, map[string]string{"report_id": "rep_h"})
	got := c.waitFor(t, 1)[0]
	if got.Header.Get("Authorization") != token || got.Header.Get("X-Api-Key") != "s3cr3t-key" {
		t.Fatalf("custom headers = %q, %q", got.Header.Get("Authorization"), got.Header.Get("X-Api-Key"))
	}
	verifySignature(t, secret, got)

	id := fanout.DeliveryID(ev.ID, string(w.UID))
	var rec *datav1.Delivery
	eventually(t, "delivered record", func() error {
		r, err := recv.Log.Find(ctx, id)
		if err != nil {
			return err
		}
		if r.State != datav1.StateDelivered || len(r.Attempts) == 0 {
			return fmt.Errorf("state %s", r.State)
		}
		rec = r
		return nil
	})
	h := rec.Attempts[0].RequestHeaders
	if h["Authorization"] != "******" || h["X-Api-Key"] != "******" {
		t.Fatalf("logged request headers = %v, want the custom ones masked", h)
	}
	raw, _ := json.Marshal(rec)
	if strings.Contains(string(raw), "s3cr3t") {
		t.Fatalf("the delivery log holds a header value: %s", raw)
	}
	eventually(t, "status shows the attempt", func() error {
		w := getEndpoint(t, ns, "hdr")
		if len(w.Status.RecentAttempts) == 0 {
			return fmt.Errorf("no attempts in status yet")
		}
		if raw, _ := json.Marshal(w.Status); strings.Contains(string(raw), "s3cr3t") {
			t.Fatalf("status holds a header value: %s", raw)
		}
		return nil
	})
}

// verifySignature checks X-Mira-Signature: custom headers leave the
// signature intact.
func verifySignature(t *testing.T, secret string, r received) {
	t.Helper()
	if got, want := r.Header.Get("X-Mira-Signature"), signing.MiraSignature(secret, r.Body); got != want {
		t.Fatalf("X-Mira-Signature = %q, want %q", got, want)
	}
}

func TestFilterKeepsAndDropsEvents(t *testing.T) {
	ns := newNamespace(t)
	c := newConsumer(nil)
	srv := httptest.NewServer(c)
	defer srv.Close()
	createEndpoint(t, ns, "flt", srv.URL, []string{miraapi.EventReportCompleted}, func(w *miraapi.WebhookEndpoint) {
		w.Spec.Filter = `event.data.user_id in ["usr_1", "usr_2"]`
	})
	publishIn(t, ns, miraapi.EventReportCompleted, map[string]string{"report_id": "rep_1", "user_id": "usr_1"})
	publishIn(t, ns, miraapi.EventReportCompleted, map[string]string{"report_id": "rep_2", "user_id": "usr_9"})
	// No user_id: the evaluation fails, which counts as no match.
	publishIn(t, ns, miraapi.EventReportCompleted, map[string]string{"report_id": "rep_3"})
	publishIn(t, ns, miraapi.EventReportCompleted, map[string]string{"report_id": "rep_4", "user_id": "usr_2"})

	eventually(t, "two filtered events in status", func() error {
		w := getEndpoint(t, ns, "flt")
		if d := w.Status.Deliveries; d == nil || d.Filtered != 2 {
			return fmt.Errorf("deliveries = %+v", d)
		}
		return nil
	})
	c.waitFor(t, 2)
	// Every event is fanned out by now (both drops are counted): nothing else comes.
	eventually(t, "two deliveries made", func() error {
		w := getEndpoint(t, ns, "flt")
		if d := w.Status.Deliveries; d.Delivered != 2 {
			return fmt.Errorf("deliveries = %+v", d)
		}
		return nil
	})
	got := bodies(t, c.all())
	ids := map[string]bool{}
	for _, b := range got {
		ids[fmt.Sprint(b.Data["report_id"])] = true
	}
	if len(got) != 2 || !ids["rep_1"] || !ids["rep_4"] {
		t.Fatalf("delivered %v, want rep_1 and rep_4", ids)
	}
}

// Events fanned out while an endpoint's filter does not compile wait in the
// queue (nothing is lost); once the filter is fixed it decides before the
// first attempt, so fixing it does not release what it was meant to hold
// back.
func TestFixedFilterDecidesWhatWaited(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	c := newConsumer(nil)
	srv := httptest.NewServer(c)
	defer srv.Close()
	w := &miraapi.WebhookEndpoint{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "fixme"},
		Spec: miraapi.WebhookEndpointSpec{URL: srv.URL, Events: []string{miraapi.EventReportCompleted},
			Filter: `event.data.user_id in [`},
	}
	if err := k8s.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the receiver to see the broken filter", func() error {
		if e := recv.Registry.Lookup(ns, "fixme"); e == nil {
			return fmt.Errorf("not yet")
		} else if _, err := e.Filter(); err == nil {
			return fmt.Errorf("the filter compiles")
		}
		return nil
	})
	keep := publishIn(t, ns, miraapi.EventReportCompleted, map[string]string{"report_id": "rep_keep", "user_id": "usr_1"})
	drop := publishIn(t, ns, miraapi.EventReportCompleted, map[string]string{"report_id": "rep_drop", "user_id": "usr_9"})
	uid := string(w.UID)
	state := func(ev events.Event) (string, string) {
		rec, _, err := recv.Log.Get(ctx, uid, ev.Time, fanout.DeliveryID(ev.ID, uid))
		if err != nil {
			return "", err.Error()
		}
		return rec.State, rec.Reason
	}
	eventually(t, "both deliveries held as pending", func() error {
		for _, ev := range []events.Event{keep, drop} {
			if st, why := state(ev); st != datav1.StatePending {
				return fmt.Errorf("%s: %s %s", ev.ID, st, why)
			}
		}
		return nil
	})
	if n := len(c.all()); n != 0 {
		t.Fatalf("%d deliveries made while the filter did not compile", n)
	}

	patch := []byte(`{"spec":{"filter":"event.data.user_id == \"usr_1\""}}`)
	if err := k8s.Patch(ctx, getEndpoint(t, ns, "fixme"), client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
	got := bodies(t, c.waitFor(t, 1))
	if got[0].Data["report_id"] != "rep_keep" {
		t.Fatalf("delivered %v, want rep_keep", got[0].Data)
	}
	eventually(t, "the other delivery skipped by the fixed filter", func() error {
		if st, why := state(drop); st != datav1.StateSkipped || why != dispatch.ReasonFiltered {
			return fmt.Errorf("%s %s", st, why)
		}
		return nil
	})
	if n := len(c.all()); n != 1 {
		t.Fatalf("%d deliveries, want only rep_keep", n)
	}
}

func TestEndpointDisabledEventOnceAndNeverToItself(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	gone := newConsumer(func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
	goneSrv := httptest.NewServer(gone)
	defer goneSrv.Close()
	watch := newConsumer(nil)
	watchSrv := httptest.NewServer(watch)
	defer watchSrv.Close()
	// The failing endpoint subscribes to endpoint.disabled as well: it must
	// not get the event about itself.
	failing, _ := createEndpoint(t, ns, "failing", goneSrv.URL, []string{miraapi.EventReportCompleted, miraapi.EventEndpointDisabled}, nil)
	createEndpoint(t, ns, "watcher", watchSrv.URL, []string{miraapi.EventMeetingFailed, miraapi.EventEndpointDisabled}, nil)

	publishIn(t, ns, miraapi.EventReportCompleted, map[string]string{"report_id": "rep_gone"})
	got := bodies(t, watch.waitFor(t, 1))
	if got[0].Event != miraapi.EventEndpointDisabled {
		t.Fatalf("watcher got %s first", got[0].Event)
	}
	d := got[0].Data
	if d["namespace"] != ns || d["name"] != "failing" || d["reason"] != miraapi.GoneReason || d["last_status_code"] != float64(410) {
		t.Fatalf("endpoint.disabled data = %v", d)
	}
	// Let several status flushes pass, then a marker: anything published
	// twice would have arrived before it.
	start := recv.Status.Patches(failing.UID)
	eventually(t, "more status flushes", func() error {
		if n := recv.Status.Patches(failing.UID); n < start+2 {
			// Flushes write only on change; nudge with an annotation.
			patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{"platform.mira.io/test":"nudge-%d"}}}`, n))
			_ = k8s.Patch(ctx, getEndpoint(t, ns, "failing"), client.RawPatch(types.MergePatchType, patch))
			return fmt.Errorf("%d status writes", n)
		}
		return nil
	})
	publishIn(t, ns, miraapi.EventMeetingFailed, map[string]string{"meeting_id": "mtg_marker"})
	all := bodies(t, watch.waitFor(t, 2))
	disabled := 0
	for _, b := range all {
		if b.Event == miraapi.EventEndpointDisabled && b.Data["name"] == "failing" {
			disabled++
		}
	}
	if disabled != 1 {
		t.Fatalf("watcher got endpoint.disabled %d times: %v", disabled, all)
	}
	// No delivery about itself was even created for the failing endpoint.
	recs, _, err := recv.Log.List(ctx, string(failing.UID), deliverylog.ListOptions{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if miraapi.IsOperationalEvent(r.EventType) {
			t.Fatalf("the failing endpoint has a %s delivery about itself", r.EventType)
		}
	}
}

func TestDeliveryDeadEvent(t *testing.T) {
	ns := newNamespace(t)
	bad := newConsumer(func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	badSrv := httptest.NewServer(bad)
	defer badSrv.Close()
	watch := newConsumer(nil)
	watchSrv := httptest.NewServer(watch)
	defer watchSrv.Close()
	failing, _ := createEndpoint(t, ns, "dying", badSrv.URL, []string{miraapi.EventReportCompleted}, func(w *miraapi.WebhookEndpoint) {
		w.Spec.Delivery = &miraapi.DeliveryPolicy{MaxAttempts: ptr.To[int32](2),
			Backoff: &miraapi.BackoffPolicy{Initial: &metav1.Duration{Duration: time.Second}}}
	})
	createEndpoint(t, ns, "dead-letters", watchSrv.URL, []string{miraapi.EventDeliveryDead}, nil)

	ev := publishIn(t, ns, miraapi.EventReportCompleted, map[string]string{"report_id": "rep_dead"})
	got := bodies(t, watch.waitFor(t, 1))
	if n := len(bad.all()); n != 2 {
		t.Fatalf("failing endpoint got %d attempts, want 2", n)
	}
	d := got[0].Data
	if got[0].Event != miraapi.EventDeliveryDead || d["namespace"] != ns || d["name"] != "dying" ||
		d["delivery_id"] != fanout.DeliveryID(ev.ID, string(failing.UID)) || d["event_id"] != ev.ID ||
		d["event_type"] != miraapi.EventReportCompleted || d["attempts"] != float64(2) || d["last_error"] == "" {
		t.Fatalf("delivery.dead = %s %v", got[0].Event, d)
	}
}

func TestReplayIntoNewEndpoint(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	since := time.Now().Add(-time.Second).UTC().Truncate(time.Second)
	// Events from before the endpoint existed.
	old := []events.Event{
		publishIn(t, ns, miraapi.EventReportCompleted, map[string]string{"report_id": "rep_old1"}),
		publishIn(t, ns, miraapi.EventMeetingFailed, map[string]string{"meeting_id": "mtg_old"}),
		publishIn(t, ns, miraapi.EventReportCompleted, map[string]string{"report_id": "rep_old2"}),
	}
	// The fan-out has seen them (so "late" did not get them that way).
	eventually(t, "old events fanned out", func() error {
		cons, err := recv.JetStream.Consumer(ctx, queue.EventsStream, queue.FanoutConsumer)
		if err != nil {
			return err
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("fan-out has %d pending, %d unacked", info.NumPending, info.NumAckPending)
		}
		return nil
	})
	c := newConsumer(nil)
	srv := httptest.NewServer(c)
	defer srv.Close()
	w, _ := createEndpoint(t, ns, "late", srv.URL, []string{miraapi.EventReportCompleted}, nil)

	replay := func(value, want string) {
		t.Helper()
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{miraapi.ReplayAnnotation: value}}})
		if err := k8s.Patch(ctx, getEndpoint(t, ns, "late"), client.RawPatch(types.MergePatchType, patch)); err != nil {
			t.Fatal(err)
		}
		eventually(t, "Replayed Event", func() error {
			var list eventsv1.EventList
			if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
				return err
			}
			for _, e := range list.Items {
				if e.Regarding.Name == "late" && e.Reason == "Replayed" && strings.Contains(e.Note, value) {
					if !strings.HasPrefix(e.Note, want) {
						t.Fatalf("Replayed note %q, want it to start with %q", e.Note, want)
					}
					return nil
				}
			}
			return fmt.Errorf("not among %d events", len(list.Items))
		})
	}
	replay("since="+since.Format(time.RFC3339)+";nonce=1", "queued 2 deliveries")
	got := bodies(t, c.waitFor(t, 2))
	ids := map[string]bool{}
	for _, b := range got {
		ids[fmt.Sprint(b.Data["report_id"])] = true
	}
	if !ids["rep_old1"] || !ids["rep_old2"] {
		t.Fatalf("replayed %v", ids)
	}
	for _, ev := range []events.Event{old[0], old[2]} {
		id := fanout.DeliveryID(ev.ID, string(w.UID))
		eventually(t, "replayed delivery recorded", func() error {
			r, err := recv.Log.Find(ctx, id)
			if err != nil {
				return err
			}
			if r.State != datav1.StateDelivered {
				return fmt.Errorf("state %s", r.State)
			}
			return nil
		})
	}
	// A second replay of the same window sends nothing new.
	replay("since="+since.Format(time.RFC3339)+";nonce=2", "queued 0 deliveries; skipped 2")
	// A marker after it: the consumer then holds everything the replay sent.
	publishIn(t, ns, miraapi.EventReportCompleted, map[string]string{"report_id": "rep_marker"})
	all := bodies(t, c.waitFor(t, 3))
	if len(all) != 3 || all[2].Data["report_id"] != "rep_marker" {
		t.Fatalf("after the second replay the consumer got %v", all)
	}
}
