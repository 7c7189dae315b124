package inbound

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/integrations"
	"github.com/mira/mira-operator/internal/recall"
	"github.com/mira/mira-operator/internal/scoring"
	"github.com/mira/mira-operator/internal/workspace"
)

// Bot metadata keys the pipeline reads.
const (
	MetadataUserID   = "user_id"
	MetadataTemplate = "scoring_template"
	// MetadataRepID names the rep's participant id in the transcript.
	MetadataRepID = "rep_participant_id"
	// MetadataRepName names the rep's participant display name.
	MetadataRepName = "rep_name"
)

// RuleMostSpeaking is the report's rep rule when no participant could be
// identified as the rep and the one with the most speaking time was scored.
const RuleMostSpeaking = "most_speaking_time"

// MeetingID is the deterministic meeting id of a Recall bot.
func MeetingID(botID string) string {
	sum := sha256.Sum256([]byte("recall\x00" + botID))
	return "mtg_" + hex.EncodeToString(sum[:12])
}

// TranscriptReady is the data of meeting.transcript_ready.
type TranscriptReady struct {
	MeetingID    string `json:"meeting_id"`
	BotID        string `json:"bot_id"`
	UserID       string `json:"user_id,omitempty"`
	MeetingURL   string `json:"meeting_url,omitempty"`
	Participants int    `json:"participants"`
	Words        int    `json:"words"`
}

// ReportCompleted is the data of report.completed.
type ReportCompleted struct {
	ReportID  string `json:"report_id"`
	MeetingID string `json:"meeting_id"`
	UserID    string `json:"user_id"`
}

// MeetingFailed is the data of meeting.failed.
type MeetingFailed struct {
	MeetingID  string `json:"meeting_id"`
	BotID      string `json:"bot_id"`
	UserID     string `json:"user_id,omitempty"`
	MeetingURL string `json:"meeting_url,omitempty"`
	Code       string `json:"code"`
	SubCode    string `json:"sub_code"`
	Message    string `json:"message"`
}

// MeetingReport is the stored report of a meeting: the scored report, and a
// note when the rep had to be guessed.
type MeetingReport struct {
	*scoring.Report
	// RepNote explains a rep chosen by RuleMostSpeaking.
	RepNote string `json:"rep_note,omitempty"`
}

// conflictRetries bounds how often one message re-reads a meeting whose
// record another worker or replica changed under it.
const conflictRetries = 5

func (in *Inbound) handleRecall(ctx context.Context, msg jetstream.Msg) error {
	ev, err := recall.ParseEvent(msg.Data())
	if err != nil || ev.BotID == "" {
		// Verified at the door, so only a payload without a bot id gets here.
		in.log.Info("Recall event without a bot id recorded and dropped", "event", ev.Type)
		in.countPipeline(routeRecall, string(recall.KindUnknown), resultInvalid)
		return nil
	}
	for range conflictRetries {
		err = in.recallEvent(ctx, msg, ev)
		if !errors.Is(err, errStateConflict) {
			return err
		}
	}
	return err
}

// recallEvent handles one Recall event against the meeting's current
// record; errStateConflict asks for another go with a fresh record.
func (in *Inbound) recallEvent(ctx context.Context, msg jetstream.Msg, ev recall.Event) error {
	switch {
	case ev.IsFatal():
		return in.meetingFailed(ctx, ev, failure{Code: ev.Code, SubCode: ev.SubCode, Message: ev.Message})
	case ev.TranscriptFailed():
		return in.meetingFailed(ctx, ev, failure{Code: CodeTranscriptFailed, SubCode: ev.SubCode, Message: ev.Message})
	case ev.MediaReady() || ev.TranscriptFinal():
		return in.advanceMeeting(ctx, msg, ev)
	default:
		// Progress (joining_call, transcript.processing, ...) and events or
		// codes Recall added since: recorded, not an error.
		in.log.V(1).Info("Recall event recorded", "event", ev.Type, "code", ev.Code, "subCode", ev.SubCode, "bot", ev.BotID)
		in.countPipeline(routeRecall, string(ev.Kind), resultIgnored)
		return nil
	}
}

