package manifests

import (
	"context"
	"slices"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const dataGroup = "data.platform.mira.io"

// The aggregated API's objects, as config/default and the chart render
// them: the APIService on the mira-data-api Service, the receiver's 8443
// port behind it, and the delegation bindings, which grant what an
// aggregated API server needs (checked with SubjectAccessReviews).
func TestDataAPIObjects(t *testing.T) {
	ctx := context.Background()
	for name, objs := range map[string][]*unstructured.Unstructured{"kustomize": kustomize(t, "config/default"), "helm": helmTemplate(t)} {
		api := find(t, objs, "APIService", "v1alpha1."+dataGroup)
		svc, _, _ := unstructured.NestedMap(api.Object, "spec", "service")
		if svc["name"] != "mira-data-api" || svc["namespace"] != Namespace || svc["port"] != int64(443) {
			t.Errorf("%s: APIService service %v", name, svc)
		}
		port, _, _ := unstructured.NestedSlice(find(t, objs, "Service", "mira-data-api").Object, "spec", "ports")
		if len(port) != 1 || port[0].(map[string]any)["targetPort"] != "data-api" {
			t.Errorf("%s: Service mira-data-api ports %v", name, port)
		}
		ports, _, _ := unstructured.NestedSlice(container(t, find(t, objs, "Deployment", "mira-receiver")), "ports")
		if !slices.ContainsFunc(ports, func(p any) bool {
			m := p.(map[string]any)
			return m["name"] == "data-api" && m["containerPort"] == int64(8443)
		}) {
			t.Errorf("%s: the receiver has no data-api port 8443: %v", name, ports)
		}
		if rb := find(t, objs, "RoleBinding", "mira-receiver-auth-reader"); rb.GetNamespace() != "kube-system" {
			t.Errorf("%s: the authentication-reader binding is in %q, not kube-system", name, rb.GetNamespace())
		}
		role := find(t, objs, "ClusterRole", "mira-data-view")
		for _, r := range []string{"view", "edit", "admin"} {
			if role.GetLabels()["rbac.authorization.k8s.io/aggregate-to-"+r] != "true" {
				t.Errorf("%s: mira-data-view is not aggregated to %s", name, r)
			}
		}
	}

	objs := kustomize(t, "config/default")
	ensureNamespace(t, objs)
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRoleBinding", "RoleBinding":
			if err := k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()), client.FieldOwner("manifests-test"), client.ForceOwnership); err != nil {
				t.Fatalf("create %s: %v", id(o), err)
			}
		}
	}
	sa := "system:serviceaccount:" + Namespace + ":mira-receiver"
	for _, tc := range []struct {
		attrs authorizationv1.ResourceAttributes
		want  bool
	}{
		{authorizationv1.ResourceAttributes{Verb: "create", Group: "authentication.k8s.io", Resource: "tokenreviews"}, true},
		{authorizationv1.ResourceAttributes{Verb: "create", Group: "authorization.k8s.io", Resource: "subjectaccessreviews"}, true},
		{authorizationv1.ResourceAttributes{Verb: "get", Resource: "configmaps", Namespace: "kube-system", Name: "extension-apiserver-authentication"}, true},
		{authorizationv1.ResourceAttributes{Verb: "get", Resource: "configmaps", Namespace: "kube-system", Name: "other"}, false},
		{authorizationv1.ResourceAttributes{Verb: "list", Resource: "secrets", Namespace: "kube-system"}, false},
	} {
		if got := sarAllowed(t, sa, nil, tc.attrs); got != tc.want {
			t.Errorf("receiver %+v: allowed %v, want %v", tc.attrs, got, tc.want)
		}
	}
}

