package receiver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/fanout"
)

func getRecord(t *testing.T, id string) datav1.Delivery {
	t.Helper()
	resp := apiRequest(t, http.MethodGet, "/v1/deliveries/"+id, nil)
	defer resp.Body.Close()
	var rec datav1.Delivery
	if resp.StatusCode == http.StatusOK {
		_ = json.NewDecoder(resp.Body).Decode(&rec)
	}
	return rec
}

// An event for an endpoint whose signing Secret does not exist yet waits
// in the queue, shown as Pending with the reason, and goes out once the
// Secret exists (issue 10: it used to be dropped without a trace).
func TestEventWaitsForMissingSecret(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	c := newConsumer(nil)
	srv := httptest.NewServer(c)
	defer srv.Close()
	w := &miraapi.WebhookEndpoint{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "later"},
		Spec: miraapi.WebhookEndpointSpec{URL: srv.URL, Events: []string{miraapi.EventReportCompleted},
			SecretRef: &miraapi.SecretKeyReference{Name: "later-secret", Key: "token"}},
	}
	if err := k8s.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the receiver knows the endpoint", func() error {
		if recv.Registry.Lookup(ns, "later") == nil {
			return fmt.Errorf("not in the registry")
		}
		return nil
	})
	id := publish(t, ns, miraapi.EventReportCompleted, map[string]string{"report_id": "r-later", "meeting_id": "m", "user_id": "u"})
	dlv := fanout.DeliveryID(id, string(w.UID))
	eventually(t, "delivery pending with its reason", func() error {
		rec := getRecord(t, dlv)
		if rec.State != datav1.StatePending || !strings.HasPrefix(rec.Reason, "waiting: ") {
			return fmt.Errorf("record state %q reason %q", rec.State, rec.Reason)
		}
		return nil
	})
	if n := len(c.all()); n != 0 {
		t.Fatalf("the consumer got %d requests before the Secret existed", n)
	}

	const secret = "whsec-created-later-0123456789"
	if err := k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "later-secret"},
		StringData: map[string]string{"token": secret},
	}); err != nil {
		t.Fatal(err)
	}
	got := c.waitFor(t, 1)
	body := verifyDelivery(t, got[0], []string{secret}, miraapi.EventReportCompleted)
	if data, _ := body["data"].(map[string]any); data["report_id"] != "r-later" {
		t.Fatalf("data %v", body["data"])
	}
	eventually(t, "delivered in the log", func() error {
		if rec := getRecord(t, dlv); rec.State != datav1.StateDelivered || rec.Reason != "" {
			return fmt.Errorf("record state %q reason %q", rec.State, rec.Reason)
		}
		return nil
	})
}

// An event published right after a spec edit, before the controller has
// reconciled the new generation, reaches the endpoint as edited.
func TestSpecEditThenPublishArrives(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	c := newConsumer(nil)
	srv := httptest.NewServer(c)
	defer srv.Close()
	w, secret := createEndpoint(t, ns, "edited", srv.URL+"/old", []string{miraapi.EventMeetingFailed}, nil)

	w.Spec.Events = []string{miraapi.EventReportCompleted}
	w.Spec.URL = srv.URL + "/new"
	if err := k8s.Update(ctx, w); err != nil {
		t.Fatal(err)
	}
	// Publish as soon as the receiver has seen the edit, without waiting
	// for the controller.
	eventually(t, "the receiver sees the new generation", func() error {
		if e := recv.Registry.Lookup(ns, "edited"); e == nil || e.Object().Generation != w.Generation {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	publish(t, ns, miraapi.EventReportCompleted, map[string]string{"report_id": "r-edit", "meeting_id": "m", "user_id": "u"})
	got := c.waitFor(t, 1)
	verifyDelivery(t, got[0], []string{secret}, miraapi.EventReportCompleted)
	if path := got[0].Path; path != "/new" {
		t.Fatalf("delivered to %s, want the edited URL /new", path)
	}
}
