package inbound

import (
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/mira/mira-operator/internal/recall/recalltest"
)

// Requests that can be refused from their headers alone are answered
// without reading the body: the body here is a pipe nothing is ever
// written to, so a handler that read it would hang until the server's read
// timeout (30 s) and the client's 10 s timeout would fail the test.
func TestRefusedBeforeTheBodyIsRead(t *testing.T) {
	signedNow := recalltest.SignedHeaders(recallSecret, "msg_unread", time.Now(), []byte(`{}`))
	stale := recalltest.SignedHeaders(recallSecret, "msg_unread_old", time.Now().Add(-time.Hour), []byte(`{}`))
	tests := []struct {
		name   string
		path   string
		header http.Header
		length int64
		want   int
	}{
		{"recall unsigned", "/webhooks/recall", http.Header{"Content-Type": {"application/json"}}, -1, http.StatusUnauthorized},
		{"recall svix id only", "/webhooks/recall", http.Header{"Svix-Id": {"msg_1"}}, -1, http.StatusUnauthorized},
		{"recall stale timestamp", "/webhooks/recall", stale, -1, http.StatusUnauthorized},
		{"stripe unsigned", "/webhooks/stripe", http.Header{"Content-Type": {"application/json"}}, -1, http.StatusUnauthorized},
		{"stripe without v1", "/webhooks/stripe", http.Header{"Stripe-Signature": {"t=" + strconv.FormatInt(time.Now().Unix(), 10)}}, -1, http.StatusUnauthorized},
		{"recall declared too large", "/webhooks/recall", signedNow, MaxWebhookBytes + 1, http.StatusRequestEntityTooLarge},
		{"roleplay declared too large", "/v1/roleplays", authHeader(), MaxRoleplayBytes + 1, http.StatusRequestEntityTooLarge},
	}
	client := &http.Client{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			defer func() { _ = pw.Close() }()
			req, _ := http.NewRequest(http.MethodPost, recvURL+tc.path, pr)
			req.ContentLength = tc.length
			for k, v := range tc.header {
				req.Header[k] = v
			}
			type result struct {
				code int
				err  error
			}
			done := make(chan result, 1)
			go func() {
				resp, err := client.Do(req)
				if err != nil {
					done <- result{err: err}
					return
				}
				_ = resp.Body.Close()
				done <- result{code: resp.StatusCode}
			}()
			var res result
			select {
			case res = <-done:
			case <-time.After(10 * time.Second):
				_ = pw.Close() // unblock the client before failing
				t.Fatal("no answer within 10 s: the server waits for the body")
			}
			if res.err != nil || res.code != tc.want {
				t.Fatalf("status %d (%v), want %d", res.code, res.err, tc.want)
			}
		})
	}
}
