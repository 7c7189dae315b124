package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

const (
	fixtureSecret   = "whsec_cmVjYWxsLWZpeHR1cmUta2V5LTAxMjM0NTY3ODlhYmM=" // key "recall-fixture-key-0123456789abc"
	fixturePrevious = "whsec_b2xkLXNlY3JldC1rZXktMDEyMzQ1Njc4OWFiY2Q="     // key "old-secret-key-0123456789abcd"
	fixtureBody     = `{"event":"report.completed","data":{"report_id":"rep_1","meeting_id":"mtg_1","user_id":"usr_1"},"timestamp":"2025-03-04T15:02:11.482Z"}`
)

func TestBuildBody(t *testing.T) {
	eventTime := time.Date(2025, 3, 4, 16, 2, 11, 482913000, time.FixedZone("CET", 3600))
	tests := []struct {
		name    string
		event   string
		data    string
		at      time.Time
		want    string
		wantErr string
	}{
		{"report", "report.completed", `{"report_id":"rep_1","meeting_id":"mtg_1","user_id":"usr_1"}`, eventTime, fixtureBody, ""},
		{"whitespace compacted", "meeting.failed", " {\n \"meeting_id\" : \"mtg_2\" ,\"reason\":\"bot kicked\"}\n", eventTime,
			`{"event":"meeting.failed","data":{"meeting_id":"mtg_2","reason":"bot kicked"},"timestamp":"2025-03-04T15:02:11.482Z"}`, ""},
		{"no HTML escaping, UTF-8 kept", "roleplay.completed", `{"note":"<b>Zoë & co</b>"}`, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
			`{"event":"roleplay.completed","data":{"note":"<b>Zoë & co</b>"},"timestamp":"2025-01-02T03:04:05.000Z"}`, ""},
		{"empty object", "meeting.transcript_ready", `{}`, time.Date(2025, 1, 2, 3, 4, 5, 999999999, time.UTC),
			`{"event":"meeting.transcript_ready","data":{},"timestamp":"2025-01-02T03:04:05.999Z"}`, ""},
		{"array data", "report.completed", `[1,2]`, eventTime, "", "data must be a JSON object"},
		{"null data", "report.completed", `null`, eventTime, "", "data must be a JSON object"},
		{"invalid data", "report.completed", `{"a":`, eventTime, "", "data must be a JSON object"},
		{"empty data", "report.completed", ``, eventTime, "", "data must be a JSON object"},
		{"empty event", "", `{}`, eventTime, "", "event type is empty"},
		{"event with newline", "report.completed\n", `{}`, eventTime, "", "printable ASCII"},
		{"zero time", "report.completed", `{}`, time.Time{}, "", "event time is zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BuildBody(tt.event, json.RawMessage(tt.data), tt.at)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("BuildBody error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("BuildBody: %v", err)
			}
			if string(got) != tt.want {
				t.Fatalf("BuildBody =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func fixtureMessage() Message {
	return Message{
		ID:              "dlv_01",
		EventType:       "report.completed",
		Body:            []byte(fixtureBody),
		Secret:          fixtureSecret,
		PreviousSecrets: []string{fixturePrevious},
	}
}

func TestNewRequestHeaders(t *testing.T) {
	old := Version
	Version = "1.2.3"
	t.Cleanup(func() { Version = old })

	attempt := time.Date(2025, 3, 4, 16, 3, 0, 250000000, time.FixedZone("CET", 3600))
	req, err := NewRequest(context.Background(), "https://hooks.example.com/mira?token=abc", fixtureMessage(), attempt)
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != http.MethodPost || req.URL.String() != "https://hooks.example.com/mira?token=abc" {
		t.Fatalf("request line: %s %s", req.Method, req.URL)
	}
	// Expected signatures computed independently with openssl dgst -hmac.
	want := map[string]string{
		"Content-Type":      "application/json",
		"User-Agent":        "Mira-Webhooks/1.2.3",
		"X-Mira-Event":      "report.completed",
		"X-Mira-Timestamp":  "2025-03-04T15:03:00.250Z",
		"X-Mira-Signature":  "8e5688bc60d07c6a538921d388f9e985070063591cbd56c531bda7a66f0be8dd",
		"webhook-id":        "dlv_01",
		"webhook-timestamp": "1741100580",
		"webhook-signature": "v1,Jv1zT7ozx67CRT30mEeYb9o2gVls64ZslzVPubQ4PIs= v1,iFf+z0v/IHrrY+txb6Bx0LP1Q3bdkfC46GqWgpmQhUk=",
	}
	for k, v := range want {
		if got := req.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if len(req.Header) != len(want) {
		t.Errorf("request has %d headers, want %d: %v", len(req.Header), len(want), req.Header)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != fixtureBody || req.ContentLength != int64(len(fixtureBody)) {
		t.Fatalf("body %q (length %d), want the exact message bytes", body, req.ContentLength)
	}
}

func TestNewRequestRetriesCarryIdenticalBytes(t *testing.T) {
	m := fixtureMessage()
	first, err := NewRequest(context.Background(), "http://consumer.default.svc/hook", m, time.Unix(1741100580, 0))
	if err != nil {
		t.Fatal(err)
	}
	second, err := NewRequest(context.Background(), "http://consumer.default.svc/hook", m, time.Unix(1741100880, 0))
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := io.ReadAll(first.Body)
	b2, _ := io.ReadAll(second.Body)
	if !bytes.Equal(b1, b2) || first.Header.Get("webhook-id") != second.Header.Get("webhook-id") {
		t.Fatal("retries must send the same body and webhook-id")
	}
	if first.Header.Get("X-Mira-Signature") != second.Header.Get("X-Mira-Signature") {
		t.Fatal("X-Mira-Signature covers the body only and must not change between attempts")
	}
	if first.Header.Get("webhook-signature") == second.Header.Get("webhook-signature") {
		t.Fatal("webhook-signature covers the attempt timestamp and must change")
	}
}

func TestNewRequestRejects(t *testing.T) {
	at := time.Unix(1741100580, 0)
	tests := []struct {
		name    string
		target  string
		mutate  func(*Message)
		at      time.Time
		wantErr string
	}{
		{"empty id", "https://x.example/h", func(m *Message) { m.ID = "" }, at, "delivery id is empty"},
		{"id with CRLF", "https://x.example/h", func(m *Message) { m.ID = "a\r\nX-Evil: 1" }, at, "printable ASCII"},
		{"empty event", "https://x.example/h", func(m *Message) { m.EventType = "" }, at, "event type is empty"},
		{"empty body", "https://x.example/h", func(m *Message) { m.Body = nil }, at, "empty body"},
		{"empty secret", "https://x.example/h", func(m *Message) { m.Secret = "" }, at, "empty signing secret"},
		{"empty previous secret", "https://x.example/h", func(m *Message) { m.PreviousSecrets = []string{""} }, at, "previous signing secret 0 is empty"},
		{"zero attempt time", "https://x.example/h", func(*Message) {}, time.Time{}, "attempt time is zero"},
		{"ftp", "ftp://x.example/h", func(*Message) {}, at, `scheme "ftp"`},
		{"no host", "https:///h", func(*Message) {}, at, "no host"},
		{"unparsable, token not echoed", "https://x.example/h%zz?token=s3cr3t", func(*Message) {}, at, "parse target URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := fixtureMessage()
			tt.mutate(&m)
			_, err := NewRequest(context.Background(), tt.target, m, tt.at)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewRequest error = %v, want one containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), fixtureSecret) {
				t.Fatalf("error leaks a secret: %v", err)
			}
		})
	}
}
