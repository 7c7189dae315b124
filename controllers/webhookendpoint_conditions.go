package controllers

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

// configState classifies what a reconcile concluded about configuration.
type configState int

const (
	// configValid: deliveries can be attempted as far as configuration goes.
	configValid configState = iota
	// configTransient: an API error; the reconcile is retried with backoff.
	configTransient
	// configWaiting: a referenced Secret or Service (or one of its keys) does
	// not exist yet; the endpoint becomes Ready once it does.
	configWaiting
	// configInvalid: only a spec change can fix it.
	configInvalid
	// configSuspended: spec.suspend is set.
	configSuspended
)

// stateOf maps a controller reason to its configuration state.
func stateOf(reason string) configState {
	switch reason {
	case miraapi.ValidReason:
		return configValid
	case miraapi.ProgressingReason:
		return configTransient
	case miraapi.SecretNotFoundReason, miraapi.SecretKeyMissingReason, miraapi.ServiceNotFoundReason:
		return configWaiting
	case miraapi.SuspendedReason:
		return configSuspended
	default:
		return configInvalid
	}
}

// endpointConditions computes Ready, Reconciling and Stalled from the
// controller's configuration outcome and the receiver's delivery health. It
// is the one place that decides what Ready means (docs/crd-reference.md):
//
//	configuration            delivery health  Ready                Reconciling  Stalled
//	transient API error      any              Unknown Progressing  True         False
//	Secret/Service missing   any              False   <reason>     True         False
//	invalid spec             any              False   <reason>     False        True
//	suspended                any              False   Suspended    False        False
//	valid                    disabled         False   Disabled     False        True
//	valid                    degraded         True    Degraded     False        False
//	valid                    healthy          True    Valid        False        False
//
// kstatus (and so Flux health checks) reads Reconciling=True as InProgress
// and Stalled=True as Failed; `kubectl wait --for=condition=Ready` and the
// Argo CD health check read Ready.
func endpointConditions(reason, message string, h miraapi.DeliveryHealth, generation int64) (ready, reconciling, stalled metav1.Condition) {
	ready = metav1.Condition{Type: miraapi.ReadyCondition, Status: metav1.ConditionFalse, Reason: reason, Message: message, ObservedGeneration: generation}
	reconciling = metav1.Condition{Type: miraapi.ReconcilingCondition, Status: metav1.ConditionFalse, Reason: miraapi.ReconciledReason,
		Message: "the controller is not working on this endpoint", ObservedGeneration: generation}
	stalled = metav1.Condition{Type: miraapi.StalledCondition, Status: metav1.ConditionFalse, Reason: miraapi.ReconciledReason,
		Message: "nothing blocks this endpoint", ObservedGeneration: generation}
	switch stateOf(reason) {
	case configTransient:
		ready.Status = metav1.ConditionUnknown
		reconciling.Status, reconciling.Reason, reconciling.Message = metav1.ConditionTrue, reason, message
	case configWaiting:
		reconciling.Status, reconciling.Reason, reconciling.Message = metav1.ConditionTrue, reason, message
	case configInvalid:
		stalled.Status, stalled.Reason, stalled.Message = metav1.ConditionTrue, reason, message
	case configSuspended:
		// As declared: nothing in progress, nothing failed.
	case configValid:
		switch {
		case h.Disabled:
			msg := "the receiver disabled deliveries: " + h.DisabledMessage +
				"; re-enable with `kubectl mira enable` or by changing the spec"
			ready.Reason, ready.Message = miraapi.DisabledReason, msg
			stalled.Status, stalled.Reason, stalled.Message = metav1.ConditionTrue, miraapi.DisabledReason, msg
		case h.Degraded:
			// The Degraded condition carries the changing details (failure
			// count, since when); Ready changes only on the transition.
			ready.Status, ready.Reason = metav1.ConditionTrue, miraapi.DegradedReason
			ready.Message = "deliveries keep failing (see the Degraded condition and `kubectl mira deliveries`); the endpoint is disabled if this goes on"
		default:
			ready.Status = metav1.ConditionTrue
		}
	}
	return ready, reconciling, stalled
}
