package manifests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// dryRunApply server-side applies every object with dry-run and fails the
// test for each one the API server refuses or warns about (a Pod Security
// "restricted" violation in a Deployment's template is such a warning).
func dryRunApply(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	ensureNamespace(t, objs)
	ctx := context.Background()
	warnings.take()
	for _, o := range objs {
		err := k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()),
			client.DryRunAll, client.FieldOwner("manifests-test"), client.ForceOwnership)
		if err != nil {
			t.Errorf("%s refused: %v", id(o), err)
		}
		for _, w := range warnings.take() {
			t.Errorf("%s: API server warning: %s", id(o), w)
		}
	}
}

func id(o *unstructured.Unstructured) string {
	if o.GetNamespace() != "" {
		return fmt.Sprintf("%s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName())
	}
	return fmt.Sprintf("%s %s", o.GetKind(), o.GetName())
}

// find returns the rendered object of that kind and name, or fails.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s among the rendered objects", kind, name)
	return nil
}

func TestKustomizeRendersAcceptedObjects(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		want []string // kind/name that must be present
		not  []string // kind/name that must be absent
	}{
		{dir: "config/default", want: []string{
			"Namespace/mira-system", "CustomResourceDefinition/webhookendpoints.platform.mira.io",
			"Deployment/mira-manager", "Deployment/mira-receiver", "Service/mira-receiver",
			"PersistentVolumeClaim/mira-receiver-data", "PodDisruptionBudget/mira-manager", "PodDisruptionBudget/mira-receiver",
			"ServiceAccount/mira-receiver", "ClusterRole/mira-receiver", "ClusterRoleBinding/mira-receiver",
		}},
		{dir: "config/overlays/external-nats", want: []string{"Deployment/mira-receiver"}, not: []string{"PersistentVolumeClaim/mira-receiver-data"}},
		{dir: "config/overlays/prometheus", want: []string{"ServiceMonitor/mira-manager", "ServiceMonitor/mira-receiver", "Service/mira-manager-metrics", "PrometheusRule/mira"}},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			objs := kustomize(t, tc.dir)
			got := kindNames(objs, false)
			for _, w := range tc.want {
				if !got[w] {
					t.Errorf("%s renders no %s", tc.dir, w)
				}
			}
			for _, n := range tc.not {
				if got[n] {
					t.Errorf("%s renders %s, which it should drop", tc.dir, n)
				}
			}
			if strings.Contains(tc.dir, "prometheus") {
				installServiceMonitorCRD(t)
				installPrometheusRuleCRD(t)
			}
			dryRunApply(t, objs)
		})
	}
}

// The Deployments' securityContext and the receiver's storage, read back
// from the rendering so a careless edit fails here and not in a cluster.
func TestKustomizeReceiverDeployment(t *testing.T) {
	objs := kustomize(t, "config/default")
	d := find(t, objs, "Deployment", "mira-receiver")
	if s, _, _ := unstructured.NestedString(d.Object, "spec", "strategy", "type"); s != "Recreate" {
		t.Errorf("embedded-mode receiver strategy = %q, want Recreate", s)
	}
	if r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); r != 1 {
		t.Errorf("embedded-mode receiver replicas = %d, want 1", r)
	}
	if fs, _, _ := unstructured.NestedInt64(d.Object, "spec", "template", "spec", "securityContext", "fsGroup"); fs != 65532 {
		t.Errorf("receiver fsGroup = %d, want 65532 (the volume must be writable by the non-root user)", fs)
	}
	c := container(t, d)
	args, _, _ := unstructured.NestedStringSlice(c, "args")
	for _, want := range []string{"receiver", "--integrations-secret=mira-system/mira-integrations", "--data-dir=/var/lib/mira"} {
		if !slices.Contains(args, want) {
			t.Errorf("receiver args %q lack %q", args, want)
		}
	}
	mounts, _, _ := unstructured.NestedSlice(c, "volumeMounts")
	if len(mounts) != 1 || mounts[0].(map[string]any)["mountPath"] != "/var/lib/mira" {
		t.Errorf("receiver volumeMounts = %v, want the data volume at /var/lib/mira", mounts)
	}
	pvc := find(t, objs, "PersistentVolumeClaim", "mira-receiver-data")
	if s, _, _ := unstructured.NestedString(pvc.Object, "spec", "resources", "requests", "storage"); s != "10Gi" {
		t.Errorf("PVC size = %q, want 10Gi", s)
	}

	ext := kustomize(t, "config/overlays/external-nats")
	d = find(t, ext, "Deployment", "mira-receiver")
	if s, _, _ := unstructured.NestedString(d.Object, "spec", "strategy", "type"); s != "RollingUpdate" {
		t.Errorf("external-nats receiver strategy = %q, want RollingUpdate", s)
	}
	if r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); r < 2 {
		t.Errorf("external-nats receiver replicas = %d, want several", r)
	}
	c = container(t, d)
	args, _, _ = unstructured.NestedStringSlice(c, "args")
	for _, want := range []string{"--nats-url=nats://nats.nats.svc:4222", "--stream-replicas=3"} {
		if !slices.Contains(args, want) {
			t.Errorf("external-nats receiver args %q lack %q", args, want)
		}
	}
	if vols, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "volumes"); len(vols) != 0 {
		t.Errorf("external-nats receiver still has volumes %v", vols)
	}
}

