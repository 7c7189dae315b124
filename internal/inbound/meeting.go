package inbound

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"github.com/nats-io/nats.go/jetstream"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/integrations"
	"github.com/mira/mira-operator/internal/recall"
	"github.com/mira/mira-operator/internal/scoring"
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
	MeetingID string `json:"meeting_id"`
	BotID     string `json:"bot_id"`
	UserID    string `json:"user_id,omitempty"`
	Code      string `json:"code"`
	SubCode   string `json:"sub_code"`
	Message   string `json:"message"`
}

func (in *Inbound) handleRecall(ctx context.Context, msg jetstream.Msg) error {
	ev, err := recall.ParseEvent(msg.Data())
	if err != nil || ev.BotID == "" {
		// Verified at the door, so only a payload without a bot id gets here.
		in.log.Info("Recall event without a bot id recorded and dropped", "event", ev.Type)
		in.countPipeline(routeRecall, string(recall.KindUnknown), resultInvalid)
		return nil
	}
	switch {
	case ev.IsDone() || ev.Kind == recall.KindTranscriptDone:
		return in.meetingDone(ctx, msg, ev)
	case ev.IsFatal():
		return in.meetingFailed(ctx, ev, ev.Metadata, failure{Code: ev.Code, SubCode: ev.SubCode, Message: ev.Message})
	case ev.Kind == recall.KindTranscriptFailed:
		return in.meetingFailed(ctx, ev, ev.Metadata, failure{Code: CodeTranscriptFailed, SubCode: ev.SubCode, Message: ev.Message})
	default:
		// Progress (joining_call, in_call_recording, ...) and events or
		// codes Recall added since: recorded, not an error.
		in.log.V(1).Info("Recall event recorded", "event", ev.Type, "code", ev.Code, "subCode", ev.SubCode, "bot", ev.BotID)
		in.countPipeline(routeRecall, string(ev.Kind), resultIgnored)
		return nil
	}
}

// recallClient builds a client with the current API key.
func (in *Inbound) recallClient(ctx context.Context) (*recall.Client, error) {
	key := in.integrations.Value(ctx, integrations.RecallAPIKeyKey)
	if key == "" {
		in.log.Info("cannot fetch Recall transcripts: the integrations Secret has no Recall API key",
			"secret", in.integrations.Key.String(), "key", integrations.RecallAPIKeyKey)
		return nil, errors.New("recall API key not configured")
	}
	return recall.NewClient(recall.ClientOptions{
		BaseURL: in.o.RecallAPIURL, APIKey: key, HTTPClient: in.RecallHTTP,
		MaxRetryDuration: in.o.RecallMaxRetryDuration, Logger: in.log.WithName("recall"),
	})
}

