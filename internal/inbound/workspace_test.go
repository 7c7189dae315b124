package inbound

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/endpoints"
	"github.com/mira/mira-operator/internal/integrations"
	"github.com/mira/mira-operator/internal/k8sauth"
	"github.com/mira/mira-operator/internal/recall/recalltest"
	"github.com/mira/mira-operator/internal/scoring"
	"github.com/mira/mira-operator/internal/workspace"
)

// Secrets of the second workspace, distinct from the default one's.
const (
	teamRecallSecret = "whsec_dGVhbS1iLXJlY2FsbC1rZXktMDEyMzQ1Njc4OWFiY2Q="
	teamStripeSecret = "whsec_teamBStripeSecret0123456789"
)

// teamWorkspace creates a second workspace: its namespace, its
// mira-integrations Secret, a default ScoringTemplate and an endpoint
// receiving every event, and waits until the receiver sees them.
func teamWorkspace(t *testing.T) (string, *collector) {
	t.Helper()
	ctx := context.Background()
	ns := fmt.Sprintf("team-%d", time.Now().UnixNano())
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: integrations.DefaultWorkspaceSecretName},
		StringData: map[string]string{
			integrations.RecallWebhookSecretKey: teamRecallSecret,
			integrations.RecallAPIKeyKey:        recalltest.DefaultAPIKey,
			integrations.StripeWebhookSecretKey: teamStripeSecret,
		},
	}); err != nil {
		t.Fatal(err)
	}
	tmpl := template("team-rubric", true)
	tmpl.Namespace = ns
	if err := k8s.Create(ctx, tmpl); err != nil {
		t.Fatal(err)
	}
	c := &collector{notify: make(chan struct{}, 1)}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	if err := k8s.Create(ctx, &miraapi.WebhookEndpoint{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "all"},
		Spec:       miraapi.WebhookEndpointSpec{URL: srv.URL, Events: miraapi.EventTypes},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "second workspace ready", func() error {
		e := recv.Registry.Lookup(ns, "all")
		s := &corev1.Secret{}
		if e == nil || !endpoints.Configured(e.Object()) {
			return fmt.Errorf("endpoint not configured")
		}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "all-signing-secret"}, s); err != nil {
			return err
		}
		c.setSecret(string(s.Data["signingSecret"]))
		got := &miraapi.ScoringTemplate{}
		if err := recv.Manager.GetCache().Get(ctx, types.NamespacedName{Namespace: ns, Name: tmpl.Name}, got); err != nil {
			return err
		}
		if r := apimeta.FindStatusCondition(got.Status.Conditions, miraapi.ReadyCondition); r == nil || r.Status != metav1.ConditionTrue || r.ObservedGeneration != got.Generation {
			return fmt.Errorf("template not Ready")
		}
		return nil
	})
	return ns, c
}

// waitFor waits for a verified delivery of event with data[key] == value
// at c.
func (c *collector) waitFor(t *testing.T, event, key, value string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if got := c.matching(event, key, value); len(got) > 0 {
			if !got[0].Verified {
				t.Fatalf("%s arrived with a signature that does not verify", event)
			}
			return got[0].Data
		}
		select {
		case <-c.notify:
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("no %s with %s=%s", event, key, value)
	return nil
}

// A workspace's Recall webhooks verify with its own secret only; its
// meeting is scored with its own template, stored under its namespace and
// delivered to its own endpoints, never to the default workspace's.
func TestRecallWebhooksBelongToTheirWorkspace(t *testing.T) {
	ns, team := teamWorkspace(t)
	bot := uniq(t, "bot")
	fake.AddBot(bot, map[string]string{"user_id": "usr_team"}, recalltest.SampleTranscript(), false)
	body := recalltest.BotDonePayload(bot, nil, time.Now())

	for _, tc := range []struct {
		name, path, secret string
		want               int
	}{
		{"default workspace's secret on the team route", "/webhooks/recall/" + ns, recallSecret, http.StatusUnauthorized},
		{"team secret on the unscoped (default) route", "/webhooks/recall", teamRecallSecret, http.StatusUnauthorized},
		{"a workspace without a Secret", "/webhooks/recall/no-such-team", teamRecallSecret, http.StatusUnauthorized},
		{"not a namespace name", "/webhooks/recall/Not_A_Namespace", teamRecallSecret, http.StatusNotFound},
		{"team secret on the team route", "/webhooks/recall/" + ns, teamRecallSecret, http.StatusOK},
	} {
		code, resp := post(t, tc.path, recalltest.SignedHeaders(tc.secret, "msg_"+bot, time.Now(), body), body)
		if code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, resp, tc.want)
		}
	}
	meeting := MeetingID(bot)
	data := team.waitFor(t, miraapi.EventReportCompleted, "meeting_id", meeting)
	reportID, _ := data["report_id"].(string)
	entry, err := in.reports.Get(context.Background(), workspace.Key(ns, reportID))
	if err != nil {
		t.Fatalf("report %s not stored under %s.%s: %v", reportID, ns, reportID, err)
	}
	var report scoring.Report
	if err := json.Unmarshal(entry.Value(), &report); err != nil || report.Namespace != ns || report.Template.Namespace != ns {
		t.Fatalf("stored report: namespace %q, template %+v (%v); want both in %s", report.Namespace, report.Template, err, ns)
	}
	if got := consumer.matching(miraapi.EventReportCompleted, "meeting_id", meeting); len(got) != 0 {
		t.Errorf("the default workspace's endpoint received the team's report.completed")
	}
	if got := consumer.matching(miraapi.EventMeetingTranscriptReady, "meeting_id", meeting); len(got) != 0 {
		t.Errorf("the default workspace's endpoint received the team's meeting.transcript_ready")
	}
	// The default workspace's reports route does not serve it.
	if code, _ := get(t, "/v1/reports/"+reportID); code != http.StatusNotFound {
		t.Errorf("GET /v1/reports/%s with the legacy token: %d, want 404 (another workspace's report)", reportID, code)
	}
}

