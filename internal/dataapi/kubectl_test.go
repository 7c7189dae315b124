package dataapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	"github.com/mira/mira-operator/internal/deliverylog"
	"github.com/mira/mira-operator/internal/testenv"
)

// Fixtures as the receiver stores them.
var (
	created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	crmOK   = datav1.Delivery{
		ID: "dlv_00000000000000000000000a01", EventID: "evt_1", EventType: "report.completed", Namespace: "team-a",
		Endpoint: "crm", UID: "uid-crm", URL: "https://crm.example/hooks", State: datav1.StateDelivered,
		Created: created, Updated: created.Add(time.Second), Body: `{"event":"report.completed"}`, AttemptCount: 1,
		Attempts: []datav1.Attempt{{
			Number: 1, Time: created, DurationMillis: 12, URL: "https://crm.example/hooks",
			RequestHeaders: map[string]string{"webhook-id": "dlv_00000000000000000000000a01", "X-Mira-Event": "report.completed"},
			StatusCode:     204, ResponseHeaders: map[string]string{"Server": "crm"}, ResponseBody: "thanks", Outcome: datav1.StateDelivered,
		}},
	}
	billingDead = datav1.Delivery{
		ID: "dlv_00000000000000000000000a02", EventID: "evt_2", EventType: "meeting.failed", Namespace: "team-a",
		Endpoint: "billing", UID: "uid-billing", State: datav1.StateDead, Created: created.Add(time.Minute),
		Updated: created.Add(time.Minute), AttemptCount: 2, Reason: "max attempts reached",
		Attempts: []datav1.Attempt{
			{Number: 1, Time: created.Add(time.Minute), URL: "https://billing.example", StatusCode: 500, ResponseBody: "down", Outcome: datav1.StateRetrying},
			{Number: 2, Time: created.Add(2 * time.Minute), URL: "https://billing.example", StatusCode: 503, ResponseBody: "still down", Outcome: datav1.StateDead},
		},
	}
	otherTeam = datav1.Delivery{
		ID: "dlv_00000000000000000000000b01", EventID: "evt_3", EventType: "report.completed", Namespace: "team-b",
		Endpoint: "crm", UID: "uid-b-crm", State: datav1.StatePending, Created: created.Add(2 * time.Minute), Updated: created,
	}
	reportJSON = `{"report_id":"rpt_0123456789abcdef01234567","meeting_id":"mtg_1","user_id":"u-7","template":{"namespace":"team-a","name":"discovery","generation":3},"overall_score":82.5,"passed":true,"passing_score":70,"criteria":[],"participants":[],"duration_seconds":600,"rep":{},"generated_at":"2026-01-02T03:04:05Z","namespace":"team-a"}`
)

const legacyReportJSON = `{"report_id":"rpt_00000000000000000000beef","roleplay_id":"rp_1","user_id":"u-9","template":{"namespace":"team-b","name":"discovery","generation":1},"overall_score":40,"passed":false,"generated_at":"2026-01-01T00:00:00Z"}`

func writeFixtures(ctx context.Context) error {
	for _, d := range []datav1.Delivery{crmOK, billingDead, otherTeam} {
		b, err := json.Marshal(d)
		if err != nil {
			return err
		}
		if _, err := deliveryKV.Put(ctx, deliverylog.Key(d.UID, d.Created, d.ID), b); err != nil {
			return err
		}
	}
	if _, err := reportKV.Put(ctx, "team-a.rpt_0123456789abcdef01234567", []byte(reportJSON)); err != nil {
		return err
	}
	// Written before reports were namespaced: the key is the id alone.
	_, err := reportKV.Put(ctx, "rpt_00000000000000000000beef", []byte(legacyReportJSON))
	return err
}

// rows returns the lines of a kubectl table, header first, with runs of
// spaces folded to one.
func rows(out string) []string {
	var r []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		r = append(r, strings.Join(strings.Fields(l), " "))
	}
	return r
}

func TestKubectlGetDeliveriesShowsTheTable(t *testing.T) {
	out, stderr, err := kubectl(t, adminConfig, "get", "deliveries", "-n", "team-a")
	if err != nil {
		t.Fatalf("kubectl get deliveries: %v\n%s", err, stderr)
	}
	got := rows(out)
	if len(got) != 3 {
		t.Fatalf("want header and 2 rows, got:\n%s", out)
	}
	if got[0] != "NAME ENDPOINT EVENT STATE ATTEMPTS CODE AGE" {
		t.Errorf("header = %q", got[0])
	}
	// Newest first; the AGE column is left out of the comparison.
	for i, want := range []string{
		"dlv-00000000000000000000000a02 billing meeting.failed Dead 2 503",
		"dlv-00000000000000000000000a01 crm report.completed Delivered 1 204",
	} {
		if !strings.HasPrefix(got[i+1], want+" ") {
			t.Errorf("row %d = %q, want prefix %q", i+1, got[i+1], want)
		}
	}
	if stderr != "" {
		t.Errorf("kubectl warned: %s", stderr)
	}
}

