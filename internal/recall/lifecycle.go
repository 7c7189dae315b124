package recall

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/mira/mira-operator/internal/scoring"
)

// Transcript status codes of media_shortcuts.transcript.status.code and of
// Retrieve Transcript. Recall may add others: treat unknown ones as
// "not ready yet".
const (
	TranscriptProcessing = "processing"
	TranscriptDone       = "done"
	TranscriptFailed     = "failed"
)

// Step is what to do next about a bot's transcript.
type Step string

// Steps of PlanTranscript.
const (
	// StepDownload: the transcript is done; download it from DownloadURL.
	StepDownload Step = "download"
	// StepWait: the transcript exists but is not done yet.
	StepWait Step = "wait"
	// StepFailed: the transcript failed; SubCode says why.
	StepFailed Step = "failed"
	// StepCreate: the recording has no transcript (async transcription):
	// start one with CreateTranscript for RecordingID.
	StepCreate Step = "create"
	// StepLegacy: the bot has no media_shortcuts at all (API v1.10): use
	// the legacy transcript endpoint.
	StepLegacy Step = "legacy"
)

// Plan is the decision of PlanTranscript.
type Plan struct {
	Step         Step
	TranscriptID string
	RecordingID  string
	// DownloadURL is pre-signed: a credential, never log it.
	DownloadURL string
	SubCode     string
}

// PlanTranscript decides from a Retrieve Bot answer what to do about the
// bot's transcript. The first recording that has a transcript decides:
// done with a download_url → download, failed → failed, anything else
// (processing, or a code Recall added) → wait. Without a transcript on any
// recording, a recording with media_shortcuts needs one created; a bot
// whose recordings have no media_shortcuts at all (or that has no
// recordings) is a legacy bot.
func PlanTranscript(b *Bot) Plan {
	for _, r := range b.Recordings {
		if t := r.MediaShortcuts.Transcript; t.Present {
			return planShortcut(r.ID, t)
		}
	}
	for _, r := range b.Recordings {
		if r.HasMediaShortcuts && r.ID != "" {
			return Plan{Step: StepCreate, RecordingID: r.ID}
		}
	}
	return Plan{Step: StepLegacy}
}

// PlanTranscriptStatus decides from one transcript (a Retrieve Transcript
// answer or a media shortcut) what to do.
func PlanTranscriptStatus(t TranscriptShortcut) Plan { return planShortcut("", t) }

func planShortcut(recordingID string, t TranscriptShortcut) Plan {
	p := Plan{TranscriptID: t.ID, RecordingID: recordingID}
	switch t.Status.Code {
	case TranscriptDone:
		if t.Data.DownloadURL != "" {
			p.Step, p.DownloadURL = StepDownload, t.Data.DownloadURL
			return p
		}
		// Done without a URL yet: look again shortly.
		p.Step = StepWait
	case TranscriptFailed:
		p.Step, p.SubCode = StepFailed, t.Status.SubCode
	default:
		p.Step = StepWait
	}
	return p
}

// ErrDownloadExpired is wrapped by DownloadTranscript's error when the
// pre-signed URL was refused (403): retrieve the bot or transcript again for
// a fresh URL.
var ErrDownloadExpired = errors.New("transcript download URL expired or refused")

// RetrieveTranscript calls GET {base}/api/v1/transcript/{id}/.
func (c *Client) RetrieveTranscript(ctx context.Context, transcriptID string) (TranscriptShortcut, error) {
	target, err := c.objectURL("transcript", transcriptID, "")
	if err != nil {
		return TranscriptShortcut{}, err
	}
	body, err := c.get(ctx, c.clock.Now().Add(c.budget), OpRetrieveTranscript, target, true, MaxAPIResponseBytes)
	if err != nil {
		return TranscriptShortcut{}, err
	}
	m := object(body)
	if m == nil {
		return TranscriptShortcut{}, fmt.Errorf("recall %s: decode response: not a JSON object", OpRetrieveTranscript)
	}
	return decodeTranscriptShortcut(m), nil
}

// CreateTranscript calls POST {base}/api/v1/recording/{id}/create_transcript/
// with {"provider": provider} and returns the new transcript's id. provider
// is the provider object, e.g. {"recallai_async":{"language_code":"en"}}.
// Only a 2xx, 429 or 5xx is retried within the budget; Recall refuses a
// second transcript of one recording, so the caller must call it once.
func (c *Client) CreateTranscript(ctx context.Context, recordingID string, provider json.RawMessage) (string, error) {
	target, err := c.objectURL("recording", recordingID, "create_transcript/")
	if err != nil {
		return "", err
	}
	if !json.Valid(provider) {
		return "", fmt.Errorf("recall %s: provider is not valid JSON", OpCreateTranscript)
	}
	reqBody, err := json.Marshal(map[string]json.RawMessage{"provider": provider})
	if err != nil {
		return "", fmt.Errorf("recall %s: encode request: %w", OpCreateTranscript, err)
	}
	body, err := c.call(ctx, c.clock.Now().Add(c.budget), http.MethodPost, OpCreateTranscript, target, reqBody, true, MaxAPIResponseBytes)
	if err != nil {
		return "", err
	}
	return scalar(object(body)["id"]), nil
}

// DownloadTranscript downloads and parses a transcript from its pre-signed
// download_url (no API key is sent). A 403 gives an error wrapping
// ErrDownloadExpired.
func (c *Client) DownloadTranscript(ctx context.Context, downloadURL string) (scoring.Transcript, error) {
	if u, err := url.Parse(downloadURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Do not wrap err: it would quote the pre-signed URL.
		return scoring.Transcript{}, fmt.Errorf("recall %s: download_url is not an absolute http(s) URL", OpDownloadTranscript)
	}
	raw, err := c.get(ctx, c.clock.Now().Add(c.budget), OpDownloadTranscript, downloadURL, false, MaxTranscriptBytes)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusForbidden {
		return scoring.Transcript{}, fmt.Errorf("%w: %w", ErrDownloadExpired, err)
	}
	if err != nil {
		return scoring.Transcript{}, err
	}
	t, err := ParseTranscript(raw)
	if err != nil {
		return scoring.Transcript{}, fmt.Errorf("recall %s: %w", OpDownloadTranscript, err)
	}
	return t, nil
}

// LegacyTranscript calls GET {base}/api/v1/bot/{id}/transcript/, the v1.10
// endpoint. Use it only for bots without media_shortcuts.
func (c *Client) LegacyTranscript(ctx context.Context, botID string) (scoring.Transcript, error) {
	target, err := c.botURL(botID, "transcript/")
	if err != nil {
		return scoring.Transcript{}, err
	}
	raw, err := c.get(ctx, c.clock.Now().Add(c.budget), OpRetrieveLegacyTranscript, target, true, MaxTranscriptBytes)
	if err != nil {
		return scoring.Transcript{}, err
	}
	t, err := ParseTranscript(raw)
	if err != nil {
		return scoring.Transcript{}, fmt.Errorf("recall %s: %w", OpRetrieveLegacyTranscript, err)
	}
	return t, nil
}

// objectURL returns {base}/api/v1/{kind}/{escaped id}/{suffix}.
func (c *Client) objectURL(kind, id, suffix string) (string, error) {
	if id == "" || id == "." || id == ".." {
		return "", fmt.Errorf("recall: invalid %s id %q", kind, id)
	}
	return c.base + "/api/v1/" + kind + "/" + url.PathEscape(id) + "/" + suffix, nil
}