// recallClient builds a client with the current API key; nil without one.
func (in *Inbound) recallClient(ctx context.Context) (*recall.Client, error) {
	ws := in.secret(ctx)
	key := ws.Value(ctx, integrations.RecallAPIKeyKey)
	if key == "" {
		return nil, nil
	}
	base, err := RecallRegionURL(ws.Value(ctx, integrations.RecallRegionKey), in.o.RecallAPIURL)
	if err != nil {
		return nil, fmt.Errorf("integrations Secret %s: %w", ws.Key, err)
	}
	return recall.NewClient(recall.ClientOptions{
		BaseURL: base, APIKey: key, HTTPClient: in.RecallHTTP,
		MaxRetryDuration: in.o.RecallMaxRetryDuration, Logger: in.log.WithName("recall"),
	})
}

// recallRegions are Recall.ai's regions, the values recall-region may take.
var recallRegions = []string{"us-east-1", "us-west-2", "eu-central-1", "ap-northeast-1"}

// RecallRegionURL is the Recall API base URL of a workspace: its
// recall-region's (https://<region>.recall.ai), else fallback (the
// --recall-api-url). An unknown region is an error rather than a URL
// built from Secret data.
func RecallRegionURL(region, fallback string) (string, error) {
	if region == "" {
		return fallback, nil
	}
	for _, r := range recallRegions {
		if r == region {
			return "https://" + r + ".recall.ai", nil
		}
	}
	return "", fmt.Errorf("%s %q is not a Recall.ai region (%v)", integrations.RecallRegionKey, region, recallRegions)
}

// loadMeeting reads a meeting's record and publishes what a crash left in
// its outbox.
func (in *Inbound) loadMeeting(ctx context.Context, ev recall.Event) (*subjectState, error) {
	meetingID := MeetingID(ev.BotID)
	st, err := in.loadState(ctx, "meeting."+meetingID)
	if err != nil {
		return nil, err
	}
	if err := in.flush(ctx, st); err != nil {
		return nil, err
	}
	st.ID, st.BotID = meetingID, ev.BotID
	if st.UserID == "" {
		st.UserID = ev.Metadata[MetadataUserID]
	}
	if st.MeetingURL == "" {
		st.MeetingURL = ev.MeetingURL
	}
	return st, nil
}

// advanceMeeting moves a meeting on when its media or transcript may be
// ready: it downloads a done transcript, waits for one that is processing,
// starts one when the recording has none, and scores the transcript.
func (in *Inbound) advanceMeeting(ctx context.Context, msg jetstream.Msg, ev recall.Event) error {
	st, err := in.loadMeeting(ctx, ev)
	if err != nil {
		return err
	}
	if st.terminal() {
		in.countPipeline(routeRecall, string(ev.Kind), resultReplayed)
		return nil
	}
	client, err := in.recallClient(ctx)
	if err != nil {
		return err
	}
	if client == nil {
		return in.failMeeting(ctx, st, ev.Kind, failure{Code: CodeRecallKeyMissing, Message: fmt.Sprintf(
			"the integrations Secret %s has no %s: Mira cannot fetch the transcript (rescore the meeting once it is set)",
			in.secret(ctx).Key, integrations.RecallAPIKeyKey)})
	}
	bot, err := client.RetrieveBot(ctx, ev.BotID)
	if err != nil {
		return in.fetchFailed(ctx, ev, st, err)
	}
	md := ev.Metadata
	if len(md) == 0 {
		md = bot.Metadata
	}
	if st.UserID == "" {
		st.UserID = md[MetadataUserID]
	}
	if st.MeetingURL == "" {
		st.MeetingURL = bot.MeetingURL
	}
	transcript, outcome, err := in.obtainTranscript(ctx, client, ev, st, bot)
	switch {
	case err != nil:
		return in.fetchFailed(ctx, ev, st, err)
	case outcome.fail != nil:
		return in.failMeeting(ctx, st, ev.Kind, *outcome.fail)
	case outcome.wait:
		return in.waitForTranscript(ctx, msg, ev, st)
	}
	words, speakers := 0, map[string]bool{}
	for _, s := range transcript.Segments {
		words += len(s.Words)
		if len(s.Words) > 0 {
			speakers[s.SpeakerID] = true
		}
	}
	if words == 0 {
		return in.failMeeting(ctx, st, ev.Kind, failure{Code: CodeTranscriptEmpty,
			Message: "Recall's transcript of this meeting has no words"})
	}
	if st.State != stateTranscriptReady {
		if err := in.transition(ctx, st, stateTranscriptReady, in.event(miraapi.EventMeetingTranscriptReady, st.ID, "", TranscriptReady{
			MeetingID: st.ID, BotID: st.BotID, UserID: st.UserID, MeetingURL: st.MeetingURL, Participants: len(speakers), Words: words,
		})); err != nil {
			return err
		}
	}
	return in.scoreMeeting(ctx, ev.Kind, st, transcript, md)
}

