package dashboard_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/scoring"
)

// TestPagesShowTheDeliveryLog follows the pages as a user does: the
// endpoints list, the endpoint with its filtered log, and the delivery with
// its response, escaped payload and masked signatures.
func TestPagesShowTheDeliveryLog(t *testing.T) {
	evil := `<script>alert("x")</script>`
	ns, _, rec := deliveredOnce(t, "crm", map[string]any{"report_id": "rpt_pages", "meeting_id": "mtg_1", "user_id": evil})
	base := startDashboard(t, adminKubeconfig)
	epPath := "/endpoints/" + ns + "/crm"

	code, body := get(t, base+"/endpoints")
	if code != http.StatusOK {
		t.Fatalf("endpoints: %d\n%s", code, body)
	}
	for _, want := range []string{`href="` + epPath + `"`, ">crm<", ">Ready<", ">204<", ">100%<"} {
		if !strings.Contains(body, want) {
			t.Errorf("endpoints page lacks %q", want)
		}
	}

	code, body = get(t, base+epPath)
	if code != http.StatusOK {
		t.Fatalf("endpoint: %d\n%s", code, body)
	}
	link := `href="/deliveries/` + rec.Spec.ID + `"`
	for _, want := range []string{link, "report.completed", ">Delivered<", "Deliveries, last 24 hours", "<svg", "Max attempts"} {
		if !strings.Contains(body, want) {
			t.Errorf("endpoint page lacks %q", want)
		}
	}
	// Filters reach the log: nothing is dead, nothing is meeting.failed.
	for q, want := range map[string]bool{"outcome=delivered": true, "outcome=dead": false, "event=meeting.failed": false, "event=report.completed": true, "since=1h": true} {
		code, body = get(t, base+epPath+"?"+q)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", q, code)
		}
		if got := strings.Contains(body, link); got != want {
			t.Errorf("?%s: delivery listed = %v, want %v", q, got, want)
		}
	}
	if code, _ = get(t, base+epPath+"?outcome=bogus"); code != http.StatusBadRequest {
		t.Errorf("?outcome=bogus: %d, want 400", code)
	}

	code, body = get(t, base+"/deliveries/"+rec.Spec.ID)
	if code != http.StatusOK {
		t.Fatalf("delivery: %d\n%s", code, body)
	}
	// The attempt, its response headers and the payload come only from the
	// delivery log, served by the aggregated API.
	for _, want := range []string{`id="attempt-r0-1"`, "HTTP 204", "rpt_pages", `id="redeliver"`, "X-Consumer", html.EscapeString("test <consumer>"), "characters hidden"} {
		if !strings.Contains(body, want) {
			t.Errorf("delivery page lacks %q", want)
		}
	}
	// The payload is escaped, never markup; signatures never appear.
	if strings.Contains(body, evil) || strings.Contains(body, `<script>alert`) {
		t.Error("the payload's markup reached the page unescaped")
	}
	if len(rec.Status.Attempts) == 0 {
		t.Fatal("no attempt in the record")
	}
	for k, v := range rec.Status.Attempts[0].RequestHeaders {
		if strings.Contains(strings.ToLower(k), "signature") {
			sig := strings.TrimPrefix(v, "v1,")
			if len(sig) < 16 || strings.Contains(body, sig) {
				t.Errorf("header %s: the signature value is in the page (or too short to check: %q)", k, v)
			}
		}
	}
}

