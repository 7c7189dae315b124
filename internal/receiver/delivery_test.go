package receiver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/endpoints"
	"github.com/mira/mira-operator/internal/fanout"
	"github.com/mira/mira-operator/internal/signing"
)

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "recv-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// createEndpoint creates an endpoint for url and waits until the receiver
// sees it Ready; it returns the endpoint and its signing secret.
func createEndpoint(t *testing.T, ns, name, url string, events []string, mutate func(*miraapi.WebhookEndpoint)) (*miraapi.WebhookEndpoint, string) {
	t.Helper()
	ctx := context.Background()
	w := &miraapi.WebhookEndpoint{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       miraapi.WebhookEndpointSpec{URL: url, Events: events},
	}
	if mutate != nil {
		mutate(w)
	}
	if err := k8s.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	eventually(t, "endpoint Ready in the receiver", func() error {
		e := recv.Registry.Lookup(ns, name)
		if e == nil || !endpoints.Configured(e.Object()) {
			return fmt.Errorf("not configured yet")
		}
		return nil
	})
	return getEndpoint(t, ns, name), signingSecret(t, ns, name+"-signing-secret", "signingSecret")
}

func getEndpoint(t *testing.T, ns, name string) *miraapi.WebhookEndpoint {
	t.Helper()
	w := &miraapi.WebhookEndpoint{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, w); err != nil {
		t.Fatal(err)
	}
	return w
}

func signingSecret(t *testing.T, ns, name, key string) string {
	t.Helper()
	s := &corev1.Secret{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
		t.Fatal(err)
	}
	return string(s.Data[key])
}

// verifyDelivery checks the wire contract of one delivery.
func verifyDelivery(t *testing.T, r received, secrets []string, event string) map[string]any {
	t.Helper()
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := r.Header.Get("X-Mira-Event"); got != event {
		t.Errorf("X-Mira-Event = %q, want %q", got, event)
	}
	if _, err := time.Parse(time.RFC3339, r.Header.Get("X-Mira-Timestamp")); err != nil {
		t.Errorf("X-Mira-Timestamp %q is not ISO 8601: %v", r.Header.Get("X-Mira-Timestamp"), err)
	}
	if !signing.VerifyMira(secrets[0], r.Body, r.Header.Get("X-Mira-Signature")) {
		t.Errorf("X-Mira-Signature does not verify with the current secret")
	}
	std := signing.Standard{ID: r.Header.Get("webhook-id"), Timestamp: r.Header.Get("webhook-timestamp"), Signature: r.Header.Get("webhook-signature")}
	for _, s := range secrets {
		if err := signing.VerifyStandard([]string{s}, std, r.Body, time.Now(), signing.DefaultTolerance); err != nil {
			t.Errorf("webhook-signature does not verify with a secret: %v", err)
		}
	}
	if !strings.HasPrefix(r.Header.Get("User-Agent"), "Mira-Webhooks/") {
		t.Errorf("User-Agent = %q", r.Header.Get("User-Agent"))
	}
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	if body["event"] != event {
		t.Errorf("body.event = %v", body["event"])
	}
	if ts, _ := body["timestamp"].(string); !strings.HasSuffix(ts, "Z") {
		t.Errorf("body.timestamp %q is not UTC ISO 8601", ts)
	}
	return body
}

