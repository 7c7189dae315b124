package recall_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/mira/mira-operator/internal/recall"
	"github.com/mira/mira-operator/internal/recall/recalltest"
	"github.com/mira/mira-operator/internal/scoring"
)

// testKey is the API key of every test; no error or log line may contain it.
const testKey = "sk-recall-NEVER-LEAK-7f3a9c"

// fakeClock records requested waits and advances time by them at once.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 3, 4, 16, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return ctx.Err()
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// logSink collects log lines.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *logSink) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.lines = append(s.lines, prefix+" "+args)
	}, funcr.Options{Verbosity: 1})
}

func (s *logSink) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

type env struct {
	srv   *recalltest.Server
	clock *fakeClock
	logs  *logSink
	c     *recall.Client
}

func newEnv(t *testing.T, budget time.Duration) *env {
	t.Helper()
	srv := recalltest.NewServer()
	t.Cleanup(srv.Close)
	srv.SetAPIKey(testKey)
	e := &env{srv: srv, clock: newFakeClock(), logs: &logSink{}}
	c, err := recall.NewClient(recall.ClientOptions{
		BaseURL:          srv.URL,
		APIKey:           testKey,
		HTTPClient:       srv.HTTP.Client(),
		Clock:            e.clock,
		MaxRetryDuration: budget,
		Logger:           e.logs.logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.c = c
	return e
}

// noSecrets fails the test when err or the logs quote the API key or the
// pre-signed download token.
func (e *env) noSecrets(t *testing.T, err error) {
	t.Helper()
	for _, s := range []string{testKey, "fake-presigned"} {
		if err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains a secret", err)
		}
		if strings.Contains(e.logs.text(), s) {
			t.Errorf("logs contain a secret:\n%s", e.logs.text())
		}
	}
}

func sampleParsed(t *testing.T) scoring.Transcript {
	t.Helper()
	tr, err := recall.ParseTranscript(recalltest.SampleTranscript())
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestNewClientValidation(t *testing.T) {
	tests := []struct {
		name string
		opts recall.ClientOptions
		ok   bool
	}{
		{"regional base", recall.ClientOptions{BaseURL: "https://us-west-2.recall.ai", APIKey: "k"}, true},
		{"trailing slash and path prefix", recall.ClientOptions{BaseURL: "http://127.0.0.1:8080/recall/", APIKey: "k"}, true},
		{"empty base", recall.ClientOptions{APIKey: "k"}, false},
		{"no scheme", recall.ClientOptions{BaseURL: "us-west-2.recall.ai", APIKey: "k"}, false},
		{"other scheme", recall.ClientOptions{BaseURL: "ftp://us-west-2.recall.ai", APIKey: "k"}, false},
		{"query", recall.ClientOptions{BaseURL: "https://us-west-2.recall.ai?x=1", APIKey: "k"}, false},
		{"user info", recall.ClientOptions{BaseURL: "https://u:p@us-west-2.recall.ai", APIKey: "k"}, false},
		{"no key", recall.ClientOptions{BaseURL: "https://us-west-2.recall.ai"}, false},
		{"negative budget", recall.ClientOptions{BaseURL: "https://us-west-2.recall.ai", APIKey: "k", MaxRetryDuration: -time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := recall.NewClient(tt.opts)
			if (err == nil) != tt.ok || (c != nil) != tt.ok {
				t.Fatalf("NewClient() = %v, %v; want ok=%v", c, err, tt.ok)
			}
		})
	}
}

func TestRetrieveBot(t *testing.T) {
	e := newEnv(t, 0)
	e.srv.AddBot("a/b c", map[string]string{"user_id": "usr_8812"}, recalltest.SampleTranscript(), false)
	bot, err := e.c.RetrieveBot(context.Background(), "a/b c")
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) time.Time { return recalltest.BaseTime.Add(d) }
	want := &recall.Bot{
		ID:       "a/b c",
		Metadata: map[string]string{"user_id": "usr_8812"},
		StatusChanges: []recall.StatusChange{
			{Code: "joining_call", CreatedAt: at(0)},
			{Code: "in_call_recording", CreatedAt: at(30 * time.Second)},
			{Code: "call_ended", CreatedAt: at(2 * time.Minute)},
			{Code: "done", CreatedAt: at(2*time.Minute + 5*time.Second)},
		},
		Recordings: []recall.Recording{{
			ID:                "rec_a/b c",
			HasMediaShortcuts: true,
			MediaShortcuts: recall.MediaShortcuts{Transcript: recall.TranscriptShortcut{
				Present: true,
				ID:      "tr_a/b c",
				Status:  recall.ShortcutStatus{Code: "done"},
				Data:    recall.TranscriptData{DownloadURL: recalltest.DownloadURL(e.srv.URL, "a/b c")},
			}},
		}},
	}
	if !reflect.DeepEqual(bot, want) {
		t.Fatalf("RetrieveBot()\n got %+v\nwant %+v", bot, want)
	}
	wantReqs := []recalltest.Request{{Method: "GET", Path: "/api/v1/bot/a%2Fb%20c/", HasAuth: true, Status: 200}}
	if got := e.srv.Requests(); !reflect.DeepEqual(got, wantReqs) {
		t.Fatalf("requests = %+v, want %+v", got, wantReqs)
	}
}

func TestFetchTranscript(t *testing.T) {
	e := newEnv(t, 0)
	e.srv.AddBot("bot-1", nil, recalltest.SampleTranscript(), false)
	got, err := e.c.FetchTranscript(context.Background(), "bot-1")
	if err != nil {
		t.Fatal(err)
	}
	if want := sampleParsed(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("FetchTranscript()\n got %+v\nwant %+v", got, want)
	}
	wantReqs := []recalltest.Request{
		{Method: "GET", Path: "/api/v1/bot/bot-1/", HasAuth: true, Status: 200},
		{Method: "GET", Path: "/download/transcript/bot-1", HasAuth: false, Status: 200},
	}
	if got := e.srv.Requests(); !reflect.DeepEqual(got, wantReqs) {
		t.Fatalf("requests = %+v, want %+v", got, wantReqs)
	}
	if s := e.clock.Sleeps(); len(s) != 0 {
		t.Fatalf("waited %v, want no waits", s)
	}
}

func TestFetchTranscriptLegacyFallback(t *testing.T) {
	e := newEnv(t, 0)
	e.srv.AddBot("bot-2", nil, recalltest.SampleTranscript(), true)
	got, err := e.c.FetchTranscript(context.Background(), "bot-2")
	if err != nil {
		t.Fatal(err)
	}
	want := sampleParsed(t)
	for i := range want.Segments {
		want.Segments[i].IsHost = false // the legacy format has no is_host
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FetchTranscript()\n got %+v\nwant %+v", got, want)
	}
	wantReqs := []recalltest.Request{
		{Method: "GET", Path: "/api/v1/bot/bot-2/", HasAuth: true, Status: 200},
		{Method: "GET", Path: "/api/v1/bot/bot-2/transcript/", HasAuth: true, Status: 200},
	}
	if got := e.srv.Requests(); !reflect.DeepEqual(got, wantReqs) {
		t.Fatalf("requests = %+v, want %+v", got, wantReqs)
	}
}

func TestFetchTranscriptRetries(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name       string
		prefix     string
		status     int
		retryAfter time.Duration
		n          int
		wantSleeps []time.Duration
		wantStatus []int // statuses of all requests, in order
	}{
		{"429 honours Retry-After", "/api/v1/bot/", 429, 7 * s, 1, []time.Duration{7 * s}, []int{429, 200, 200}},
		{"429 without Retry-After waits 5s", "/api/v1/bot/", 429, 0, 1, []time.Duration{5 * s}, []int{429, 200, 200}},
		{"503 then success", "/api/v1/bot/", 503, 0, 1, []time.Duration{s}, []int{503, 200, 200}},
		{"502 backs off exponentially", "/api/v1/bot/", 502, 0, 3, []time.Duration{s, 2 * s, 4 * s}, []int{502, 502, 502, 200, 200}},
		{"500 backoff caps at 30s", "/api/v1/bot/", 500, 0, 7, []time.Duration{s, 2 * s, 4 * s, 8 * s, 16 * s, 30 * s, 30 * s}, []int{500, 500, 500, 500, 500, 500, 500, 200, 200}},
		{"504 ignores Retry-After", "/api/v1/bot/", 504, 9 * s, 1, []time.Duration{s}, []int{504, 200, 200}},
		{"507 waits 30s", "/api/v1/bot/", 507, 0, 1, []time.Duration{30 * s}, []int{507, 200, 200}},
		{"download 503 then success", recalltest.DownloadPath, 503, 0, 2, []time.Duration{s, 2 * s}, []int{200, 503, 503, 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, 0)
			e.srv.AddBot("bot-r", nil, recalltest.SampleTranscript(), false)
			e.srv.FailNext(tt.prefix, tt.status, tt.retryAfter, tt.n)
			got, err := e.c.FetchTranscript(context.Background(), "bot-r")
			if err != nil {
				t.Fatal(err)
			}
			if want := sampleParsed(t); !reflect.DeepEqual(got, want) {
				t.Fatalf("FetchTranscript() = %+v, want the sample", got)
			}
			if s := e.clock.Sleeps(); !reflect.DeepEqual(s, tt.wantSleeps) {
				t.Fatalf("waits = %v, want %v", s, tt.wantSleeps)
			}
			var statuses []int
			for _, r := range e.srv.Requests() {
				statuses = append(statuses, r.Status)
				if strings.HasPrefix(r.Path, recalltest.DownloadPath) == r.HasAuth {
					t.Errorf("request %s: HasAuth = %v, want the API key on API routes only", r.Path, r.HasAuth)
				}
			}
			if !reflect.DeepEqual(statuses, tt.wantStatus) {
				t.Fatalf("statuses = %v, want %v", statuses, tt.wantStatus)
			}
			if !strings.Contains(e.logs.text(), `"msg"="Retrying Recall.ai request"`) {
				t.Fatalf("no retry was logged:\n%s", e.logs.text())
			}
			e.noSecrets(t, nil)
		})
	}
}

