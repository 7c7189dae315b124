package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/signing"
	"github.com/mira/mira-operator/internal/statuspatch"
)

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "whe-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func endpoint(ns, name string, mutate func(*miraapi.WebhookEndpoint)) *miraapi.WebhookEndpoint {
	w := &miraapi.WebhookEndpoint{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: miraapi.WebhookEndpointSpec{
			URL:    "https://hooks.example.com/mira",
			Events: []string{miraapi.EventReportCompleted},
		},
	}
	if mutate != nil {
		mutate(w)
	}
	return w
}

func get(t *testing.T, ns, name string) *miraapi.WebhookEndpoint {
	t.Helper()
	w := &miraapi.WebhookEndpoint{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, w); err != nil {
		t.Fatal(err)
	}
	return w
}

// waitReady waits until Ready has the given status and reason for the
// object's current generation, and returns the object.
func waitReady(t *testing.T, ns, name string, status metav1.ConditionStatus, reason string) *miraapi.WebhookEndpoint {
	t.Helper()
	var w *miraapi.WebhookEndpoint
	eventually(t, fmt.Sprintf("%s/%s Ready=%s/%s", ns, name, status, reason), func() error {
		w = get(t, ns, name)
		c := apimeta.FindStatusCondition(w.Status.Conditions, miraapi.ReadyCondition)
		if c == nil {
			return fmt.Errorf("no Ready condition yet")
		}
		if c.Status != status || c.Reason != reason || c.ObservedGeneration != w.Generation {
			return fmt.Errorf("Ready=%s/%s (gen %d of %d): %s", c.Status, c.Reason, c.ObservedGeneration, w.Generation, c.Message)
		}
		return nil
	})
	return w
}

func TestGeneratedSigningSecret(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, endpoint(ns, "gen", nil)); err != nil {
		t.Fatal(err)
	}
	w := waitReady(t, ns, "gen", metav1.ConditionTrue, miraapi.ValidReason)

	if w.Status.SigningSecretRef == nil || *w.Status.SigningSecretRef != (miraapi.SecretKeyReference{Name: "gen-signing-secret", Key: "signingSecret"}) {
		t.Fatalf("status.signingSecretRef = %+v", w.Status.SigningSecretRef)
	}
	if w.Status.TargetURL != "https://hooks.example.com/mira" || w.Status.ObservedGeneration != 1 {
		t.Fatalf("targetURL %q observedGeneration %d", w.Status.TargetURL, w.Status.ObservedGeneration)
	}
	s := &corev1.Secret{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "gen-signing-secret"}, s); err != nil {
		t.Fatal(err)
	}
	if !metav1.IsControlledBy(s, w) {
		t.Fatalf("generated Secret is not controlled by the endpoint: %+v", s.OwnerReferences)
	}
	value := string(s.Data["signingSecret"])
	if !strings.HasPrefix(value, "whsec_") || len(signing.StandardKey(value)) != 32 {
		t.Fatalf("generated secret %d chars: want whsec_ + base64 of 32 bytes", len(value))
	}
	// The secret value never shows in status or conditions.
	for _, c := range w.Status.Conditions {
		if strings.Contains(c.Message, value) {
			t.Fatal("secret value leaked into a condition")
		}
	}
	waitEvent(t, ns, "gen", corev1.EventTypeNormal, miraapi.SecretGeneratedReason)
	waitEvent(t, ns, "gen", corev1.EventTypeNormal, miraapi.ValidReason)

	// A second reconcile (e.g. after a restart) keeps the same secret.
	patch := client.MergeFrom(w.DeepCopy())
	w.Spec.Events = []string{miraapi.EventAll}
	if err := k8s.Patch(ctx, w, patch); err != nil {
		t.Fatal(err)
	}
	w = waitReady(t, ns, "gen", metav1.ConditionTrue, miraapi.ValidReason)
	if w.Status.ObservedGeneration != 2 {
		t.Fatalf("observedGeneration = %d, want 2", w.Status.ObservedGeneration)
	}
	s2 := &corev1.Secret{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "gen-signing-secret"}, s2); err != nil {
		t.Fatal(err)
	}
	if string(s2.Data["signingSecret"]) != value {
		t.Fatal("the generated secret changed without a rotation request")
	}
}

