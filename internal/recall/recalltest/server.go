// Package recalltest is a FAKE Recall.ai for tests and demos. It is a local
// stand-in that speaks Recall's real wire format (the Retrieve Bot answer,
// both transcript formats, the webhook payloads and their Standard Webhooks
// signatures) as documented in INTEGRATIONS.md; it is not Recall, talks to
// nothing outside the process, and implements only what Mira uses:
//
//   - GET /api/v1/bot/{id}/             Retrieve Bot (API key required)
//   - GET /api/v1/bot/{id}/transcript/  legacy transcript (API key required)
//   - GET /api/v1/transcript/{id}/      Retrieve Transcript (API key required)
//   - POST /api/v1/recording/{id}/create_transcript/  start an async
//     transcript job (API key required; a second call for one recording is
//     refused with 400, as Recall does)
//   - GET /download/transcript/{id}     "pre-signed" current-format transcript
//     download (no API key; a token in the query string instead)
//
// A bot is set up one of three ways (see Setup): its transcript configured
// at bot creation, async transcription (no transcript until
// create_transcript), or a legacy v1.10 bot without media_shortcuts. A
// transcript can stay "processing" for a number of reads, or until
// CompleteTranscript; FailNext injects 429 (with Retry-After), 5xx and 403
// (an expired pre-signed URL) answers.
//
// Use NewServer in tests (an httptest server on loopback) or NewAPI for an
// http.Handler to serve on a port of your choosing.
package recalltest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DefaultAPIKey is the API key a new fake accepts.
const DefaultAPIKey = "recalltest-api-key"

// DownloadPath is the path prefix of the fake pre-signed download route.
const DownloadPath = "/download/transcript/"

// BaseTime is the fixed time the fake's status histories start at, so that
// answers are deterministic.
var BaseTime = time.Date(2025, 3, 4, 15, 0, 0, 0, time.UTC)

// Request is one request the fake received.
type Request struct {
	// Method is the HTTP method.
	Method string
	// Path is the URL path as sent (escaped), e.g. "/api/v1/bot/a%2Fb/".
	Path string
	// HasAuth is true when an Authorization header was present (of any value).
	HasAuth bool
	// Status is the HTTP status the fake answered with.
	Status int
}

// Setup is how a bot's transcript is configured.
type Setup int

const (
	// SetupStreaming: a transcript provider was configured at bot creation;
	// the recording's media_shortcuts.transcript exists from the start.
	SetupStreaming Setup = iota
	// SetupAsync: no provider at bot creation; the recording has no
	// transcript until create_transcript starts one.
	SetupAsync
	// SetupLegacy: a v1.10 bot whose recordings have no media_shortcuts;
	// its transcript is only on the legacy route (an empty list while
	// processing).
	SetupLegacy
)

// BotOptions describe a bot for AddBotWith.
type BotOptions struct {
	// Metadata is the bot's metadata.
	Metadata map[string]string
	// Transcript is in the current download format (see Transcript).
	Transcript []byte
	// Setup is how the transcript is configured.
	Setup Setup
	// ProcessingReads is how many reads (Retrieve Bot, Retrieve Transcript,
	// legacy transcript) see the transcript "processing" before it turns
	// "done" by itself; 0 means done at once, a negative value means
	// processing until CompleteTranscript or FailTranscript.
	ProcessingReads int
	// MeetingURL, when set, is rendered as {"url": …} in meeting_url.
	MeetingURL string
}

type transcriptJob struct {
	id        string
	code      string
	subCode   string
	readsLeft int
}

type bot struct {
	id          string
	opts        BotOptions
	tr          *transcriptJob // nil: no transcript (async before create_transcript)
	createCalls int
}

func (b *bot) legacyOnly() bool { return b.opts.Setup == SetupLegacy }