// nodeCheck runs the documented Node.js verification against a delivery.
func nodeCheck(t *testing.T, secret string, body []byte, signature string) string {
	t.Helper()
	cmd := exec.Command("node", "-e", `const {createHmac,timingSafeEqual}=require("crypto");
const {S,B,G}=process.env;
console.log(timingSafeEqual(Buffer.from(createHmac("sha256", S).update(B).digest("hex")), Buffer.from(G)));`)
	cmd.Env = append(cmd.Environ(), "S="+secret, "B="+string(body), "G="+signature)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestSignedDeliveryAndStatus(t *testing.T) {
	ns := newNamespace(t)
	c := newConsumer(nil)
	srv := httptest.NewServer(c)
	defer srv.Close()
	w, secret := createEndpoint(t, ns, "crm", srv.URL+"/hooks", []string{miraapi.EventReportCompleted}, nil)

	// Not subscribed: nothing arrives for this one.
	publish(t, ns, miraapi.EventMeetingFailed, map[string]string{"meeting_id": "m0"})
	id := publish(t, ns, miraapi.EventReportCompleted, map[string]string{"report_id": "r1", "meeting_id": "m1", "user_id": "u1"})
	got := c.waitFor(t, 1)[0]
	body := verifyDelivery(t, got, []string{secret}, miraapi.EventReportCompleted)
	data, _ := body["data"].(map[string]any)
	if data["report_id"] != "r1" || data["user_id"] != "u1" {
		t.Fatalf("data = %v", data)
	}
	if want := fanout.DeliveryID(id, string(w.UID)); got.Header.Get("webhook-id") != want {
		t.Fatalf("webhook-id = %q, want deterministic %q", got.Header.Get("webhook-id"), want)
	}
	if out := nodeCheck(t, secret, got.Body, got.Header.Get("X-Mira-Signature")); out != "true" {
		t.Fatalf("the documented Node.js check printed %q", out)
	}
	tampered := append([]byte(nil), got.Body...)
	tampered[len(tampered)-2] ^= 1
	if out := nodeCheck(t, secret, tampered, got.Header.Get("X-Mira-Signature")); out != "false" {
		t.Fatalf("the Node.js check accepted a tampered body: %q", out)
	}

	// Status written by the receiver, beside the controller's Ready.
	eventually(t, "delivery status", func() error {
		w = getEndpoint(t, ns, "crm")
		if w.Status.LastDelivery == nil || w.Status.LastDelivery.StatusCode != 204 || w.Status.Deliveries == nil || w.Status.Deliveries.Delivered != 1 {
			return fmt.Errorf("status %+v", w.Status.LastDelivery)
		}
		return nil
	})
	if c := apimeta.FindStatusCondition(w.Status.Conditions, miraapi.ReadyCondition); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("the receiver's status write clobbered Ready: %+v", w.Status.Conditions)
	}
	if c := apimeta.FindStatusCondition(w.Status.Conditions, miraapi.DegradedCondition); c == nil || c.Status != metav1.ConditionFalse {
		t.Fatalf("Degraded condition: %+v", c)
	}
	if len(w.Status.RecentAttempts) != 1 || !strings.Contains(w.Status.RecentAttempts[0].Payload, `"report_id":"r1"`) {
		t.Fatalf("recentAttempts %+v", w.Status.RecentAttempts)
	}
	managers := map[string]bool{}
	for _, mf := range w.ManagedFields {
		if mf.Subresource == "status" {
			managers[mf.Manager] = true
		}
	}
	if !managers[miraapi.ControllerFieldManager] || !managers[miraapi.ReceiverFieldManager] {
		t.Fatalf("status field managers %v, want both", managers)
	}
	if strings.Contains(fmt.Sprint(w.Status), secret) {
		t.Fatal("the signing secret leaked into status")
	}

	// The delivery log serves the attempt.
	resp := apiRequest(t, http.MethodGet, "/v1/deliveries/"+fanout.DeliveryID(id, string(w.UID)), nil)
	defer resp.Body.Close()
	var rec datav1.Delivery
	if err := json.NewDecoder(resp.Body).Decode(&rec); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET delivery: %d %v", resp.StatusCode, err)
	}
	if rec.State != datav1.StateDelivered || len(rec.Attempts) != 1 || rec.Attempts[0].StatusCode != 204 || rec.Attempts[0].RequestHeaders["X-Mira-Signature"] == "" {
		t.Fatalf("record %+v", rec)
	}
}

