package recall

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/mira/mira-operator/internal/scoring"
)

// Response size limits.
const (
	// MaxAPIResponseBytes bounds an ordinary API response (Retrieve Bot).
	MaxAPIResponseBytes = 1 << 20
	// MaxTranscriptBytes bounds a transcript response (download or legacy).
	MaxTranscriptBytes = 32 << 20
)

// DefaultMaxRetryDuration is the default total time a Client spends
// retrying one call.
const DefaultMaxRetryDuration = 2 * time.Minute

// DefaultHTTPTimeout is the per-attempt timeout of the default HTTP client.
const DefaultHTTPTimeout = 60 * time.Second

// ErrResponseTooLarge is returned when a response body exceeds its limit.
var ErrResponseTooLarge = errors.New("response body too large")

// Operation names, used in errors (APIError.Op) and logs.
const (
	OpRetrieveBot              = "retrieve bot"
	OpDownloadTranscript       = "download transcript"
	OpRetrieveLegacyTranscript = "retrieve legacy transcript"
	OpRetrieveTranscript       = "retrieve transcript"
	OpCreateTranscript         = "create transcript"
)

// ClientOptions configures a Client.
type ClientOptions struct {
	// BaseURL is the regional API base, e.g. "https://us-west-2.recall.ai".
	// Required; absolute http or https, no query or fragment.
	BaseURL string
	// APIKey is the Recall API key, sent as "Authorization: Token <key>" to
	// the API (never to the pre-signed download URL). Required.
	APIKey string
	// HTTPClient sends the requests; default: a client with a
	// DefaultHTTPTimeout timeout.
	HTTPClient *http.Client
	// Clock measures the retry budget and waits between attempts; default:
	// the wall clock.
	Clock Clock
	// MaxRetryDuration bounds the total time one call spends retrying;
	// default DefaultMaxRetryDuration. Negative is invalid.
	MaxRetryDuration time.Duration
	// Logger receives retry notices at V(1); default: discard.
	Logger logr.Logger
}

// Client calls the Recall.ai REST API. It is safe for concurrent use.
type Client struct {
	base   string
	apiKey string
	http   *http.Client
	clock  Clock
	budget time.Duration
	log    logr.Logger
}

