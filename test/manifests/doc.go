// Package manifests tests the deploy manifests as a cluster sees them: it
// renders config/ with kustomize and charts/mira-operator with Helm (both
// built from hack/tools/render into bin/ when missing), applies the result to
// a real kube-apiserver with server-side dry-run, compares the two renderings,
// and checks the rendered RBAC with SubjectAccessReviews.
package manifests