// read counts one read of a processing transcript.
func (b *bot) read() {
	if b.tr == nil || b.tr.code != "processing" || b.tr.readsLeft < 0 {
		return
	}
	if b.tr.readsLeft == 0 {
		b.tr.code = "done"
		return
	}
	b.tr.readsLeft--
}

type failure struct {
	prefix     string
	status     int
	retryAfter time.Duration
	remaining  int
}

// API is the fake Recall.ai REST API as an http.Handler. It is safe for
// concurrent use.
type API struct {
	holds    []*hold
	mu       sync.Mutex
	apiKey   string
	bots     map[string]*bot
	failures []*failure
	requests []Request
}

// NewAPI returns a fake API that accepts apiKey (DefaultAPIKey when empty)
// and knows no bots yet.
func NewAPI(apiKey string) *API {
	if apiKey == "" {
		apiKey = DefaultAPIKey
	}
	return &API{apiKey: apiKey, bots: map[string]*bot{}}
}

// SetAPIKey changes the API key the fake accepts.
func (a *API) SetAPIKey(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.apiKey = key
}

// AddBot adds (or replaces) a bot. transcript is in the current download
// format (see Transcript); the legacy route serves it converted. With
// legacyOnly the bot's recording has no download_url, as for bots whose
// transcript is only on the legacy route.
func (a *API) AddBot(id string, metadata map[string]string, transcript []byte, legacyOnly bool) {
	setup := SetupStreaming
	if legacyOnly {
		setup = SetupLegacy
	}
	a.AddBotWith(id, BotOptions{Metadata: metadata, Transcript: transcript, Setup: setup})
}

// AddBotWith adds (or replaces) a bot set up as opts says.
func (a *API) AddBotWith(id string, opts BotOptions) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := &bot{id: id, opts: opts}
	if opts.Setup != SetupAsync {
		b.tr = newJob(TranscriptID(id), opts.ProcessingReads)
	}
	a.bots[id] = b
}

func newJob(id string, reads int) *transcriptJob {
	if reads == 0 {
		return &transcriptJob{id: id, code: "done"}
	}
	return &transcriptJob{id: id, code: "processing", readsLeft: reads}
}

// TranscriptID is the id of bot id's transcript in the fake.
func TranscriptID(botID string) string { return "tr_" + botID }

// RecordingID is the id of bot id's recording in the fake.
func RecordingID(botID string) string { return "rec_" + botID }

// CompleteTranscript marks bot id's transcript done and returns the
// "transcript.done" webhook body Recall would send now (nil when the bot has
// no transcript yet).
func (a *API) CompleteTranscript(id string) []byte {
	return a.finish(id, "done", "")
}

// FailTranscript marks bot id's transcript failed with subCode and returns
// the "transcript.failed" webhook body (nil when it has no transcript yet).
func (a *API) FailTranscript(id, subCode string) []byte {
	return a.finish(id, "failed", subCode)
}

func (a *API) finish(id, code, subCode string) []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.bots[id]
	if b == nil || b.tr == nil {
		return nil
	}
	b.tr.code, b.tr.subCode = code, subCode
	md := b.opts.Metadata
	if code == "done" {
		return TranscriptDonePayload(id, RecordingID(id), b.tr.id, md, BaseTime.Add(10*time.Minute))
	}
	return TranscriptFailedPayload(id, RecordingID(id), b.tr.id, subCode, md, BaseTime.Add(10*time.Minute))
}

// TranscriptStatus returns bot id's transcript status code ("" when it has
// none) and how often create_transcript was called for its recording.
func (a *API) TranscriptStatus(id string) (code string, createCalls int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.bots[id]
	if b == nil {
		return "", 0
	}
	if b.tr != nil {
		code = b.tr.code
	}
	return code, b.createCalls
}

// FailNext makes the next n requests whose path starts with pathPrefix fail
// with status, sending Retry-After in whole seconds when retryAfter > 0.
// Failures are served before authentication, like a rate limiter in front of
// the API. Several FailNext calls queue up in order.
func (a *API) FailNext(pathPrefix string, status int, retryAfter time.Duration, n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failures = append(a.failures, &failure{prefix: pathPrefix, status: status, retryAfter: retryAfter, remaining: n})
}

