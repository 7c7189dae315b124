package controllers_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

// A token in the target URL's query never shows in status.targetURL (the
// TARGET column), the Ready message or Events.
func TestTargetURLIsRedacted(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, endpoint(ns, "tok", func(w *miraapi.WebhookEndpoint) {
		w.Spec.URL = "https://hooks.example.com/mira?token=s3cr3t-value&team=a"
	})); err != nil {
		t.Fatal(err)
	}
	w := waitReady(t, ns, "tok", metav1.ConditionTrue, miraapi.ValidReason)
	if want := "https://hooks.example.com/mira?team=redacted&token=redacted"; w.Status.TargetURL != want {
		t.Fatalf("status.targetURL = %q, want %q", w.Status.TargetURL, want)
	}
	ready := condition(t, w, miraapi.ReadyCondition)
	if strings.Contains(ready.Message, "s3cr3t") || !strings.Contains(ready.Message, "token=redacted") {
		t.Fatalf("Ready message %q", ready.Message)
	}
	waitEvent(t, ns, "tok", corev1.EventTypeNormal, miraapi.ValidReason)
	var list eventsv1.EventList
	if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if strings.Contains(e.Note, "s3cr3t") {
			t.Fatalf("Event %s shows the token: %q", e.Reason, e.Note)
		}
	}
}