// TestActionsNeedTheFormTokenAndSameOrigin: the CSRF guard refuses a missing
// token, a foreign Origin and a foreign Host; the right form sends a test
// event through the operator.
func TestActionsNeedTheFormTokenAndSameOrigin(t *testing.T) {
	ns, c, _ := deliveredOnce(t, "app", map[string]any{"report_id": "rpt_csrf"})
	base := startDashboard(t, adminKubeconfig)
	_, page := get(t, base+"/endpoints/"+ns+"/app")
	token := formToken(t, page)
	form := url.Values{"namespace": {ns}, "endpoint": {"app"}, "return": {"/endpoints/" + ns + "/app"}}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(f url.Values, mod func(*http.Request)) int {
		req, _ := http.NewRequest(http.MethodPost, base+"/actions/test", strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if mod != nil {
			mod(req)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(form, nil); got != http.StatusForbidden {
		t.Errorf("without token: %d, want 403", got)
	}
	withToken := url.Values{"csrf": {token}}
	for k, v := range form {
		withToken[k] = v
	}
	if got := post(withToken, func(r *http.Request) { r.Header.Set("Origin", "http://evil.example") }); got != http.StatusForbidden {
		t.Errorf("foreign Origin: %d, want 403", got)
	}
	if got := post(withToken, func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") }); got != http.StatusForbidden {
		t.Errorf("cross-site fetch: %d, want 403", got)
	}
	if got := post(withToken, func(r *http.Request) { r.Host = "rebound.example:80" }); got != http.StatusMisdirectedRequest {
		t.Errorf("foreign Host: %d, want 421", got)
	}
	if n := c.count(miraapi.EventWebhookTest); n != 0 {
		t.Fatalf("a refused request sent %d test events", n)
	}
	if got := post(withToken, func(r *http.Request) { r.Header.Set("Origin", base) }); got != http.StatusSeeOther {
		t.Fatalf("same-origin form: %d, want 303", got)
	}
	eventually(t, "the test event reaches the consumer", func() error {
		if c.count(miraapi.EventWebhookTest) != 1 {
			return errNotYet
		}
		return nil
	})
	w := &miraapi.WebhookEndpoint{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "app"}, w); err != nil {
		t.Fatal(err)
	}
	if w.Annotations[miraapi.TestAnnotation] == "" {
		t.Error("the action did not go through the test annotation")
	}
}

// TestRefusedActionShowsTheAPIServersMessage: a user who may read but not
// patch endpoints sees the pages, and the API server's Forbidden message
// when acting.
func TestRefusedActionShowsTheAPIServersMessage(t *testing.T) {
	ns, c, rec := deliveredOnce(t, "ro", map[string]any{"report_id": "rpt_ro"})
	base := startDashboard(t, viewerKubeconfig)
	code, page := get(t, base+"/deliveries/"+rec.Spec.ID)
	if code != http.StatusOK || !strings.Contains(page, "HTTP 204") {
		t.Fatalf("viewer's delivery page: %d", code)
	}
	form := url.Values{"csrf": {formToken(t, page)}, "namespace": {ns}, "endpoint": {"ro"}, "id": {rec.Spec.ID}}
	resp, err := http.PostForm(base+"/actions/redeliver", form)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("redeliver as viewer: %d, want 403\n%s", resp.StatusCode, body)
	}
	msg := html.UnescapeString(body)
	for _, want := range []string{`User "viewer" cannot patch resource "webhookendpoints"`, "in the namespace \"" + ns + "\""} {
		if !strings.Contains(msg, want) {
			t.Errorf("the refusal lacks %q:\n%s", want, msg)
		}
	}
	if n := c.count(miraapi.EventReportCompleted); n != 1 {
		t.Errorf("consumer got %d deliveries, want the first one only", n)
	}
}

// TestReportsPageListsAnnouncedReports: the reports page lists the reports
// that deliveries announced (read through the aggregated API), and a
// report's page shows the stored report the aggregated API serves.
func TestReportsPageListsAnnouncedReports(t *testing.T) {
	const id = "rpt_0123456789abcdef01234567"
	ns, _, rec := deliveredOnce(t, "reports", map[string]any{"report_id": id, "meeting_id": "mtg_r", "user_id": "usr_r"})
	storeReport(t, &scoring.Report{
		ReportID: id, Namespace: ns, MeetingID: "mtg_r", UserID: "usr_r",
		Template:     scoring.TemplateRef{Namespace: ns, Name: "discovery-call", Generation: 3},
		OverallScore: 73.4, Passed: true, PassingScore: 70,
		Criteria: []scoring.CriterionResult{{
			Name: "Talk ratio", Metric: "talkRatio", Unit: "%", Value: 41.5, Score: 88.5, Weight: 2, Evidence: "the rep spoke 41.5% of the time",
		}},
		Participants: []scoring.Participant{{SpeakerID: "spk_1", Name: "Rita Rep", IsRep: true, Words: 120}},
		Rep:          scoring.RepSelection{SpeakerID: "spk_1", Rule: "name"},
		GeneratedAt:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	})
	base := startDashboard(t, adminKubeconfig)
	code, body := get(t, base+"/reports?namespace="+ns)
	if code != http.StatusOK {
		t.Fatalf("reports: %d\n%s", code, body)
	}
	for _, want := range []string{`href="/reports/` + id + `"`, "mtg_r", "usr_r", `href="/deliveries/` + rec.Spec.ID + `"`} {
		if !strings.Contains(body, want) {
			t.Errorf("reports page lacks %q", want)
		}
	}
	// The report's page: only the reports bucket, through the aggregated
	// API, knows the score, the template and the criteria.
	code, body = get(t, base+"/reports/"+id)
	if code != http.StatusOK {
		t.Fatalf("report: %d\n%s", code, body)
	}
	text := html.UnescapeString(body)
	for _, want := range []string{">73.4<", "template " + ns + "/discovery-call (generation 3)", "Talk ratio", "the rep spoke 41.5% of the time", "Rita Rep", "passed · pass at 70"} {
		if !strings.Contains(text, want) {
			t.Errorf("report page lacks %q:\n%s", want, text)
		}
	}
	// A report nobody stored is the API server's not-found.
	if code, _ = get(t, base+"/reports/rpt_00000000000000000000dead"); code != http.StatusNotFound {
		t.Errorf("unknown report: %d, want 404", code)
	}
	// The lookup form redirects to the report's page.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(base + "/reports?id=rpt_x")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/reports/rpt_x" {
		t.Errorf("lookup: %d %q", resp.StatusCode, loc)
	}
}