func TestFetchTranscriptPermanentErrors(t *testing.T) {
	tests := []struct {
		name     string
		botID    string
		apiKey   string // server key; "" keeps testKey
		prefix   string
		status   int
		wantCode int
		wantOp   string
		wantReqs int
	}{
		{name: "unknown bot is 404", botID: "missing", wantCode: 404, wantOp: recall.OpRetrieveBot, wantReqs: 1},
		{name: "wrong key is 401", botID: "bot-p", apiKey: "another-key", wantCode: 401, wantOp: recall.OpRetrieveBot, wantReqs: 1},
		{name: "403", botID: "bot-p", prefix: "/api/v1/bot/", status: 403, wantCode: 403, wantOp: recall.OpRetrieveBot, wantReqs: 1},
		{name: "400", botID: "bot-p", prefix: "/api/v1/bot/", status: 400, wantCode: 400, wantOp: recall.OpRetrieveBot, wantReqs: 1},
		{name: "expired download URL", botID: "bot-p", prefix: recalltest.DownloadPath, status: 403, wantCode: 403, wantOp: recall.OpDownloadTranscript, wantReqs: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, 0)
			e.srv.AddBot("bot-p", nil, recalltest.SampleTranscript(), false)
			if tt.apiKey != "" {
				e.srv.SetAPIKey(tt.apiKey)
			}
			if tt.prefix != "" {
				e.srv.FailNext(tt.prefix, tt.status, 0, 1)
			}
			_, err := e.c.FetchTranscript(context.Background(), tt.botID)
			var apiErr *recall.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("error = %v, want an *APIError", err)
			}
			if apiErr.StatusCode != tt.wantCode || apiErr.Op != tt.wantOp || !apiErr.Permanent() {
				t.Fatalf("APIError = %+v (permanent %v), want %d from %q, permanent", apiErr, apiErr.Permanent(), tt.wantCode, tt.wantOp)
			}
			if errors.Is(err, recall.ErrRetryBudgetExceeded) {
				t.Fatalf("error = %v, want no retry budget involved", err)
			}
			if n := len(e.srv.Requests()); n != tt.wantReqs {
				t.Fatalf("%d requests, want %d (no retry)", n, tt.wantReqs)
			}
			if s := e.clock.Sleeps(); len(s) != 0 {
				t.Fatalf("waited %v, want no waits", s)
			}
			e.noSecrets(t, err)
		})
	}
}

