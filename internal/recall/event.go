// Package recall is Mira's side of the Recall.ai integration: it parses the
// webhook payloads Recall sends (both the legacy v1.10 "bot.status_change"
// generation and the current v1.11 "bot.<code>" / "transcript.*" one), parses
// both transcript formats into a provider-neutral scoring.Transcript, and
// calls the Recall REST API (Retrieve Bot, transcript download) with bounded,
// Retry-After-aware retries.
//
// Signature verification of the webhooks is not here: use
// signing.StandardFromHeaders and signing.VerifyStandard over the raw body
// before calling ParseEvent.
//
// Recall adds event types, status codes and sub-codes without notice, so none
// of them is a closed enum here: unknown ones parse into an Event with
// KindUnknown or an unfamiliar Code, never into an error.
package recall

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrMalformed is returned by ParseEvent for a body that is not a JSON object
// with a non-empty string "event" field.
var ErrMalformed = errors.New("malformed Recall.ai webhook payload")

// Kind is the normalized category of a Recall webhook event.
type Kind string

// Event kinds.
const (
	// KindBotStatus is a bot status change: the legacy "bot.status_change"
	// or any current "bot.<code>" event.
	KindBotStatus Kind = "bot_status"
	// KindTranscriptDone is "transcript.done": an async transcript is ready.
	KindTranscriptDone Kind = "transcript_done"
	// KindTranscriptFailed is "transcript.failed".
	KindTranscriptFailed Kind = "transcript_failed"
	// KindTranscriptStatus is any other "transcript.<code>" event, e.g.
	// "transcript.processing": progress, nothing to do.
	KindTranscriptStatus Kind = "transcript_status"
	// KindRecordingStatus is a "recording.<code>" event ("recording.done",
	// "recording.processing", "recording.failed", "recording.deleted").
	KindRecordingStatus Kind = "recording_status"
	// KindUnknown is any other event; it should be recorded and acknowledged.
	KindUnknown Kind = "unknown"
)

// Raw event names with a meaning of their own.
const (
	// EventLegacyStatusChange is the v1.10 bot status event.
	EventLegacyStatusChange = "bot.status_change"
	// EventTranscriptDone is the v1.11 async transcript success event.
	EventTranscriptDone = "transcript.done"
	// EventTranscriptFailed is the v1.11 async transcript failure event.
	EventTranscriptFailed = "transcript.failed"
)

// Bot status codes this package gives a meaning to. Others exist and more
// are added by Recall without notice.
const (
	// CodeDone means the bot finished and its media is available.
	CodeDone = "done"
	// CodeFatal means the bot could not join or record.
	CodeFatal = "fatal"
	// CodeAnalysisDone (legacy) means the bot's transcript is ready.
	CodeAnalysisDone = "analysis_done"
	// CodeAnalysisFailed (legacy) means the bot's transcript failed.
	CodeAnalysisFailed = "analysis_failed"
)

// Event is a Recall webhook payload, normalized across API generations.
type Event struct {
	// Type is the raw event name, e.g. "bot.done" or "bot.status_change".
	Type string
	// Kind is the normalized category of Type.
	Kind Kind
	// BotID is the bot the event is about ("" when the payload has none).
	BotID string
	// Code is the status code, e.g. "done", "fatal", "in_call_recording".
	// For a current "bot.<code>" event without data.data.code, it is <code>.
	Code string
	// SubCode refines Code, e.g. "meeting_not_found"; "" when null or absent.
	SubCode string
	// Message is the human-readable status message, when the payload has one.
	Message string
	// UpdatedAt is when the status changed (current: data.data.updated_at;
	// legacy: data.status.created_at); zero when absent or unparseable.
	UpdatedAt time.Time
	// Metadata is the bot's metadata (data.bot.metadata) with values
	// stringified; nil for legacy events, which carry only the bot id.
	Metadata map[string]string
	// TranscriptID is data.transcript.id of transcript events.
	TranscriptID string
	// RecordingID is data.recording.id (current) or
	// data.status.recording_id (legacy), when present.
	RecordingID string
	// MeetingURL is data.meeting_url when the payload gives it as a string
	// (Mira's docs show it on legacy events; Recall's own docs do not).
	MeetingURL string
	// Legacy is true for the v1.10 "bot.status_change" generation.
	Legacy bool
}

// MediaReady reports whether the event says the bot's media (and perhaps
// its transcript) can be looked at: bot done, recording done, or a legacy
// analysis_done.
func (e Event) MediaReady() bool {
	switch e.Kind {
	case KindBotStatus:
		return e.Code == CodeDone || e.Code == CodeAnalysisDone
	case KindRecordingStatus:
		return e.Code == CodeDone
	}
	return false
}

