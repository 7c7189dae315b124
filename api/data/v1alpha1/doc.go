// Package v1alpha1 holds the types clients read from the receiver.
//
// Two kinds of types live here:
//   - the delivery-log records (Delivery, Attempt): plain Go structs whose
//     JSON encoding is the storage format in JetStream KV; never rename
//     their JSON fields;
//   - the objects served by the aggregated API data.platform.mira.io/v1alpha1
//     (kinds Delivery and Report, Go types DeliveryObject and ReportObject,
//     see api_types.go). The receiver maps records to objects (see
//     internal/dataapi); clients (kubectl, kubectl mira, the dashboard) read
//     the objects.
//
// The Go names of the API objects end in "Object" because Delivery already
// names the stored record; the kinds are registered as Delivery and Report.
//
// Deepcopy is generated per type (the records in delivery_types.go hold
// time.Time and need none).
//
// +kubebuilder:object:generate=false
// +groupName=data.platform.mira.io
// +k8s:openapi-gen=true
// +k8s:openapi-model-package=io.mira.platform.data.v1alpha1
package v1alpha1

// GroupName is the API group these types are served under.
const GroupName = "data.platform.mira.io"