// TestEndpointActions posts the endpoint page's forms: each goes through
// the operator, and the page it returns to shows the operator's Event.
func TestEndpointActions(t *testing.T) {
	ns, c, _ := deliveredOnce(t, "acts", map[string]any{"report_id": "rpt_acts"})
	base := startDashboard(t, adminKubeconfig)
	self := "/endpoints/" + ns + "/acts"
	_, page := get(t, base+self)
	token := formToken(t, page)
	secretBefore := signingSecret(t, ns, "acts-signing-secret")
	for _, a := range []struct {
		kind   string
		extra  url.Values
		notice string
	}{
		{"rotate-secret", nil, "SecretRotated"},
		{"redeliver-failed", url.Values{"since": {"1h"}}, "Redelivered"},
		{"enable", nil, "platform.mira.io/enable="},
	} {
		form := url.Values{"csrf": {token}, "namespace": {ns}, "endpoint": {"acts"}, "return": {self}}
		for k, v := range a.extra {
			form[k] = v
		}
		resp, err := http.PostForm(base+"/actions/"+a.kind, form)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != self {
			t.Fatalf("%s: %d at %s\n%s", a.kind, resp.StatusCode, resp.Request.URL, body)
		}
		if !strings.Contains(html.UnescapeString(body), a.notice) {
			t.Errorf("%s: the page does not show %q", a.kind, a.notice)
		}
	}
	if signingSecret(t, ns, "acts-signing-secret") == secretBefore {
		t.Error("rotate-secret did not change the signing secret")
	}
	// Nothing had failed, so redeliver-failed sends nothing again.
	if n := c.count(miraapi.EventReportCompleted); n != 1 {
		t.Errorf("consumer got %d deliveries, want 1", n)
	}
}

