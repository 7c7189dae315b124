package manifests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/mira/mira-operator/internal/testenv"
)

// Namespace is where config/default and the chart install the operator.
const Namespace = "mira-system"

var (
	root     = testenv.RepoRoot()
	k8s      client.Client
	warnings = &warningRecorder{}
	// kubeconfig is an admin kubeconfig of the test API server, for kubectl.
	kubeconfig string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	for _, tool := range []string{"kustomize", "helm"} {
		if err := ensureTool(tool); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	env, cfg, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	dir, err := os.MkdirTemp("", "mira-manifests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := testenv.WriteAdminKubeconfig(env, "manifests-admin", kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Collect the API server's warnings (Pod Security among them) per call.
	cfg.WarningHandlerWithContext = warnings
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = apiextensionsv1.AddToScheme(scheme)
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, "create client:", err)
		return 1
	}
	return m.Run()
}

// ensureTool builds bin/<name> with hack/build-render-tools.sh when missing
// (`make test` builds it beforehand).
func ensureTool(name string) error {
	path := filepath.Join(root, "bin", name)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	cmd := exec.Command("bash", filepath.Join(root, "hack", "build-render-tools.sh"), name, path)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s with hack/build-render-tools.sh: %w", name, err)
	}
	return nil
}

// kustomize renders a kustomization directory relative to the repository root.
func kustomize(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	return render(t, filepath.Join(root, "bin", "kustomize"), "build", filepath.Join(root, dir))
}

// helmTemplate renders the chart as `helm template mira charts/mira-operator
// -n mira-system --include-crds` with extra --set values.
func helmTemplate(t *testing.T, set ...string) []*unstructured.Unstructured {
	t.Helper()
	args := []string{"template", "mira", filepath.Join(root, "charts", "mira-operator"), "--namespace", Namespace, "--include-crds"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return render(t, filepath.Join(root, "bin", "helm"), args...)
}

func render(t *testing.T, bin string, args ...string) []*unstructured.Unstructured {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	objs, err := decode(stdout.Bytes())
	if err != nil {
		t.Fatalf("decode the output of %s %s: %v", filepath.Base(bin), strings.Join(args, " "), err)
	}
	if len(objs) == 0 {
		t.Fatalf("%s %s rendered no objects", filepath.Base(bin), strings.Join(args, " "))
	}
	return objs
}

func decode(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		var raw runtime.RawExtension
		if err := dec.Decode(&raw); err != nil {
			if err == io.EOF {
				return objs, nil
			}
			return nil, err
		}
		if len(bytes.TrimSpace(raw.Raw)) == 0 || string(raw.Raw) == "null" {
			continue
		}
		// Unstructured's own JSON decoding keeps integers as int64.
		o := &unstructured.Unstructured{}
		if err := o.UnmarshalJSON(raw.Raw); err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
}

// ensureNamespace really creates the operator's namespace from the rendered
// objects: dry-run namespaced objects need their namespace to exist.
func ensureNamespace(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	ctx := context.Background()
	for _, o := range objs {
		if o.GetKind() != "Namespace" {
			continue
		}
		if err := k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()), client.FieldOwner("manifests-test"), client.ForceOwnership); err != nil {
			t.Fatalf("create namespace %s: %v", o.GetName(), err)
		}
		return
	}
	ns := &corev1.Namespace{}
	ns.Name = Namespace
	if err := k8s.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", Namespace, err)
	}
}

// warningRecorder keeps the API server's warning headers.
type warningRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningRecorder) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

// take returns the warnings since the last call and forgets them.
func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

// installServiceMonitorCRD installs a minimal stand-in for the Prometheus
// Operator's ServiceMonitor CRD, so the prometheus overlay's ServiceMonitors
// can be dry-run applied. It checks group, version, kind, scope and that the
// objects are well-formed, not the real CRD's schema of spec.
func installServiceMonitorCRD(t *testing.T) {
	t.Helper()
	installStandInCRD(t, "servicemonitors", "ServiceMonitor", "selector", "endpoints")
}

// installPrometheusRuleCRD is the same stand-in for PrometheusRule.
func installPrometheusRuleCRD(t *testing.T) {
	t.Helper()
	installStandInCRD(t, "prometheusrules", "PrometheusRule", "groups")
}

// installStandInCRD installs a monitoring.coreos.com/v1 CRD whose spec must
// have the required fields and may have anything else, and waits until the
// API server serves it.
func installStandInCRD(t *testing.T, plural, kind string, required ...string) {
	t.Helper()
	ctx := context.Background()
	preserve := true
	crd := &apiextensionsv1.CustomResourceDefinition{}
	crd.Name = plural + ".monitoring.coreos.com"
	crd.Spec = apiextensionsv1.CustomResourceDefinitionSpec{
		Group: "monitoring.coreos.com",
		Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: plural, Singular: strings.ToLower(kind), Kind: kind, ListKind: kind + "List"},
		Scope: apiextensionsv1.NamespaceScoped,
		Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
			Name: "v1", Served: true, Storage: true,
			Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
				Type: "object",
				Properties: map[string]apiextensionsv1.JSONSchemaProps{
					"spec": {Type: "object", Required: required, XPreserveUnknownFields: &preserve},
				},
				Required: []string{"spec"},
			}},
		}},
	}
	if err := k8s.Create(ctx, crd); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("install the %s CRD stand-in: %v", kind, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := &apiextensionsv1.CustomResourceDefinition{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(crd), got); err != nil {
			t.Fatalf("read the %s CRD: %v", kind, err)
		}
		for _, c := range got.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				// The client's REST mapper learns the new kind on its next miss.
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %s CRD did not become Established in 30s", kind)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func execOutput(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	return string(out), err
}
