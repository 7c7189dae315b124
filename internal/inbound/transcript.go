package inbound

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mira/mira-operator/internal/recall"
)

// TranscriptProviderKey is the integrations Secret key that says which
// provider Mira asks Recall for when a recording has no transcript (async
// transcription). Values:
//
//   - absent or empty: {"recallai_async":{"language_code":"en"}}
//   - "none": Mira starts no transcripts; such meetings fail with
//     no_transcript_configured
//   - "<provider>" or "<provider>:<language>", e.g. "recallai_async:de"
//   - a JSON object with one provider, passed to Recall as is, e.g.
//     {"assembly_ai_async":{"language_code":"en_us"}}
const TranscriptProviderKey = "recall-transcript-provider"

// DefaultTranscriptProvider is the provider used when none is configured.
const DefaultTranscriptProvider = `{"recallai_async":{"language_code":"en"}}`

// errNoProvider means the workspace asked for no transcripts.
var errNoProvider = errors.New(`transcript provider is "none"`)

// ParseTranscriptProvider turns the integrations Secret's value into the
// provider object of create_transcript.
func ParseTranscriptProvider(v string) (json.RawMessage, error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return json.RawMessage(DefaultTranscriptProvider), nil
	case strings.EqualFold(v, "none"):
		return nil, errNoProvider
	case strings.HasPrefix(v, "{"):
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(v), &m); err != nil {
			return nil, fmt.Errorf("%s is not a JSON object: %w", TranscriptProviderKey, err)
		}
		if len(m) != 1 {
			return nil, fmt.Errorf("%s must name exactly one provider, got %d", TranscriptProviderKey, len(m))
		}
		for name, cfg := range m {
			if name == "" || !strings.HasPrefix(strings.TrimSpace(string(cfg)), "{") {
				return nil, fmt.Errorf("%s: provider %q needs an object of options", TranscriptProviderKey, name)
			}
		}
		b, _ := json.Marshal(m)
		return b, nil
	}
	name, lang, _ := strings.Cut(v, ":")
	name, lang = strings.TrimSpace(name), strings.TrimSpace(lang)
	for _, r := range name {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return nil, fmt.Errorf("%s: %q is not a provider name", TranscriptProviderKey, name)
		}
	}
	if name == "" {
		return nil, fmt.Errorf("%s: empty provider name", TranscriptProviderKey)
	}
	if lang == "" && name == "recallai_async" {
		lang = "en"
	}
	opts := map[string]string{}
	if lang != "" {
		opts["language_code"] = lang
	}
	b, _ := json.Marshal(map[string]any{name: opts})
	return b, nil
}

// transcriptJob is Mira's claim on starting a recording's transcript, in
// mira-state under "transcript-job.<hash of the recording id>". Created
// only if absent, so one worker of one replica calls create_transcript.
type transcriptJob struct {
	RecordingID  string    `json:"recording_id"`
	State        string    `json:"state"` // "requesting", then "requested"
	TranscriptID string    `json:"transcript_id,omitempty"`
	Updated      time.Time `json:"updated"`
}

// jobClaimTimeout is how long a "requesting" claim stands before another
// worker may take it over (its holder crashed mid-call).
const jobClaimTimeout = 5 * time.Minute

func jobKey(recordingID string) string {
	sum := sha256.Sum256([]byte(recordingID))
	return "transcript-job." + hex.EncodeToString(sum[:16])
}

