package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// SchemeGroupVersion is the group and version of the served objects.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

// Kinds and resources of the aggregated API.
const (
	KindDelivery       = "Delivery"
	KindReport         = "Report"
	ResourceDeliveries = "deliveries"
	ResourceReports    = "reports"
	// ResourceEvents and ResourceRoleplays are not served here; RBAC rules
	// name them ("create") to authorise publishing on the receiver's own
	// HTTP routes.
	ResourceEvents    = "events"
	ResourceRoleplays = "roleplays"
)

// Labels set on served objects; label selectors filter on them.
const (
	LabelEndpoint = "platform.mira.io/endpoint"
	LabelEvent    = "platform.mira.io/event"
	LabelState    = "platform.mira.io/state"
	LabelUser     = "platform.mira.io/user"
	LabelTemplate = "platform.mira.io/template"
)

var (
	// SchemeBuilder registers the served kinds.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds the served kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// Resource returns a group-qualified resource of this group.
func Resource(resource string) schema.GroupResource {
	return SchemeGroupVersion.WithResource(resource).GroupResource()
}

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypeWithName(SchemeGroupVersion.WithKind(KindDelivery), &DeliveryObject{})
	s.AddKnownTypeWithName(SchemeGroupVersion.WithKind(KindDelivery+"List"), &DeliveryObjectList{})
	s.AddKnownTypeWithName(SchemeGroupVersion.WithKind(KindReport), &ReportObject{})
	s.AddKnownTypeWithName(SchemeGroupVersion.WithKind(KindReport+"List"), &ReportObjectList{})
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}
