package inbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/recall/recalltest"
	"github.com/mira/mira-operator/internal/scoring"
)

// meetingState reads a meeting's record in mira-state.
func meetingState(t *testing.T, bot string) *subjectState {
	t.Helper()
	st, err := in.loadState(defaultWS(), "meeting."+MeetingID(bot))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitWaiting waits until the meeting is recorded as waiting for its
// transcript.
func waitWaiting(t *testing.T, bot string) {
	t.Helper()
	eventually(t, "meeting waiting for its transcript", func() error {
		if st := meetingState(t, bot); st.State != stateWaiting {
			return fmt.Errorf("state %q", st.State)
		}
		return nil
	})
}

// sentinel sends a bot.fatal for a fresh bot and waits for its
// meeting.failed: whatever earlier events caused has arrived by then.
func sentinel(t *testing.T) {
	t.Helper()
	bot := uniq(t, "sentinel")
	sendRecall(t, "msg_"+bot, recalltest.BotFatalPayload(bot, "meeting_not_found", nil, time.Now()))
	waitEvent(t, miraapi.EventMeetingFailed, "bot_id", bot)
}

// exactlyOneReport checks the meeting's events after a sentinel: one
// transcript_ready, one report.completed, no meeting.failed.
func exactlyOneReport(t *testing.T, bot string) {
	t.Helper()
	m := MeetingID(bot)
	// Deliveries of different events run in parallel (and may be retried),
	// so the sentinel orders nothing by itself: wait for each expected event
	// first, then use the sentinel for the negative checks.
	waitEvent(t, miraapi.EventMeetingTranscriptReady, "meeting_id", m)
	waitEvent(t, miraapi.EventReportCompleted, "meeting_id", m)
	sentinel(t)
	if n := len(consumer.matching(miraapi.EventReportCompleted, "meeting_id", m)); n != 1 {
		t.Errorf("report.completed delivered %d times, want 1", n)
	}
	if n := len(consumer.matching(miraapi.EventMeetingTranscriptReady, "meeting_id", m)); n != 1 {
		t.Errorf("meeting.transcript_ready delivered %d times, want 1", n)
	}
	if n := len(consumer.matching(miraapi.EventMeetingFailed, "meeting_id", m)); n != 0 {
		t.Errorf("meeting.failed delivered %d times, want 0: %v", n, consumer.matching(miraapi.EventMeetingFailed, "meeting_id", m)[0].Data)
	}
}

// Done when (a): bot.done, the transcript processing for a while, then
// transcript.done.
func TestMeetingWaitsForProcessingTranscript(t *testing.T) {
	bot := uniq(t, "bot")
	md := map[string]string{"user_id": "usr_wait"}
	fake.AddBotWith(bot, recalltest.BotOptions{Metadata: md, Transcript: recalltest.SampleTranscript(),
		Setup: recalltest.SetupStreaming, ProcessingReads: -1, MeetingURL: "https://meet.google.com/abc-defg-hij"})
	sendRecall(t, "msg_done_"+bot, recalltest.BotDonePayload(bot, md, time.Now()))
	waitWaiting(t, bot)
	// Waiting emits nothing: the state is written after the decision.
	if n := len(consumer.matching(miraapi.EventMeetingTranscriptReady, "bot_id", bot)) + len(consumer.matching(miraapi.EventMeetingFailed, "bot_id", bot)); n != 0 {
		t.Fatalf("a waiting meeting emitted %d events", n)
	}
	// Progress events change nothing.
	sendRecall(t, "msg_proc_"+bot, []byte(fmt.Sprintf(`{"event":"transcript.processing","data":{"data":{"code":"processing"},"transcript":{"id":%q},"recording":{"id":%q},"bot":{"id":%q,"metadata":{}}}}`,
		recalltest.TranscriptID(bot), recalltest.RecordingID(bot), bot)))
	body := fake.CompleteTranscript(bot)
	sendRecall(t, "msg_tdone_"+bot, body)
	ready := waitEvent(t, miraapi.EventMeetingTranscriptReady, "meeting_id", MeetingID(bot))
	if ready["meeting_url"] != "https://meet.google.com/abc-defg-hij" || ready["words"] != float64(69) {
		t.Errorf("meeting.transcript_ready = %v", ready)
	}
	waitEvent(t, miraapi.EventReportCompleted, "meeting_id", MeetingID(bot))
	exactlyOneReport(t, bot)
	if st := meetingState(t, bot); st.MeetingURL != "https://meet.google.com/abc-defg-hij" || st.State != stateCompleted {
		t.Errorf("meeting record: state %s, meeting_url %q", st.State, st.MeetingURL)
	}
}

// Accounts without transcript.* webhooks: the waiting meeting polls.
func TestMeetingPollsWithoutTranscriptWebhooks(t *testing.T) {
	bot := uniq(t, "bot")
	fake.AddBotWith(bot, recalltest.BotOptions{Metadata: map[string]string{"user_id": "u"}, Transcript: recalltest.SampleTranscript(),
		Setup: recalltest.SetupStreaming, ProcessingReads: 3})
	sendRecall(t, "msg_"+bot, recalltest.BotDonePayload(bot, nil, time.Now()))
	waitEvent(t, miraapi.EventReportCompleted, "meeting_id", MeetingID(bot))
	exactlyOneReport(t, bot)
	if st := meetingState(t, bot); st.Polls < 1 {
		t.Errorf("meeting completed after %d polls, want at least 1 (the transcript was processing for 3 reads)", st.Polls)
	}
}

// Done when (b): recording.done and bot.done with no transcript, Mira's
// single create_transcript call, then transcript.done.
func TestAsyncTranscriptStartedOnce(t *testing.T) {
	bot := uniq(t, "bot")
	md := map[string]string{"user_id": "usr_async"}
	fake.AddBotWith(bot, recalltest.BotOptions{Metadata: md, Transcript: recalltest.SampleTranscript(),
		Setup: recalltest.SetupAsync, ProcessingReads: -1})
	var wg sync.WaitGroup
	for i, body := range [][]byte{
		recalltest.RecordingPayload("done", bot, recalltest.RecordingID(bot), md, time.Now()),
		recalltest.BotDonePayload(bot, md, time.Now()),
		// A replay under a new id, as after Recall's dedupe window.
		recalltest.BotDonePayload(bot, md, time.Now()),
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sendRecall(t, fmt.Sprintf("msg_%d_%s", i, bot), body)
		}()
	}
	wg.Wait()
	waitWaiting(t, bot)
	pipelineSettled(t, bot)
	if code, calls := fake.TranscriptStatus(bot); code != "processing" || calls != 1 {
		t.Fatalf("transcript %q after %d create_transcript calls, want processing after 1", code, calls)
	}
	sendRecall(t, "msg_tdone_"+bot, fake.CompleteTranscript(bot))
	waitEvent(t, miraapi.EventReportCompleted, "meeting_id", MeetingID(bot))
	exactlyOneReport(t, bot)
	if _, calls := fake.TranscriptStatus(bot); calls != 1 {
		t.Errorf("create_transcript called %d times, want 1", calls)
	}
}

