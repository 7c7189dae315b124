package k8sauth

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// With the API server unreachable (a closed port on loopback) a publish
// answers 503, and nothing is cached: the next request asks again.
func TestUnreachableAPIServerAnswers503(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	c, err := client.New(&rest.Config{Host: "https://" + addr, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, Timeout: 5 * time.Second}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := &Reviewer{Client: c, Logger: logr.Discard()}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/namespaces/{namespace}/events", a.Require("events", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("the handler ran without a review")
	})))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for i := range 2 {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/namespaces/team-a/events", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer some-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("request %d: %d, want 503 with Retry-After", i, resp.StatusCode)
		}
	}
	if n := a.TokenReviews.Load(); n != 2 {
		t.Fatalf("%d TokenReviews sent, want 2 (a failure is not cached)", n)
	}
	if _, err := a.Check(context.Background(), "x", "team-a", "events"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Check: %v, want ErrUnavailable", err)
	}
}

// The caches stay bounded and never hold the raw token.
func TestCacheBoundedAndKeyedByHash(t *testing.T) {
	now := time.Now()
	exp := func(e userEntry) time.Time { return e.expires }
	var m map[string]userEntry
	for i := range 50 {
		m = putBounded(m, tokenID(strings.Repeat("t", i+1)), userEntry{expires: now.Add(time.Minute)}, 10, now, exp)
		if len(m) > 10 {
			t.Fatalf("cache grew to %d entries, bound 10", len(m))
		}
	}
	for k := range m {
		if strings.Contains(k, "ttt") {
			t.Fatalf("cache key %q holds the token", k)
		}
	}
	// Expired entries go first.
	m = map[string]userEntry{"old": {expires: now.Add(-time.Second)}, "live": {expires: now.Add(time.Minute)}}
	m = putBounded(m, "new", userEntry{expires: now.Add(time.Minute)}, 2, now, exp)
	if _, ok := m["live"]; !ok || len(m) != 2 {
		t.Fatalf("after a put into a full cache: %v", m)
	}
}

// The cost of a cached review, the path of every publish after the first
// in a minute: run with `go test -bench CachedCheck ./internal/k8sauth`.
func BenchmarkCachedCheck(b *testing.B) {
	a := &Reviewer{Logger: logr.Discard()}
	token := strings.Repeat("t", 900) // ServiceAccount tokens are ~1 KB JWTs
	now := time.Now()
	id := tokenID(token)
	a.users = map[string]userEntry{id: {user: &authnv1.UserInfo{Username: "system:serviceaccount:team-a:app"}, expires: now.Add(time.Hour)}}
	a.allowed = map[string]allowEntry{id + "/team-a/events": {allowed: true, expires: now.Add(time.Hour)}}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if code, err := a.Check(ctx, token, "team-a", "events"); code != http.StatusOK || err != nil {
				b.Fatalf("Check: %d %v", code, err)
			}
		}
	})
}