func TestDeploymentsAreRestricted(t *testing.T) {
	for _, d := range []*unstructured.Unstructured{
		find(t, kustomize(t, "config/default"), "Deployment", "mira-manager"),
		find(t, kustomize(t, "config/default"), "Deployment", "mira-receiver"),
	} {
		pod := d.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
		c := container(t, d)
		for _, check := range []struct {
			what string
			obj  map[string]any
			path []string
			want any
		}{
			{"runAsNonRoot", pod, []string{"securityContext", "runAsNonRoot"}, true},
			{"runAsUser", pod, []string{"securityContext", "runAsUser"}, int64(65532)},
			{"seccompProfile", pod, []string{"securityContext", "seccompProfile", "type"}, "RuntimeDefault"},
			{"readOnlyRootFilesystem", c, []string{"securityContext", "readOnlyRootFilesystem"}, true},
			{"allowPrivilegeEscalation", c, []string{"securityContext", "allowPrivilegeEscalation"}, false},
			{"capabilities.drop", c, []string{"securityContext", "capabilities", "drop"}, []any{"ALL"}},
			{"liveness probe path", c, []string{"livenessProbe", "httpGet", "path"}, "/healthz"},
			{"readiness probe path", c, []string{"readinessProbe", "httpGet", "path"}, "/readyz"},
		} {
			got, _, _ := unstructured.NestedFieldNoCopy(check.obj, check.path...)
			if fmt.Sprint(got) != fmt.Sprint(check.want) {
				t.Errorf("%s: %s = %v, want %v", d.GetName(), check.what, got, check.want)
			}
		}
		if _, ok, _ := unstructured.NestedMap(c, "resources", "requests"); !ok {
			t.Errorf("%s: no resource requests", d.GetName())
		}
		if _, ok, _ := unstructured.NestedString(c, "resources", "limits", "memory"); !ok {
			t.Errorf("%s: no memory limit", d.GetName())
		}
	}
}

// The dry-run check above would pass vacuously if this API server did not
// run Pod Security admission: a privileged copy of the receiver must warn.
func TestPodSecurityWarningsAreSeen(t *testing.T) {
	objs := kustomize(t, "config/default")
	ensureNamespace(t, objs)
	d := find(t, objs, "Deployment", "mira-receiver").DeepCopy()
	d.SetName("mira-receiver-privileged")
	c := container(t, d)
	_ = unstructured.SetNestedField(c, true, "securityContext", "privileged")
	_ = unstructured.SetNestedField(c, true, "securityContext", "allowPrivilegeEscalation")
	warnings.take()
	if err := k8s.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(d),
		client.DryRunAll, client.FieldOwner("manifests-test")); err != nil {
		t.Fatalf("dry-run apply of the privileged copy: %v", err)
	}
	w := strings.Join(warnings.take(), "\n")
	if !strings.Contains(w, "PodSecurity") || !strings.Contains(w, "privileged") {
		t.Fatalf("a privileged Deployment in %s got no Pod Security warning (got %q): the restricted checks above prove nothing", Namespace, w)
	}
}

func container(t *testing.T, d *unstructured.Unstructured) map[string]any {
	t.Helper()
	cs, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "template", "spec", "containers")
	list, _ := cs.([]any)
	if len(list) != 1 {
		t.Fatalf("%s has %d containers, want 1", id(d), len(list))
	}
	return list[0].(map[string]any)
}

// kindNames is the set of "Kind/name" (with the namespace when withNS).
func kindNames(objs []*unstructured.Unstructured, withNS bool) map[string]bool {
	set := map[string]bool{}
	for _, o := range objs {
		k := o.GetKind() + "/" + o.GetName()
		if withNS && o.GetNamespace() != "" {
			k = o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
		}
		set[k] = true
	}
	return set
}

func diffSets(a, b map[string]bool) (onlyA, onlyB []string) {
	for k := range a {
		if !b[k] {
			onlyA = append(onlyA, k)
		}
	}
	for k := range b {
		if !a[k] {
			onlyB = append(onlyB, k)
		}
	}
	sort.Strings(onlyA)
	sort.Strings(onlyB)
	return onlyA, onlyB
}

