package receiver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/fanout"
)

// An event published in one workspace reaches the endpoints of its own
// namespace and never those of another.
func TestEventsStayInTheirWorkspace(t *testing.T) {
	nsA, nsB := newNamespace(t), newNamespace(t)
	cA, cB := newConsumer(nil), newConsumer(nil)
	srvA, srvB := httptest.NewServer(cA), httptest.NewServer(cB)
	defer srvA.Close()
	defer srvB.Close()
	_, _ = createEndpoint(t, nsA, "all", srvA.URL, []string{miraapi.EventAll}, nil)
	wB, _ := createEndpoint(t, nsB, "all", srvB.URL, []string{miraapi.EventAll}, nil)

	idA := publish(t, nsA, miraapi.EventReportCompleted, map[string]string{"report_id": "in-a"})
	_ = publish(t, nsB, miraapi.EventReportCompleted, map[string]string{"report_id": "in-b"})
	gotA, gotB := cA.waitFor(t, 1), cB.waitFor(t, 1)
	for _, c := range []struct {
		ns   string
		got  []received
		want string
	}{{nsA, gotA, "in-a"}, {nsB, gotB, "in-b"}} {
		for _, r := range c.got {
			var body struct {
				Data map[string]string `json:"data"`
			}
			if err := json.Unmarshal(r.Body, &body); err != nil || body.Data["report_id"] != c.want {
				t.Errorf("workspace %s received %s, want only report %s", c.ns, r.Body, c.want)
			}
		}
	}
	// No delivery of A's event to B's endpoint was ever recorded.
	resp := apiRequest(t, http.MethodGet, "/v1/deliveries/"+fanout.DeliveryID(idA, string(wB.UID)), nil)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("delivery of %s's event to %s/all: %d, want 404", nsA, nsB, resp.StatusCode)
	}
	if got := cB.all(); len(got) != 1 {
		t.Errorf("%s's endpoint received %d requests, want 1", nsB, len(got))
	}
}

// A ServiceAccount allowed to publish in its own namespace only: 401 for a
// garbage token, 403 in another namespace, 202 in its own; the second
// publish asks the API server nothing (cached reviews).
func TestPublishingWithAServiceAccountToken(t *testing.T) {
	ctx := context.Background()
	own, other := newNamespace(t), newNamespace(t)
	token, err := serviceAccountToken(ctx, own, "publisher", own)
	if err != nil {
		t.Fatal(err)
	}
	post := func(ns, token string) (int, string) {
		t.Helper()
		body := []byte(`{"event":"report.completed","data":{"report_id":"sa"}}`)
		req, _ := http.NewRequest(http.MethodPost, recvURL+"/v1/namespaces/"+ns+"/events", bytes.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		name, ns, token string
		want            int
	}{
		{"no token", own, "", http.StatusUnauthorized},
		{"garbage token", own, "not-a-kubernetes-token", http.StatusUnauthorized},
		{"static api-token", own, apiToken, http.StatusUnauthorized},
		{"another namespace", other, token, http.StatusForbidden},
		{"own namespace", own, token, http.StatusAccepted},
		{"not a namespace name", "Not_A_Namespace", token, http.StatusNotFound},
	} {
		if code, body := post(tc.ns, tc.token); code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.want)
		}
	}
	tokenReviews, accessReviews := recv.Auth.TokenReviews.Load(), recv.Auth.AccessReviews.Load()
	for range 3 {
		if code, body := post(own, token); code != http.StatusAccepted {
			t.Fatalf("publish again: %d %s", code, body)
		}
	}
	if code, _ := post(other, token); code != http.StatusForbidden {
		t.Errorf("another namespace again: %d, want 403 (cached refusal)", code)
	}
	if n, m := recv.Auth.TokenReviews.Load()-tokenReviews, recv.Auth.AccessReviews.Load()-accessReviews; n != 0 || m != 0 {
		t.Errorf("cached publishes sent %d TokenReviews and %d SubjectAccessReviews, want 0", n, m)
	}
}

// A burst of publishes with a token not seen before sends one TokenReview
// and one SubjectAccessReview, not one per request.
func TestBurstWithAFreshTokenSendsOneReview(t *testing.T) {
	ns := newNamespace(t)
	token, err := serviceAccountToken(context.Background(), ns, "burst", ns)
	if err != nil {
		t.Fatal(err)
	}
	tokenReviews, accessReviews := recv.Auth.TokenReviews.Load(), recv.Auth.AccessReviews.Load()
	const n = 64
	codes := make(chan int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			body := fmt.Sprintf(`{"id":"burst-%d","event":"report.completed","data":{"report_id":"b"}}`, i)
			req, _ := http.NewRequest(http.MethodPost, recvURL+"/v1/namespaces/"+ns+"/events", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				codes <- 0
				return
			}
			_ = resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusAccepted {
			t.Fatalf("a publish answered %d", c)
		}
	}
	if n, m := recv.Auth.TokenReviews.Load()-tokenReviews, recv.Auth.AccessReviews.Load()-accessReviews; n != 1 || m != 1 {
		t.Errorf("%d concurrent publishes sent %d TokenReviews and %d SubjectAccessReviews, want 1 and 1", 64, n, m)
	}
}