func TestKubectlGetDeliveriesAllNamespaces(t *testing.T) {
	out, stderr, err := kubectl(t, adminConfig, "get", "deliveries", "-A", "--no-headers")
	if err != nil {
		t.Fatalf("kubectl get deliveries -A: %v\n%s", err, stderr)
	}
	// Other tests write into other namespaces: look at team-a and team-b.
	var got []string
	for _, r := range rows(out) {
		if strings.HasPrefix(r, "team-a ") || strings.HasPrefix(r, "team-b ") {
			got = append(got, r)
		}
	}
	want := []string{
		"team-b dlv-00000000000000000000000b01 crm report.completed Pending 0 -",
		"team-a dlv-00000000000000000000000a02 billing meeting.failed Dead 2 503",
		"team-a dlv-00000000000000000000000a01 crm report.completed Delivered 1 204",
	}
	if len(got) != len(want) {
		t.Fatalf("want %d rows, got:\n%s", len(want), out)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]+" ") {
			t.Errorf("row %d = %q, want prefix %q", i, got[i], want[i])
		}
	}
}

func TestKubectlLabelSelectorsFilter(t *testing.T) {
	for sel, want := range map[string]string{
		"platform.mira.io/state=Dead":                   "dlv-00000000000000000000000a02",
		"platform.mira.io/endpoint=crm":                 "dlv-00000000000000000000000a01",
		"platform.mira.io/event=report.completed":       "dlv-00000000000000000000000a01",
		"platform.mira.io/state in (Delivered,Dead)":    "dlv-00000000000000000000000a02,dlv-00000000000000000000000a01",
		"platform.mira.io/state notin (Delivered,Dead)": "",
	} {
		out, stderr, err := kubectl(t, adminConfig, "get", "deliveries", "-n", "team-a", "-l", sel, "-o", "jsonpath={.items[*].metadata.name}")
		if err != nil {
			t.Fatalf("-l %s: %v\n%s", sel, err, stderr)
		}
		if got := strings.ReplaceAll(strings.TrimSpace(out), " ", ","); got != want {
			t.Errorf("-l %s: got %q, want %q", sel, got, want)
		}
	}
}