// NewClient validates opts and returns a Client.
func NewClient(opts ClientOptions) (*Client, error) {
	base, err := validateBaseURL(opts.BaseURL)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(opts.APIKey) == "" {
		return nil, errors.New("recall client: API key is required")
	}
	if opts.MaxRetryDuration < 0 {
		return nil, fmt.Errorf("recall client: max retry duration %s is negative", opts.MaxRetryDuration)
	}
	c := &Client{
		base:   base,
		apiKey: opts.APIKey,
		http:   opts.HTTPClient,
		clock:  opts.Clock,
		budget: opts.MaxRetryDuration,
		log:    opts.Logger,
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if c.clock == nil {
		c.clock = realClock{}
	}
	if c.budget == 0 {
		c.budget = DefaultMaxRetryDuration
	}
	if c.log.GetSink() == nil {
		c.log = logr.Discard()
	}
	return c, nil
}

// validateBaseURL checks that raw is an absolute http(s) URL without query or
// fragment and returns it without a trailing slash.
func validateBaseURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("recall client: parse base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("recall client: base URL %q must be an absolute http or https URL", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("recall client: base URL must not carry user info, a query or a fragment")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// Bot is the part of Recall's Retrieve Bot answer that Mira uses.
type Bot struct {
	// ID is the bot id.
	ID string
	// Metadata is the caller-attached metadata, values stringified.
	Metadata map[string]string
	// StatusChanges is the bot's status history, oldest first.
	StatusChanges []StatusChange
	// Recordings are the bot's recordings.
	Recordings []Recording
	// MeetingURL is the meeting's URL when Recall gives it as a string or
	// as an object with a "url"; "" otherwise.
	MeetingURL string
}

// StatusChange is one entry of a bot's status history.
type StatusChange struct {
	// Code is the status code, e.g. "done"; an open set.
	Code string
	// SubCode refines Code; "" when null.
	SubCode string
	// Message is the human-readable message, when present.
	Message string
	// CreatedAt is when the status was entered; zero when unparseable.
	CreatedAt time.Time
}

// Recording is one recording of a bot.
type Recording struct {
	// ID is the recording id.
	ID string
	// MediaShortcuts point at the recording's derived media.
	MediaShortcuts MediaShortcuts
	// HasMediaShortcuts is true when the recording has a media_shortcuts
	// object at all (current API); legacy bots have none.
	HasMediaShortcuts bool
}

// MediaShortcuts are a recording's media_shortcuts.
type MediaShortcuts struct {
	// Transcript is the recording's transcript shortcut; zero when absent.
	Transcript TranscriptShortcut
}

// TranscriptShortcut is media_shortcuts.transcript.
type TranscriptShortcut struct {
	// Present is true when media_shortcuts.transcript is an object (not
	// null or absent): the recording has a transcript, ready or not.
	Present bool
	// ID is the transcript id.
	ID string
	// Status is the transcript's processing status.
	Status ShortcutStatus
	// Data holds where to download the transcript.
	Data TranscriptData
}

// ShortcutStatus is the status of a media shortcut.
type ShortcutStatus struct {
	// Code is e.g. "processing", "done" or "failed"; an open set.
	Code string
	// SubCode refines Code, e.g. "provider_connection_failed".
	SubCode string
}

// TranscriptData is media_shortcuts.transcript.data.
type TranscriptData struct {
	// DownloadURL is a pre-signed URL: a credential in itself, never log it.
	DownloadURL string
}

// TranscriptDownloadURL returns the download URL of the first recording
// that has one, or "".
func (b *Bot) TranscriptDownloadURL() string {
	for _, r := range b.Recordings {
		if u := r.MediaShortcuts.Transcript.Data.DownloadURL; u != "" {
			return u
		}
	}
	return ""
}

// RetrieveBot calls GET {base}/api/v1/bot/{id}/.
func (c *Client) RetrieveBot(ctx context.Context, botID string) (*Bot, error) {
	return c.retrieveBot(ctx, c.clock.Now().Add(c.budget), botID)
}

func (c *Client) retrieveBot(ctx context.Context, deadline time.Time, botID string) (*Bot, error) {
	target, err := c.botURL(botID, "")
	if err != nil {
		return nil, err
	}
	body, err := c.get(ctx, deadline, OpRetrieveBot, target, true, MaxAPIResponseBytes)
	if err != nil {
		return nil, err
	}
	return decodeBot(body)
}

// FetchTranscript returns the transcript of a bot's recording. It retrieves
// the bot, downloads the transcript from the first recording with a
// download_url (a pre-signed URL, fetched without the API key) and, when no
// recording has one, falls back to the legacy GET
// {base}/api/v1/bot/{id}/transcript/. One retry budget covers all requests.
func (c *Client) FetchTranscript(ctx context.Context, botID string) (scoring.Transcript, error) {
	deadline := c.clock.Now().Add(c.budget)
	bot, err := c.retrieveBot(ctx, deadline, botID)
	if err != nil {
		return scoring.Transcript{}, err
	}
	op, target, auth := OpDownloadTranscript, bot.TranscriptDownloadURL(), false
	if target != "" {
		if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// Do not wrap err: it would quote the pre-signed URL.
			return scoring.Transcript{}, fmt.Errorf("recall %s: download_url is not an absolute http(s) URL", op)
		}
	} else {
		op, auth = OpRetrieveLegacyTranscript, true
		if target, err = c.botURL(botID, "transcript/"); err != nil {
			return scoring.Transcript{}, err
		}
	}
	raw, err := c.get(ctx, deadline, op, target, auth, MaxTranscriptBytes)
	if err != nil {
		return scoring.Transcript{}, err
	}
	t, err := ParseTranscript(raw)
	if err != nil {
		return scoring.Transcript{}, fmt.Errorf("recall %s: %w", op, err)
	}
	return t, nil
}

// botURL returns {base}/api/v1/bot/{escaped id}/{suffix}.
func (c *Client) botURL(botID, suffix string) (string, error) {
	if botID == "" || botID == "." || botID == ".." {
		return "", fmt.Errorf("recall: invalid bot id %q", botID)
	}
	return c.base + "/api/v1/bot/" + url.PathEscape(botID) + "/" + suffix, nil
}

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// get performs GET target with retries until success, a permanent failure,
// ctx ends or deadline passes.
func (c *Client) get(ctx context.Context, deadline time.Time, op, target string, auth bool, limit int64) ([]byte, error) {
	return c.call(ctx, deadline, http.MethodGet, op, target, nil, auth, limit)
}

// call performs method target (with a JSON body when body is not nil) with
// retries until success, a permanent failure, ctx ends or deadline passes.
func (c *Client) call(ctx context.Context, deadline time.Time, method, op, target string, reqBody []byte, auth bool, limit int64) ([]byte, error) {
	for failures := 0; ; failures++ {
		body, retryAfter, err := c.attempt(ctx, method, op, target, reqBody, auth, limit)
		if err == nil {
			return body, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("recall %s: %w", op, ctx.Err())
		}
		var perm permanentError
		if errors.As(err, &perm) {
			return nil, perm.err
		}
		wait := backoff(failures)
		status := 0
		var apiErr *APIError
		if errors.As(err, &apiErr) {
			status = apiErr.StatusCode
			w, retry := retryWait(status, retryAfter, failures, c.clock.Now())
			if !retry {
				return nil, err
			}
			wait = w
		}
		remaining := deadline.Sub(c.clock.Now())
		if remaining <= 0 {
			return nil, fmt.Errorf("recall %s: %w after %d attempts: %w", op, ErrRetryBudgetExceeded, failures+1, err)
		}
		wait = min(wait, remaining)
		c.log.V(1).Info("Retrying Recall.ai request", "op", op, "status", status, "attempt", failures+1, "wait", wait, "reason", err.Error())
		if err := c.clock.Sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("recall %s: wait before retry: %w", op, err)
		}
	}
}

