package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/mira/mira-operator/internal/signing"
)

// Version is the version reported in the User-Agent of every delivery. The
// build sets it with -ldflags "-X github.com/mira/mira-operator/internal/delivery.Version=...".
var Version = "dev"

// Header names of the outgoing wire contract (DESIGN.md, "Outgoing wire contract").
const (
	// HeaderSignature carries the lowercase hex HMAC-SHA256 of the body,
	// keyed with the current signing secret string as stored.
	HeaderSignature = "X-Mira-Signature"
	// HeaderEvent carries the event type.
	HeaderEvent = "X-Mira-Event"
	// HeaderTimestamp carries the ISO 8601 UTC time of this attempt.
	HeaderTimestamp = "X-Mira-Timestamp"
	// HeaderWebhookID carries the Standard Webhooks message id (the delivery
	// id, stable across retries).
	HeaderWebhookID = "webhook-id"
	// HeaderWebhookTimestamp carries the unix seconds of this attempt.
	HeaderWebhookTimestamp = "webhook-timestamp"
	// HeaderWebhookSignature carries the space-separated "v1,<base64>" entries.
	HeaderWebhookSignature = "webhook-signature"
)

// TimestampLayout is the ISO 8601 UTC layout, with milliseconds, used for
// the body's "timestamp" and the X-Mira-Timestamp header.
const TimestampLayout = "2006-01-02T15:04:05.000Z"

// Bounds on identifiers that travel in headers.
const (
	// MaxEventTypeLength bounds the event type.
	MaxEventTypeLength = 128
	// MaxIDLength bounds the delivery id.
	MaxIDLength = 256
)

// envelope is the body shape; the field order is the wire order.
type envelope struct {
	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data"`
	Timestamp string          `json:"timestamp"`
}

// BuildBody returns the delivery body
// {"event":"<type>","data":{...},"timestamp":"<ISO 8601 UTC>"} with the keys
// in that order. data must be a JSON object; it is compacted and not
// HTML-escaped. eventTime is the time of the event, not of the attempt.
// Build the body once per delivery and reuse the bytes for every retry, so
// that every attempt carries identical bytes.
func BuildBody(eventType string, data json.RawMessage, eventTime time.Time) ([]byte, error) {
	if err := checkToken("event type", eventType, MaxEventTypeLength); err != nil {
		return nil, err
	}
	if eventTime.IsZero() {
		return nil, errors.New("build body: event time is zero")
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		return nil, errors.New("build body: data must be a JSON object")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, trimmed); err != nil {
		return nil, fmt.Errorf("build body: compact data: %w", err)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(envelope{
		Event:     eventType,
		Data:      compact.Bytes(),
		Timestamp: eventTime.UTC().Format(TimestampLayout),
	}); err != nil {
		return nil, fmt.Errorf("build body: encode: %w", err)
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// Message is one delivery: what NewRequest needs to build each attempt.
type Message struct {
	// ID is the delivery id, sent as webhook-id; stable across retries.
	ID string
	// EventType is the event type, sent as X-Mira-Event.
	EventType string
	// Body is the exact body from BuildBody.
	Body []byte
	// Secret is the current signing secret.
	Secret string
	// PreviousSecrets are older secrets still inside their rotation grace
	// period; they add entries to webhook-signature only. X-Mira-Signature
	// holds a single value and is always made with Secret.
	PreviousSecrets []string
}

// NewRequest builds the HTTP request of one attempt of m to target at
// attemptTime: a POST of m.Body with the Mira and Standard Webhooks headers.
// The request is meant to be sent once; build a new one per attempt.
func NewRequest(ctx context.Context, target string, m Message, attemptTime time.Time) (*http.Request, error) {
	if ctx == nil {
		return nil, errors.New("new request: nil context")
	}
	if err := checkToken("delivery id", m.ID, MaxIDLength); err != nil {
		return nil, err
	}
	if err := checkToken("event type", m.EventType, MaxEventTypeLength); err != nil {
		return nil, err
	}
	if len(m.Body) == 0 {
		return nil, errors.New("new request: empty body")
	}
	if m.Secret == "" {
		return nil, errors.New("new request: empty signing secret")
	}
	secrets := make([]string, 0, 1+len(m.PreviousSecrets))
	secrets = append(secrets, m.Secret)
	for i, s := range m.PreviousSecrets {
		if s == "" {
			return nil, fmt.Errorf("new request: previous signing secret %d is empty", i)
		}
		if s != m.Secret {
			secrets = append(secrets, s)
		}
	}
	if attemptTime.IsZero() {
		return nil, errors.New("new request: attempt time is zero")
	}
	u, err := url.Parse(target)
	if err != nil {
		// url.Parse errors repeat the URL, which may carry a token: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("new request: parse target URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("new request: target URL scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("new request: target URL has no host")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(m.Body))
	if err != nil {
		return nil, fmt.Errorf("new request: %w", err)
	}
	unix := attemptTime.Unix()
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Mira-Webhooks/"+Version)
	h.Set(HeaderEvent, m.EventType)
	h.Set(HeaderTimestamp, attemptTime.UTC().Format(TimestampLayout))
	h.Set(HeaderSignature, signing.MiraSignature(m.Secret, m.Body))
	h.Set(HeaderWebhookID, m.ID)
	h.Set(HeaderWebhookTimestamp, strconv.FormatInt(unix, 10))
	h.Set(HeaderWebhookSignature, signing.SignStandard(secrets, m.ID, unix, m.Body))
	return req, nil
}

// checkToken accepts 1..maxLen printable ASCII characters without spaces, so
// that the value is safe in a header and unambiguous in a log line.
func checkToken(what, v string, maxLen int) error {
	if v == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(v) > maxLen {
		return fmt.Errorf("%s is longer than %d bytes", what, maxLen)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("%s contains a byte outside printable ASCII at offset %d", what, i)
		}
	}
	return nil
}