func TestRetryThenSuccess(t *testing.T) {
	ns := newNamespace(t)
	c := newConsumer(func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("database is down"))
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	srv := httptest.NewServer(c)
	defer srv.Close()
	w, _ := createEndpoint(t, ns, "flaky", srv.URL, []string{miraapi.EventAll}, func(w *miraapi.WebhookEndpoint) {
		w.Spec.Delivery = &miraapi.DeliveryPolicy{Backoff: &miraapi.BackoffPolicy{Initial: &metav1.Duration{Duration: time.Second}, Jitter: ptr.To[int32](1)}}
	})
	id := publish(t, ns, miraapi.EventRoleplayCompleted, map[string]string{"roleplay_id": "rp1"})
	got := c.waitFor(t, 3)
	if got[0].Header.Get("webhook-id") != got[2].Header.Get("webhook-id") || string(got[0].Body) != string(got[2].Body) {
		t.Fatal("a retry changed the delivery id or the body")
	}
	dlv := fanout.DeliveryID(id, string(w.UID))
	var rec datav1.Delivery
	eventually(t, "delivered after retries", func() error {
		resp := apiRequest(t, http.MethodGet, "/v1/deliveries/"+dlv, nil)
		defer resp.Body.Close()
		rec = datav1.Delivery{}
		_ = json.NewDecoder(resp.Body).Decode(&rec)
		if rec.State != datav1.StateDelivered {
			return fmt.Errorf("state %q", rec.State)
		}
		return nil
	})
	if len(rec.Attempts) != 3 || rec.Attempts[0].StatusCode != 500 || rec.Attempts[0].ResponseBody != "database is down" || rec.Attempts[0].NextRetry == nil {
		t.Fatalf("attempts %+v", rec.Attempts)
	}
	// Backoff: 1 s then 2 s, shortened by at most 1% jitter; scheduling
	// slack only adds time.
	if gap := rec.Attempts[1].Time.Sub(rec.Attempts[0].Time); gap < 990*time.Millisecond {
		t.Fatalf("second attempt after %s, want ≥ 0.99s", gap)
	}
	if gap := rec.Attempts[2].Time.Sub(rec.Attempts[1].Time); gap < 1980*time.Millisecond {
		t.Fatalf("third attempt after %s, want ≥ 1.98s", gap)
	}
	eventually(t, "status counts", func() error {
		w := getEndpoint(t, ns, "flaky")
		if w.Status.Deliveries == nil || w.Status.Deliveries.Delivered != 1 || w.Status.Deliveries.Retrying != 0 || w.Status.ConsecutiveFailures != 0 {
			return fmt.Errorf("status %+v failures %d", w.Status.Deliveries, w.Status.ConsecutiveFailures)
		}
		return nil
	})
}