// pipelineSettled waits until only the meeting's poller is outstanding.
func pipelineSettled(t *testing.T, bot string) {
	t.Helper()
	eventually(t, "only the poller outstanding", func() error {
		c, err := recv.JetStream.Consumer(context.Background(), queue.InboundStream, queue.PipelineConsumer)
		if err != nil {
			return err
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return err
		}
		if info.NumPending != 0 {
			return fmt.Errorf("%d pending", info.NumPending)
		}
		if st := meetingState(t, bot); st.Poller == "" {
			return fmt.Errorf("no poller yet")
		}
		return nil
	})
}

// Done when (c): the legacy analysis_done path.
func TestLegacyAnalysisDone(t *testing.T) {
	bot := uniq(t, "bot")
	fake.AddBotWith(bot, recalltest.BotOptions{Metadata: map[string]string{"user_id": "usr_legacy"}, Transcript: recalltest.SampleTranscript(),
		Setup: recalltest.SetupLegacy, ProcessingReads: -1})
	body := recalltest.LegacyStatusChangePayload(bot, "done", "", "https://zoom.us/j/42", time.Now())
	code, _ := post(t, "/webhooks/recall", recalltest.SvixHeaders(recallSecret, "msg_done_"+bot, time.Now(), body), body)
	if code != http.StatusOK {
		t.Fatalf("legacy done answered %d", code)
	}
	waitWaiting(t, bot)
	fake.CompleteTranscript(bot)
	body = recalltest.LegacyStatusChangePayload(bot, "analysis_done", "", "https://zoom.us/j/42", time.Now())
	post(t, "/webhooks/recall", recalltest.SvixHeaders(recallSecret, "msg_analysis_"+bot, time.Now(), body), body)
	got := waitEvent(t, miraapi.EventReportCompleted, "meeting_id", MeetingID(bot))
	if got["user_id"] != "usr_legacy" {
		t.Errorf("report.completed = %v", got)
	}
	exactlyOneReport(t, bot)
	if ready := consumer.matching(miraapi.EventMeetingTranscriptReady, "meeting_id", MeetingID(bot)); len(ready) == 1 && ready[0].Data["meeting_url"] != "https://zoom.us/j/42" {
		t.Errorf("transcript_ready meeting_url = %v", ready[0].Data["meeting_url"])
	}
	for _, r := range fake.Requests() {
		if strings.HasPrefix(r.Path, "/api/v1/transcript/") || strings.Contains(r.Path, "create_transcript") {
			if strings.Contains(r.Path, bot) {
				t.Errorf("legacy bot: unexpected %s %s", r.Method, r.Path)
			}
		}
	}
}

