package v1alpha1

import (
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConfigurationAccepted reports whether the controller found the endpoint's
// configuration valid for its current generation: Ready is True, or False
// only for a reason that is not about configuration (suspended, or disabled
// by the receiver). The receiver delivers only to accepted endpoints; events
// for the others wait in the queue.
func (w *WebhookEndpoint) ConfigurationAccepted() bool {
	c := apimeta.FindStatusCondition(w.Status.Conditions, ReadyCondition)
	if c == nil || c.ObservedGeneration != w.Generation || w.Status.ObservedGeneration != w.Generation {
		return false
	}
	return c.Status == metav1.ConditionTrue || c.Reason == SuspendedReason || c.Reason == DisabledReason
}

// +kubebuilder:object:generate=false

// DeliveryHealth is what the receiver reported about deliveries, read from
// its Degraded and Disabled conditions.
type DeliveryHealth struct {
	// Disabled: the receiver stopped delivering (410 Gone or continuous
	// failure) for the current spec.
	Disabled        bool
	DisabledMessage string
	// Degraded: deliveries keep failing, the endpoint is not disabled yet.
	Degraded        bool
	DegradedMessage string
}

// Health reads the receiver's conditions. A Disabled condition written for an
// older generation does not count: changing the spec re-enables an endpoint.
func (w *WebhookEndpoint) Health() DeliveryHealth {
	var h DeliveryHealth
	if c := apimeta.FindStatusCondition(w.Status.Conditions, DisabledCondition); c != nil &&
		c.Status == metav1.ConditionTrue && c.ObservedGeneration >= w.Generation {
		h.Disabled, h.DisabledMessage = true, c.Message
	}
	if c := apimeta.FindStatusCondition(w.Status.Conditions, DegradedCondition); c != nil && c.Status == metav1.ConditionTrue {
		h.Degraded, h.DegradedMessage = true, c.Message
	}
	return h
}