// transcriptOutcome is what obtainTranscript decided besides a transcript.
type transcriptOutcome struct {
	wait bool
	fail *failure
}

// obtainTranscript follows the transcript's lifecycle: the transcript
// named by the event or started by Mira, else the one the bot's recording
// has; an expired download URL is fetched fresh.
func (in *Inbound) obtainTranscript(ctx context.Context, client *recall.Client, ev recall.Event, st *subjectState, bot *recall.Bot) (scoring.Transcript, transcriptOutcome, error) {
	plan := recall.PlanTranscript(bot)
	if id := firstNonEmpty(ev.TranscriptID, st.TranscriptID); id != "" && plan.Step != recall.StepDownload {
		tr, err := client.RetrieveTranscript(ctx, id)
		if err != nil {
			return scoring.Transcript{}, transcriptOutcome{}, err
		}
		plan = recall.PlanTranscriptStatus(tr)
	}
	for refreshed := 0; ; refreshed++ {
		switch plan.Step {
		case recall.StepDownload:
			t, err := client.DownloadTranscript(ctx, plan.DownloadURL)
			if errors.Is(err, recall.ErrDownloadExpired) && refreshed < 2 {
				// Pre-signed URLs expire: ask Recall for a fresh one.
				in.log.V(1).Info("transcript download URL expired; retrieving a fresh one", "meeting", st.ID)
				if plan, err = in.refreshPlan(ctx, client, plan, bot.ID); err != nil {
					return scoring.Transcript{}, transcriptOutcome{}, err
				}
				continue
			}
			return t, transcriptOutcome{}, err
		case recall.StepWait:
			st.TranscriptID = firstNonEmpty(plan.TranscriptID, st.TranscriptID)
			return scoring.Transcript{}, transcriptOutcome{wait: true}, nil
		case recall.StepFailed:
			return scoring.Transcript{}, transcriptOutcome{fail: &failure{Code: CodeTranscriptFailed, SubCode: plan.SubCode,
				Message: "Recall's transcript of this meeting failed"}}, nil
		case recall.StepCreate:
			st.RecordingID = plan.RecordingID
			id, fail, err := in.startTranscript(ctx, client, plan.RecordingID)
			if err != nil || fail != nil {
				return scoring.Transcript{}, transcriptOutcome{fail: fail}, err
			}
			st.TranscriptID = firstNonEmpty(id, st.TranscriptID)
			return scoring.Transcript{}, transcriptOutcome{wait: true}, nil
		default: // recall.StepLegacy: a v1.10 bot without media_shortcuts
			t, err := client.LegacyTranscript(ctx, bot.ID)
			if err == nil && wordCount(t) == 0 && !ev.TranscriptFinal() {
				// The legacy endpoint answers [] until analysis_done.
				return scoring.Transcript{}, transcriptOutcome{wait: true}, nil
			}
			return t, transcriptOutcome{}, err
		}
	}
}