type hold struct {
	prefix  string
	arrived chan struct{}
	release chan struct{}
}

// HoldNext makes the next request whose path starts with pathPrefix wait
// until release is called: a slow Recall, for tests that need another
// worker to act meanwhile. arrived is closed when that request arrives.
func (a *API) HoldNext(pathPrefix string) (arrived <-chan struct{}, release func()) {
	h := &hold{prefix: pathPrefix, arrived: make(chan struct{}), release: make(chan struct{})}
	a.mu.Lock()
	a.holds = append(a.holds, h)
	a.mu.Unlock()
	var once sync.Once
	return h.arrived, func() { once.Do(func() { close(h.release) }) }
}

// takeHold consumes the hold matching p, if any.
func (a *API) takeHold(p string) *hold {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, h := range a.holds {
		if strings.HasPrefix(p, h.prefix) {
			a.holds = append(a.holds[:i], a.holds[i+1:]...)
			return h
		}
	}
	return nil
}

// Requests returns a copy of the requests received so far, in order.
func (a *API) Requests() []Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Request(nil), a.requests...)
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status := a.serve(w, r)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests = append(a.requests, Request{
		Method:  r.Method,
		Path:    r.URL.EscapedPath(),
		HasAuth: r.Header.Get("Authorization") != "",
		Status:  status,
	})
}

// serve answers r and returns the status it wrote.
func (a *API) serve(w http.ResponseWriter, r *http.Request) int {
	if h := a.takeHold(r.URL.Path); h != nil {
		close(h.arrived)
		select {
		case <-h.release:
		case <-r.Context().Done():
		}
	}
	if f := a.takeFailure(r.URL.Path); f != nil {
		if f.retryAfter > 0 {
			secs := int((f.retryAfter + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", fmt.Sprint(secs))
		}
		return writeJSON(w, f.status, map[string]string{"detail": "Injected failure."})
	}
	// Route on the escaped path so that an id holding an escaped "/" stays
	// one segment.
	p := r.URL.EscapedPath()
	if r.Method == http.MethodPost {
		rest, ok := strings.CutPrefix(p, "/api/v1/recording/")
		rawID, ok2 := strings.CutSuffix(rest, "/create_transcript/")
		if !ok || !ok2 || strings.Contains(rawID, "/") {
			return writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"detail": "Method not allowed."})
		}
		if !a.authorized(r) {
			return writeJSON(w, http.StatusUnauthorized, map[string]string{"detail": "Invalid token."})
		}
		id, err := url.PathUnescape(rawID)
		if err != nil {
			return writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not found."})
		}
		return a.createTranscript(w, r, id)
	}
	if r.Method != http.MethodGet {
		return writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"detail": "Method not allowed."})
	}
	if rest, ok := strings.CutPrefix(p, "/api/v1/transcript/"); ok {
		if !a.authorized(r) {
			return writeJSON(w, http.StatusUnauthorized, map[string]string{"detail": "Invalid token."})
		}
		id, err := url.PathUnescape(strings.TrimSuffix(rest, "/"))
		if err != nil {
			return writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not found."})
		}
		return a.retrieveTranscript(w, r, id)
	}
	if rest, ok := strings.CutPrefix(p, DownloadPath); ok {
		id, err := url.PathUnescape(rest)
		if err != nil {
			return writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not found."})
		}
		return a.serveDownload(w, r, id)
	}
	rest, ok := strings.CutPrefix(p, "/api/v1/bot/")
	if !ok {
		return writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not found."})
	}
	if !a.authorized(r) {
		return writeJSON(w, http.StatusUnauthorized, map[string]string{"detail": "Invalid token."})
	}
	rawID, sub, _ := strings.Cut(rest, "/")
	id, err := url.PathUnescape(rawID)
	if err != nil {
		return writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not found."})
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.bots[id]
	if b == nil {
		return writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not found."})
	}
	switch sub {
	case "":
		b.read()
		return writeJSON(w, http.StatusOK, botJSON(b, baseURL(r)))
	case "transcript/":
		b.read()
		if b.tr == nil || b.tr.code != "done" {
			// Not ready (or failed): the legacy route answers an empty list.
			return writeJSON(w, http.StatusOK, []any{})
		}
		legacy, err := legacyTranscript(b.opts.Transcript)
		if err != nil {
			return writeJSON(w, http.StatusInternalServerError, map[string]string{"detail": "Bad fixture transcript."})
		}
		return writeJSON(w, http.StatusOK, legacy)
	}
	return writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not found."})
}