// mira-data-view bound in a namespace reads deliveries and reports there,
// and nothing else of the group.
func TestDataViewRole(t *testing.T) {
	ctx := context.Background()
	role := find(t, kustomize(t, "config/default"), "ClusterRole", "mira-data-view")
	if err := k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(role.DeepCopy()), client.FieldOwner("manifests-test"), client.ForceOwnership); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: team}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "carol-data-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "mira-data-view"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "carol"}},
	}
	if err := k8s.Create(ctx, rb); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		verb, resource, ns string
		want               bool
	}{
		{"get", "deliveries", team, true}, {"list", "deliveries", team, true}, {"watch", "deliveries", team, true},
		{"get", "reports", team, true}, {"list", "reports", team, true},
		{"list", "deliveries", "team-b", false}, {"list", "reports", "", false},
		{"create", "events", team, false}, {"delete", "deliveries", team, false},
	} {
		attrs := authorizationv1.ResourceAttributes{Verb: tc.verb, Group: dataGroup, Resource: tc.resource, Namespace: tc.ns}
		if got := sarAllowed(t, "carol", []string{"system:authenticated"}, attrs); got != tc.want {
			t.Errorf("carol %s %s in %q: allowed %v, want %v", tc.verb, tc.resource, tc.ns, got, tc.want)
		}
	}
}

func sarAllowed(t *testing.T, user string, groups []string, attrs authorizationv1.ResourceAttributes) bool {
	t.Helper()
	if groups == nil {
		groups = []string{"system:serviceaccounts", "system:serviceaccounts:" + Namespace, "system:authenticated"}
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups, ResourceAttributes: &attrs}}
	if err := k8s.Create(context.Background(), sar); err != nil {
		t.Fatalf("SubjectAccessReview for %s: %v", user, err)
	}
	return sar.Status.Allowed
}

// The cert-manager overlay verifies the certificate: cainjector fills the
// caBundle, the receiver reads the issued Secret.
func TestDataAPICertManagerOverlay(t *testing.T) {
	objs := kustomize(t, "config/overlays/data-api-cert-manager")
	api := find(t, objs, "APIService", "v1alpha1."+dataGroup)
	if skip, _, _ := unstructured.NestedBool(api.Object, "spec", "insecureSkipTLSVerify"); skip {
		t.Error("insecureSkipTLSVerify is still on")
	}
	if got := api.GetAnnotations()["cert-manager.io/inject-ca-from"]; got != Namespace+"/mira-data-api" {
		t.Errorf("inject-ca-from = %q", got)
	}
	cert := find(t, objs, "Certificate", "mira-data-api")
	names, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
	secret, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
	if !slices.Contains(names, "mira-data-api."+Namespace+".svc") || secret != "mira-data-api-tls" {
		t.Errorf("Certificate names %v, Secret %q", names, secret)
	}
	c := container(t, find(t, objs, "Deployment", "mira-receiver"))
	args, _, _ := unstructured.NestedStringSlice(c, "args")
	if !slices.Contains(args, "--data-api-cert-dir=/etc/mira/data-api-tls") {
		t.Errorf("receiver args %v", args)
	}
	vols, _, _ := unstructured.NestedSlice(find(t, objs, "Deployment", "mira-receiver").Object, "spec", "template", "spec", "volumes")
	if !slices.ContainsFunc(vols, func(v any) bool {
		s, _, _ := unstructured.NestedString(v.(map[string]any), "secret", "secretName")
		return s == "mira-data-api-tls"
	}) {
		t.Errorf("receiver volumes %v", vols)
	}
}

// dataAPI.enabled=false leaves the API out and turns the port off.
func TestChartWithoutDataAPI(t *testing.T) {
	objs := helmTemplate(t, "dataAPI.enabled=false")
	for _, kn := range []string{"APIService/v1alpha1." + dataGroup, "Service/mira-data-api", "ClusterRole/mira-data-view"} {
		if kindNames(objs, false)[kn] {
			t.Errorf("renders %s", kn)
		}
	}
	args, _, _ := unstructured.NestedStringSlice(container(t, find(t, objs, "Deployment", "mira-receiver")), "args")
	if !slices.Contains(args, "--data-api-bind-address=0") {
		t.Errorf("receiver args %v", args)
	}
}