func TestLegacyAnalysisFailedFailsMeeting(t *testing.T) {
	bot := uniq(t, "bot")
	body := recalltest.LegacyStatusChangePayload(bot, "analysis_failed", "provider_connection_failed", "https://zoom.us/j/7", time.Now())
	post(t, "/webhooks/recall", recalltest.SvixHeaders(recallSecret, "msg_"+bot, time.Now(), body), body)
	got := waitEvent(t, miraapi.EventMeetingFailed, "meeting_id", MeetingID(bot))
	if got["code"] != CodeTranscriptFailed || got["sub_code"] != "provider_connection_failed" || got["meeting_url"] != "https://zoom.us/j/7" {
		t.Errorf("meeting.failed = %v", got)
	}
}

func TestTranscriptFailuresAndEdges(t *testing.T) {
	t.Run("media_shortcuts transcript failed", func(t *testing.T) {
		bot := uniq(t, "bot")
		fake.AddBotWith(bot, recalltest.BotOptions{Transcript: recalltest.SampleTranscript(), ProcessingReads: -1})
		fake.FailTranscript(bot, "provider_connection_failed")
		sendRecall(t, "msg_"+bot, recalltest.BotDonePayload(bot, nil, time.Now()))
		got := waitEvent(t, miraapi.EventMeetingFailed, "meeting_id", MeetingID(bot))
		if got["code"] != CodeTranscriptFailed || got["sub_code"] != "provider_connection_failed" {
			t.Errorf("meeting.failed = %v", got)
		}
	})
	t.Run("empty transcript is a failure, never transcript_ready", func(t *testing.T) {
		bot := uniq(t, "bot")
		fake.AddBotWith(bot, recalltest.BotOptions{Transcript: []byte(`[]`)})
		sendRecall(t, "msg_"+bot, recalltest.BotDonePayload(bot, nil, time.Now()))
		got := waitEvent(t, miraapi.EventMeetingFailed, "meeting_id", MeetingID(bot))
		if got["code"] != CodeTranscriptEmpty {
			t.Errorf("meeting.failed = %v", got)
		}
		sentinel(t)
		if n := len(consumer.matching(miraapi.EventMeetingTranscriptReady, "meeting_id", MeetingID(bot))); n != 0 {
			t.Errorf("meeting.transcript_ready for an empty transcript delivered %d times", n)
		}
	})
	t.Run("expired download URL is fetched fresh", func(t *testing.T) {
		bot := uniq(t, "bot")
		fake.AddBotWith(bot, recalltest.BotOptions{Transcript: recalltest.SampleTranscript()})
		fake.FailNext(recalltest.DownloadPath+bot, http.StatusForbidden, 0, 1)
		sendRecall(t, "msg_"+bot, recalltest.BotDonePayload(bot, nil, time.Now()))
		waitEvent(t, miraapi.EventReportCompleted, "meeting_id", MeetingID(bot))
		forbidden := 0
		for _, r := range fake.Requests() {
			if strings.HasPrefix(r.Path, recalltest.DownloadPath+bot) && r.Status == http.StatusForbidden {
				forbidden++
			}
		}
		if forbidden != 1 {
			t.Errorf("%d downloads answered 403, want 1", forbidden)
		}
		exactlyOneReport(t, bot)
	})
	t.Run("no identifiable rep: the one who spoke most is scored", func(t *testing.T) {
		bot := uniq(t, "bot")
		turns := recalltest.SampleTurns()
		for i := range turns {
			turns[i].IsHost = false
		}
		fake.AddBotWith(bot, recalltest.BotOptions{Transcript: recalltest.Transcript(turns...)})
		sendRecall(t, "msg_"+bot, recalltest.BotDonePayload(bot, nil, time.Now()))
		got := waitEvent(t, miraapi.EventReportCompleted, "meeting_id", MeetingID(bot))
		code, raw := get(t, "/v1/reports/"+fmt.Sprint(got["report_id"]))
		var rep MeetingReport
		if err := json.Unmarshal(raw, &rep); err != nil || code != http.StatusOK {
			t.Fatalf("report %d %v", code, err)
		}
		if rep.Rep.Rule != RuleMostSpeaking || rep.Rep.SpeakerID != "100" || !strings.Contains(rep.RepNote, "most speaking time") {
			t.Errorf("rep %+v note %q", rep.Rep, rep.RepNote)
		}
	})
}

