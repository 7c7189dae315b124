// Package v1alpha1 contains the API types of the platform.mira.io group:
// WebhookEndpoint (an outgoing webhook subscription) and ScoringTemplate (the
// rubric coaching reports are scored with).
// +kubebuilder:object:generate=true
// +groupName=platform.mira.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of these types.
	GroupVersion = schema.GroupVersion{Group: "platform.mira.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this group-version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
