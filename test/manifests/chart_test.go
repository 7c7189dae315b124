package manifests

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// chartOption is one optional feature of the chart, switched on with --set,
// and what its rendering must show.
type chartOption struct {
	name  string
	set   []string
	check func(t *testing.T, objs []*unstructured.Unstructured)
	// crds are stand-in CRDs the objects need (monitoring.coreos.com).
	crds []func(*testing.T)
}

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func chartOptions() []chartOption {
	return []chartOption{
		{name: "defaults"},
		{name: "networkPolicy", set: []string{"networkPolicy.enabled=true"}, check: func(t *testing.T, objs []*unstructured.Unstructured) {
			r := find(t, objs, "NetworkPolicy", "mira-receiver")
			types, _, _ := unstructured.NestedStringSlice(r.Object, "spec", "policyTypes")
			if !reflect.DeepEqual(types, []string{"Ingress"}) {
				t.Errorf("receiver NetworkPolicy policyTypes = %v, want [Ingress] (egress open for arbitrary consumers)", types)
			}
			ingress, _, _ := unstructured.NestedSlice(r.Object, "spec", "ingress")
			if got := fmt.Sprint(ingress); !strings.Contains(got, "port:http") || !strings.Contains(got, "port:metrics") {
				t.Errorf("receiver ingress %s lacks the http or the metrics port", got)
			}
			m := find(t, objs, "NetworkPolicy", "mira-manager")
			types, _, _ = unstructured.NestedStringSlice(m.Object, "spec", "policyTypes")
			if !reflect.DeepEqual(types, []string{"Ingress", "Egress"}) {
				t.Errorf("manager NetworkPolicy policyTypes = %v, want [Ingress Egress]", types)
			}
			egress, _, _ := unstructured.NestedSlice(m.Object, "spec", "egress")
			if got := fmt.Sprint(egress); !strings.Contains(got, "port:53") || !strings.Contains(got, "port:6443") {
				t.Errorf("manager egress %s lacks DNS or the API server", got)
			}
		}},
		{name: "networkPolicy restricted egress", set: []string{"networkPolicy.enabled=true", "networkPolicy.restrictReceiverEgress=true",
			"networkPolicy.apiServer.cidrs={10.96.0.1/32}", "nats.url=nats://nats.nats.svc:4222", "receiver.replicas=3",
			"networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.name=monitoring"}, check: func(t *testing.T, objs []*unstructured.Unstructured) {
			r := find(t, objs, "NetworkPolicy", "mira-receiver")
			egress, _, _ := unstructured.NestedSlice(r.Object, "spec", "egress")
			got := fmt.Sprint(egress)
			for _, want := range []string{"port:53", "cidr:10.96.0.1/32", "port:4222"} {
				if !strings.Contains(got, want) {
					t.Errorf("receiver egress %s lacks %s", got, want)
				}
			}
			ingress, _, _ := unstructured.NestedSlice(r.Object, "spec", "ingress")
			if got := fmt.Sprint(ingress); !strings.Contains(got, "monitoring") {
				t.Errorf("receiver metrics ingress %s is not limited to metricsFrom", got)
			}
		}},
		{name: "prometheusRule", set: []string{"metrics.prometheusRule.enabled=true", "metrics.prometheusRule.labels.release=prom"},
			crds: []func(*testing.T){installPrometheusRuleCRD}, check: func(t *testing.T, objs []*unstructured.Unstructured) {
				r := find(t, objs, "PrometheusRule", "mira")
				if r.GetLabels()["release"] != "prom" {
					t.Errorf("PrometheusRule labels %v lack release=prom", r.GetLabels())
				}
				groups, _, _ := unstructured.NestedSlice(r.Object, "spec", "groups")
				if len(groups) == 0 {
					t.Error("PrometheusRule has no groups")
				}
				// Prometheus' templates pass through Helm untouched.
				if !strings.Contains(fmt.Sprint(groups), "{{ $labels.namespace }}/{{ $labels.name }}") {
					t.Error("the rules lost their {{ $labels }} templates")
				}
			}},
		{name: "serviceMonitor", set: []string{"metrics.serviceMonitor.enabled=true"}, crds: []func(*testing.T){installServiceMonitorCRD}},
		{name: "scheduling and security contexts", set: []string{"nodeSelector.pool=mira", "receiver.nodeSelector.pool=data",
			"tolerations[0].key=dedicated", "tolerations[0].operator=Exists", "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=zone",
			"affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=Exists",
			"podSecurityContext.runAsUser=10001", "securityContext.readOnlyRootFilesystem=true"}, check: func(t *testing.T, objs []*unstructured.Unstructured) {
			for name, pool := range map[string]string{"mira-manager": "mira", "mira-receiver": "data"} {
				d := find(t, objs, "Deployment", name)
				if got, _, _ := unstructured.NestedString(d.Object, "spec", "template", "spec", "nodeSelector", "pool"); got != pool {
					t.Errorf("%s nodeSelector pool = %q, want %q", name, got, pool)
				}
				if tol, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "tolerations"); len(tol) != 1 {
					t.Errorf("%s tolerations = %v, want the one set", name, tol)
				}
				if _, ok, _ := unstructured.NestedMap(d.Object, "spec", "template", "spec", "affinity", "nodeAffinity"); !ok {
					t.Errorf("%s has no nodeAffinity", name)
				}
				if u, _, _ := unstructured.NestedInt64(d.Object, "spec", "template", "spec", "securityContext", "runAsUser"); u != 10001 {
					t.Errorf("%s runAsUser = %d, want 10001", name, u)
				}
				// The rest of the restricted defaults stays.
				if nr, _, _ := unstructured.NestedBool(d.Object, "spec", "template", "spec", "securityContext", "runAsNonRoot"); !nr {
					t.Errorf("%s lost runAsNonRoot", name)
				}
			}
			d := find(t, objs, "Deployment", "mira-receiver")
			if fs, _, _ := unstructured.NestedInt64(d.Object, "spec", "template", "spec", "securityContext", "fsGroup"); fs != 65532 {
				t.Errorf("receiver fsGroup = %d, want 65532", fs)
			}
		}},
		{name: "image digest", set: []string{"image.digest=" + digest}, check: func(t *testing.T, objs []*unstructured.Unstructured) {
			for _, name := range []string{"mira-manager", "mira-receiver"} {
				if got := image(t, find(t, objs, "Deployment", name)); got != "ghcr.io/mira/mira-operator@"+digest {
					t.Errorf("%s image = %s, want it pinned by digest", name, got)
				}
			}
		}},
		{name: "workspaces and cross-namespace targets", set: []string{"allowCrossNamespaceTargets=true", "workspaces.default=team-a",
			"workspaces.integrationsSecretName=team-secrets", "workspaces.authCacheTTL=30s"}, check: func(t *testing.T, objs []*unstructured.Unstructured) {
			want := map[string][]string{
				"mira-manager": {"--allow-cross-namespace-targets"},
				"mira-receiver": {"--allow-cross-namespace-targets", "--default-workspace=team-a",
					"--workspace-integrations-secret-name=team-secrets", "--auth-cache-ttl=30s"},
			}
			for name, flags := range want {
				args, _, _ := unstructured.NestedStringSlice(container(t, find(t, objs, "Deployment", name)), "args")
				for _, f := range flags {
					if !slices.Contains(args, f) {
						t.Errorf("%s args %v lack %s", name, args, f)
					}
				}
			}
		}},
		{name: "replicated receivers", set: []string{"nats.url=nats://nats.nats.svc:4222", "receiver.replicas=3"}, check: func(t *testing.T, objs []*unstructured.Unstructured) {
			p := find(t, objs, "PodDisruptionBudget", "mira-receiver")
			if mu, _, _ := unstructured.NestedInt64(p.Object, "spec", "maxUnavailable"); mu != 1 {
				t.Errorf("receiver PDB maxUnavailable = %d, want 1", mu)
			}
		}},
	}
}