// setIntegrationKey sets (or with "" removes) a key of the integrations
// Secret and waits until the receiver reads the new value.
func setIntegrationKey(t *testing.T, key, value string) {
	t.Helper()
	ctx := context.Background()
	s := &corev1.Secret{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: intNS, Name: intName}, s); err != nil {
		t.Fatal(err)
	}
	if value == "" {
		delete(s.Data, key)
	} else {
		s.Data[key] = []byte(value)
	}
	if err := k8s.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	eventually(t, "receiver sees "+key, func() error {
		if got := in.integrations.Value(ctx, key); got != value {
			return fmt.Errorf("%s = %q", key, got)
		}
		return nil
	})
}

func TestNoTranscriptProviderThenRescore(t *testing.T) {
	setIntegrationKey(t, TranscriptProviderKey, "none")
	bot := uniq(t, "bot")
	fake.AddBotWith(bot, recalltest.BotOptions{Metadata: map[string]string{"user_id": "usr_r"}, Transcript: recalltest.SampleTranscript(), Setup: recalltest.SetupAsync})
	sendRecall(t, "msg_"+bot, recalltest.BotDonePayload(bot, nil, time.Now()))
	got := waitEvent(t, miraapi.EventMeetingFailed, "meeting_id", MeetingID(bot))
	setIntegrationKey(t, TranscriptProviderKey, "")
	if got["code"] != CodeNoTranscriptConfigured {
		t.Fatalf("meeting.failed = %v", got)
	}
	if _, calls := fake.TranscriptStatus(bot); calls != 0 {
		t.Errorf("create_transcript called %d times with provider none", calls)
	}
	rescore := func() (int, []byte) {
		return post(t, "/v1/meetings/"+MeetingID(bot)+"/rescore", authHeader(), nil)
	}
	code, body := rescore()
	if code != http.StatusAccepted {
		t.Fatalf("rescore answered %d %s", code, body)
	}
	if code, body := rescore(); code != http.StatusConflict {
		t.Errorf("a second rescore answered %d %s, want 409", code, body)
	}
	waitWaiting(t, bot)
	sendRecall(t, "msg_tdone_"+bot, fake.CompleteTranscript(bot))
	waitEvent(t, miraapi.EventReportCompleted, "meeting_id", MeetingID(bot))
	sentinel(t)
	if n := len(consumer.matching(miraapi.EventReportCompleted, "meeting_id", MeetingID(bot))); n != 1 {
		t.Errorf("report.completed delivered %d times, want 1", n)
	}
	if code, body := rescore(); code != http.StatusConflict || !strings.Contains(string(body), "completed") {
		t.Errorf("rescore of a completed meeting answered %d %s, want 409", code, body)
	}
	// A Recall-side failure is not rescorable.
	fatal := uniq(t, "bot")
	sendRecall(t, "msg_"+fatal, recalltest.BotFatalPayload(fatal, "meeting_not_found", nil, time.Now()))
	waitEvent(t, miraapi.EventMeetingFailed, "meeting_id", MeetingID(fatal))
	if code, _ := post(t, "/v1/meetings/"+MeetingID(fatal)+"/rescore", authHeader(), nil); code != http.StatusConflict {
		t.Errorf("rescore of a fatal meeting answered %d, want 409", code)
	}
}

