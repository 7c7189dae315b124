package inbound

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/recall/recalltest"
	"github.com/mira/mira-operator/internal/scoring"
)

// sendRecall posts a signed Recall webhook and returns the status.
func sendRecall(t *testing.T, msgID string, body []byte) int {
	t.Helper()
	code, resp := post(t, "/webhooks/recall", recalltest.SignedHeaders(recallSecret, msgID, time.Now(), body), body)
	if code != http.StatusOK {
		t.Logf("POST /webhooks/recall %s: %d %s", msgID, code, resp)
	}
	return code
}

func uniq(t *testing.T, prefix string) string {
	return fmt.Sprintf("%s-%s-%d", prefix, strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
}

func TestRecallDoneProducesReportAndReplayNothingNew(t *testing.T) {
	bot := uniq(t, "bot")
	fake.AddBot(bot, map[string]string{"user_id": "usr_8812"}, recalltest.SampleTranscript(), false)
	meeting := MeetingID(bot)
	body := recalltest.BotDonePayload(bot, map[string]string{"user_id": "usr_8812", "workspace": "acme"}, time.Now())
	if code := sendRecall(t, "msg_"+bot, body); code != http.StatusOK {
		t.Fatalf("bot.done answered %d, want 200", code)
	}

	ready := waitEvent(t, miraapi.EventMeetingTranscriptReady, "meeting_id", meeting)
	if ready["bot_id"] != bot || ready["user_id"] != "usr_8812" || ready["words"] != float64(69) || ready["participants"] != float64(2) {
		t.Errorf("meeting.transcript_ready data = %v", ready)
	}
	done := waitEvent(t, miraapi.EventReportCompleted, "meeting_id", meeting)
	wantReport := scoring.ReportID(meeting, intNS, defaultTmpl)
	if done["report_id"] != wantReport || done["user_id"] != "usr_8812" || len(done) != 3 {
		t.Errorf("report.completed data = %v, want report_id %s, meeting_id, user_id", done, wantReport)
	}

	code, raw := get(t, "/v1/reports/"+wantReport)
	if code != http.StatusOK {
		t.Fatalf("GET report: %d %s", code, raw)
	}
	var rep scoring.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	// The template's generation at scoring time (other tests toggle
	// spec.default, so it is not always 1).
	tmpl := &miraapi.ScoringTemplate{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: intNS, Name: defaultTmpl}, tmpl); err != nil {
		t.Fatal(err)
	}
	if rep.ReportID != wantReport || rep.MeetingID != meeting || rep.UserID != "usr_8812" ||
		rep.Template.Namespace != intNS || rep.Template.Name != defaultTmpl || rep.Template.Generation != tmpl.Generation {
		t.Errorf("report ids = %+v %+v", rep, rep.Template)
	}
	if len(rep.Criteria) != 2 || len(rep.Participants) != 2 || rep.Rep.SpeakerID != "100" || rep.Rep.Rule != scoring.RuleHost {
		t.Errorf("report body: %d criteria, %d participants, rep %+v", len(rep.Criteria), len(rep.Participants), rep.Rep)
	}
	if rep.OverallScore < 0 || rep.OverallScore > 100 || rep.DurationSeconds <= 0 || rep.PassingScore != 70 {
		t.Errorf("report score %v, duration %v, passing %d", rep.OverallScore, rep.DurationSeconds, rep.PassingScore)
	}
	if code, _ := get(t, "/v1/reports/rpt_000000000000000000000000"); code != http.StatusNotFound {
		t.Errorf("unknown report: %d, want 404", code)
	}
	req, _ := http.NewRequest(http.MethodGet, recvURL+"/v1/reports/"+wantReport, nil)
	if code, _ := do(t, req); code != http.StatusUnauthorized {
		t.Errorf("report without token: %d, want 401", code)
	}

	// Replays: Recall's retry (same webhook id) is deduplicated by JetStream;
	// the same event under a new id (as after the 24 h window) is stored but
	// the meeting's state record stops it.
	pipelineIdle(t)
	events := streamMessages(t, queue.EventsStream)
	code, resp := post(t, "/webhooks/recall", recalltest.SignedHeaders(recallSecret, "msg_"+bot, time.Now(), body), body)
	if code != http.StatusOK || !strings.Contains(string(resp), "duplicate") {
		t.Errorf("Recall retry answered %d %s, want 200 duplicate", code, resp)
	}
	legacyHeaders := recalltest.SvixHeaders(recallSecret, "msg_late_"+bot, time.Now(), body)
	if code, resp := post(t, "/webhooks/recall", legacyHeaders, body); code != http.StatusOK || !strings.Contains(string(resp), "stored") {
		t.Errorf("late replay (svix headers) answered %d %s, want 200 stored", code, resp)
	}
	pipelineIdle(t)
	if got := streamMessages(t, queue.EventsStream); got != events {
		t.Errorf("replays stored %d new events", got-events)
	}
	// A sentinel after the replays: once it arrives, anything the replays
	// had caused would have too.
	sentinel := uniq(t, "sentinel")
	sendRecall(t, "msg_"+sentinel, recalltest.BotFatalPayload(sentinel, "meeting_not_found", nil, time.Now()))
	waitEvent(t, miraapi.EventMeetingFailed, "bot_id", sentinel)
	if n := len(consumer.matching(miraapi.EventMeetingTranscriptReady, "meeting_id", meeting)); n != 1 {
		t.Errorf("meeting.transcript_ready delivered %d times, want 1", n)
	}
	if n := len(consumer.matching(miraapi.EventReportCompleted, "meeting_id", meeting)); n != 1 {
		t.Errorf("report.completed delivered %d times, want 1", n)
	}
}

