package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/cli"
	"github.com/mira/mira-operator/internal/endpoints"
	"github.com/mira/mira-operator/internal/queue"
)

// TestPluginAgainstTheReceiver drives a real receiver with the plugin: a test
// event reaches `listen`, shows in `deliveries` and `delivery`, and
// `redeliver` sends it again with the same webhook-id.
func TestPluginAgainstTheReceiver(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	createEndpoint(t, ns, "app", "http://127.0.0.1:9/unused")
	addr, out := startListen(t, "--endpoint", ns+"/app", "--kubeconfig", kubeconfig)
	target := "http://" + addr + "/hook"
	w := &miraapi.WebhookEndpoint{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, w); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(w.DeepCopy())
	w.Spec.URL = target
	if err := k8s.Patch(ctx, w, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the receiver delivers to the listener", func() error {
		e := recv.Registry.Lookup(ns, "app")
		if e == nil || e.Object().Spec.URL != target || !endpoints.Configured(e.Object()) {
			return fmt.Errorf("not yet")
		}
		return nil
	})

	// test: the annotation is handled and the Event printed.
	got, err := plugin(t, "test", "app", "-n", ns)
	if err != nil {
		t.Fatalf("test: %v", err)
	}
	if !strings.Contains(got, "handled") || !strings.Contains(got, "TestQueued") {
		t.Fatalf("test output:\n%s", got)
	}
	lines := out.waitFor(t, "the test event at the listener", func(s string) bool { return strings.Contains(s, miraapi.EventWebhookTest) })
	if !strings.Contains(lines, "verified") {
		t.Fatalf("listener output:\n%s", lines)
	}

	// deliveries, through the Service's local-url annotation.
	var id string
	eventually(t, "the delivery is logged as delivered", func() error {
		got, err = plugin(t, "deliveries", "app", "-n", ns, "-o", "json")
		if err != nil {
			return err
		}
		var page datav1.DeliveryPage
		if err := json.Unmarshal([]byte(got), &page); err != nil {
			return fmt.Errorf("-o json does not parse: %v: %s", err, got)
		}
		if len(page.Items) != 1 || page.Items[0].State != datav1.StateDelivered {
			return fmt.Errorf("items %+v", page.Items)
		}
		id = page.Items[0].ID
		return nil
	})
	table, err := plugin(t, "deliveries", ns+"/app", "--outcome", "delivered", "--since", "1h")
	if err != nil {
		t.Fatalf("deliveries: %v", err)
	}
	rows := strings.Split(strings.TrimSpace(table), "\n")
	if len(rows) != 2 {
		t.Fatalf("want a header and one row:\n%s", table)
	}
	if h := strings.Fields(rows[0]); strings.Join(h, " ") != "ID EVENT ATTEMPTS LAST CODE STATE CREATED" {
		t.Errorf("header %q", rows[0])
	}
	if f := strings.Fields(rows[1]); len(f) != 6 || f[0] != id || f[1] != miraapi.EventWebhookTest || f[2] != "1" || f[3] != "204" || f[4] != datav1.StateDelivered {
		t.Errorf("row %q", rows[1])
	}
	if got, err := plugin(t, "deliveries", "app", "-n", ns, "--outcome", "failed"); err != nil || strings.Contains(got, id) {
		t.Errorf("--outcome failed lists the delivered one (err %v):\n%s", err, got)
	}
	// Reads go through the aggregated API: no receiver URL, no integrations
	// Secret needed (both point nowhere here).
	if got, err := plugin(t, "deliveries", "app", "-n", ns, "--receiver-url", "http://127.0.0.1:9", "--integrations-secret", "nowhere/none"); err != nil || !strings.Contains(got, id) {
		t.Errorf("deliveries without the receiver: err %v:\n%s", err, got)
	}

	// delivery: the attempt with its request and response, by id in a
	// namespace, or found across namespaces by the id alone.
	if _, err := plugin(t, "delivery", ns+"/"+id, "--integrations-secret", "nowhere/none"); err != nil {
		t.Errorf("delivery <ns>/<id>: %v", err)
	}
	detail, err := plugin(t, "delivery", id)
	if err != nil {
		t.Fatalf("delivery: %v", err)
	}
	for _, want := range []string{"ID:", id, "State:", "Delivered", "Attempt 1", "HTTP 204", "Request: POST " + target, "X-Mira-Signature:", "Request body:", `"event":"webhook.test"`, "Response: 204"} {
		if !strings.Contains(detail, want) {
			t.Errorf("delivery output lacks %q:\n%s", want, detail)
		}
	}
	y, err := plugin(t, "delivery", id, "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rec datav1.Delivery
	if err := yaml.Unmarshal([]byte(y), &rec); err != nil || rec.ID != id || len(rec.Attempts) != 1 {
		t.Fatalf("-o yaml: %v %+v", err, rec)
	}

	// redeliver: the listener gets the same delivery again.
	res, err := plugin(t, "redeliver", "app", id, "-n", ns, "-o", "json")
	if err != nil {
		t.Fatalf("redeliver: %v", err)
	}
	var ar cli.ActionResult
	if err := json.Unmarshal([]byte(res), &ar); err != nil {
		t.Fatalf("redeliver -o json: %v: %s", err, res)
	}
	if !ar.Handled || !strings.HasPrefix(ar.Value, id+"@") || ar.Annotation != miraapi.RedeliverAnnotation || ar.Event == nil || ar.Event.Reason != "Redelivered" {
		t.Fatalf("redeliver result %+v (event %+v)", ar, ar.Event)
	}
	out.waitFor(t, "the redelivery at the listener", func(s string) bool { return strings.Count(s, id) >= 2 })

	// Asking again for the same id delivers it once more.
	if _, err := plugin(t, "redeliver", "app", id, "-n", ns); err != nil {
		t.Fatalf("second redeliver of the same id: %v", err)
	}
	out.waitFor(t, "the second redelivery at the listener", func(s string) bool { return strings.Count(s, id) >= 3 })
	// An unknown id is refused by the receiver, and the command fails.
	if _, err := plugin(t, "redeliver", "app", "dlv_nope", "-n", ns); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("redeliver of an unknown id: %v", err)
	}
}

func TestPluginErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"nope"}, "unknown command"},
		{[]string{"deliveries"}, "want <endpoint>"},
		{[]string{"deliveries", "x", "-o", "xml"}, "want table, json or yaml"},
		{[]string{"redeliver", "x"}, "want <endpoint> <delivery id>"},
		{[]string{"test", "does-not-exist"}, "not found"},
		{[]string{"deliveries", "does-not-exist"}, "no such WebhookEndpoint"},
		{[]string{"delivery", "dlv_missing"}, `deliveries.data.platform.mira.io "dlv-missing" not found`},
		{[]string{"report", "rpt_missing"}, `reports.data.platform.mira.io "rpt-missing" not found`},
		{[]string{"delivery", "/dlv_x"}, "want <id> or <namespace>/<id>"},
		// kubectl's own flags: impersonation reaches the API server, whose
		// RBAC answers for the impersonated user.
		{[]string{"deliveries", "x", "--as", "mallory"}, `User "mallory" cannot get resource "webhookendpoints"`},
		{[]string{"delivery", "dlv_x", "--as", "mallory", "--as-group", "team-b"}, `User "mallory" cannot get resource "deliveries"`},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := plugin(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), apiToken) {
				t.Fatalf("the error shows the API token: %v", err)
			}
		})
	}
}

func TestServiceProxyPath(t *testing.T) {
	cases := []struct {
		ns, scheme, svc, port, path, want string
	}{
		{"mira-system", "http", "mira-receiver", "http", "/v1/deliveries/dlv_1", "/api/v1/namespaces/mira-system/services/http:mira-receiver:http/proxy/v1/deliveries/dlv_1"},
		{"mira-system", "https", "mira-receiver", "8443", "v1/x", "/api/v1/namespaces/mira-system/services/https:mira-receiver:8443/proxy/v1/x"},
		{"ops", "", "recv", "", "/v1/x", "/api/v1/namespaces/ops/services/recv/proxy/v1/x"},
		{"ops", "https", "recv", "", "", "/api/v1/namespaces/ops/services/https:recv/proxy/"},
	}
	for _, tc := range cases {
		if got := cli.ServiceProxyPath(tc.ns, tc.scheme, tc.svc, tc.port, tc.path); got != tc.want {
			t.Errorf("ServiceProxyPath(%q, %q, %q, %q, %q) = %q, want %q", tc.ns, tc.scheme, tc.svc, tc.port, tc.path, got, tc.want)
		}
	}
}

// TestPluginReport reads a stored report through the aggregated API: by
// <namespace>/<id>, and by id alone in the current namespace.
func TestPluginReport(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	kv, err := recv.JetStream.KeyValue(ctx, queue.ReportsBucket)
	if err != nil {
		t.Fatal(err)
	}
	const id = "rpt_00000000000000000000c11a"
	stored := `{"report_id":"` + id + `","meeting_id":"mtg_9","user_id":"u-1","template":{"namespace":"` + ns + `","name":"discovery","generation":2},"overall_score":71.5,"passed":true,"passing_score":70,"criteria":[],"participants":[],"duration_seconds":60,"rep":{},"generated_at":"2026-01-02T03:04:05Z","namespace":"` + ns + `"}`
	if _, err := kv.Put(ctx, ns+"."+id, []byte(stored)); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"report", ns + "/" + id}, {"report", id, "-n", ns}} {
		out, err := plugin(t, append(args, "--integrations-secret", "nowhere/none")...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		var got map[string]any
		if err := yaml.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v: not YAML: %v\n%s", args, err, out)
		}
		if got["report_id"] != id || got["overall_score"] != 71.5 || got["meeting_id"] != "mtg_9" {
			t.Errorf("%v printed %v", args, got)
		}
	}
	// Another namespace does not hold it.
	if _, err := plugin(t, "report", "default/"+id); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("report in default: %v", err)
	}
}