func TestRotateGeneratedSecret(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, endpoint(ns, "rot", nil)); err != nil {
		t.Fatal(err)
	}
	w := waitReady(t, ns, "rot", metav1.ConditionTrue, miraapi.ValidReason)
	key := types.NamespacedName{Namespace: ns, Name: "rot-signing-secret"}
	before := &corev1.Secret{}
	if err := k8s.Get(ctx, key, before); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(w.DeepCopy())
	w.Annotations = map[string]string{miraapi.RotateSecretAnnotation: "r1"}
	if err := k8s.Patch(ctx, w, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, "rotation recorded in status", func() error {
		if got := get(t, ns, "rot").Status.HandledAnnotations[miraapi.RotateSecretAnnotation]; got != "r1" {
			return fmt.Errorf("handled rotation %q", got)
		}
		return nil
	})
	after := &corev1.Secret{}
	if err := k8s.Get(ctx, key, after); err != nil {
		t.Fatal(err)
	}
	if string(after.Data["signingSecret"]) == string(before.Data["signingSecret"]) {
		t.Fatal("secret not rotated")
	}
	if string(after.Data["previousSigningSecret"]) != string(before.Data["signingSecret"]) {
		t.Fatal("previous secret not kept for the grace period")
	}
	if after.Annotations[miraapi.RotatedAtAnnotation] == "" {
		t.Fatal("rotated-at annotation missing")
	}
	waitEvent(t, ns, "rot", corev1.EventTypeNormal, "SecretRotated")
}

func TestMissingSecretThenCreated(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	w := endpoint(ns, "byo", func(w *miraapi.WebhookEndpoint) {
		w.Spec.SecretRef = &miraapi.SecretKeyReference{Name: "byo-secret", Key: "token"}
	})
	if err := k8s.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	w = waitReady(t, ns, "byo", metav1.ConditionFalse, miraapi.SecretNotFoundReason)
	waitEvent(t, ns, "byo", corev1.EventTypeWarning, miraapi.SecretNotFoundReason)
	specVersion := w.Generation

	// A Secret without the key: SecretKeyMissing.
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "byo-secret"}, StringData: map[string]string{"other": "x"}}
	if err := k8s.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "byo", metav1.ConditionFalse, miraapi.SecretKeyMissingReason)

	// Adding the key turns the endpoint Ready without touching the endpoint.
	patch := client.MergeFrom(s.DeepCopy())
	s.StringData = map[string]string{"token": "my-own-secret"}
	if err := k8s.Patch(ctx, s, patch); err != nil {
		t.Fatal(err)
	}
	w = waitReady(t, ns, "byo", metav1.ConditionTrue, miraapi.ValidReason)
	if w.Generation != specVersion {
		t.Fatalf("endpoint generation changed from %d to %d", specVersion, w.Generation)
	}
	if *w.Status.SigningSecretRef != (miraapi.SecretKeyReference{Name: "byo-secret", Key: "token"}) {
		t.Fatalf("signingSecretRef %+v", w.Status.SigningSecretRef)
	}
	// A referenced Secret is never written by the operator.
	got := &corev1.Secret{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(s), got); err != nil {
		t.Fatal(err)
	}
	if string(got.Data["token"]) != "my-own-secret" || len(got.OwnerReferences) != 0 {
		t.Fatalf("referenced Secret was modified: %v owners %v", got.Data, got.OwnerReferences)
	}
	waitEvent(t, ns, "byo", corev1.EventTypeNormal, miraapi.ValidReason)
}