// startTranscript calls create_transcript for a recording exactly once,
// guarded by a create-if-absent key, and returns the transcript id when it
// is known. A *failure means the workspace has no provider.
func (in *Inbound) startTranscript(ctx context.Context, client *recall.Client, recordingID string) (string, *failure, error) {
	provider, err := ParseTranscriptProvider(in.secret(ctx).Value(ctx, TranscriptProviderKey))
	if err != nil {
		return "", &failure{Code: CodeNoTranscriptConfigured, Message: fmt.Sprintf(
			"the recording has no transcript and Mira cannot start one: %v (set %s in %s, then rescore the meeting)",
			err, TranscriptProviderKey, in.secret(ctx).Key)}, nil
	}
	key := jobKey(recordingID)
	now := in.o.Now().UTC()
	claim, _ := json.Marshal(transcriptJob{RecordingID: recordingID, State: "requesting", Updated: now})
	rev, err := in.stateOf(ctx).Create(ctx, key, claim)
	if errors.Is(err, jetstream.ErrKeyExists) {
		entry, gerr := in.stateOf(ctx).Get(ctx, key)
		if gerr != nil {
			return "", nil, fmt.Errorf("read transcript job of recording %s: %w", recordingID, gerr)
		}
		var job transcriptJob
		_ = json.Unmarshal(entry.Value(), &job)
		if job.State != "requesting" || now.Sub(job.Updated) < jobClaimTimeout {
			// Started, or being started by another worker: wait for it.
			return job.TranscriptID, nil, nil
		}
		// The claim's holder died mid-call: take it over.
		if rev, err = in.stateOf(ctx).Update(ctx, key, claim, entry.Revision()); err != nil {
			return "", nil, nil // someone else took it over
		}
	} else if err != nil {
		return "", nil, fmt.Errorf("claim transcript job of recording %s: %w", recordingID, err)
	}
	id, err := client.CreateTranscript(ctx, recordingID, provider)
	var apiErr *recall.APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusBadRequest {
		// Recall refuses a second transcript: one exists, and the bot's
		// media_shortcuts will show it.
		err, id = nil, ""
	}
	if err != nil {
		// Nothing was started: release the claim so a retry calls again.
		_ = in.stateOf(ctx).Delete(ctx, key, jetstream.LastRevision(rev))
		return "", nil, err
	}
	done, _ := json.Marshal(transcriptJob{RecordingID: recordingID, State: "requested", TranscriptID: id, Updated: now})
	if _, err := in.stateOf(ctx).Update(ctx, key, done, rev); err != nil {
		in.log.Error(err, "record started transcript job", "recording", recordingID)
	}
	in.log.Info("started an async transcript", "recording", recordingID, "transcript", id)
	return id, nil, nil
}

// waitForTranscript records the meeting as waiting for its transcript and
// emits nothing. One message per meeting (the poller) comes back with a
// growing delay to look again, for accounts without transcript.* webhooks;
// past the timeout the meeting fails with transcript_timeout.
func (in *Inbound) waitForTranscript(ctx context.Context, msg jetstream.Msg, ev recall.Event, st *subjectState) error {
	now := in.o.Now().UTC()
	if st.WaitingSince.IsZero() {
		st.WaitingSince = now
		in.log.Info("meeting waits for its transcript", "meeting", st.ID, "bot", st.BotID, "transcript", st.TranscriptID)
	}
	delay, expired := PollDelay(st.Polls, in.o.TranscriptPollInterval, now.Sub(st.WaitingSince), in.o.TranscriptTimeout)
	if expired {
		return in.failMeeting(ctx, st, ev.Kind, failure{Code: CodeTranscriptTimeout, Message: fmt.Sprintf(
			"the transcript was not ready %s after Mira started waiting for it", in.o.TranscriptTimeout)})
	}
	me := msg.Headers().Get(HeaderWebhookID)
	if st.Poller == "" {
		st.Poller = me
	}
	poll := st.Poller == me
	if poll {
		st.Polls++
	}
	st.State = stateWaiting
	if err := in.saveState(ctx, st); err != nil {
		return err
	}
	in.countPipeline(routeRecall, string(ev.Kind), resultWaiting)
	if poll {
		return retryLater{delay: delay, quiet: true}
	}
	return nil
}

// PollDelay is how long a waiting meeting's poller waits before its next
// look: interval doubled per earlier poll, at most 10 minutes, never past
// the timeout (so the last look is at the timeout). expired says the
// timeout has passed.
func PollDelay(polls int, interval, waited, timeout time.Duration) (delay time.Duration, expired bool) {
	if waited >= timeout {
		return 0, true
	}
	delay = interval
	for i := 0; i < polls && delay < maxPollDelay; i++ {
		delay *= 2
	}
	delay = min(delay, maxPollDelay, timeout-waited)
	return delay, false
}

// maxPollDelay caps the poll backoff.
const maxPollDelay = 10 * time.Minute