func TestRecallFatalEmitsMeetingFailed(t *testing.T) {
	bot := uniq(t, "bot")
	body := recalltest.BotFatalPayload(bot, "bot_kicked_from_call", map[string]string{"user_id": "usr_1"}, time.Now())
	if code := sendRecall(t, "msg_"+bot, body); code != http.StatusOK {
		t.Fatalf("bot.fatal answered %d", code)
	}
	got := waitEvent(t, miraapi.EventMeetingFailed, "meeting_id", MeetingID(bot))
	if got["bot_id"] != bot || got["code"] != "fatal" || got["sub_code"] != "bot_kicked_from_call" || got["user_id"] != "usr_1" {
		t.Errorf("meeting.failed data = %v", got)
	}

	bot2 := uniq(t, "bot")
	body = recalltest.TranscriptFailedPayload(bot2, "rec_1", "tr_1", "zoom_captions_failure", nil, time.Now())
	sendRecall(t, "msg_"+bot2, body)
	got = waitEvent(t, miraapi.EventMeetingFailed, "meeting_id", MeetingID(bot2))
	if got["code"] != CodeTranscriptFailed || got["sub_code"] != "zoom_captions_failure" {
		t.Errorf("meeting.failed for transcript.failed = %v", got)
	}
}

func TestRecallLegacyStatusChangeUsesRetrieveBot(t *testing.T) {
	bot := uniq(t, "bot")
	// Legacy-only: the transcript comes from the legacy endpoint too, which
	// marks no host, so the rep is named in the metadata.
	fake.AddBot(bot, map[string]string{"user_id": "usr_legacy", "rep_name": recalltest.SampleRepName}, recalltest.SampleTranscript(), true)
	body := recalltest.LegacyStatusChangePayload(bot, "done", "", "https://zoom.us/j/1", time.Now())
	if code, resp := post(t, "/webhooks/recall", recalltest.SvixHeaders(recallSecret, "msg_"+bot, time.Now(), body), body); code != http.StatusOK {
		t.Fatalf("legacy webhook answered %d %s", code, resp)
	}
	got := waitEvent(t, miraapi.EventReportCompleted, "meeting_id", MeetingID(bot))
	if got["user_id"] != "usr_legacy" {
		t.Errorf("report.completed user_id = %v, want the bot metadata's usr_legacy", got["user_id"])
	}
	var retrieved, legacy bool
	for _, r := range fake.Requests() {
		retrieved = retrieved || r.Path == "/api/v1/bot/"+bot+"/"
		legacy = legacy || r.Path == "/api/v1/bot/"+bot+"/transcript/"
	}
	if !retrieved || !legacy {
		t.Errorf("Retrieve Bot called %v, legacy transcript called %v", retrieved, legacy)
	}
}

func TestRecallProgressAndUnknownEventsAreAcknowledged(t *testing.T) {
	events := streamMessages(t, queue.EventsStream)
	for i, body := range [][]byte{
		recalltest.BotStatusPayload("in_call_recording", uniq(t, "bot"), "", nil, time.Now()),
		recalltest.BotStatusPayload("brand_new_code", uniq(t, "bot"), "new_sub", nil, time.Now()),
		[]byte(`{"event":"participant_events.join","data":{"bot":{"id":"b1"}}}`),
	} {
		if code := sendRecall(t, fmt.Sprintf("msg_%s_%d", uniq(t, "p"), i), body); code != http.StatusOK {
			t.Errorf("event %d answered %d", i, code)
		}
	}
	pipelineIdle(t)
	if got := streamMessages(t, queue.EventsStream); got != events {
		t.Errorf("progress and unknown events emitted %d events", got-events)
	}
}

