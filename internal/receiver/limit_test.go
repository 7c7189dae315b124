package receiver_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/mira/mira-operator/internal/receiver"
)

func TestLimitConcurrency(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := receiver.LimitConcurrency(2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusOK)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(srv.URL+"/slow", "text/plain", nil)
			if err != nil {
				codes <- 0
				return
			}
			_ = resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	<-entered
	<-entered
	resp, err := http.Post(srv.URL+"/webhooks/recall", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("past the limit: %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	hz, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_ = hz.Body.Close()
	if hz.StatusCode != http.StatusOK {
		t.Fatalf("health probe refused at the limit: %d", hz.StatusCode)
	}
	close(release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Fatalf("a request within the limit got %d", c)
		}
	}
	resp, err = http.Post(srv.URL+"/webhooks/recall", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after the burst: %d, want 200", resp.StatusCode)
	}
}
