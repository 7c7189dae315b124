package manifests

import (
	"context"
	"fmt"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
		// Checks scrapers of its secure /metrics and publishers on
		// /v1/namespaces/{namespace}/events|roleplays.
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

// The user-facing roles: mira-view and mira-edit carry the labels that
// aggregate them into Kubernetes' view, edit and admin ClusterRoles, and,
// bound to a user in a namespace, allow what their names say and no more.
// (envtest runs no kube-controller-manager, so the aggregation itself is not
// exercised here: the labels are checked, then the roles are bound directly.)
func TestUserRolesAggregate(t *testing.T) {
	ctx := context.Background()
	objs := kustomize(t, "config/default")
	ensureNamespace(t, objs)
	aggregate := map[string][]string{
		"mira-view":           {"view", "edit", "admin"},
		"mira-edit":           {"edit", "admin"},
		"mira-data-publisher": {"edit", "admin"},
	}
	for _, rendered := range [][]*unstructured.Unstructured{objs, helmTemplate(t)} {
		for name, into := range aggregate {
			role := find(t, rendered, "ClusterRole", name)
			for _, r := range into {
				if role.GetLabels()["rbac.authorization.k8s.io/aggregate-to-"+r] != "true" {
					t.Errorf("ClusterRole %s lacks the label rbac.authorization.k8s.io/aggregate-to-%s=true", name, r)
				}
			}
		}
	}
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" && aggregate[o.GetName()] != nil {
			if err := k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()), client.FieldOwner("manifests-test"), client.ForceOwnership); err != nil {
				t.Fatalf("create %s: %v", id(o), err)
			}
		}
	}
	// alice holds mira-view in team-a, bob holds mira-view and mira-edit
	// there (edit includes view), as the aggregated roles would give them.
	for _, b := range []struct{ user, role string }{{"alice", "mira-view"}, {"bob", "mira-view"}, {"bob", "mira-edit"}, {"bob", "mira-data-publisher"}} {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: b.user + "-" + b.role},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: b.role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: b.user}},
		}
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: team}}
		if err := k8s.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		if err := k8s.Create(ctx, rb); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("bind %s to %s: %v", b.user, b.role, err)
		}
	}
	var viewer, editor []access
	for _, res := range []string{"webhookendpoints", "scoringtemplates"} {
		for _, v := range []string{"get", "list", "watch"} {
			viewer = append(viewer, allow(v, mira, res, "", team))
			editor = append(editor, allow(v, mira, res, "", team))
		}
		viewer = append(viewer, allow("get", mira, res, "status", team))
		for _, v := range []string{"create", "update", "patch", "delete", "deletecollection"} {
			viewer = append(viewer, deny(v, mira, res, "", team))
			editor = append(editor, allow(v, mira, res, "", team))
		}
		// Status belongs to the controllers, not to users.
		editor = append(editor, deny("patch", mira, res, "status", team), deny("update", mira, res, "status", team))
		// A RoleBinding gives nothing outside its namespace.
		viewer = append(viewer, deny("get", mira, res, "", "team-b"))
		editor = append(editor, deny("create", mira, res, "", "team-b"))
	}
	// Publishing into the workspace (the receiver's SubjectAccessReview):
	// edit may, view may not, and only in the bound namespace.
	for _, res := range []string{"events", "roleplays"} {
		viewer = append(viewer, deny("create", "data.platform.mira.io", res, "", team))
		editor = append(editor, allow("create", "data.platform.mira.io", res, "", team),
			deny("create", "data.platform.mira.io", res, "", "team-b"))
	}
	viewer = append(viewer, deny("get", "", "secrets", "", team))
	editor = append(editor, deny("get", "", "secrets", "", team), deny("update", mira, "webhookendpoints", "finalizers", team))
	for user, table := range map[string][]access{"alice": viewer, "bob": editor} {
		for _, a := range table {
			if got := canUser(t, user, a); got != a.allowed {
				t.Errorf("kubectl auth can-i %s --as=%s = %v, want %v", a, user, got, a.allowed)
			}
		}
	}
}

// canUser asks the API server's authorizer whether the user may do a.
func canUser(t *testing.T, user string, a access) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   user,
		Groups: []string{"system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: a.namespace, Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource,
		},
	}}
	if err := k8s.Create(context.Background(), sar); err != nil {
		t.Fatalf("SubjectAccessReview %s for %s: %v", a, user, err)
	}
	return sar.Status.Allowed
}