// refreshPlan retrieves the transcript (or the bot) again for a fresh
// download URL.
func (in *Inbound) refreshPlan(ctx context.Context, client *recall.Client, plan recall.Plan, botID string) (recall.Plan, error) {
	if plan.TranscriptID != "" {
		tr, err := client.RetrieveTranscript(ctx, plan.TranscriptID)
		if err != nil {
			return plan, err
		}
		return recall.PlanTranscriptStatus(tr), nil
	}
	bot, err := client.RetrieveBot(ctx, botID)
	if err != nil {
		return plan, err
	}
	return recall.PlanTranscript(bot), nil
}

func wordCount(t scoring.Transcript) int {
	n := 0
	for _, s := range t.Segments {
		n += len(s.Words)
	}
	return n
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// scoreMeeting scores a meeting whose transcript is ready, stores the
// report and emits report.completed.
func (in *Inbound) scoreMeeting(ctx context.Context, kind recall.Kind, st *subjectState, transcript scoring.Transcript, md map[string]string) error {
	tmpl, fail, err := in.resolveTemplate(ctx, md[MetadataTemplate])
	if err != nil {
		return err
	}
	if fail != nil {
		return in.failMeeting(ctx, st, kind, *fail)
	}
	input := scoring.Input{
		Transcript: transcript, Template: tmpl, Rep: scoring.Rep{ID: md[MetadataRepID], Name: md[MetadataRepName]},
		ReportID: scoring.ReportID(st.ID, tmpl.Namespace, tmpl.Name), MeetingID: st.ID, UserID: st.UserID,
		GeneratedAt: in.o.Now().UTC(),
	}
	stored := MeetingReport{}
	if _, _, err := scoring.SelectRep(transcript, input.Rep); errors.Is(err, scoring.ErrNoRep) {
		// Common outside Zoom: no metadata and no host. Score the one who
		// spoke most rather than failing the meeting, and say so.
		input.Rep = scoring.Rep{ID: MostSpeakingParticipant(transcript)}
		stored.RepNote = "no participant could be identified as the rep (no rep_participant_id or rep_name metadata matched and no participant is marked host); the participant with the most speaking time was scored"
	}
	report, err := scoring.Score(input)
	if err != nil {
		return in.failMeeting(ctx, st, kind, scoreFailure(err))
	}
	if stored.RepNote != "" {
		report.Rep.Rule = RuleMostSpeaking
	}
	report.Namespace = workspace.From(ctx)
	stored.Report = report
	if err := in.storeReport(ctx, report.ReportID, stored); err != nil {
		return err
	}
	st.ReportID = report.ReportID
	if err := in.transition(ctx, st, stateCompleted, in.event(miraapi.EventReportCompleted, report.ReportID, "", ReportCompleted{
		ReportID: report.ReportID, MeetingID: st.ID, UserID: st.UserID,
	})); err != nil {
		return err
	}
	in.log.Info("meeting scored", "meeting", st.ID, "bot", st.BotID, "report", report.ReportID,
		"template", tmpl.Namespace+"/"+tmpl.Name, "score", report.OverallScore, "repRule", report.Rep.Rule)
	in.countPipeline(routeRecall, string(kind), resultCompleted)
	return nil
}

// MostSpeakingParticipant returns the SpeakerID with the most speaking time
// (the sum of its words' lengths); ties go to more words, then to who spoke
// first. "" for a transcript without words.
func MostSpeakingParticipant(t scoring.Transcript) string {
	type total struct {
		seconds float64
		words   int
		order   int
	}
	totals := map[string]*total{}
	for _, s := range t.Segments {
		tt := totals[s.SpeakerID]
		if tt == nil {
			tt = &total{order: len(totals)}
			totals[s.SpeakerID] = tt
		}
		for _, w := range s.Words {
			tt.words++
			if d := w.End - w.Start; d > 0 {
				tt.seconds += d
			}
		}
	}
	best, bestID := (*total)(nil), ""
	for id, tt := range totals {
		if tt.words == 0 {
			continue
		}
		if best == nil || tt.seconds > best.seconds ||
			(tt.seconds == best.seconds && (tt.words > best.words || (tt.words == best.words && tt.order < best.order))) {
			best, bestID = tt, id
		}
	}
	return bestID
}

// scoreFailure describes a scoring error.
func scoreFailure(err error) failure {
	sub := "invalid_input"
	if errors.Is(err, scoring.ErrNoRep) {
		sub = "no_rep"
	}
	return failure{Code: CodeScoringFailed, SubCode: sub, Message: err.Error()}
}

// fetchFailed decides between retrying later and meeting.failed when the
// Recall API or the transcript download failed. Attempts are counted in the
// meeting's record, so redeliveries (a crash, an ack timeout) do not count.
func (in *Inbound) fetchFailed(ctx context.Context, ev recall.Event, st *subjectState, err error) error {
	var apiErr *recall.APIError
	isAPI := errors.As(err, &apiErr)
	transient := errors.Is(err, recall.ErrRetryBudgetExceeded) || errors.Is(err, recall.ErrDownloadExpired) || ctx.Err() != nil ||
		// A rejected API key is a configuration problem the operator can fix.
		(isAPI && (apiErr.StatusCode == http.StatusUnauthorized || !apiErr.Permanent()))
	if ctx.Err() != nil {
		return err
	}
	if transient && st.Attempts+1 < in.o.RecallMaxAttempts {
		st.Attempts++
		if serr := in.saveState(ctx, st); serr != nil {
			return serr
		}
		in.countPipeline(routeRecall, string(ev.Kind), resultRetried)
		return retryLater{delay: attemptDelay(st.Attempts), err: fmt.Errorf("fetch transcript of bot %s (attempt %d): %w", ev.BotID, st.Attempts, err)}
	}
	f := failure{Code: CodeTranscriptUnavailable, Message: err.Error()}
	if isAPI {
		f.SubCode = fmt.Sprintf("http_%d", apiErr.StatusCode)
	} else if transient {
		f.SubCode = "retries_exhausted"
	}
	return in.failMeeting(ctx, st, ev.Kind, f)
}

// attemptDelay backs off exponentially from 2 s to 5 minutes.
func attemptDelay(attempts int) time.Duration {
	n := min(max(attempts, 1), 9)
	return min(time.Duration(1<<n)*time.Second, 5*time.Minute)
}

// meetingFailed handles bot.fatal, transcript.failed and analysis_failed.
func (in *Inbound) meetingFailed(ctx context.Context, ev recall.Event, f failure) error {
	st, err := in.loadMeeting(ctx, ev)
	if err != nil {
		return err
	}
	if st.terminal() || st.State == stateTranscriptReady {
		// Finished, or its transcript is already in hand.
		in.countPipeline(routeRecall, string(ev.Kind), resultReplayed)
		return nil
	}
	return in.failMeeting(ctx, st, ev.Kind, f)
}

// failMeeting records the meeting as failed and then emits meeting.failed.
func (in *Inbound) failMeeting(ctx context.Context, st *subjectState, kind recall.Kind, f failure) error {
	st.Code, st.SubCode, st.Reason = f.Code, f.SubCode, f.Message
	if err := in.transition(ctx, st, stateFailed, in.event(miraapi.EventMeetingFailed, st.ID, st.generationSuffix(), MeetingFailed{
		MeetingID: st.ID, BotID: st.BotID, UserID: st.UserID, MeetingURL: st.MeetingURL, Code: f.Code, SubCode: f.SubCode, Message: f.Message,
	})); err != nil {
		return err
	}
	in.log.Info("meeting failed", "meeting", st.ID, "bot", st.BotID, "code", f.Code, "subCode", f.SubCode, "reason", f.Message)
	in.countPipeline(routeRecall, string(kind), resultFailed)
	return nil
}