func TestKubectlYAMLShowsEveryAttempt(t *testing.T) {
	out, stderr, err := kubectl(t, adminConfig, "get", "delivery", "dlv-00000000000000000000000a02", "-n", "team-a", "-o", "yaml")
	if err != nil {
		t.Fatalf("kubectl get -o yaml: %v\n%s", err, stderr)
	}
	var d datav1.DeliveryObject
	if err := yaml.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	if d.Kind != "Delivery" || d.APIVersion != "data.platform.mira.io/v1alpha1" || d.Spec.ID != billingDead.ID {
		t.Errorf("object = %s %s id %q", d.APIVersion, d.Kind, d.Spec.ID)
	}
	if len(d.Status.Attempts) != 2 || d.Status.Attempts[0].ResponseBody != "down" || d.Status.Attempts[1].StatusCode != 503 ||
		d.Status.State != "Dead" || d.Status.Reason != "max attempts reached" {
		t.Errorf("status = %+v", d.Status)
	}
	out, _, err = kubectl(t, adminConfig, "get", "delivery", "dlv-00000000000000000000000a01", "-n", "team-a", "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	d = datav1.DeliveryObject{}
	if err := yaml.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	// The webhook-id header keeps the id; the name is its valid form.
	if got := d.Status.Attempts[0].RequestHeaders["webhook-id"]; got != crmOK.ID || d.Spec.ID != crmOK.ID || d.Name != "dlv-00000000000000000000000a01" {
		t.Errorf("webhook-id %q, spec.id %q, name %q", got, d.Spec.ID, d.Name)
	}
	if d.Status.Attempts[0].ResponseHeaders["Server"] != "crm" || d.Spec.Body != crmOK.Body {
		t.Errorf("attempt = %+v, body %q", d.Status.Attempts[0], d.Spec.Body)
	}
}

func TestKubectlGetMissingAndOtherNamespace(t *testing.T) {
	// A delivery of team-b is not found through team-a.
	_, stderr, err := kubectl(t, adminConfig, "get", "delivery", "dlv-00000000000000000000000b01", "-n", "team-a")
	if err == nil || !strings.Contains(stderr, "NotFound") {
		t.Errorf("want NotFound, got err %v: %s", err, stderr)
	}
}

func TestRBACAllowsOwnNamespaceOnly(t *testing.T) {
	out, stderr, err := kubectl(t, aliceConfig, "get", "deliveries", "-n", "team-a", "--no-headers")
	if err != nil {
		t.Fatalf("alice in team-a: %v\n%s", err, stderr)
	}
	if n := len(rows(out)); n != 2 {
		t.Errorf("alice sees %d deliveries in team-a, want 2:\n%s", n, out)
	}
	for _, args := range [][]string{
		{"get", "deliveries", "-n", "team-b"},
		{"get", "reports", "-n", "team-b"},
		{"get", "deliveries", "-A"},
	} {
		_, stderr, err := kubectl(t, aliceConfig, args...)
		if err == nil || !strings.Contains(stderr, "Forbidden") && !strings.Contains(stderr, "forbidden") {
			t.Errorf("alice %v: want Forbidden, got err %v: %s", args, err, stderr)
		}
	}
}

func TestKubectlGetLegacyReportsInTheirTemplatesNamespace(t *testing.T) {
	out, stderr, err := kubectl(t, adminConfig, "get", "reports", "-A", "--no-headers")
	if err != nil {
		t.Fatalf("kubectl get reports -A: %v\n%s", err, stderr)
	}
	got := rows(out)
	if len(got) != 2 || !strings.HasPrefix(got[0], "team-a rpt-0123456789abcdef01234567 u-7 ") ||
		!strings.HasPrefix(got[1], "team-b rpt-00000000000000000000beef u-9 discovery 40 false ") {
		t.Fatalf("reports -A:\n%s", out)
	}
	if _, stderr, err := kubectl(t, adminConfig, "get", "report", "rpt-00000000000000000000beef", "-n", "team-b"); err != nil {
		t.Errorf("get legacy report in team-b: %v: %s", err, stderr)
	}
	if _, stderr, err := kubectl(t, adminConfig, "get", "report", "rpt-00000000000000000000beef", "-n", "team-a"); err == nil || !strings.Contains(stderr, "NotFound") {
		t.Errorf("legacy report of team-b through team-a: want NotFound, got %v: %s", err, stderr)
	}
}

func TestKubectlGetReports(t *testing.T) {
	out, stderr, err := kubectl(t, aliceConfig, "get", "reports", "-n", "team-a")
	if err != nil {
		t.Fatalf("kubectl get reports: %v\n%s", err, stderr)
	}
	got := rows(out)
	if len(got) != 2 || got[0] != "NAME USER TEMPLATE SCORE PASSED AGE" ||
		!strings.HasPrefix(got[1], "rpt-0123456789abcdef01234567 u-7 discovery 82.5 true ") {
		t.Fatalf("table:\n%s", out)
	}
	out, stderr, err = kubectl(t, aliceConfig, "get", "report", "rpt-0123456789abcdef01234567", "-n", "team-a", "-o", "json")
	if err != nil {
		t.Fatalf("kubectl get report -o json: %v\n%s", err, stderr)
	}
	var r struct {
		Kind string `json:"kind"`
		Spec struct {
			ReportID string `json:"reportID"`
		} `json:"spec"`
		Data struct {
			OverallScore float64 `json:"overall_score"`
			MeetingID    string  `json:"meeting_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Kind != "Report" || r.Spec.ReportID != "rpt_0123456789abcdef01234567" || r.Data.OverallScore != 82.5 || r.Data.MeetingID != "mtg_1" {
		t.Errorf("report = %+v", r)
	}
}

func TestKubectlExplain(t *testing.T) {
	// The aggregator fetches the server's OpenAPI in the background after
	// the APIService turns Available: wait for it to be published.
	testenv.Eventually(t, "explain deliveries", 60*time.Second, func() error {
		out, stderr, err := kubectl(t, aliceConfig, "explain", "deliveries.status.attempts.responseBody")
		if err != nil {
			raw, _, _ := kubectl(t, adminConfig, "get", "--raw", "/openapi/v3/apis/data.platform.mira.io/v1alpha1")
			if i := strings.Index(raw, `"schemas"`); i > 0 {
				raw = raw[i:]
			}
			if len(raw) > 3000 {
				raw = raw[:3000]
			}
			return fmt.Errorf("kubectl explain: %w: %s; /openapi/v3: %s", err, stderr, raw)
		}
		if !strings.Contains(out, "ResponseBody received, bounded.") {
			return fmt.Errorf("explain:\n%s", out)
		}
		return nil
	})
}

// TestKubectlWatch follows `kubectl get deliveries -w`: a delivery written
// after the list arrives as an event, its next attempt as MODIFIED, and a
// delivery of another namespace never shows.
func TestKubectlWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", "--kubeconfig", adminConfig, "--cache-dir", t.TempDir(),
		"get", "deliveries", "-n", "team-w", "-w", "--output-watch-events", "--no-headers")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	put := func(d datav1.Delivery) {
		t.Helper()
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := deliveryKV.Put(ctx, deliverylog.Key(d.UID, d.Created, d.ID), b); err != nil {
			t.Fatal(err)
		}
	}
	await := func(want ...string) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("kubectl -w ended before %q: %s", want, stderr.String())
				}
				if strings.Contains(l, "dlv-00000000000000000000000c01") {
					t.Fatalf("a delivery of team-x reached a watch of team-w: %q", l)
				}
				if l = strings.Join(strings.Fields(l), " "); slices.ContainsFunc(want, func(w string) bool { return strings.HasPrefix(l, w) }) {
					return
				}
			case <-deadline:
				t.Fatalf("no %q from kubectl -w: %s", want, stderr.String())
			}
		}
	}
	now := time.Now().UTC().Truncate(time.Second)
	other := datav1.Delivery{ID: "dlv_00000000000000000000000c01", Namespace: "team-x", Endpoint: "crm", UID: "uid-x",
		EventType: "report.completed", State: datav1.StatePending, Created: now, Updated: now}
	mine := datav1.Delivery{ID: "dlv_00000000000000000000000d01", Namespace: "team-w", Endpoint: "crm", UID: "uid-w",
		EventType: "report.completed", State: datav1.StatePending, Created: now, Updated: now}
	// The watch may start before or after these writes: the new delivery
	// is listed or watched, ADDED either way; the other never shows.
	put(other)
	put(mine)
	await("ADDED dlv-00000000000000000000000d01 crm report.completed Pending 0 - ")
	mine.State, mine.AttemptCount, mine.Updated = datav1.StateDelivered, 1, now.Add(time.Second)
	mine.Attempts = []datav1.Attempt{{Number: 1, Time: now, StatusCode: 204, Outcome: datav1.StateDelivered}}
	put(other)
	put(mine)
	await("MODIFIED dlv-00000000000000000000000d01 crm report.completed Delivered 1 204 ")
}

// TestServiceAccountTokenReadsOwnNamespaceOnly: a ServiceAccount's bearer
// token (authenticated by the kube-apiserver, the request proxied with
// X-Remote-User to the data API, authorised there by SubjectAccessReview)
// reads in the namespace its RoleBinding covers and is Forbidden elsewhere.
func TestServiceAccountTokenReadsOwnNamespaceOnly(t *testing.T) {
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reader", Namespace: "team-a"}}
	if err := k8s.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "reader", Namespace: "team-a"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "mira-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "reader", Namespace: "team-a"}},
	}
	if err := k8s.Create(ctx, rb); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	tr := &authenticationv1.TokenRequest{}
	if err := k8s.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatalf("token for the ServiceAccount: %v", err)
	}
	admin, err := clientcmd.LoadFromFile(adminConfig)
	if err != nil {
		t.Fatal(err)
	}
	kc := admin.DeepCopy()
	for _, u := range kc.AuthInfos {
		*u = clientcmdapi.AuthInfo{Token: tr.Status.Token}
	}
	path := filepath.Join(t.TempDir(), "sa.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := kubectl(t, path, "get", "deliveries", "-n", "team-a", "-o", "name")
	if err != nil || !strings.Contains(out, "delivery.data.platform.mira.io/dlv-00000000000000000000000a01") {
		t.Fatalf("the ServiceAccount in team-a: %v: %s%s", err, out, stderr)
	}
	_, stderr, err = kubectl(t, path, "get", "deliveries", "-n", "team-b")
	if err == nil || !strings.Contains(stderr, `User "system:serviceaccount:team-a:reader" cannot list resource "deliveries"`) {
		t.Errorf("the ServiceAccount in team-b: want Forbidden, got %v: %s", err, stderr)
	}
}
