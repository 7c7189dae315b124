package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mira/mira-operator/internal/delivery"
	"github.com/mira/mira-operator/internal/signing"
)

// post sends one signed delivery to url as the receiver would; tamper, when
// set, changes the body after signing.
func post(t *testing.T, url, secret, id string, body []byte, at time.Time, tamper func([]byte) []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := delivery.NewRequest(context.Background(), url, delivery.Message{ID: id, EventType: "report.completed", Body: body, Secret: secret}, at)
	if err != nil {
		t.Fatal(err)
	}
	if tamper != nil {
		b := tamper(bytes.Clone(body))
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.ContentLength = int64(len(b))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp, answer
}

func reportBody(t *testing.T, reportID string) []byte {
	t.Helper()
	b, err := delivery.BuildBody("report.completed", json.RawMessage(`{"report_id":"`+reportID+`","meeting_id":"m1","user_id":"u1"}`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestListenVerifiesFromTheClusterAndFollowsRotation(t *testing.T) {
	ns := newNamespace(t)
	secret := createEndpoint(t, ns, "hooks", "http://127.0.0.1:9/unused")
	addr, out := startListen(t, "--endpoint", ns+"/hooks", "--kubeconfig", kubeconfig, "--secret-refresh-interval", "0")
	url := "http://" + addr + "/webhooks/mira"

	resp, _ := post(t, url, secret, "dlv_good1", reportBody(t, "rep_1"), time.Now(), nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("signed delivery: status %d, want 204", resp.StatusCode)
	}
	got := out.waitFor(t, "verified line", func(s string) bool { return strings.Contains(s, "dlv_good1") })
	for _, want := range []string{"report.completed", "dlv_good1", "verified", `"report_id":"rep_1"`} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}

	cases := []struct {
		name   string
		secret string
		at     time.Time
		tamper func([]byte) []byte
		want   string
	}{
		{"body changed after signing", secret, time.Now(), func(b []byte) []byte { return bytes.Replace(b, []byte("rep_2"), []byte("rep_X"), 1) }, "X-Mira-Signature does not match"},
		{"wrong secret", "whsec_" + strings.Repeat("A", 43) + "=", time.Now(), nil, "X-Mira-Signature does not match"},
		{"webhook-timestamp older than the tolerance", secret, time.Now().Add(-10 * time.Minute), nil, "webhook-signature"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := "dlv_bad" + string(rune('a'+i))
			resp, answer := post(t, url, tc.secret, id, reportBody(t, "rep_2"), tc.at, tc.tamper)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			if strings.Contains(string(answer), "match") || strings.Contains(string(answer), "timestamp") {
				t.Errorf("the 401 answer tells why: %q", answer)
			}
			line := out.waitFor(t, "rejected line", func(s string) bool { return strings.Contains(s, id) })
			line = line[strings.Index(line, id):]
			if !strings.Contains(line, "REJECTED") || !strings.Contains(line, tc.want) {
				t.Errorf("want a REJECTED line with %q, got:\n%s", tc.want, line)
			}
		})
	}

	// Rotate with the plugin: the listener re-reads the Secret on the first
	// failure and accepts deliveries signed with the new secret.
	if _, err := plugin(t, "rotate-secret", "hooks", "-n", ns); err != nil {
		t.Fatalf("rotate-secret: %v", err)
	}
	rotated := signingSecret(t, ns, "hooks-signing-secret")
	if rotated == secret {
		t.Fatal("rotate-secret returned before the secret changed")
	}
	resp, _ = post(t, url, rotated, "dlv_rotated", reportBody(t, "rep_3"), time.Now(), nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delivery signed with the rotated secret: status %d, want 204", resp.StatusCode)
	}
	got = out.waitFor(t, "rotated line", func(s string) bool { return strings.Contains(s, "dlv_rotated") })
	if line := got[strings.Index(got, "dlv_rotated"):]; !strings.Contains(line, "verified") {
		t.Fatalf("rotated delivery not verified:\n%s", line)
	}
}

func TestListenForwardsVerifiedDeliveries(t *testing.T) {
	secret, err := signing.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	type forwarded struct {
		header http.Header
		body   []byte
	}
	got := make(chan forwarded, 4)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- forwarded{r.Header.Clone(), b}
		w.Header().Set("X-App", "yes")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte("queued by the app"))
	}))
	defer app.Close()
	addr, out := startListen(t, "--secret-file", file, "--forward-to", app.URL+"/hook", "--print-json")

	body := reportBody(t, "rep_fwd")
	resp, answer := post(t, "http://"+addr+"/", secret, "dlv_fwd", body, time.Now(), nil)
	if resp.StatusCode != http.StatusAccepted || string(answer) != "queued by the app" || resp.Header.Get("X-App") != "yes" {
		t.Fatalf("answer %d %q (X-App %q), want the app's 202", resp.StatusCode, answer, resp.Header.Get("X-App"))
	}
	f := <-got
	if !bytes.Equal(f.body, body) {
		t.Errorf("forwarded body %q, want %q", f.body, body)
	}
	for _, h := range []string{"X-Mira-Signature", "X-Mira-Event", "X-Mira-Timestamp", "webhook-id", "webhook-timestamp", "webhook-signature"} {
		if f.header.Get(h) == "" {
			t.Errorf("forwarded request lacks %s", h)
		}
	}
	if !signing.VerifyMira(secret, f.body, f.header.Get("X-Mira-Signature")) {
		t.Error("the forwarded request does not verify with the secret")
	}

	// A tampered delivery is not forwarded.
	resp, _ = post(t, "http://"+addr+"/", secret, "dlv_fwd_bad", body, time.Now(), func(b []byte) []byte { return append(b, ' ') })
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("tampered: status %d, want 401", resp.StatusCode)
	}
	s := out.waitFor(t, "two JSON lines", func(s string) bool { return strings.Count(s, "\n") >= 2 })
	lines := strings.Split(strings.TrimSpace(s), "\n")
	var first, second struct {
		Event         string          `json:"event"`
		WebhookID     string          `json:"webhook_id"`
		Verified      bool            `json:"verified"`
		ForwardStatus int             `json:"forward_status"`
		Body          json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatalf("line 1 is not JSON: %v: %s", err, lines[0])
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatalf("line 2 is not JSON: %v: %s", err, lines[1])
	}
	if first.Event != "report.completed" || first.WebhookID != "dlv_fwd" || !first.Verified || first.ForwardStatus != http.StatusAccepted || !bytes.Equal(first.Body, body) {
		t.Errorf("first line = %+v", first)
	}
	if second.WebhookID != "dlv_fwd_bad" || second.Verified || second.ForwardStatus != 0 {
		t.Errorf("second line = %+v", second)
	}
	select {
	case f := <-got:
		t.Fatalf("the tampered delivery was forwarded: %q", f.body)
	default:
	}
}

func TestListenBoundsTheBody(t *testing.T) {
	secret, _ := signing.GenerateSecret()
	addr, _ := startListen(t, "--secret", secret, "--max-body-bytes", "64")
	resp, _ := post(t, "http://"+addr+"/", secret, "dlv_big", reportBody(t, strings.Repeat("x", 100)), time.Now(), nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
}