// fakeMsg is a stored inbound message handed to a second replica's
// pipeline directly.
type fakeMsg struct {
	jetstream.Msg
	data      []byte
	hdr       nats.Header
	delivered uint64
}

func (m fakeMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: max(m.delivered, 1)}, nil
}

func (m fakeMsg) Data() []byte         { return m.data }
func (m fakeMsg) Headers() nats.Header { return m.hdr }
func (m fakeMsg) Subject() string      { return subjectRecall }

// Two replicas work on one meeting at once: one fetches the transcript of
// bot.done while the other handles bot.fatal. The meeting's record decides:
// whoever changes it first wins and the other publishes nothing.
func TestReplicasNeverContradictEachOther(t *testing.T) {
	replica2 := replica(in.o)
	bot := uniq(t, "bot")
	fake.AddBotWith(bot, recalltest.BotOptions{Transcript: recalltest.SampleTranscript()})
	arrived, release := fake.HoldNext(recalltest.DownloadPath + bot)
	done := make(chan error, 1)
	go func() {
		done <- replica2.handleRecall(defaultWS(), msgFor("msg_r2_"+bot, recalltest.BotDonePayload(bot, nil, time.Now()), 1))
	}()
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("replica 2 did not reach the transcript download")
	}
	sendRecall(t, "msg_fatal_"+bot, recalltest.BotFatalPayload(bot, "bot_kicked_from_call", nil, time.Now()))
	waitEvent(t, miraapi.EventMeetingFailed, "meeting_id", MeetingID(bot))
	release()
	if err := <-done; err != nil {
		t.Fatalf("replica 2: %v", err)
	}
	sentinel(t)
	m := MeetingID(bot)
	for _, ev := range []string{miraapi.EventMeetingTranscriptReady, miraapi.EventReportCompleted} {
		if n := len(consumer.matching(ev, "meeting_id", m)); n != 0 {
			t.Errorf("%s delivered %d times for a meeting that failed", ev, n)
		}
	}
	if st := meetingState(t, bot); st.State != stateFailed {
		t.Errorf("meeting state %s, want failed", st.State)
	}
}