func TestServiceTarget(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	w := endpoint(ns, "svc", func(w *miraapi.WebhookEndpoint) {
		w.Spec.URL = ""
		w.Spec.Service = &miraapi.ServiceReference{Name: "consumer", Port: ptr.To[int32](8443), Path: "/hooks"}
	})
	if err := k8s.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "svc", metav1.ConditionFalse, miraapi.ServiceNotFoundReason)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "consumer"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 8443}}},
	}
	if err := k8s.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	w = waitReady(t, ns, "svc", metav1.ConditionTrue, miraapi.ValidReason)
	if want := "https://consumer." + ns + ".svc:8443/hooks"; w.Status.TargetURL != want {
		t.Fatalf("targetURL = %q, want %q", w.Status.TargetURL, want)
	}
	// Defaults: same namespace, http → port 80, path /.
	w2 := endpoint(ns, "svc2", func(w *miraapi.WebhookEndpoint) {
		w.Spec.URL = ""
		w.Spec.Service = &miraapi.ServiceReference{Name: "local", Scheme: "http"}
	})
	if err := k8s.Create(ctx, w2); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "local"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}); err != nil {
		t.Fatal(err)
	}
	w2 = waitReady(t, ns, "svc2", metav1.ConditionTrue, miraapi.ValidReason)
	if want := "http://local." + ns + ".svc:80/"; w2.Status.TargetURL != want {
		t.Fatalf("targetURL = %q, want %q", w2.Status.TargetURL, want)
	}
}

func TestInsecureURLAndSuspend(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, endpoint(ns, "plain", func(w *miraapi.WebhookEndpoint) { w.Spec.URL = "http://hooks.example.com/x" })); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "plain", metav1.ConditionFalse, miraapi.InsecureURLReason)

	if err := k8s.Create(ctx, endpoint(ns, "paused", func(w *miraapi.WebhookEndpoint) { w.Spec.Suspend = true })); err != nil {
		t.Fatal(err)
	}
	w := waitReady(t, ns, "paused", metav1.ConditionFalse, miraapi.SuspendedReason)
	patch := client.MergeFrom(w.DeepCopy())
	w.Spec.Suspend = false
	if err := k8s.Patch(ctx, w, patch); err != nil {
		t.Fatal(err)
	}
	w = waitReady(t, ns, "paused", metav1.ConditionTrue, miraapi.ValidReason)
	if w.Status.ObservedGeneration != 2 {
		t.Fatalf("observedGeneration = %d, want 2", w.Status.ObservedGeneration)
	}
}

func TestNoStatusWriteWhenNothingChanged(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, endpoint(ns, "steady", nil)); err != nil {
		t.Fatal(err)
	}
	w := waitReady(t, ns, "steady", metav1.ConditionTrue, miraapi.ValidReason)
	rv := w.ResourceVersion

	// Touch the generated Secret: the Secret watch reconciles the endpoint.
	before := reconcileCount(t, "webhookendpoint")
	s := &corev1.Secret{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "steady-signing-secret"}, s); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(s.DeepCopy())
	s.Labels["touched"] = "yes"
	if err := k8s.Patch(ctx, s, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, "reconcile after the Secret changed", func() error {
		if reconcileCount(t, "webhookendpoint") <= before {
			return fmt.Errorf("no reconcile yet")
		}
		return nil
	})
	if got := get(t, ns, "steady").ResourceVersion; got != rv {
		t.Fatalf("a reconcile with nothing to change wrote the endpoint: resourceVersion %s -> %s", rv, got)
	}
}