// TestNamespacedUserSeesTheirNamespace: a user who may list endpoints in
// one namespace only gets that namespace, with a note saying why. Without
// RBAC on the delivery log the pages say so plainly with the API server's
// Forbidden message; once the shipped mira-data-view is bound in the
// namespace, the same user sees the log.
func TestNamespacedUserSeesTheirNamespace(t *testing.T) {
	ctx := context.Background()
	ns, _, rec := deliveredOnce(t, "team-app", map[string]any{"report_id": "rpt_team"})
	user := "team-" + ns
	for _, obj := range []client.Object{
		&rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "endpoint-reader"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{miraapi.GroupVersion.Group}, Resources: []string{"webhookendpoints"}, Verbs: []string{"get", "list"}}},
		},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "endpoint-reader"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "endpoint-reader"},
			Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: user}},
		},
	} {
		if err := k8s.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	base := startDashboard(t, userKubeconfig(t, user), "-n", ns)
	epPath := "/endpoints/" + ns + "/team-app"
	dlPath := "/deliveries/" + rec.Spec.ID
	// The API server's refusal of the list, as the aggregated API words it.
	forbidden := `deliveries.` + datav1.GroupName + ` is forbidden: User "` + user + `" cannot list resource "deliveries" in API group "` + datav1.GroupName + `" in the namespace "` + ns + `"`
	code, body := get(t, base+"/endpoints")
	if code != http.StatusOK {
		t.Fatalf("endpoints: %d\n%s", code, body)
	}
	text := html.UnescapeString(body)
	for _, want := range []string{
		`href="` + epPath + `"`,
		"You may not list WebhookEndpoints in every namespace",
		"showing namespace " + ns,
		`<p class="banner bad">The delivery log could not be read, so success rates are missing: ` + forbidden,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("endpoints page lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "mira-integrations") {
		t.Error("the endpoints page still mentions the receiver's token Secret")
	}
	// The endpoint's page shows the endpoint, and the refusal where its log
	// would be.
	code, body = get(t, base+epPath)
	text = html.UnescapeString(body)
	if code != http.StatusOK || !strings.Contains(text, `<p class="banner bad">list deliveries of `+ns+`/team-app: `+forbidden) {
		t.Errorf("endpoint page: %d, want the refusal in a banner:\n%s", code, text)
	}
	if strings.Contains(text, `href="`+dlPath+`"`) {
		t.Error("the endpoint page links a delivery the user may not read")
	}
	code, body = get(t, base+dlPath)
	if text = html.UnescapeString(body); code != http.StatusForbidden || !strings.Contains(text, `cannot get resource "deliveries" in API group "`+datav1.GroupName+`" in the namespace "`+ns+`"`) {
		t.Errorf("delivery page: %d, want 403 with the API server's message:\n%s", code, text)
	}
	// Another namespace is refused with the API server's message.
	code, body = get(t, base+"/endpoints/"+intNS+"/nothing")
	if code != http.StatusForbidden || !strings.Contains(html.UnescapeString(body), `cannot get resource "webhookendpoints"`) {
		t.Errorf("other namespace: %d\n%s", code, body)
	}

	// mira-data-view, bound in the namespace, opens the log there. The
	// data API caches authorization decisions for a few seconds: poll.
	if err := k8s.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "mira-data-view"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: user}},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pages show the log once mira-data-view is bound", func() error {
		code, body := get(t, base+epPath)
		if code != http.StatusOK || !strings.Contains(body, `href="`+dlPath+`"`) || strings.Contains(body, "banner bad") {
			return fmt.Errorf("endpoint page: %d:\n%s", code, body)
		}
		code, body = get(t, base+"/endpoints")
		if code != http.StatusOK || strings.Contains(body, "The delivery log could not be read") || !strings.Contains(body, ">100%<") {
			return fmt.Errorf("endpoints page: %d, want the success rate and no banner:\n%s", code, body)
		}
		code, body = get(t, base+dlPath)
		if code != http.StatusOK || !strings.Contains(body, "HTTP 204") || !strings.Contains(body, "rpt_team") {
			return fmt.Errorf("delivery page: %d:\n%s", code, body)
		}
		return nil
	})
}