// replica is a second pipeline on the same stores with its own options and
// in-process locks, driven directly with fakeMsg.
func replica(o Options) *Inbound {
	return &Inbound{
		o: o, js: in.js, integrations: in.integrations, workspaces: in.workspaces, defaultNS: in.defaultNS, publisher: in.publisher,
		reports: in.reports, state: in.state, billing: in.billing, verifiers: map[string]stripeVerifier{},
		templates: in.templates, metrics: in.metrics, log: in.log.WithName("replica"),
	}
}

func msgFor(id string, body []byte, delivered uint64) fakeMsg {
	hdr := nats.Header{}
	hdr.Set(HeaderWebhookID, id)
	return fakeMsg{data: body, hdr: hdr, delivered: delivered}
}

// A meeting still waiting after the timeout fails with transcript_timeout.
func TestWaitingMeetingTimesOut(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	o := in.o
	o.TranscriptTimeout = time.Hour
	o.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r := replica(o)
	bot := uniq(t, "bot")
	fake.AddBotWith(bot, recalltest.BotOptions{Transcript: recalltest.SampleTranscript(), ProcessingReads: -1})
	msg := msgFor("msg_"+bot, recalltest.BotDonePayload(bot, nil, time.Now()), 1)
	err := r.handleRecall(defaultWS(), msg)
	var later retryLater
	if !errors.As(err, &later) || later.delay != o.TranscriptPollInterval {
		t.Fatalf("first look: %v, want a poll after %s", err, o.TranscriptPollInterval)
	}
	if st := meetingState(t, bot); st.State != stateWaiting || st.Polls != 1 {
		t.Fatalf("after the first look: state %s, polls %d", st.State, st.Polls)
	}
	mu.Lock()
	now = now.Add(59 * time.Minute)
	mu.Unlock()
	if err := r.handleRecall(defaultWS(), msg); !errors.As(err, &later) || later.delay != 2*o.TranscriptPollInterval {
		t.Fatalf("a minute before the timeout: %v, want the second poll after %s", err, 2*o.TranscriptPollInterval)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if err := r.handleRecall(defaultWS(), msg); err != nil {
		t.Fatalf("at the timeout: %v", err)
	}
	got := waitEvent(t, miraapi.EventMeetingFailed, "meeting_id", MeetingID(bot))
	if got["code"] != CodeTranscriptTimeout {
		t.Errorf("meeting.failed = %v", got)
	}
}

// Redeliveries (an ack timeout, a crash) are not attempts: a meeting whose
// message was delivered many times still gets --recall-max-attempts tries.
func TestRedeliveriesAreNotAttempts(t *testing.T) {
	o := in.o
	o.RecallMaxRetryDuration = time.Nanosecond // one try per attempt
	r := replica(o)
	bot := uniq(t, "bot")
	fake.AddBotWith(bot, recalltest.BotOptions{Transcript: recalltest.SampleTranscript()})
	fake.FailNext("/api/v1/bot/"+bot+"/", http.StatusServiceUnavailable, 0, 1)
	msg := msgFor("msg_"+bot, recalltest.BotDonePayload(bot, nil, time.Now()), uint64(o.RecallMaxAttempts)*5)
	err := r.handleRecall(defaultWS(), msg)
	var later retryLater
	if !errors.As(err, &later) {
		t.Fatalf("a 503 on delivery %d: %v, want a retry later", msg.delivered, err)
	}
	if st := meetingState(t, bot); st.Attempts != 1 || st.State == stateFailed {
		t.Fatalf("after one failed attempt: state %q, attempts %d", st.State, st.Attempts)
	}
	if err := r.handleRecall(defaultWS(), msg); err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	waitEvent(t, miraapi.EventReportCompleted, "meeting_id", MeetingID(bot))
	exactlyOneReport(t, bot)
}

func TestPollDelay(t *testing.T) {
	const s, m, h = time.Second, time.Minute, time.Hour
	tests := []struct {
		polls    int
		interval time.Duration
		waited   time.Duration
		timeout  time.Duration
		want     time.Duration
		expired  bool
		name     string
	}{
		{0, 30 * s, 0, 6 * h, 30 * s, false, "first look"},
		{1, 30 * s, 30 * s, 6 * h, 60 * s, false, "doubles"},
		{4, 30 * s, 10 * m, 6 * h, 8 * m, false, "30s·2^4"},
		{5, 30 * s, 20 * m, 6 * h, 10 * m, false, "capped at 10 minutes"},
		{40, 30 * s, 2 * h, 6 * h, 10 * m, false, "many polls stay capped"},
		{10, 30 * s, 6*h - 2*m, 6 * h, 2 * m, false, "never past the timeout"},
		{10, 30 * s, 6 * h, 6 * h, 0, true, "at the timeout"},
		{10, 30 * s, 7 * h, 6 * h, 0, true, "past the timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, expired := PollDelay(tt.polls, tt.interval, tt.waited, tt.timeout)
			if got != tt.want || expired != tt.expired {
				t.Errorf("PollDelay(%d, %s, %s, %s) = %s, %v; want %s, %v", tt.polls, tt.interval, tt.waited, tt.timeout, got, expired, tt.want, tt.expired)
			}
		})
	}
}