// TranscriptFinal reports whether the event says the transcript itself is
// finished: transcript.done or the legacy analysis_done. An empty or missing
// transcript after such an event is a failure, not a wait.
func (e Event) TranscriptFinal() bool {
	return e.Kind == KindTranscriptDone || (e.Kind == KindBotStatus && e.Code == CodeAnalysisDone)
}

// TranscriptFailed reports whether the event says the transcript failed:
// transcript.failed or the legacy analysis_failed.
func (e Event) TranscriptFailed() bool {
	return e.Kind == KindTranscriptFailed || (e.Kind == KindBotStatus && e.Code == CodeAnalysisFailed)
}

// IsDone reports whether the event says the bot is done: its media is
// available and the transcript can be fetched.
func (e Event) IsDone() bool {
	return e.Kind == KindBotStatus && e.Code == CodeDone
}

// IsFatal reports whether the event says the bot failed fatally (it could not
// join or record); SubCode says why.
func (e Event) IsFatal() bool {
	return e.Kind == KindBotStatus && e.Code == CodeFatal
}

// CheckEvent reports whether ParseEvent would accept body (a JSON object
// with a non-empty string "event" field) without decoding its data: the
// HTTP handler checks this before storing a webhook, and the pipeline parses
// it in full.
func CheckEvent(body []byte) error {
	_, _, err := envelope(body)
	return err
}

// envelope decodes the top level of a Recall webhook body: its event name
// and its undecoded data.
func envelope(body []byte) (string, json.RawMessage, error) {
	var env struct {
		Event json.RawMessage `json:"event"`
		Data  json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var name string
	if err := json.Unmarshal(env.Event, &name); err != nil || strings.TrimSpace(name) == "" {
		return "", nil, fmt.Errorf("%w: no event name", ErrMalformed)
	}
	return name, env.Data, nil
}

// ParseEvent parses a Recall webhook body of either generation. It fails only
// when body is not a JSON object with a non-empty string "event" field (the
// error wraps ErrMalformed); unknown events, unknown codes, missing fields and
// fields of unexpected types give a best-effort Event instead.
func ParseEvent(body []byte) (Event, error) {
	name, rawData, err := envelope(body)
	if err != nil {
		return Event{}, err
	}
	data := object(rawData)
	ev := Event{Type: name, Kind: kindOf(name)}
	if name == EventLegacyStatusChange {
		ev.Legacy = true
		ev.BotID = scalar(data["bot_id"])
		status := object(data["status"])
		ev.Code = scalar(status["code"])
		ev.SubCode = scalar(status["sub_code"])
		ev.Message = scalar(status["message"])
		ev.UpdatedAt = timestamp(status["created_at"])
		ev.RecordingID = scalar(status["recording_id"])
		ev.MeetingURL = scalar(data["meeting_url"])
		return ev, nil
	}
	// Decode each nested object once (this runs for every inbound webhook).
	bot, status := object(data["bot"]), object(data["data"])
	ev.BotID = scalar(bot["id"])
	if ev.BotID == "" {
		// Not in either documented shape, but cheap to honour.
		ev.BotID = scalar(data["bot_id"])
	}
	ev.Metadata = stringMap(bot["metadata"])
	ev.Code = scalar(status["code"])
	ev.SubCode = scalar(status["sub_code"])
	ev.Message = scalar(status["message"])
	ev.UpdatedAt = timestamp(status["updated_at"])
	ev.TranscriptID = scalar(path(data, "transcript", "id"))
	ev.RecordingID = scalar(path(data, "recording", "id"))
	ev.MeetingURL = scalar(data["meeting_url"])
	if ev.MeetingURL == "" {
		ev.MeetingURL = scalar(bot["meeting_url"])
	}
	if ev.Code == "" {
		switch ev.Kind {
		case KindBotStatus, KindTranscriptDone, KindTranscriptFailed, KindTranscriptStatus, KindRecordingStatus:
			_, ev.Code, _ = strings.Cut(name, ".")
		}
	}
	return ev, nil
}

// kindOf maps a raw event name to its Kind.
func kindOf(name string) Kind {
	switch {
	case name == EventTranscriptDone:
		return KindTranscriptDone
	case name == EventTranscriptFailed:
		return KindTranscriptFailed
	case strings.HasPrefix(name, "bot.") && len(name) > len("bot."):
		return KindBotStatus
	case strings.HasPrefix(name, "transcript.") && len(name) > len("transcript."):
		return KindTranscriptStatus
	case strings.HasPrefix(name, "recording.") && len(name) > len("recording."):
		return KindRecordingStatus
	}
	return KindUnknown
}
