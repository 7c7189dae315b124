package controllers_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

func TestHeadersSecretValidation(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, endpoint(ns, "hdr", func(w *miraapi.WebhookEndpoint) {
		w.Spec.HeadersSecretRef = &miraapi.LocalSecretReference{Name: "hdr-headers"}
	})); err != nil {
		t.Fatal(err)
	}
	// A missing Secret is waited for, like a missing signing Secret.
	waitReady(t, ns, "hdr", metav1.ConditionFalse, miraapi.SecretNotFoundReason)

	// A reserved header is refused, naming the key and never the value.
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hdr-headers"},
		Data: map[string][]byte{"Authorization": []byte("Bearer s3cr3t-token"), "x-mira-signature": []byte("forged-s3cr3t")}}
	if err := k8s.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	w := waitReady(t, ns, "hdr", metav1.ConditionFalse, miraapi.InvalidHeadersReason)
	for _, c := range w.Status.Conditions {
		if strings.Contains(c.Message, "s3cr3t") {
			t.Fatalf("condition %s shows a header value: %q", c.Type, c.Message)
		}
	}
	ready := findCondition(w, miraapi.ReadyCondition)
	if !strings.Contains(ready.Message, `"x-mira-signature"`) {
		t.Fatalf("Ready message %q does not name the offending key", ready.Message)
	}

	// Fixing the Secret reconciles the endpoint (the Secret is watched).
	secret.Data = map[string][]byte{"Authorization": []byte("Bearer s3cr3t-token"), "X-Api-Key": []byte("k")}
	if err := k8s.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "hdr", metav1.ConditionTrue, miraapi.ValidReason)
}

func TestFilterValidation(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, endpoint(ns, "flt", func(w *miraapi.WebhookEndpoint) {
		w.Spec.Filter = `event.data.user_id in ["usr_1",`
	})); err != nil {
		t.Fatal(err)
	}
	w := waitReady(t, ns, "flt", metav1.ConditionFalse, miraapi.InvalidFilterReason)
	if msg := findCondition(w, miraapi.ReadyCondition).Message; !strings.Contains(msg, "Syntax error") {
		t.Fatalf("Ready message %q lacks the compiler's message", msg)
	}
	w.Spec.Filter = `event.data.user_id in ["usr_1", "usr_2"]`
	if err := k8s.Update(ctx, w); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "flt", metav1.ConditionTrue, miraapi.ValidReason)
}

func TestOperationalEventSubscriptions(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	// "*" combines with operational events only.
	if err := k8s.Create(ctx, endpoint(ns, "ops", func(w *miraapi.WebhookEndpoint) {
		w.Spec.Events = []string{"*", miraapi.EventEndpointDisabled, miraapi.EventDeliveryDead}
	})); err != nil {
		t.Fatalf("'*' with operational events refused: %v", err)
	}
	err := k8s.Create(ctx, endpoint(ns, "bad", func(w *miraapi.WebhookEndpoint) {
		w.Spec.Events = []string{"*", miraapi.EventReportCompleted}
	}))
	if err == nil || !strings.Contains(err.Error(), "may only be combined with operational events") {
		t.Fatalf("create error = %v, want the '*' rule", err)
	}
}

func findCondition(w *miraapi.WebhookEndpoint, typ string) metav1.Condition {
	for _, c := range w.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return metav1.Condition{}
}
