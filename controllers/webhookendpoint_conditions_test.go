package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

func TestEndpointConditions(t *testing.T) {
	const (
		T = metav1.ConditionTrue
		F = metav1.ConditionFalse
		U = metav1.ConditionUnknown
	)
	healthy := miraapi.DeliveryHealth{}
	degraded := miraapi.DeliveryHealth{Degraded: true, DegradedMessage: "5 consecutive failed attempts"}
	disabled := miraapi.DeliveryHealth{Disabled: true, DisabledMessage: "the endpoint answered 410 Gone"}
	both := miraapi.DeliveryHealth{Degraded: true, Disabled: true, DisabledMessage: "failing for 72h0m0s"}

	type want struct {
		ready                         metav1.ConditionStatus
		readyReason                   string
		reconciling, stalled          metav1.ConditionStatus
		reconcilingReason, stalledWhy string
	}
	cases := []struct {
		name   string
		reason string
		health miraapi.DeliveryHealth
		want   want
	}{
		{"valid healthy", miraapi.ValidReason, healthy, want{T, miraapi.ValidReason, F, F, miraapi.ReconciledReason, miraapi.ReconciledReason}},
		{"valid degraded", miraapi.ValidReason, degraded, want{T, miraapi.DegradedReason, F, F, miraapi.ReconciledReason, miraapi.ReconciledReason}},
		{"valid disabled", miraapi.ValidReason, disabled, want{F, miraapi.DisabledReason, F, T, miraapi.ReconciledReason, miraapi.DisabledReason}},
		{"valid disabled and degraded", miraapi.ValidReason, both, want{F, miraapi.DisabledReason, F, T, miraapi.ReconciledReason, miraapi.DisabledReason}},
		{"suspended healthy", miraapi.SuspendedReason, healthy, want{F, miraapi.SuspendedReason, F, F, miraapi.ReconciledReason, miraapi.ReconciledReason}},
		{"suspended while disabled", miraapi.SuspendedReason, disabled, want{F, miraapi.SuspendedReason, F, F, miraapi.ReconciledReason, miraapi.ReconciledReason}},
		{"suspended while degraded", miraapi.SuspendedReason, degraded, want{F, miraapi.SuspendedReason, F, F, miraapi.ReconciledReason, miraapi.ReconciledReason}},
		{"secret missing", miraapi.SecretNotFoundReason, healthy, want{F, miraapi.SecretNotFoundReason, T, F, miraapi.SecretNotFoundReason, miraapi.ReconciledReason}},
		{"secret missing while disabled", miraapi.SecretNotFoundReason, disabled, want{F, miraapi.SecretNotFoundReason, T, F, miraapi.SecretNotFoundReason, miraapi.ReconciledReason}},
		{"secret key missing", miraapi.SecretKeyMissingReason, degraded, want{F, miraapi.SecretKeyMissingReason, T, F, miraapi.SecretKeyMissingReason, miraapi.ReconciledReason}},
		{"service missing", miraapi.ServiceNotFoundReason, healthy, want{F, miraapi.ServiceNotFoundReason, T, F, miraapi.ServiceNotFoundReason, miraapi.ReconciledReason}},
		{"invalid spec", miraapi.InvalidSpecReason, healthy, want{F, miraapi.InvalidSpecReason, F, T, miraapi.ReconciledReason, miraapi.InvalidSpecReason}},
		{"insecure url while disabled", miraapi.InsecureURLReason, disabled, want{F, miraapi.InsecureURLReason, F, T, miraapi.ReconciledReason, miraapi.InsecureURLReason}},
		{"transient error", miraapi.ProgressingReason, healthy, want{U, miraapi.ProgressingReason, T, F, miraapi.ProgressingReason, miraapi.ReconciledReason}},
		{"transient error while degraded", miraapi.ProgressingReason, degraded, want{U, miraapi.ProgressingReason, T, F, miraapi.ProgressingReason, miraapi.ReconciledReason}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ready, rec, stalled := endpointConditions(c.reason, "config message", c.health, 7)
			got := want{ready.Status, ready.Reason, rec.Status, stalled.Status, rec.Reason, stalled.Reason}
			if got != c.want {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
			for _, cond := range []metav1.Condition{ready, rec, stalled} {
				if cond.ObservedGeneration != 7 {
					t.Fatalf("%s observedGeneration %d, want 7", cond.Type, cond.ObservedGeneration)
				}
				if cond.Message == "" {
					t.Fatalf("%s has no message", cond.Type)
				}
			}
			if c.want.readyReason == miraapi.DisabledReason && ready.Message == stalled.Message && ready.Message != "" {
				if want := "the receiver disabled deliveries: " + c.health.DisabledMessage; ready.Message[:len(want)] != want {
					t.Fatalf("Disabled message %q does not carry the receiver's reason", ready.Message)
				}
			}
			if stateOf(c.reason) != configValid && ready.Message != "config message" {
				t.Fatalf("Ready message %q, want the configuration message", ready.Message)
			}
		})
	}
}

// An object stored before the CEL rule on secretRef existed (key without
// name) must not make the controller rewrite the generated Secret: it is
// refused before any Secret is read or written (APIReader is nil here, so a
// read would panic).
func TestKeyWithoutNameNeverTouchesSecrets(t *testing.T) {
	r := &WebhookEndpointReconciler{}
	obj := &miraapi.WebhookEndpoint{Spec: miraapi.WebhookEndpointSpec{SecretRef: &miraapi.SecretKeyReference{Key: "token"}}}
	obj.Name = "legacy"
	var out endpointOutcome
	if r.reconcileSigningSecret(t.Context(), obj, &out) {
		t.Fatal("a key-only secretRef was accepted")
	}
	if out.reason != miraapi.InvalidSpecReason || stateOf(out.reason) != configInvalid {
		t.Fatalf("reason %q, want %q (stalled)", out.reason, miraapi.InvalidSpecReason)
	}
}