// Stripe webhooks: another workspace's signature gets 401, the right one
// is applied to the workspace's own billing state.
func TestStripeWebhooksBelongToTheirWorkspace(t *testing.T) {
	ns, _ := teamWorkspace(t)
	suffix := fmt.Sprint(time.Now().UnixNano())
	cus := "cus_W" + suffix
	ev := stripeEvent("evt_w"+suffix, stripe.APIVersion, "customer.subscription.updated", time.Now().Unix(), map[string]any{
		"id": "sub_W" + suffix, "object": "subscription", "customer": cus, "status": "active",
		"current_period_end": time.Now().Add(720 * time.Hour).Unix(), "cancel_at_period_end": false,
		"items": map[string]any{"object": "list", "data": []any{map[string]any{"id": "si_1", "price": map[string]any{"id": "price_pro"}}}},
	})
	if code, resp := post(t, "/webhooks/stripe/"+ns, signStripe(ev, stripeSecret), ev); code != http.StatusUnauthorized {
		t.Errorf("default workspace's signature on the team route: %d %s, want 401", code, resp)
	}
	if code, resp := post(t, "/webhooks/stripe", signStripe(ev, teamStripeSecret), ev); code != http.StatusUnauthorized {
		t.Errorf("team signature on the default route: %d %s, want 401", code, resp)
	}
	if code, resp := post(t, "/webhooks/stripe/"+ns, signStripe(ev, teamStripeSecret), ev); code != http.StatusOK {
		t.Fatalf("team signature on the team route: %d %s, want 200", code, resp)
	}
	teamCtx := workspace.With(context.Background(), ns)
	eventually(t, "customer in the team's billing state", func() error {
		_, err := in.billingOf(teamCtx).Customer(teamCtx, cus)
		return err
	})
	if _, err := in.billingOf(defaultWS()).Customer(defaultWS(), cus); err == nil {
		t.Error("the team's customer appears in the default workspace's billing state")
	}
}

// A ServiceAccount allowed to create roleplays in its workspace publishes
// one there with its own token: scored with the workspace's template and
// delivered to the workspace's endpoint only. Across namespaces it gets
// 403, and the static api-token is refused on the scoped route.
func TestRoleplayPublishedWithAServiceAccountToken(t *testing.T) {
	ctx := context.Background()
	ns, team := teamWorkspace(t)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "coach"}}
	if err := k8s.Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "roleplays"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{k8sauth.Group}, Resources: []string{ResourceRoleplays}, Verbs: []string{"create"}}}}); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "coach-roleplays"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "roleplays"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "coach"}}}); err != nil {
		t.Fatal(err)
	}
	tr := &authnv1.TokenRequest{}
	if err := k8s.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatal(err)
	}
	bearer := http.Header{"Authorization": {"Bearer " + tr.Status.Token}, "Content-Type": {"application/json"}}
	id := uniq(t, "rp")
	body := roleplayBody(id, plainTranscript, scoring.Rep{Name: "rep"})
	if code, resp := post(t, "/v1/namespaces/"+intNS+"/roleplays", bearer, body); code != http.StatusForbidden {
		t.Errorf("another namespace: %d %s, want 403", code, resp)
	}
	if code, resp := post(t, "/v1/namespaces/"+ns+"/roleplays", authHeader(), body); code != http.StatusUnauthorized {
		t.Errorf("static api-token on the scoped route: %d %s, want 401", code, resp)
	}
	if code, resp := post(t, "/v1/namespaces/"+ns+"/roleplays", bearer, body); code != http.StatusAccepted {
		t.Fatalf("own namespace: %d %s, want 202", code, resp)
	}
	got := team.waitFor(t, miraapi.EventRoleplayCompleted, "roleplay_id", id)
	if want := scoring.ReportID(id, ns, "team-rubric"); got["report_id"] != want {
		t.Errorf("report %v, want %s (the workspace's template)", got["report_id"], want)
	}
	if n := len(consumer.matching(miraapi.EventRoleplayCompleted, "roleplay_id", id)); n != 0 {
		t.Errorf("the default workspace's endpoint received the team's roleplay.completed")
	}
}

// recall-region picks the regional API; an unknown value is refused rather
// than turned into a URL.
func TestRecallRegionURL(t *testing.T) {
	for region, want := range map[string]string{
		"":             "http://fallback",
		"eu-central-1": "https://eu-central-1.recall.ai",
		"us-west-2":    "https://us-west-2.recall.ai",
	} {
		if got, err := RecallRegionURL(region, "http://fallback"); err != nil || got != want {
			t.Errorf("RecallRegionURL(%q) = %q, %v; want %q", region, got, err, want)
		}
	}
	for _, bad := range []string{"evil.example.com/x", "us-east-1.attacker", "EU-CENTRAL-1"} {
		if got, err := RecallRegionURL(bad, "http://fallback"); err == nil {
			t.Errorf("RecallRegionURL(%q) = %q, want an error", bad, got)
		}
	}
}
