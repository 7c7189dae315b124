package reliability

import (
	"bytes"
	"fmt"
	"github.com/mira/mira-operator/test/harness"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

// Bad consumers next to a healthy one, all served by one receiver: each bad
// behaviour is handled per policy (retried, then Dead; Retry-After honoured;
// a huge body cut to the excerpt; a redirect not followed) and the healthy
// endpoint gets every event meanwhile.
func TestBadConsumers(t *testing.T) {
	const ns = "bad-consumers"
	events := scale(200, 2000)
	setupIntegrations(t, nil)
	ensureNamespace(t, ns)
	startManager(t)

	// The healthy consumer; /redirected counts requests that followed a redirect.
	healthy := harness.NewConsumer()
	var redirected atomic.Int64
	healthySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirected" {
			redirected.Add(1)
		}
		healthy.ServeHTTP(w, r)
	}))
	t.Cleanup(healthySrv.Close)

	stop := make(chan struct{})
	hijack := func(w http.ResponseWriter) net.Conn {
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		return c
	}
	bad := map[string]http.HandlerFunc{
		"status-500": func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "internal error", http.StatusInternalServerError)
		},
		// Never answers: the 1 s attempt timeout ends it.
		"hang": func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-stop:
			}
		},
		// Closes the connection with a TCP reset, no response.
		"reset": func(w http.ResponseWriter, _ *http.Request) {
			c := hijack(w)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = c.Close()
		},
		// The status line one byte every 200 ms: slower than the timeout.
		"trickle": func(w http.ResponseWriter, _ *http.Request) {
			c := hijack(w)
			defer func() { _ = c.Close() }()
			for _, b := range []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				select {
				case <-time.After(200 * time.Millisecond):
				case <-stop:
					return
				}
			}
		},
		// 200 with a 10 MiB body.
		"huge-body": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(bytes.Repeat([]byte("0123456789abcdef"), 10<<20/16))
		},
		// 302 to the healthy consumer, which must not see it.
		"redirect": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, healthySrv.URL+"/redirected", http.StatusFound)
		},
		"status-429": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		},
	}
	defer close(stop)
	names := []string{"status-500", "hang", "reset", "trickle", "huge-body", "redirect", "status-429"}

	hw, err := createEndpoint(ns, "healthy", healthySrv.URL, []string{miraapi.EventAll}, fastRetries())
	if err != nil {
		t.Fatal(err)
	}
	// The bad endpoints subscribe to meeting.failed only and get one event:
	// three failed attempts each stay under the circuit breaker's threshold
	// (5), so every attempt is made on the backoff's schedule.
	badEndpoints := map[string]*miraapi.WebhookEndpoint{}
	for _, n := range names {
		srv := httptest.NewServer(bad[n])
		t.Cleanup(srv.Close)
		w, err := createEndpoint(ns, n, srv.URL, []string{miraapi.EventMeetingFailed}, fastRetries())
		if err != nil {
			t.Fatal(err)
		}
		badEndpoints[n] = w
	}
	if c := endpointConfigured(t, hw); c.Status != "True" {
		t.Fatalf("healthy endpoint not Ready: %s", c.Message)
	}
	healthy.SetSecret(signingSecret(t, ns, "healthy"))
	for _, n := range names {
		if c := endpointConfigured(t, badEndpoints[n]); c.Status != "True" {
			t.Fatalf("%s not Ready: %s", n, c.Message)
		}
	}

	port := harness.FreePort(t)
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	p := start(t, "receiver-bad-consumers", receiverArgs(port, "--data-dir="+filepath.Join(t.TempDir(), "data"), "--watch-namespace="+ns, "--default-workspace="+ns)...)
	waitReady(t, url, p)

	began := time.Now()
	eventually(t, "meeting.failed accepted", time.Minute, func() error {
		code, err := postTyped(url, "evt_bad_"+runID, miraapi.EventMeetingFailed, map[string]string{"meeting_id": "m1"})
		if err != nil || code != http.StatusAccepted {
			return fmt.Errorf("POST: %d %v", code, err)
		}
		return nil
	})
	// The healthy endpoint's load, sent while the bad ones fail.
	for i := 0; i < events; i++ {
		if code, err := postTyped(url, fmt.Sprintf("evt_bad_%s_%d", runID, i), miraapi.EventReportCompleted, map[string]string{"report_id": strconv.Itoa(i)}); err != nil || code != http.StatusAccepted {
			t.Fatalf("POST event %d: %d %v", i, code, err)
		}
	}
	eventually(t, "healthy endpoint received every event", 3*time.Minute, func() error {
		if d := healthy.Distinct(); d < events+1 {
			return fmt.Errorf("%d of %d", d, events+1)
		}
		return nil
	})
	healthyDone := time.Since(began)

	final := map[string]datav1.Delivery{}
	eventually(t, "every bad endpoint's delivery settled", 3*time.Minute, func() error {
		for _, n := range names {
			recs, err := deliveries(url, ns, n)
			if err != nil {
				return err
			}
			if len(recs) != 1 {
				return fmt.Errorf("%s: %d delivery records", n, len(recs))
			}
			if s := recs[0].State; s != datav1.StateDead && s != datav1.StateDelivered {
				return fmt.Errorf("%s: %s after %d attempts", n, s, recs[0].AttemptCount)
			}
			final[n] = recs[0]
		}
		return nil
	})
	badDone := time.Since(began)

	fields := map[string]any{"healthy_events": events + 1, "healthy_delivered": healthy.Distinct(),
		"healthy_duplicates": healthy.Duplicates(), "healthy_bad_signatures": healthy.BadSignatures(),
		"healthy_done_seconds": healthyDone.Seconds(), "bad_settled_seconds": badDone.Seconds(),
		"redirect_followed": redirected.Load()}
	for _, n := range names {
		rec := final[n]
		var gaps []float64
		maxBody := 0
		var codes []int
		for i, a := range rec.Attempts {
			codes = append(codes, a.StatusCode)
			maxBody = max(maxBody, len(a.ResponseBody))
			if i > 0 {
				gaps = append(gaps, a.Time.Sub(rec.Attempts[i-1].Time).Seconds())
			}
		}
		firstErr := ""
		if len(rec.Attempts) > 0 {
			firstErr = rec.Attempts[0].Error
		}
		fields[n] = map[string]any{"state": rec.State, "attempts": len(rec.Attempts), "status_codes": codes,
			"gaps_seconds": gaps, "max_excerpt_bytes": maxBody, "first_error": firstErr}
		want, wantAttempts := datav1.StateDead, 3
		if n == "huge-body" {
			want, wantAttempts = datav1.StateDelivered, 1
		}
		if rec.State != want || len(rec.Attempts) != wantAttempts {
			t.Errorf("%s: %s after %d attempts, want %s after %d (reason %q, attempts %+v)", n, rec.State, len(rec.Attempts), want, wantAttempts, rec.Reason, rec.Attempts)
		}
		if maxBody > 64<<10 {
			t.Errorf("%s: a response excerpt of %d bytes, want ≤ 64 KiB", n, maxBody)
		}
		if n == "status-429" {
			for i, g := range gaps {
				if g < 1 {
					t.Errorf("429 with Retry-After: 1: attempt %d came %.3f s after the previous one", i+2, g)
				}
			}
		}
		if n == "redirect" && len(codes) > 0 && codes[0] != http.StatusFound {
			t.Errorf("redirect: attempt status %d, want 302", codes[0])
		}
		if n == "huge-body" && maxBody == 0 {
			t.Errorf("huge-body: no response excerpt kept")
		}
	}
	report(t, "bad-consumers", fields)
	if redirected.Load() != 0 {
		t.Errorf("the redirect was followed %d times", redirected.Load())
	}
	if d := healthy.Distinct(); d != events+1 {
		t.Errorf("healthy endpoint: %d of %d delivered", d, events+1)
	}
	if healthy.BadSignatures() != 0 {
		t.Errorf("%d bad signatures at the healthy endpoint", healthy.BadSignatures())
	}
}
