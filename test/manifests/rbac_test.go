package manifests

import (
	"context"
	"fmt"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// access is one `kubectl auth can-i VERB RESOURCE[/SUBRESOURCE] -n NS
// --as=system:serviceaccount:mira-system:SA` question and its expected answer.
type access struct {
	verb, group, resource, subresource, namespace string
	allowed                                       bool
}

func (a access) String() string {
	r := a.resource
	if a.group != "" {
		r += "." + a.group
	}
	if a.subresource != "" {
		r += "/" + a.subresource
	}
	return fmt.Sprintf("%s %s -n %s", a.verb, r, a.namespace)
}

const (
	mira   = "platform.mira.io"
	events = "events.k8s.io"
	// A user's namespace, where WebhookEndpoints and their Secrets live.
	team = "team-a"
)

func allow(verb, group, resource, sub, ns string) access {
	return access{verb, group, resource, sub, ns, true}
}

func deny(verb, group, resource, sub, ns string) access {
	return access{verb, group, resource, sub, ns, false}
}

// The rendered ServiceAccounts, Roles and bindings are created for real, then
// SubjectAccessReviews (what `kubectl auth can-i --as` asks) check that each
// identity can do what it needs and nothing it should not. The API server
// authorizes with RBAC, so the deny rows fail if a rule is too broad.
func TestRBAC(t *testing.T) {
	ctx := context.Background()
	objs := kustomize(t, "config/default")
	ensureNamespace(t, objs)
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			if err := k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()), client.FieldOwner("manifests-test"), client.ForceOwnership); err != nil {
				t.Fatalf("create %s: %v", id(o), err)
			}
		}
	}

	receiver := []access{
		// Reads endpoints, templates and the Secrets they name, anywhere.
		allow("get", mira, "webhookendpoints", "", team),
		allow("list", mira, "webhookendpoints", "", ""),
		allow("watch", mira, "webhookendpoints", "", ""),
		allow("list", mira, "scoringtemplates", "", ""),
		allow("get", "", "secrets", "", team),
		allow("get", "", "secrets", "", Namespace),
		// Secrets by name only: never listed or watched, in no namespace
		// (issue 11: the receiver faces the internet and cached them all).
		deny("list", "", "secrets", "", ""),
		deny("watch", "", "secrets", "", ""),
		deny("list", "", "secrets", "", team),
		deny("watch", "", "secrets", "", team),
		deny("list", "", "secrets", "", Namespace),
		deny("watch", "", "secrets", "", Namespace),
		// Writes only delivery status (server-side apply is a PATCH) and Events.
		allow("patch", mira, "webhookendpoints", "status", team),
		allow("get", mira, "webhookendpoints", "status", team),
		allow("create", events, "events", "", team),
		allow("patch", events, "events", "", team),
		// No Secret writes.
		deny("create", "", "secrets", "", team),
		deny("update", "", "secrets", "", team),
		deny("patch", "", "secrets", "", team),
		deny("delete", "", "secrets", "", team),
		deny("deletecollection", "", "secrets", "", team),
		deny("create", "", "secrets", "", Namespace),
		// No spec writes, no status update (only apply), no deletes.
		deny("patch", mira, "webhookendpoints", "", team),
		deny("update", mira, "webhookendpoints", "", team),
		deny("create", mira, "webhookendpoints", "", team),
		deny("update", mira, "webhookendpoints", "status", team),
		deny("update", mira, "webhookendpoints", "finalizers", team),
		deny("delete", mira, "webhookendpoints", "", team),
		deny("delete", mira, "scoringtemplates", "", team),
		deny("patch", mira, "scoringtemplates", "status", team),
		deny("delete", events, "events", "", team),
		deny("delete", "", "persistentvolumeclaims", "", Namespace),
		deny("delete", "apps", "deployments", "", Namespace),
		deny("create", "", "pods", "", Namespace),
		deny("get", "", "configmaps", "", team),
		// Its leader-election Lease (--leader-elect), in its own namespace only.
		allow("get", "coordination.k8s.io", "leases", "", Namespace),
		allow("create", "coordination.k8s.io", "leases", "", Namespace),
		allow("update", "coordination.k8s.io", "leases", "", Namespace),
		deny("create", "coordination.k8s.io", "leases", "", team),
		deny("delete", "coordination.k8s.io", "leases", "", Namespace),
		// Checks scrapers of its secure /metrics.
		allow("create", "authentication.k8s.io", "tokenreviews", "", ""),
		allow("create", "authorization.k8s.io", "subjectaccessreviews", "", ""),
	}
	manager := []access{
		// Generates and rotates signing Secrets: the one writer of Secrets.
		allow("create", "", "secrets", "", team),
		allow("update", "", "secrets", "", team),
		allow("patch", "", "secrets", "", team),
		allow("patch", mira, "webhookendpoints", "status", team),
		allow("update", mira, "webhookendpoints", "finalizers", team),
		allow("patch", mira, "scoringtemplates", "status", team),
		allow("list", "", "services", "", ""),
		allow("create", events, "events", "", team),
		allow("create", "coordination.k8s.io", "leases", "", Namespace),
		allow("update", "coordination.k8s.io", "leases", "", Namespace),
		deny("delete", "", "secrets", "", team),
		deny("delete", mira, "webhookendpoints", "", team),
		deny("patch", mira, "webhookendpoints", "", team),
		deny("update", mira, "webhookendpoints", "", team),
		deny("create", mira, "webhookendpoints", "", team),
		deny("delete", mira, "scoringtemplates", "", team),
		deny("create", "coordination.k8s.io", "leases", "", team),
		deny("create", "", "pods", "", team),
		deny("patch", "", "services", "", team),
		allow("create", "authentication.k8s.io", "tokenreviews", "", ""),
		allow("create", "authorization.k8s.io", "subjectaccessreviews", "", ""),
	}
	for sa, table := range map[string][]access{"mira-receiver": receiver, "mira-manager": manager} {
		for _, a := range table {
			if got := can(t, sa, a); got != a.allowed {
				t.Errorf("kubectl auth can-i %s --as=system:serviceaccount:%s:%s = %v, want %v", a, Namespace, sa, got, a.allowed)
			}
		}
	}

	// Across every rendered role, only the manager may write Secrets.
	for _, o := range objs {
		if o.GetKind() != "ClusterRole" && o.GetKind() != "Role" {
			continue
		}
		for _, r := range ruleSet(t, o) {
			for _, v := range []string{"create", "update", "patch", "delete", "deletecollection", "*"} {
				if (r == "/secrets:"+v || r == "/*:"+v || r == "*/*:"+v) && o.GetName() != "mira-manager" {
					t.Errorf("%s grants %s", id(o), r)
				}
			}
		}
	}
}

// can asks the API server's authorizer whether the ServiceAccount may do a.
func can(t *testing.T, sa string, a access) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   "system:serviceaccount:" + Namespace + ":" + sa,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + Namespace, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: a.namespace, Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource,
		},
	}}
	if err := k8s.Create(context.Background(), sar); err != nil {
		t.Fatalf("SubjectAccessReview %s for %s: %v", a, sa, err)
	}
	return sar.Status.Allowed
}