// attempt performs one GET. It returns the body on 2xx; an *APIError (and
// the Retry-After header) on another status; a permanentError for failures
// that retrying cannot fix; any other error is a transport failure. No error
// quotes target, which may be a pre-signed URL.
func (c *Client) attempt(ctx context.Context, method, op, target string, reqBody []byte, auth bool, limit int64) ([]byte, string, error) {
	var rd io.Reader
	if reqBody != nil {
		rd = bytes.NewReader(reqBody)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, "", permanentError{fmt.Errorf("recall %s: build request: invalid URL", op)}
	}
	if reqBody != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "mira-operator")
	if auth {
		req.Header.Set("Authorization", "Token "+c.apiKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, "", fmt.Errorf("recall %s: send request: %w", op, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, resp.Header.Get("Retry-After"), &APIError{StatusCode: resp.StatusCode, Op: op}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, "", fmt.Errorf("recall %s: read response: %w", op, err)
	}
	if int64(len(body)) > limit {
		return nil, "", permanentError{fmt.Errorf("recall %s: %w (limit %d bytes)", op, ErrResponseTooLarge, limit)}
	}
	return body, "", nil
}

// decodeBot reads a Retrieve Bot answer leniently.
func decodeBot(body []byte) (*Bot, error) {
	m := object(body)
	if m == nil {
		return nil, fmt.Errorf("recall %s: decode response: not a JSON object", OpRetrieveBot)
	}
	bot := &Bot{ID: scalar(m["id"]), Metadata: stringMap(m["metadata"]), MeetingURL: meetingURL(m["meeting_url"])}
	for _, raw := range array(m["status_changes"]) {
		sc := object(raw)
		if sc == nil {
			continue
		}
		bot.StatusChanges = append(bot.StatusChanges, StatusChange{
			Code:      scalar(sc["code"]),
			SubCode:   scalar(sc["sub_code"]),
			Message:   scalar(sc["message"]),
			CreatedAt: timestamp(sc["created_at"]),
		})
	}
	for _, raw := range array(m["recordings"]) {
		r := object(raw)
		if r == nil {
			continue
		}
		ms := object(r["media_shortcuts"])
		bot.Recordings = append(bot.Recordings, Recording{
			ID:                scalar(r["id"]),
			HasMediaShortcuts: ms != nil,
			MediaShortcuts:    MediaShortcuts{Transcript: decodeTranscriptShortcut(object(ms["transcript"]))},
		})
	}
	return bot, nil
}

// decodeTranscriptShortcut reads media_shortcuts.transcript, which has the
// same shape as a Retrieve Transcript answer; nil gives the zero value.
func decodeTranscriptShortcut(t map[string]json.RawMessage) TranscriptShortcut {
	if t == nil {
		return TranscriptShortcut{}
	}
	return TranscriptShortcut{
		Present: true,
		ID:      scalar(t["id"]),
		Status:  ShortcutStatus{Code: scalar(path(t, "status", "code")), SubCode: scalar(path(t, "status", "sub_code"))},
		Data:    TranscriptData{DownloadURL: scalar(path(t, "data", "download_url"))},
	}
}

// meetingURL reads meeting_url: a string (Mira's docs) or an object (the
// Retrieve Bot answer) whose "url" is used when it has one.
func meetingURL(raw json.RawMessage) string {
	if o := object(raw); o != nil {
		return scalar(o["url"])
	}
	return scalar(raw)
}