func TestParseTranscriptProvider(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"", `{"recallai_async":{"language_code":"en"}}`, false},
		{"  ", `{"recallai_async":{"language_code":"en"}}`, false},
		{"recallai_async", `{"recallai_async":{"language_code":"en"}}`, false},
		{"recallai_async:de", `{"recallai_async":{"language_code":"de"}}`, false},
		{"assembly_ai_async", `{"assembly_ai_async":{}}`, false},
		{`{"assembly_ai_async":{"language_code":"en_us"}}`, `{"assembly_ai_async":{"language_code":"en_us"}}`, false},
		{"none", "", true},
		{"NONE", "", true},
		{`{"a":{},"b":{}}`, "", true},
		{`{"a":"x"}`, "", true},
		{`{not json`, "", true},
		{"Recall AI", "", true},
	}
	for _, tt := range tests {
		got, err := ParseTranscriptProvider(tt.in)
		if (err != nil) != tt.err || string(got) != tt.want {
			t.Errorf("ParseTranscriptProvider(%q) = %s, %v; want %s, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestMostSpeakingParticipant(t *testing.T) {
	w := func(start, end float64) scoring.Word { return scoring.Word{Text: "x", Start: start, End: end} }
	tests := []struct {
		name string
		segs []scoring.Segment
		want string
	}{
		{"empty", nil, ""},
		{"longest total time wins over more turns", []scoring.Segment{
			{SpeakerID: "a", Words: []scoring.Word{w(0, 1)}},
			{SpeakerID: "b", Words: []scoring.Word{w(1, 4)}},
			{SpeakerID: "a", Words: []scoring.Word{w(4, 5)}},
		}, "b"},
		{"tie on time: more words", []scoring.Segment{
			{SpeakerID: "a", Words: []scoring.Word{w(0, 2)}},
			{SpeakerID: "b", Words: []scoring.Word{w(2, 3), w(3, 4)}},
		}, "b"},
		{"full tie: who spoke first", []scoring.Segment{
			{SpeakerID: "a", Words: []scoring.Word{w(0, 1)}},
			{SpeakerID: "b", Words: []scoring.Word{w(1, 2)}},
		}, "a"},
		{"no end times: word count decides", []scoring.Segment{
			{SpeakerID: "a", Words: []scoring.Word{w(0, 0)}},
			{SpeakerID: "b", Words: []scoring.Word{w(1, 0), w(2, 0)}},
		}, "b"},
		{"a speaker without words is never chosen", []scoring.Segment{
			{SpeakerID: "a"},
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MostSpeakingParticipant(scoring.Transcript{Segments: tt.segs}); got != tt.want {
				t.Errorf("MostSpeakingParticipant() = %q, want %q", got, tt.want)
			}
		})
	}
}
