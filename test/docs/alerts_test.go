package docs

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	"github.com/mira/mira-operator/internal/dispatch"
	"github.com/mira/mira-operator/internal/version"
)

// rulesFile is the one source of the alert rules: the prometheus overlay
// applies it, `make manifests` copies it into the chart, and
// docs/operations.md embeds it.
const rulesFile = "config/overlays/prometheus/prometheusrule.yaml"

type alertRule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

type prometheusRule struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec struct {
		Groups []struct {
			Name  string      `json:"name"`
			Rules []alertRule `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

func readRules(t *testing.T) ([]byte, []alertRule) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, rulesFile))
	if err != nil {
		t.Fatal(err)
	}
	var pr prometheusRule
	if err := yaml.UnmarshalStrict(raw, &pr); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" {
		t.Fatalf("%s is a %s %s, want a monitoring.coreos.com/v1 PrometheusRule", rulesFile, pr.APIVersion, pr.Kind)
	}
	var rules []alertRule
	for _, g := range pr.Spec.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("%s: group %q has no name or no rules", rulesFile, g.Name)
		}
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatalf("%s has no rules", rulesFile)
	}
	return raw, rules
}

// The alert list of docs/operations.md is the rules file, verbatim.
func TestAlertRulesAreInTheDocs(t *testing.T) {
	raw, _ := readRules(t)
	md, err := os.ReadFile(filepath.Join(root, "docs/operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(md, []byte("```yaml\n"+string(raw)+"```\n")) {
		t.Errorf("docs/operations.md does not embed %s verbatim in a ```yaml block: copy the file's content into the Alert rules section", rulesFile)
	}
}

// What `promtool check rules` would refuse, short of parsing PromQL: every
// rule is a named alert with an expression of balanced brackets, a valid
// `for`, a known severity and a summary.
func TestAlertRulesAreWellFormed(t *testing.T) {
	_, rules := readRules(t)
	seen := map[string]bool{}
	for _, r := range rules {
		if !regexp.MustCompile(`^Mira[A-Z][A-Za-z]+$`).MatchString(r.Alert) {
			t.Errorf("alert %q: want a MiraCamelCase name", r.Alert)
		}
		if seen[r.Alert] {
			t.Errorf("alert %s defined twice", r.Alert)
		}
		seen[r.Alert] = true
		if strings.TrimSpace(r.Expr) == "" {
			t.Errorf("%s: empty expr", r.Alert)
		}
		if err := balanced(r.Expr); err != "" {
			t.Errorf("%s: expr %s", r.Alert, err)
		}
		if r.For != "" {
			if _, err := time.ParseDuration(r.For); err != nil {
				t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
			}
		}
		if !slices.Contains([]string{"info", "warning", "critical"}, r.Labels["severity"]) {
			t.Errorf("%s: severity %q, want info, warning or critical", r.Alert, r.Labels["severity"])
		}
		if r.Annotations["summary"] == "" {
			t.Errorf("%s: no summary annotation", r.Alert)
		}
	}
}

