// Package dataapi serves data.platform.mira.io/v1alpha1, the aggregated API
// through which Kubernetes clients read the delivery log and the reports:
// `kubectl get deliveries -n team-a`, `kubectl get reports -A`.
//
// The server is a k8s.io/apiserver GenericAPIServer in the manner of
// metrics-server: TLS serving, authentication delegated to the cluster
// (TokenReview, and the aggregator's front-proxy request headers trusted
// through kube-system/extension-apiserver-authentication), authorization
// delegated with SubjectAccessReview, and one read-only storage per
// resource (get, list with label selectors, a server-side table; watch for
// deliveries, fed by a JetStream KV watcher).
//
// Data comes from a Source; KVSource reads the receiver's JetStream KV
// buckets (delivery log and reports). Records are mapped to API objects in
// convert.go; object names are ids with "_" turned into "-".
package dataapi