// botByTranscript finds the bot owning transcript id. Lock held.
func (a *API) botByTranscript(id string) *bot {
	for _, b := range a.bots {
		if b.tr != nil && b.tr.id == id {
			return b
		}
	}
	return nil
}

// retrieveTranscript answers GET /api/v1/transcript/{id}/.
func (a *API) retrieveTranscript(w http.ResponseWriter, r *http.Request, id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.botByTranscript(id)
	if b == nil || b.legacyOnly() {
		return writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not found."})
	}
	b.read()
	return writeJSON(w, http.StatusOK, transcriptJSON(b, baseURL(r)))
}

// createTranscript answers POST /api/v1/recording/{id}/create_transcript/.
func (a *API) createTranscript(w http.ResponseWriter, r *http.Request, recordingID string) int {
	var req struct {
		Provider map[string]json.RawMessage `json:"provider"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Provider) != 1 {
		return writeJSON(w, http.StatusBadRequest, map[string]string{"detail": "provider: exactly one provider is required."})
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.bots[strings.TrimPrefix(recordingID, "rec_")]
	if b == nil || b.legacyOnly() || RecordingID(b.id) != recordingID {
		return writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not found."})
	}
	b.createCalls++
	if b.tr != nil {
		return writeJSON(w, http.StatusBadRequest, map[string]string{"detail": "A transcript already exists for this recording."})
	}
	b.tr = newJob(TranscriptID(b.id), b.opts.ProcessingReads)
	return writeJSON(w, http.StatusOK, transcriptJSON(b, baseURL(r)))
}

// serveDownload serves the "pre-signed" transcript download.
func (a *API) serveDownload(w http.ResponseWriter, r *http.Request, id string) int {
	b := a.bot(id)
	a.mu.Lock()
	ready := b != nil && !b.legacyOnly() && b.tr != nil && b.tr.code == "done"
	a.mu.Unlock()
	if !ready || r.URL.Query().Get("token") != downloadToken(id) {
		// S3 answers a bad or expired signature with 403.
		return writeJSON(w, http.StatusForbidden, map[string]string{"detail": "Request has expired or signature is invalid."})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.opts.Transcript)
	return http.StatusOK
}

// takeFailure consumes one injected failure matching p, if any.
func (a *API) takeFailure(p string) *failure {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, f := range a.failures {
		if !strings.HasPrefix(p, f.prefix) {
			continue
		}
		f.remaining--
		if f.remaining <= 0 {
			a.failures = append(a.failures[:i], a.failures[i+1:]...)
		}
		return f
	}
	return nil
}

// authorized accepts "Token <key>" and, as newer docs allow, the bare key.
func (a *API) authorized(r *http.Request) bool {
	a.mu.Lock()
	key := a.apiKey
	a.mu.Unlock()
	h := r.Header.Get("Authorization")
	return h == "Token "+key || h == key
}

func (a *API) bot(id string) *bot {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.bots[id]
}

// baseURL is the scheme and host the request was sent to.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// downloadToken is the fake "signature" of a bot's download URL.
func downloadToken(id string) string {
	return "fake-presigned-" + url.QueryEscape(id)
}

// DownloadURL is the download_url the fake hands out for bot id when served
// at base (e.g. Server.URL).
func DownloadURL(base, id string) string {
	return strings.TrimRight(base, "/") + DownloadPath + url.PathEscape(id) + "?token=" + url.QueryEscape(downloadToken(id))
}

// transcriptJSON renders a transcript (Retrieve Transcript, and the
// recording's media_shortcuts.transcript) in Recall's shape; nil when the
// bot has none. Lock held.
func transcriptJSON(b *bot, base string) any {
	if b.tr == nil {
		return nil
	}
	code := b.tr.code
	var download any
	if code == "done" {
		download = DownloadURL(base, b.id)
	}
	provider := map[string]any{"recallai_streaming": map[string]any{"mode": "prioritize_accuracy"}}
	if b.opts.Setup == SetupAsync {
		provider = map[string]any{"recallai_async": map[string]any{"language_code": "en"}}
	}
	return map[string]any{
		"id":        b.tr.id,
		"recording": map[string]any{"id": RecordingID(b.id), "metadata": map[string]any{}},
		"status":    map[string]any{"code": code, "sub_code": nullable(b.tr.subCode), "updated_at": formatTime(BaseTime.Add(3 * time.Minute))},
		"data": map[string]any{
			"download_url":               download,
			"provider_data_download_url": nil,
		},
		"metadata": map[string]any{},
		"provider": provider,
	}
}

// botJSON renders a Retrieve Bot answer in Recall's shape. Lock held.
func botJSON(b *bot, base string) map[string]any {
	ts := func(d time.Duration) string { return formatTime(BaseTime.Add(d)) }
	metadata := b.opts.Metadata
	if metadata == nil {
		metadata = map[string]string{}
	}
	status := func(code string, d time.Duration) map[string]any {
		return map[string]any{"code": code, "message": nil, "created_at": ts(d), "sub_code": nil}
	}
	meetingURL := map[string]any{"meeting_id": "abc-defg-hij", "platform": "google_meet"}
	if b.opts.MeetingURL != "" {
		meetingURL["url"] = b.opts.MeetingURL
	}
	recording := map[string]any{
		"id":         RecordingID(b.id),
		"created_at": ts(30 * time.Second),
		"status":     map[string]any{"code": "done", "sub_code": nil, "updated_at": ts(2 * time.Minute)},
	}
	if !b.legacyOnly() {
		recording["media_shortcuts"] = map[string]any{
			"transcript":         transcriptJSON(b, base),
			"video_mixed":        nil,
			"participant_events": nil,
		}
	}
	return map[string]any{
		"id":          b.id,
		"meeting_url": meetingURL,
		"bot_name":    "Mira Notetaker",
		"join_at":     nil,
		"metadata":    metadata,
		"status_changes": []any{
			status("joining_call", 0),
			status("in_call_recording", 30*time.Second),
			status("call_ended", 2*time.Minute),
			status("done", 2*time.Minute+5*time.Second),
		},
		"recordings": []any{recording},
	}
}

// formatTime renders t the way Recall does: "2025-03-04T15:02:11.482913+00:00".
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000-07:00")
}

func writeJSON(w http.ResponseWriter, status int, v any) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
	return status
}

// Server is the fake API served by an httptest server on loopback.
type Server struct {
	// API configures the fake and records its requests.
	*API
	// HTTP is the running server; HTTP.URL is the base URL to give a client.
	HTTP *httptest.Server
	// URL is HTTP.URL.
	URL string
}

// NewServer starts a fake accepting DefaultAPIKey. Close it when done.
func NewServer() *Server {
	api := NewAPI("")
	srv := httptest.NewServer(api)
	return &Server{API: api, HTTP: srv, URL: srv.URL}
}

// Close shuts the server down.
func (s *Server) Close() { s.HTTP.Close() }
