package recalltest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/mira/mira-operator/internal/recall/recalltest"
	"github.com/mira/mira-operator/internal/signing"
)

const (
	fixtureSecret = "whsec_cmVjYWxsLWZpeHR1cmUta2V5LTAxMjM0NTY3ODlhYmM="
	fixtureID     = "msg_2fXq8ZrecallFixture01"
	fixtureBody   = `{"event":"bot.done","data":{"data":{"code":"done","sub_code":null,"updated_at":"2025-03-04T15:02:11.482913+00:00"},"bot":{"id":"6b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d","metadata":{"user_id":"usr_8812","workspace":"acme"}}}}`
)

func TestSignedHeadersFixture(t *testing.T) {
	ts := time.Unix(1741100531, 0)
	tests := []struct {
		name    string
		headers http.Header
		want    map[string]string
	}{
		{"webhook-*", recalltest.SignedHeaders(fixtureSecret, fixtureID, ts, []byte(fixtureBody)), map[string]string{
			"webhook-id": fixtureID, "webhook-timestamp": "1741100531", "webhook-signature": "v1,NlZU7rqpqxRQ3rylqQrOPDAN6soe16IGTl/kp0EuTp4=",
		}},
		{"svix-*", recalltest.SvixHeaders(fixtureSecret, fixtureID, ts, []byte(fixtureBody)), map[string]string{
			"svix-id": fixtureID, "svix-timestamp": "1741100531", "svix-signature": "v1,NlZU7rqpqxRQ3rylqQrOPDAN6soe16IGTl/kp0EuTp4=",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.want {
				if got := tt.headers.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if err := signing.VerifyStandard([]string{fixtureSecret}, signing.StandardFromHeaders(tt.headers), []byte(fixtureBody), ts, signing.DefaultTolerance); err != nil {
				t.Fatalf("VerifyStandard: %v", err)
			}
		})
	}
}

// do sends one request straight to the handler, without a server.
func do(h http.Handler, path, auth string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "http://recall.local:9999"+path, nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestAPIHandler(t *testing.T) {
	api := recalltest.NewAPI("k1")
	api.AddBot("b1", map[string]string{"user_id": "u1"}, recalltest.SampleTranscript(), false)
	api.AddBot("b2", nil, recalltest.SampleTranscript(), true)
	api.FailNext("/api/v1/bot/b1/transcript/", http.StatusTooManyRequests, 1500*time.Millisecond, 2)

	tests := []struct {
		name           string
		path, auth     string
		wantStatus     int
		wantRetryAfter string
	}{
		{"no key", "/api/v1/bot/b1/", "", 401, ""},
		{"wrong key", "/api/v1/bot/b1/", "Token k2", 401, ""},
		{"Token key", "/api/v1/bot/b1/", "Token k1", 200, ""},
		{"bare key", "/api/v1/bot/b1/", "k1", 200, ""},
		{"unknown bot", "/api/v1/bot/nope/", "Token k1", 404, ""},
		{"injected 429, first", "/api/v1/bot/b1/transcript/", "Token k1", 429, "2"},
		{"injected 429, second", "/api/v1/bot/b1/transcript/", "", 429, "2"},
		{"legacy transcript after the failures", "/api/v1/bot/b1/transcript/", "Token k1", 200, ""},
		{"download with token, no key", "/download/transcript/b1?token=fake-presigned-b1", "", 200, ""},
		{"download without token", "/download/transcript/b1", "", 403, ""},
		{"download of a legacy-only bot", "/download/transcript/b2?token=fake-presigned-b2", "", 403, ""},
		{"other path", "/api/v2/whatever", "Token k1", 404, ""},
	}
	for _, tt := range tests {
		w := do(api, tt.path, tt.auth)
		if w.Code != tt.wantStatus || w.Header().Get("Retry-After") != tt.wantRetryAfter {
			t.Errorf("%s: status %d, Retry-After %q; want %d, %q", tt.name, w.Code, w.Header().Get("Retry-After"), tt.wantStatus, tt.wantRetryAfter)
		}
	}
	if n := len(api.Requests()); n != len(tests) {
		t.Fatalf("recorded %d requests, want %d", n, len(tests))
	}
	if got := api.Requests()[0]; got != (recalltest.Request{Method: "GET", Path: "/api/v1/bot/b1/", HasAuth: false, Status: 401}) {
		t.Fatalf("first request recorded as %+v", got)
	}
}

func TestAPIBotShape(t *testing.T) {
	api := recalltest.NewAPI("")
	api.AddBot("b1", map[string]string{"user_id": "u1"}, recalltest.SampleTranscript(), false)
	api.AddBot("b2", nil, recalltest.SampleTranscript(), true)
	tests := []struct {
		id          string
		downloadURL any
	}{
		{"b1", recalltest.DownloadURL("http://recall.local:9999", "b1")},
		{"b2", nil},
	}
	for _, tt := range tests {
		w := do(api, "/api/v1/bot/"+tt.id+"/", "Token "+recalltest.DefaultAPIKey)
		var bot struct {
			ID         string         `json:"id"`
			MeetingURL map[string]any `json:"meeting_url"`
			Recordings []struct {
				MediaShortcuts struct {
					Transcript *struct {
						Data struct {
							DownloadURL any `json:"download_url"`
						} `json:"data"`
					} `json:"transcript"`
				} `json:"media_shortcuts"`
			} `json:"recordings"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &bot); err != nil {
			t.Fatalf("%s: %v", tt.id, err)
		}
		var got any
		if tr := bot.Recordings[0].MediaShortcuts.Transcript; tr != nil {
			got = tr.Data.DownloadURL
		}
		if bot.ID != tt.id || bot.MeetingURL["platform"] != "google_meet" || !reflect.DeepEqual(got, tt.downloadURL) {
			t.Errorf("%s: id %q, meeting_url %v, download_url %v; want download_url %v", tt.id, bot.ID, bot.MeetingURL, got, tt.downloadURL)
		}
	}
}