func image(t *testing.T, d *unstructured.Unstructured) string {
	t.Helper()
	img, _, _ := unstructured.NestedString(container(t, d), "image")
	return img
}

// `helm lint --strict` and `helm template` with each option on; the API
// server accepts every rendering (dry-run, Pod Security warnings fail).
func TestHelmOptions(t *testing.T) {
	helm := filepath.Join(root, "bin", "helm")
	chart := filepath.Join(root, "charts", "mira-operator")
	for _, o := range chartOptions() {
		t.Run(o.name, func(t *testing.T) {
			args := []string{"lint", "--strict", chart}
			for _, s := range o.set {
				args = append(args, "--set", s)
			}
			if out, err := execOutput(helm, args...); err != nil {
				t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			objs := helmTemplate(t, append([]string{"createNamespace=true"}, o.set...)...)
			if o.check != nil {
				o.check(t, objs)
			}
			for _, install := range o.crds {
				install(t)
			}
			dryRunApply(t, objs)
		})
	}
}

// The chart's image defaults to its appVersion, the same tag
// config/default pins, never :dev.
func TestChartImageDefaultsToAppVersion(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "charts", "mira-operator", "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(raw, &chart); err != nil {
		t.Fatal(err)
	}
	if chart.AppVersion == "" || chart.AppVersion == "dev" {
		t.Fatalf("Chart.yaml appVersion = %q, want a release version", chart.AppVersion)
	}
	want := "ghcr.io/mira/mira-operator:" + chart.AppVersion
	for _, objs := range map[string][]*unstructured.Unstructured{"helm": helmTemplate(t), "kustomize": kustomize(t, "config/default")} {
		for _, name := range []string{"mira-manager", "mira-receiver"} {
			if got := image(t, find(t, objs, "Deployment", name)); got != want {
				t.Errorf("%s image = %s, want %s", name, got, want)
			}
		}
	}
}

// values.schema.json refuses values of the wrong type and misspelt keys.
func TestChartSchemaRejectsWrongValues(t *testing.T) {
	helm := filepath.Join(root, "bin", "helm")
	chart := filepath.Join(root, "charts", "mira-operator")
	for _, tc := range []struct{ flag, value, want string }{
		{"--set-string", "manager.replicas=two", "/manager/replicas"},
		{"--set-string", "networkPolicy.enabled=yes", "/networkPolicy/enabled"},
		{"--set", "networkPolicy.enable=true", "enable"},
		{"--set", "image.digest=latest", "/image/digest"},
		{"--set", "image.pullPolicy=Sometimes", "/image/pullPolicy"},
		{"--set", "nodeSelector=zone-a", "/nodeSelector"},
		{"--set", "tolerations=none", "/tolerations"},
		{"--set-string", "podSecurityContext=root", "/podSecurityContext"},
		{"--set", "metrics.prometheusRule.enabled=1", "/metrics/prometheusRule/enabled"},
	} {
		out, err := execOutput(helm, "template", "mira", chart, tc.flag, tc.value)
		if err == nil {
			t.Errorf("helm template %s %s was accepted", tc.flag, tc.value)
			continue
		}
		if !strings.Contains(out, tc.want) {
			t.Errorf("helm template %s %s failed without naming %s:\n%s", tc.flag, tc.value, tc.want, out)
		}
	}
}