func TestTranscriptNotFoundFailsMeeting(t *testing.T) {
	bot := uniq(t, "missing") // unknown to the fake: Retrieve Bot answers 404
	sendRecall(t, "msg_"+bot, recalltest.BotDonePayload(bot, map[string]string{"user_id": "u"}, time.Now()))
	got := waitEvent(t, miraapi.EventMeetingFailed, "meeting_id", MeetingID(bot))
	if got["code"] != CodeTranscriptUnavailable || got["sub_code"] != "http_404" || !strings.Contains(fmt.Sprint(got["message"]), "404") {
		t.Errorf("meeting.failed = %v", got)
	}
}

func TestMeetingTemplates(t *testing.T) {
	t.Run("named template missing", func(t *testing.T) {
		bot := uniq(t, "bot")
		fake.AddBot(bot, nil, recalltest.SampleTranscript(), false)
		sendRecall(t, "msg_"+bot, recalltest.BotDonePayload(bot, map[string]string{"scoring_template": "nope"}, time.Now()))
		got := waitEvent(t, miraapi.EventMeetingFailed, "meeting_id", MeetingID(bot))
		if got["code"] != CodeTemplateNotFound || !strings.Contains(fmt.Sprint(got["message"]), intNS+"/nope") {
			t.Errorf("meeting.failed = %v", got)
		}
		// The transcript was fetched, so transcript_ready came first.
		waitEvent(t, miraapi.EventMeetingTranscriptReady, "meeting_id", MeetingID(bot))
	})
	t.Run("named template and rep from metadata", func(t *testing.T) {
		ensureTemplate(t, "negotiation", false)
		bot := uniq(t, "bot")
		fake.AddBot(bot, nil, recalltest.SampleTranscript(), false)
		md := map[string]string{"scoring_template": "negotiation", "rep_name": recalltest.SampleProspectName, "user_id": "u9"}
		sendRecall(t, "msg_"+bot, recalltest.BotDonePayload(bot, md, time.Now()))
		got := waitEvent(t, miraapi.EventReportCompleted, "meeting_id", MeetingID(bot))
		code, raw := get(t, "/v1/reports/"+fmt.Sprint(got["report_id"]))
		var rep scoring.Report
		_ = json.Unmarshal(raw, &rep)
		if code != http.StatusOK || rep.Template.Name != "negotiation" || rep.Rep.Rule != scoring.RuleName || rep.Rep.SpeakerID != "200" {
			t.Errorf("report %d: template %+v rep %+v", code, rep.Template, rep.Rep)
		}
	})
	t.Run("no default template", func(t *testing.T) {
		setDefault(t, false)
		defer setDefault(t, true)
		bot := uniq(t, "bot")
		fake.AddBot(bot, nil, recalltest.SampleTranscript(), false)
		sendRecall(t, "msg_"+bot, recalltest.BotDonePayload(bot, nil, time.Now()))
		got := waitEvent(t, miraapi.EventMeetingFailed, "meeting_id", MeetingID(bot))
		if got["code"] != CodeNoTemplate || !strings.Contains(fmt.Sprint(got["message"]), "no default ScoringTemplate") {
			t.Errorf("meeting.failed = %v", got)
		}
	})
}

// ensureTemplate creates a template once and waits until it is Ready.
func ensureTemplate(t *testing.T, name string, isDefault bool) {
	t.Helper()
	if err := k8s.Create(context.Background(), template(name, isDefault)); client.IgnoreAlreadyExists(err) != nil {
		t.Fatal(err)
	}
	eventually(t, "template Ready", func() error { return templateReady(context.Background(), name) })
}

// setDefault marks the default template default or not and waits until the
// receiver's cache agrees.
func setDefault(t *testing.T, on bool) {
	t.Helper()
	ctx := context.Background()
	tmpl := &miraapi.ScoringTemplate{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: intNS, Name: defaultTmpl}, tmpl); err != nil {
		t.Fatal(err)
	}
	tmpl.Spec.Default = on
	if err := k8s.Update(ctx, tmpl); err != nil {
		t.Fatal(err)
	}
	eventually(t, "default template change seen by the receiver", func() error {
		names, err := miraapi.DefaultTemplates(ctx, recv.Manager.GetCache(), intNS)
		if err != nil {
			return err
		}
		if (len(names) == 1) != on {
			return fmt.Errorf("defaults %v", names)
		}
		return templateReady(ctx, defaultTmpl)
	})
}