// The chart renders the same objects as kustomize, in each configuration,
// and the API server accepts them; its RBAC rules are the same too.
func TestHelmMatchesKustomize(t *testing.T) {
	for _, tc := range []struct {
		dir string
		set []string
	}{
		{"config/default", []string{"createNamespace=true"}},
		{"config/overlays/external-nats", []string{"createNamespace=true", "nats.url=nats://nats.nats.svc:4222", "receiver.replicas=3"}},
		{"config/overlays/prometheus", []string{"createNamespace=true", "metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true"}},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			kz := kustomize(t, tc.dir)
			hm := helmTemplate(t, tc.set...)
			onlyK, onlyH := diffSets(kindNames(kz, false), kindNames(hm, false))
			if len(onlyK) > 0 || len(onlyH) > 0 {
				t.Errorf("kustomize %s and helm --set %s render different objects:\n  only kustomize: %v\n  only helm: %v",
					tc.dir, strings.Join(tc.set, ","), onlyK, onlyH)
			}
			for _, k := range kz {
				if k.GetKind() != "ClusterRole" && k.GetKind() != "Role" {
					continue
				}
				h := find(t, hm, k.GetKind(), k.GetName())
				if kr, hr := ruleSet(t, k), ruleSet(t, h); !slices.Equal(kr, hr) {
					t.Errorf("%s rules differ between kustomize and the chart (keep charts/mira-operator/templates in step with config/rbac):\n  kustomize: %v\n  helm:      %v", id(k), kr, hr)
				}
			}
			if strings.Contains(tc.dir, "prometheus") {
				// The chart's rules are the overlay's, key for key.
				kr, _, _ := unstructured.NestedFieldNoCopy(find(t, kz, "PrometheusRule", "mira").Object, "spec")
				hr, _, _ := unstructured.NestedFieldNoCopy(find(t, hm, "PrometheusRule", "mira").Object, "spec")
				if !reflect.DeepEqual(kr, hr) {
					t.Errorf("the chart's PrometheusRule spec differs from config/overlays/prometheus/prometheusrule.yaml: run make manifests")
				}
				installServiceMonitorCRD(t)
				installPrometheusRuleCRD(t)
			}
			dryRunApply(t, hm)
		})
	}
}

// ruleSet flattens RBAC rules into sorted "group/resource:verb" strings, so
// two spellings of the same permissions compare equal.
func ruleSet(t *testing.T, role *unstructured.Unstructured) []string {
	t.Helper()
	rules, _, err := unstructured.NestedSlice(role.Object, "rules")
	if err != nil {
		t.Fatalf("%s rules: %v", id(role), err)
	}
	var out []string
	for _, r := range rules {
		m := r.(map[string]any)
		strs := func(k string) []string {
			v, _, _ := unstructured.NestedStringSlice(m, k)
			return v
		}
		if len(strs("resourceNames")) > 0 {
			t.Fatalf("%s: ruleSet does not handle resourceNames", id(role))
		}
		for _, u := range strs("nonResourceURLs") {
			for _, v := range strs("verbs") {
				out = append(out, "url:"+u+":"+v)
			}
		}
		for _, g := range strs("apiGroups") {
			for _, res := range strs("resources") {
				for _, v := range strs("verbs") {
					out = append(out, g+"/"+res+":"+v)
				}
			}
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// The chart ships its own copy of the CRDs (Helm installs crds/ first); it
// must be byte-identical to what `make manifests` generates.
func TestChartCRDsMatchGenerated(t *testing.T) {
	const fix = "run `cp config/crd/bases/*.yaml charts/mira-operator/crds/` and commit"
	gen, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(gen) == 0 {
		t.Fatalf("no CRDs in config/crd/bases (%v)", err)
	}
	chart, _ := filepath.Glob(filepath.Join(root, "charts", "mira-operator", "crds", "*.yaml"))
	names := func(paths []string) []string {
		var out []string
		for _, p := range paths {
			out = append(out, filepath.Base(p))
		}
		return out
	}
	if !slices.Equal(names(gen), names(chart)) {
		t.Fatalf("charts/mira-operator/crds has %v, config/crd/bases has %v: %s", names(chart), names(gen), fix)
	}
	for _, p := range gen {
		want, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, "charts", "mira-operator", "crds", filepath.Base(p)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("charts/mira-operator/crds/%s differs from config/crd/bases: %s", filepath.Base(p), fix)
		}
	}
}

// The chart refuses a configuration that would corrupt the embedded store.
func TestHelmRefusesReplicasWithoutNATS(t *testing.T) {
	args := []string{"template", "mira", filepath.Join(root, "charts", "mira-operator"), "--namespace", Namespace, "--set", "receiver.replicas=2"}
	out, err := execOutput(filepath.Join(root, "bin", "helm"), args...)
	if err == nil {
		t.Fatalf("helm template with receiver.replicas=2 and no nats.url succeeded:\n%s", out)
	}
	if !strings.Contains(out, "needs nats.url") {
		t.Fatalf("helm template failed without the expected message: %s", out)
	}
}