// balanced checks (), [] and {} outside string literals.
func balanced(expr string) string {
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	inString := rune(0)
	for _, c := range expr {
		switch {
		case inString != 0:
			if c == inString {
				inString = 0
			}
		case c == '"' || c == '\'' || c == '`':
			inString = c
		case c == '(' || c == '[' || c == '{':
			stack = append(stack, c)
		case pairs[c] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[c] {
				return "has an unbalanced " + string(c)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 || inString != 0 {
		return "leaves a bracket or string open"
	}
	return ""
}

// Metrics the rules use that Mira does not register: Prometheus' own `up`,
// and the WebhookEndpoint conditions that kube-state-metrics exports with
// the configuration in docs/operations.md.
var externalMetrics = map[string]string{
	"up": "Prometheus",
	"kube_customresource_webhookendpoint_condition": "kube-state-metrics (docs/operations.md)",
}

// Labels Prometheus (and the Prometheus Operator) attach to every scraped
// series; a rule may select or group by them on any metric.
var targetLabels = []string{"job", "instance", "namespace", "service", "pod", "container"}

// Every metric an expression uses is registered by Mira (or is one of the
// external ones above), and every label it selects or groups by is one of
// that metric's labels or a target label. Renaming a metric or a label
// without updating the rules fails here.
func TestAlertRulesUseRegisteredMetrics(t *testing.T) {
	_, rules := readRules(t)
	known := registeredMetrics(t)
	grouping := regexp.MustCompile(`\b(by|without|on|ignoring)\s*\(([^)]*)\)`)
	selector := regexp.MustCompile(`\{([^}]*)\}`)
	strs := regexp.MustCompile(`"(\\.|[^"\\])*"`)
	ident := regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	keywords := map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "and": true, "or": true,
		"unless": true, "bool": true, "offset": true, "group_left": true, "group_right": true}
	for _, r := range rules {
		expr := strs.ReplaceAllString(r.Expr, `""`)
		var groupLabels []string
		for _, m := range grouping.FindAllStringSubmatch(expr, -1) {
			for _, l := range strings.Split(m[2], ",") {
				if l = strings.TrimSpace(l); l != "" {
					groupLabels = append(groupLabels, l)
				}
			}
		}
		var matchLabels []string
		for _, m := range selector.FindAllStringSubmatch(expr, -1) {
			for _, part := range strings.Split(m[1], ",") {
				if name, _, ok := strings.Cut(part, "="); ok {
					matchLabels = append(matchLabels, strings.TrimRight(strings.TrimSpace(name), "!=~"))
				}
			}
		}
		bare := selector.ReplaceAllString(grouping.ReplaceAllString(expr, " "), " ")
		bare = regexp.MustCompile(`\[[^\]]*\]`).ReplaceAllString(bare, " ")
		var used []string
		for _, loc := range ident.FindAllStringIndex(bare, -1) {
			name := bare[loc[0]:loc[1]]
			rest := strings.TrimLeft(bare[loc[1]:], " \t\n")
			if keywords[name] || strings.HasPrefix(rest, "(") {
				continue // a keyword, a function or an aggregation
			}
			used = append(used, name)
		}
		if len(used) == 0 {
			t.Errorf("%s: found no metric in %q", r.Alert, r.Expr)
		}
		for _, name := range used {
			if _, ok := externalMetrics[name]; ok {
				continue
			}
			labels, ok := known[name]
			if !ok {
				t.Errorf("%s uses %s, which no Mira code registers", r.Alert, name)
				continue
			}
			if labels == nil {
				continue // registered, labels unknown (found in the source)
			}
			for _, l := range append(append([]string(nil), groupLabels...), matchLabels...) {
				if !slices.Contains(labels, l) && !slices.Contains(targetLabels, l) {
					t.Errorf("%s uses label %q, which %s does not have (labels %v)", r.Alert, l, name, labels)
				}
			}
		}
	}
}

// registeredMetrics are the metric names Mira registers, with their labels
// where a registry can tell: the receiver's metrics and mira_build_info
// through a describing registry, controller-runtime's from its registry,
// and the mira_* names of the packages whose metrics are built inside
// their constructors (inbound, billing) from the Name fields in the source.
func registeredMetrics(t *testing.T) map[string][]string {
	t.Helper()
	reg := &describingRegistry{metrics: map[string][]string{}}
	dispatch.NewMetrics(reg)
	if err := version.Register(reg); err != nil {
		t.Fatal(err)
	}
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		var labels []string
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if !slices.Contains(labels, l.GetName()) {
					labels = append(labels, l.GetName())
				}
			}
		}
		reg.metrics[f.GetName()] = append(labels, "controller")
	}
	// controller-runtime's vectors have no series before a controller runs.
	for _, name := range []string{"controller_runtime_reconcile_errors_total", "controller_runtime_reconcile_total"} {
		if _, ok := reg.metrics[name]; !ok {
			reg.metrics[name] = []string{"controller", "result"}
		}
	}
	fset := token.NewFileSet()
	err = filepath.WalkDir(filepath.Join(root, "internal"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			kv, ok := n.(*ast.KeyValueExpr)
			if !ok {
				return true
			}
			key, ok := kv.Key.(*ast.Ident)
			lit, ok2 := kv.Value.(*ast.BasicLit)
			if !ok || !ok2 || key.Name != "Name" || lit.Kind != token.STRING {
				return true
			}
			if name, err := strconv.Unquote(lit.Value); err == nil && strings.HasPrefix(name, "mira_") {
				if _, ok := reg.metrics[name]; !ok {
					reg.metrics[name] = nil
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Histograms are queried by their series names.
	for name, labels := range reg.metrics {
		if strings.HasSuffix(name, "_seconds") {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				reg.metrics[name+s] = append(slices.Clone(labels), "le")
			}
		}
	}
	return reg.metrics
}

// describingRegistry records the name and labels of every collector
// registered on it, without collecting.
type describingRegistry struct {
	metrics map[string][]string
}

var (
	descName   = regexp.MustCompile(`^Desc\{fqName: "([^"]+)"`)
	descLabels = regexp.MustCompile(`constLabels: \{([^}]*)\}, variableLabels: \{([^}]*)\}\}$`)
)

func (r *describingRegistry) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		s := d.String()
		name := descName.FindStringSubmatch(s)
		if name == nil {
			continue
		}
		labels := []string{}
		if m := descLabels.FindStringSubmatch(s); m != nil {
			for _, pair := range strings.Split(m[1], ",") {
				if k, _, ok := strings.Cut(pair, "="); ok {
					labels = append(labels, k)
				}
			}
			for _, l := range strings.Split(m[2], ",") {
				if l = strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"); l != "" {
					labels = append(labels, l)
				}
			}
		}
		r.metrics[name[1]] = labels
	}
	return nil
}

func (r *describingRegistry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *describingRegistry) Unregister(prometheus.Collector) bool { return true }