func TestGoneDisablesAndEnableRedelivers(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	// The handler runs on the server's goroutines while the test flips it.
	var gone atomic.Bool
	gone.Store(true)
	c := newConsumer(func(_ int, w http.ResponseWriter, _ *http.Request) {
		if gone.Load() {
			w.WriteHeader(http.StatusGone)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	srv := httptest.NewServer(c)
	defer srv.Close()
	createEndpoint(t, ns, "gone", srv.URL, []string{miraapi.EventMeetingFailed}, nil)
	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	publish(t, ns, miraapi.EventMeetingFailed, map[string]string{"meeting_id": "m1"})
	c.waitFor(t, 1)
	var w *miraapi.WebhookEndpoint
	eventually(t, "Disabled after 410", func() error {
		w = getEndpoint(t, ns, "gone")
		cond := apimeta.FindStatusCondition(w.Status.Conditions, miraapi.DisabledCondition)
		if cond == nil || cond.Status != metav1.ConditionTrue || cond.Reason != miraapi.GoneReason {
			return fmt.Errorf("Disabled %+v", cond)
		}
		// What `kubectl get whe` shows: READY False, REASON Disabled.
		ready := apimeta.FindStatusCondition(w.Status.Conditions, miraapi.ReadyCondition)
		if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != miraapi.DisabledReason {
			return fmt.Errorf("Ready %+v", ready)
		}
		return nil
	})
	waitEvent(t, ns, "gone", corev1.EventTypeWarning, miraapi.GoneReason)

	// While disabled, events are kept as skipped, not sent.
	publish(t, ns, miraapi.EventMeetingFailed, map[string]string{"meeting_id": "m2"})
	eventually(t, "skipped while disabled", func() error {
		w = getEndpoint(t, ns, "gone")
		if w.Status.Deliveries == nil || w.Status.Deliveries.Skipped != 1 || w.Status.Deliveries.Dead != 1 {
			return fmt.Errorf("counts %+v", w.Status.Deliveries)
		}
		return nil
	})
	if n := len(c.all()); n != 1 {
		t.Fatalf("a disabled endpoint received %d requests", n)
	}

	// Re-enable with the annotation, then redeliver everything since before.
	gone.Store(false)
	patch := client.MergeFrom(w.DeepCopy())
	w.Annotations = map[string]string{miraapi.EnableAnnotation: "1", miraapi.RedeliverAnnotation: "since=" + since}
	if err := k8s.Patch(ctx, w, patch); err != nil {
		t.Fatal(err)
	}
	got := c.waitFor(t, 3)
	ids := map[string]bool{}
	for _, r := range got[1:] {
		ids[r.Header.Get("webhook-id")] = true
	}
	if len(ids) != 2 {
		t.Fatalf("redelivered %d distinct deliveries, want the dead one and the skipped one", len(ids))
	}
	eventually(t, "enabled and delivered", func() error {
		w = getEndpoint(t, ns, "gone")
		cond := apimeta.FindStatusCondition(w.Status.Conditions, miraapi.DisabledCondition)
		if cond == nil || cond.Status != metav1.ConditionFalse || w.Status.Deliveries.Delivered != 2 || w.Status.Deliveries.Dead != 0 || w.Status.Deliveries.Skipped != 0 {
			return fmt.Errorf("Disabled %+v counts %+v", cond, w.Status.Deliveries)
		}
		if w.Status.HandledAnnotations[miraapi.RedeliverAnnotation] != "since="+since {
			return fmt.Errorf("handled %v", w.Status.HandledAnnotations)
		}
		if ready := apimeta.FindStatusCondition(w.Status.Conditions, miraapi.ReadyCondition); ready == nil ||
			ready.Status != metav1.ConditionTrue || ready.Reason != miraapi.ValidReason {
			return fmt.Errorf("Ready %+v after re-enabling", ready)
		}
		return nil
	})
	waitEvent(t, ns, "gone", corev1.EventTypeNormal, "Redelivered")
}

func TestTestAnnotationAndRotation(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	c := newConsumer(nil)
	srv := httptest.NewServer(c)
	defer srv.Close()
	w, oldSecret := createEndpoint(t, ns, "rot", srv.URL, []string{miraapi.EventReportCompleted}, nil)

	// A test event arrives although the endpoint does not subscribe to it.
	patch := client.MergeFrom(w.DeepCopy())
	w.Annotations = map[string]string{miraapi.TestAnnotation: "t1"}
	if err := k8s.Patch(ctx, w, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, "registry sees the annotation", func() error {
		if v := recv.Registry.Lookup(ns, "rot").Object().Annotations[miraapi.TestAnnotation]; v != "t1" {
			return fmt.Errorf("annotation %q; server has %v", v, getEndpoint(t, ns, "rot").Annotations)
		}
		return nil
	})
	got := c.waitFor(t, 1)
	verifyDelivery(t, got[0], []string{oldSecret}, miraapi.EventWebhookTest)

	// Rotate: X-Mira-Signature uses the new secret, webhook-signature
	// carries both during the grace period.
	w = getEndpoint(t, ns, "rot")
	patch = client.MergeFrom(w.DeepCopy())
	w.Annotations[miraapi.RotateSecretAnnotation] = "r1"
	if err := k8s.Patch(ctx, w, patch); err != nil {
		t.Fatal(err)
	}
	var newSecret string
	eventually(t, "rotated secret", func() error {
		newSecret = signingSecret(t, ns, "rot-signing-secret", "signingSecret")
		if newSecret == oldSecret {
			return fmt.Errorf("not rotated yet")
		}
		return nil
	})
	eventually(t, "receiver sees the rotated secret", func() error {
		cur, prev, err := recv.Registry.SigningSecrets(ctx, recv.Registry.Lookup(ns, "rot"))
		if err != nil || cur != newSecret || len(prev) != 1 {
			return fmt.Errorf("current rotated %v, previous %d, err %v", cur == newSecret, len(prev), err)
		}
		return nil
	})
	publish(t, ns, miraapi.EventReportCompleted, map[string]string{"report_id": "r2"})
	got = c.waitFor(t, 2)
	r := got[1]
	verifyDelivery(t, r, []string{newSecret, oldSecret}, miraapi.EventReportCompleted)
	if signing.VerifyMira(oldSecret, r.Body, r.Header.Get("X-Mira-Signature")) {
		t.Fatal("X-Mira-Signature still uses the old secret")
	}
	if n := len(strings.Fields(r.Header.Get("webhook-signature"))); n != 2 {
		t.Fatalf("webhook-signature has %d entries during the grace period, want 2", n)
	}
}

func TestSlowEndpointDoesNotDelayHealthyOne(t *testing.T) {
	ns := newNamespace(t)
	release := make(chan struct{})
	slow := newConsumer(func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	slowSrv := httptest.NewServer(slow)
	defer slowSrv.Close()
	defer close(release)
	fast := newConsumer(nil)
	fastSrv := httptest.NewServer(fast)
	defer fastSrv.Close()
	createEndpoint(t, ns, "slow", slowSrv.URL, []string{miraapi.EventMeetingTranscriptReady}, func(w *miraapi.WebhookEndpoint) {
		w.Spec.Delivery = &miraapi.DeliveryPolicy{MaxConcurrency: ptr.To[int32](2), Timeout: &metav1.Duration{Duration: 60 * time.Second}}
	})
	createEndpoint(t, ns, "fast", fastSrv.URL, []string{miraapi.EventMeetingTranscriptReady}, nil)
	const n = 30
	for i := 0; i < n; i++ {
		publish(t, ns, miraapi.EventMeetingTranscriptReady, map[string]string{"meeting_id": "m" + strconv.Itoa(i)})
	}
	// Every delivery to the healthy endpoint lands while the slow one still
	// hangs on its first requests.
	fast.waitFor(t, n)
	if got := len(slow.all()); got > 2 {
		t.Fatalf("the slow endpoint had %d requests in flight, above its maxConcurrency 2", got)
	}
}

func TestOutboundGuardRefusesMetadataAddress(t *testing.T) {
	ns := newNamespace(t)
	w, _ := createEndpoint(t, ns, "ssrf", "http://[::ffff:169.254.169.254]/latest/meta-data", []string{miraapi.EventMeetingFailed}, nil)
	id := publish(t, ns, miraapi.EventMeetingFailed, map[string]string{"meeting_id": "m1"})
	dlv := fanout.DeliveryID(id, string(w.UID))
	eventually(t, "delivery refused by the guard", func() error {
		resp := apiRequest(t, http.MethodGet, "/v1/deliveries/"+dlv, nil)
		defer resp.Body.Close()
		var rec datav1.Delivery
		_ = json.NewDecoder(resp.Body).Decode(&rec)
		if rec.State != datav1.StateDead || len(rec.Attempts) != 1 || rec.Attempts[0].Outcome != "Blocked" {
			return fmt.Errorf("record %+v", rec)
		}
		return nil
	})
}

func TestStatusWritesAreCoalesced(t *testing.T) {
	ns := newNamespace(t)
	c := newConsumer(nil)
	srv := httptest.NewServer(c)
	defer srv.Close()
	w, _ := createEndpoint(t, ns, "busy", srv.URL, []string{miraapi.EventAll}, nil)
	before := recv.Status.Patches(w.UID)
	start := time.Now()
	const n = 200
	for i := 0; i < n; i++ {
		publish(t, ns, miraapi.EventReportCompleted, map[string]string{"report_id": strconv.Itoa(i)})
	}
	c.waitFor(t, n)
	eventually(t, "all deliveries in status", func() error {
		w = getEndpoint(t, ns, "busy")
		if w.Status.Deliveries == nil || w.Status.Deliveries.Delivered != n {
			return fmt.Errorf("counts %+v", w.Status.Deliveries)
		}
		return nil
	})
	elapsed := time.Since(start)
	patches := recv.Status.Patches(w.UID) - before
	limit := int(elapsed/(200*time.Millisecond)) + 2
	if patches > limit || patches < 1 {
		t.Fatalf("%d status writes for %d deliveries in %s; at most %d allowed at one per 200ms", patches, n, elapsed, limit)
	}
	if len(w.Status.RecentAttempts) != 10 {
		t.Fatalf("recentAttempts has %d entries, want the last 10", len(w.Status.RecentAttempts))
	}
}

func TestAPIAuthAndValidation(t *testing.T) {
	tests := []struct {
		name, token, body string
		want              int
	}{
		{"no token", "", `{"event":"report.completed","data":{}}`, 401},
		{"wrong token", "nope", `{"event":"report.completed","data":{}}`, 401},
		{"unknown event", apiToken, `{"event":"report.deleted","data":{}}`, 400},
		{"data not an object", apiToken, `{"event":"report.completed","data":[1]}`, 400},
		{"invalid JSON", apiToken, `{"event":`, 400},
		{"too large", apiToken, `{"event":"report.completed","data":{"x":"` + strings.Repeat("a", 2<<20) + `"}}`, 413},
		{"ok", apiToken, `{"event":"report.completed","data":{"report_id":"x"}}`, 202},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, recvURL+"/v1/events", strings.NewReader(tt.body))
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

func waitEvent(t *testing.T, ns, name, eventType, reason string) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s Event %s", eventType, reason), func() error {
		var list eventsv1.EventList
		if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Regarding.Name == name && e.Type == eventType && e.Reason == reason {
				return nil
			}
		}
		return fmt.Errorf("not among %d events", len(list.Items))
	})
}