func TestFetchTranscriptBudgetExceeded(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name       string
		status     int
		retryAfter time.Duration
		wantSleeps []time.Duration
	}{
		// 1+2+4 = 7 s, then the last wait is cut to the 3 s left.
		{"503 backoff", 503, 0, []time.Duration{s, 2 * s, 4 * s, 3 * s}},
		// A Retry-After beyond the budget is capped by it.
		{"429 long Retry-After", 429, time.Minute, []time.Duration{10 * s}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, 10*s)
			e.srv.AddBot("bot-b", nil, recalltest.SampleTranscript(), false)
			e.srv.FailNext("/api/v1/bot/", tt.status, tt.retryAfter, 1000)
			_, err := e.c.FetchTranscript(context.Background(), "bot-b")
			if !errors.Is(err, recall.ErrRetryBudgetExceeded) {
				t.Fatalf("error = %v, want ErrRetryBudgetExceeded", err)
			}
			var apiErr *recall.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tt.status || apiErr.Permanent() {
				t.Fatalf("error = %v, want it to wrap the last non-permanent %d", err, tt.status)
			}
			if got := e.clock.Sleeps(); !reflect.DeepEqual(got, tt.wantSleeps) {
				t.Fatalf("waits = %v, want %v", got, tt.wantSleeps)
			}
			if n, want := len(e.srv.Requests()), len(tt.wantSleeps)+1; n != want {
				t.Fatalf("%d requests, want %d", n, want)
			}
			e.noSecrets(t, err)
		})
	}
}