func TestCELRejectsBadSpecs(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	dur := func(s string) *metav1.Duration {
		d, err := timeParse(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	tests := []struct {
		name   string
		mutate func(*miraapi.WebhookEndpoint)
		want   string
	}{
		{"both url and service", func(w *miraapi.WebhookEndpoint) { w.Spec.Service = &miraapi.ServiceReference{Name: "x"} }, "url and service are mutually exclusive"},
		{"neither url nor service", func(w *miraapi.WebhookEndpoint) { w.Spec.URL = "" }, "one of url or service is required"},
		{"unknown event", func(w *miraapi.WebhookEndpoint) { w.Spec.Events = []string{"report.deleted"} }, `Unsupported value: "report.deleted"`},
		{"duplicate events", func(w *miraapi.WebhookEndpoint) {
			w.Spec.Events = []string{miraapi.EventMeetingFailed, miraapi.EventMeetingFailed}
		}, "events must not contain duplicates"},
		{"star with others", func(w *miraapi.WebhookEndpoint) { w.Spec.Events = []string{"*", miraapi.EventMeetingFailed} }, "'*' subscribes to every product event and may only be combined with operational events"},
		{"no events", func(w *miraapi.WebhookEndpoint) { w.Spec.Events = nil }, "spec.events"},
		{"relative url", func(w *miraapi.WebhookEndpoint) { w.Spec.URL = "/hooks" }, "url must be an absolute http:// or https:// URL"},
		{"ftp url", func(w *miraapi.WebhookEndpoint) { w.Spec.URL = "ftp://example.com/x" }, "url must be an absolute http:// or https:// URL"},
		{"timeout too long", func(w *miraapi.WebhookEndpoint) {
			w.Spec.Delivery = &miraapi.DeliveryPolicy{Timeout: dur("2m")}
		}, "delivery.timeout must be between 1s and 60s"},
		{"timeout too short", func(w *miraapi.WebhookEndpoint) {
			w.Spec.Delivery = &miraapi.DeliveryPolicy{Timeout: dur("100ms")}
		}, "delivery.timeout must be between 1s and 60s"},
		{"retry duration too long", func(w *miraapi.WebhookEndpoint) {
			w.Spec.Delivery = &miraapi.DeliveryPolicy{MaxRetryDuration: dur("200h")}
		}, "delivery.maxRetryDuration must be between 1m and 168h"},
		{"backoff initial above max", func(w *miraapi.WebhookEndpoint) {
			w.Spec.Delivery = &miraapi.DeliveryPolicy{Backoff: &miraapi.BackoffPolicy{Initial: dur("10m"), Max: dur("1m")}}
		}, "backoff.initial must not exceed backoff.max"},
		{"zero attempts", func(w *miraapi.WebhookEndpoint) {
			w.Spec.Delivery = &miraapi.DeliveryPolicy{MaxAttempts: ptr.To[int32](0)}
		}, "spec.delivery.maxAttempts"},
		{"secretRef key without name", func(w *miraapi.WebhookEndpoint) {
			w.Spec.SecretRef = &miraapi.SecretKeyReference{Key: "token"}
		}, "secretRef.key needs secretRef.name"},
		{"service path without slash", func(w *miraapi.WebhookEndpoint) {
			w.Spec.URL = ""
			w.Spec.Service = &miraapi.ServiceReference{Name: "x", Path: "hooks"}
		}, "service.path must start with '/'"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := endpoint(ns, fmt.Sprintf("bad-%d", i), tt.mutate)
			err := k8s.Create(ctx, w)
			if err == nil {
				t.Fatalf("accepted a bad spec")
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// condition returns one condition of the stored object, failing when absent.
func condition(t *testing.T, w *miraapi.WebhookEndpoint, typ string) metav1.Condition {
	t.Helper()
	c := apimeta.FindStatusCondition(w.Status.Conditions, typ)
	if c == nil {
		t.Fatalf("no %s condition in %+v", typ, w.Status.Conditions)
	}
	return *c
}

func TestKstatusConditions(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	// Waiting for a Secret is in progress, not failed.
	if err := k8s.Create(ctx, endpoint(ns, "waits", func(w *miraapi.WebhookEndpoint) {
		w.Spec.SecretRef = &miraapi.SecretKeyReference{Name: "later"}
	})); err != nil {
		t.Fatal(err)
	}
	w := waitReady(t, ns, "waits", metav1.ConditionFalse, miraapi.SecretNotFoundReason)
	if c := condition(t, w, miraapi.ReconcilingCondition); c.Status != metav1.ConditionTrue || c.Reason != miraapi.SecretNotFoundReason {
		t.Fatalf("Reconciling %+v, want True/SecretNotFound", c)
	}
	if c := condition(t, w, miraapi.StalledCondition); c.Status != metav1.ConditionFalse {
		t.Fatalf("Stalled %+v, want False", c)
	}
	// A spec only a person can fix is stalled.
	if err := k8s.Create(ctx, endpoint(ns, "plain", func(w *miraapi.WebhookEndpoint) { w.Spec.URL = "http://hooks.example.com/x" })); err != nil {
		t.Fatal(err)
	}
	w = waitReady(t, ns, "plain", metav1.ConditionFalse, miraapi.InsecureURLReason)
	if c := condition(t, w, miraapi.StalledCondition); c.Status != metav1.ConditionTrue || c.Reason != miraapi.InsecureURLReason {
		t.Fatalf("Stalled %+v, want True/InsecureURL", c)
	}
	if c := condition(t, w, miraapi.ReconcilingCondition); c.Status != metav1.ConditionFalse {
		t.Fatalf("Reconciling %+v, want False", c)
	}
}

// receiverHealth writes the receiver-owned conditions the way the receiver
// does (server-side apply, its own field manager).
func receiverHealth(t *testing.T, w *miraapi.WebhookEndpoint, degraded, disabled bool) {
	t.Helper()
	status := func(b bool) metav1.ConditionStatus {
		if b {
			return metav1.ConditionTrue
		}
		return metav1.ConditionFalse
	}
	now := metav1.Now()
	conds := []metav1.Condition{
		{Type: miraapi.DegradedCondition, Status: status(degraded), Reason: miraapi.DeliveriesFailingReason, Message: "5 consecutive failed attempts", ObservedGeneration: w.Generation, LastTransitionTime: now},
		{Type: miraapi.DisabledCondition, Status: status(disabled), Reason: miraapi.GoneReason, Message: "the endpoint answered 410 Gone", ObservedGeneration: w.Generation, LastTransitionTime: now},
	}
	if err := statuspatch.Apply(context.Background(), k8s, miraapi.GroupVersion.WithKind("WebhookEndpoint"), w.Namespace, w.Name,
		&miraapi.WebhookEndpointStatus{Conditions: conds}, miraapi.ReceiverFieldManager); err != nil {
		t.Fatal(err)
	}
}

func TestReadyFollowsDeliveryHealth(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, endpoint(ns, "health", nil)); err != nil {
		t.Fatal(err)
	}
	w := waitReady(t, ns, "health", metav1.ConditionTrue, miraapi.ValidReason)

	receiverHealth(t, w, true, false)
	w = waitReady(t, ns, "health", metav1.ConditionTrue, miraapi.DegradedReason)

	receiverHealth(t, w, true, true)
	w = waitReady(t, ns, "health", metav1.ConditionFalse, miraapi.DisabledReason)
	if c := condition(t, w, miraapi.StalledCondition); c.Status != metav1.ConditionTrue || c.Reason != miraapi.DisabledReason {
		t.Fatalf("Stalled %+v, want True/Disabled", c)
	}
	if c := condition(t, w, miraapi.ReadyCondition); !strings.Contains(c.Message, "410 Gone") {
		t.Fatalf("Ready message %q does not say why", c.Message)
	}
	// The receiver's conditions survive the controller's writes (one field
	// manager each).
	if c := condition(t, w, miraapi.DisabledCondition); c.Status != metav1.ConditionTrue {
		t.Fatalf("Disabled %+v was overwritten", c)
	}

	// Re-enabled by the receiver: Ready again.
	receiverHealth(t, w, false, false)
	w = waitReady(t, ns, "health", metav1.ConditionTrue, miraapi.ValidReason)

	// Disabled, then the spec changes: a spec change re-enables, so a Disabled
	// condition of the previous generation no longer counts.
	receiverHealth(t, w, false, true)
	w = waitReady(t, ns, "health", metav1.ConditionFalse, miraapi.DisabledReason)
	patch := client.MergeFrom(w.DeepCopy())
	w.Spec.Events = []string{miraapi.EventAll}
	if err := k8s.Patch(ctx, w, patch); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "health", metav1.ConditionTrue, miraapi.ValidReason)
}

func TestKeyOnlySecretRefSettles(t *testing.T) {
	// A key-only secretRef with a key other than signingSecret is refused at
	// admission (TestCELRejectsBadSpecs); naming the default key is allowed
	// and must settle: the generated Secret is written once, never again.
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, endpoint(ns, "keyonly", func(w *miraapi.WebhookEndpoint) {
		w.Spec.SecretRef = &miraapi.SecretKeyReference{Key: miraapi.SigningSecretKey}
	})); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "keyonly", metav1.ConditionTrue, miraapi.ValidReason)
	s := &corev1.Secret{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "keyonly-signing-secret"}, s); err != nil {
		t.Fatal(err)
	}
	rv := s.ResourceVersion
	// Another reconcile (the Secret watch) writes nothing.
	before := reconcileCount(t, "webhookendpoint")
	w := get(t, ns, "keyonly")
	patch := client.MergeFrom(w.DeepCopy())
	w.Annotations = map[string]string{"touch": "1"}
	if err := k8s.Patch(ctx, w, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, "reconcile after the annotation changed", func() error {
		if reconcileCount(t, "webhookendpoint") <= before {
			return fmt.Errorf("no reconcile yet")
		}
		return nil
	})
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "keyonly-signing-secret"}, s); err != nil {
		t.Fatal(err)
	}
	if s.ResourceVersion != rv {
		t.Fatalf("the generated Secret was rewritten: resourceVersion %s -> %s", rv, s.ResourceVersion)
	}
}