// meetingDone fetches the transcript, emits meeting.transcript_ready, scores
// the meeting and emits report.completed.
func (in *Inbound) meetingDone(ctx context.Context, msg jetstream.Msg, ev recall.Event) error {
	meetingID := MeetingID(ev.BotID)
	defer in.lock(meetingID)()
	st, err := in.loadState(ctx, "meeting."+meetingID)
	if err != nil {
		return err
	}
	if st.terminal() {
		in.countPipeline(routeRecall, string(ev.Kind), resultReplayed)
		return nil
	}
	st.ID, st.BotID = meetingID, ev.BotID
	client, err := in.recallClient(ctx)
	if err != nil {
		return err
	}
	md := ev.Metadata
	if ev.Legacy || md == nil {
		bot, err := client.RetrieveBot(ctx, ev.BotID)
		if err != nil {
			return in.fetchFailed(ctx, msg, ev, st, err)
		}
		md = bot.Metadata
	}
	transcript, err := client.FetchTranscript(ctx, ev.BotID)
	if err != nil {
		return in.fetchFailed(ctx, msg, ev, st, err)
	}
	userID := md[MetadataUserID]
	st.UserID = userID
	words := 0
	speakers := map[string]bool{}
	for _, s := range transcript.Segments {
		words += len(s.Words)
		speakers[s.SpeakerID] = true
	}
	if err := in.emit(ctx, st, miraapi.EventMeetingTranscriptReady, meetingID, TranscriptReady{
		MeetingID: meetingID, BotID: ev.BotID, UserID: userID, Participants: len(speakers), Words: words,
	}); err != nil {
		return err
	}
	st.State = stateTranscriptReady
	if err := in.saveState(ctx, st); err != nil {
		return err
	}

	tmpl, fail, err := in.resolveTemplate(ctx, md[MetadataTemplate])
	if err != nil {
		return err
	}
	if fail != nil {
		return in.failMeeting(ctx, st, ev.Kind, *fail)
	}
	report, err := scoring.Score(scoring.Input{
		Transcript: transcript, Template: tmpl, Rep: scoring.Rep{ID: md[MetadataRepID], Name: md[MetadataRepName]},
		ReportID: scoring.ReportID(meetingID, tmpl.Namespace, tmpl.Name), MeetingID: meetingID, UserID: userID,
		GeneratedAt: in.o.Now().UTC(),
	})
	if err != nil {
		return in.failMeeting(ctx, st, ev.Kind, scoreFailure(err))
	}
	if err := in.storeReport(ctx, report.ReportID, report); err != nil {
		return err
	}
	if err := in.emit(ctx, st, miraapi.EventReportCompleted, report.ReportID, ReportCompleted{
		ReportID: report.ReportID, MeetingID: meetingID, UserID: userID,
	}); err != nil {
		return err
	}
	st.State, st.ReportID = stateCompleted, report.ReportID
	if err := in.saveState(ctx, st); err != nil {
		return err
	}
	in.log.Info("meeting scored", "meeting", meetingID, "bot", ev.BotID, "report", report.ReportID,
		"template", tmpl.Namespace+"/"+tmpl.Name, "score", report.OverallScore)
	in.countPipeline(routeRecall, string(ev.Kind), resultCompleted)
	return nil
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
// Recall API or the transcript download failed.
func (in *Inbound) fetchFailed(ctx context.Context, msg jetstream.Msg, ev recall.Event, st *subjectState, err error) error {
	var apiErr *recall.APIError
	isAPI := errors.As(err, &apiErr)
	transient := errors.Is(err, recall.ErrRetryBudgetExceeded) || ctx.Err() != nil ||
		// A rejected API key is a configuration problem the operator can fix.
		(isAPI && (apiErr.StatusCode == http.StatusUnauthorized || !apiErr.Permanent()))
	if transient && deliveries(msg) < uint64(in.o.RecallMaxAttempts) {
		in.countPipeline(routeRecall, string(ev.Kind), resultRetried)
		return fmt.Errorf("fetch transcript of bot %s: %w", ev.BotID, err)
	}
	f := failure{Code: CodeTranscriptUnavailable, Message: err.Error()}
	if isAPI {
		f.SubCode = fmt.Sprintf("http_%d", apiErr.StatusCode)
	} else if transient {
		f.SubCode = "retries_exhausted"
	}
	return in.failMeeting(ctx, st, ev.Kind, f)
}

// meetingFailed handles bot.fatal and transcript.failed.
func (in *Inbound) meetingFailed(ctx context.Context, ev recall.Event, md map[string]string, f failure) error {
	meetingID := MeetingID(ev.BotID)
	defer in.lock(meetingID)()
	st, err := in.loadState(ctx, "meeting."+meetingID)
	if err != nil {
		return err
	}
	if st.terminal() {
		in.countPipeline(routeRecall, string(ev.Kind), resultReplayed)
		return nil
	}
	st.ID, st.BotID = meetingID, ev.BotID
	if st.UserID == "" {
		st.UserID = md[MetadataUserID]
	}
	return in.failMeeting(ctx, st, ev.Kind, f)
}

// failMeeting emits meeting.failed and records the meeting as failed.
func (in *Inbound) failMeeting(ctx context.Context, st *subjectState, kind recall.Kind, f failure) error {
	if err := in.emit(ctx, st, miraapi.EventMeetingFailed, st.ID, MeetingFailed{
		MeetingID: st.ID, BotID: st.BotID, UserID: st.UserID, Code: f.Code, SubCode: f.SubCode, Message: f.Message,
	}); err != nil {
		return err
	}
	st.State, st.Code, st.Reason = stateFailed, f.Code, f.Message
	if err := in.saveState(ctx, st); err != nil {
		return err
	}
	in.log.Info("meeting failed", "meeting", st.ID, "bot", st.BotID, "code", f.Code, "subCode", f.SubCode, "reason", f.Message)
	in.countPipeline(routeRecall, string(kind), resultFailed)
	return nil
}