func TestFetchTranscriptNetworkErrorRetries(t *testing.T) {
	e := newEnv(t, 3*time.Second)
	e.srv.Close() // connections are now refused
	_, err := e.c.FetchTranscript(context.Background(), "bot-n")
	if !errors.Is(err, recall.ErrRetryBudgetExceeded) {
		t.Fatalf("error = %v, want ErrRetryBudgetExceeded", err)
	}
	if want, got := []time.Duration{time.Second, 2 * time.Second}, e.clock.Sleeps(); !reflect.DeepEqual(got, want) {
		t.Fatalf("waits = %v, want %v", got, want)
	}
	var apiErr *recall.APIError
	if errors.As(err, &apiErr) {
		t.Fatalf("error = %v, want a transport error, not an APIError", err)
	}
	e.noSecrets(t, err)
}

func TestFetchTranscriptContextCanceled(t *testing.T) {
	e := newEnv(t, 0)
	e.srv.AddBot("bot-c", nil, recalltest.SampleTranscript(), false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.c.FetchTranscript(ctx, "bot-c"); !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	if s := e.clock.Sleeps(); len(s) != 0 {
		t.Fatalf("waited %v after cancellation", s)
	}
}

func TestRetrieveBotInvalidID(t *testing.T) {
	e := newEnv(t, 0)
	for _, id := range []string{"", ".", ".."} {
		if _, err := e.c.RetrieveBot(context.Background(), id); err == nil {
			t.Errorf("RetrieveBot(%q) succeeded, want an error", id)
		}
	}
	if n := len(e.srv.Requests()); n != 0 {
		t.Fatalf("%d requests sent for invalid ids, want 0", n)
	}
}

// TestAPIKeyHeader checks the exact header sent to the API and that a
// Retrieve Bot answer with null and object-typed fields decodes.
func TestAPIKeyHeader(t *testing.T) {
	var got []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
		_, _ = w.Write([]byte(`{"id":"x","meeting_url":{"meeting_id":"m","platform":"zoom"},"metadata":null,"status_changes":[{"code":"fatal","sub_code":"meeting_not_found","message":"Meeting not found.","created_at":"2025-03-04T15:00:00.5+00:00"}],"recordings":[{"id":"r","media_shortcuts":{"transcript":null}}]}`))
	}))
	defer srv.Close()
	c, err := recall.NewClient(recall.ClientOptions{BaseURL: srv.URL + "/", APIKey: testKey, HTTPClient: srv.Client(), Clock: newFakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	bot, err := c.RetrieveBot(context.Background(), "x")
	if err != nil {
		t.Fatal(err)
	}
	want := &recall.Bot{
		ID:            "x",
		StatusChanges: []recall.StatusChange{{Code: "fatal", SubCode: "meeting_not_found", Message: "Meeting not found.", CreatedAt: time.Date(2025, 3, 4, 15, 0, 0, 500000000, time.UTC)}},
		Recordings:    []recall.Recording{{ID: "r", HasMediaShortcuts: true}},
	}
	if !reflect.DeepEqual(bot, want) {
		t.Fatalf("RetrieveBot() = %+v, want %+v", bot, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != "Token "+testKey {
		t.Fatalf("got %d requests (auth as expected: %v), want one with \"Token <key>\"", len(got), len(got) == 1 && got[0] == "Token "+testKey)
	}
}