func waitEvent(t *testing.T, ns, name, eventType, reason string) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s Event %s for %s", eventType, reason, name), func() error {
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

// A Service in another namespace is refused unless the manager runs with
// --allow-cross-namespace-targets (the suite's manager does not), even
// when the Service exists.
func TestCrossNamespaceServiceTargetIsNotReady(t *testing.T) {
	ctx := context.Background()
	ns, other := newNamespace(t), newNamespace(t)
	if err := k8s.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "consumer"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 443}}}}); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, endpoint(ns, "xns", func(w *miraapi.WebhookEndpoint) {
		w.Spec.URL = ""
		w.Spec.Service = &miraapi.ServiceReference{Name: "consumer", Namespace: other}
	})); err != nil {
		t.Fatal(err)
	}
	w := waitReady(t, ns, "xns", metav1.ConditionFalse, miraapi.CrossNamespaceTargetReason)
	if c := condition(t, w, miraapi.ReadyCondition); !strings.Contains(c.Message, "--allow-cross-namespace-targets") {
		t.Fatalf("Ready message %q does not say how to allow it", c.Message)
	}
	if w.Status.TargetURL != "" {
		t.Fatalf("a refused target is shown as %q", w.Status.TargetURL)
	}
}

// An ExternalName Service can resolve to any address (a metadata address
// included) and is refused; turning it into a ClusterIP Service makes the
// endpoint Ready (the Service watch sees the type change).
func TestExternalNameServiceIsRefused(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ext"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "metadata.google.internal"}}
	if err := k8s.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, endpoint(ns, "ext", func(w *miraapi.WebhookEndpoint) {
		w.Spec.URL = ""
		w.Spec.Service = &miraapi.ServiceReference{Name: "ext"}
	})); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "ext", metav1.ConditionFalse, miraapi.ExternalNameServiceReason)
	if err := k8s.Delete(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ext"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 443}}}}); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "ext", metav1.ConditionTrue, miraapi.ValidReason)
}
