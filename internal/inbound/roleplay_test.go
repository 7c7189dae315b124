package inbound

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/recall/recalltest"
	"github.com/mira/mira-operator/internal/scoring"
)

const plainTranscript = `[
 {"speaker":"Rep","text":"Hi, what is slowing your team down today?","start":0,"end":4},
 {"speaker":"Buyer","text":"Reviewing calls takes too long.","start":5,"end":8},
 {"speaker":"Rep","text":"How many calls a week do you review?","start":9,"end":12},
 {"speaker":"Buyer","text":"About twenty.","start":13,"end":14}
]`

func roleplayBody(id, transcript string, rep scoring.Rep) []byte {
	b, _ := json.Marshal(map[string]any{
		"roleplay_id": id, "user_id": "usr_rp", "rep": rep, "transcript": json.RawMessage(transcript),
	})
	return b
}

func TestRoleplayScoredOnceAndIdempotent(t *testing.T) {
	id := uniq(t, "rp")
	body := roleplayBody(id, plainTranscript, scoring.Rep{Name: "rep"})
	code, resp := post(t, "/v1/roleplays", authHeader(), body)
	if code != http.StatusAccepted || !strings.Contains(string(resp), "stored") {
		t.Fatalf("POST /v1/roleplays: %d %s", code, resp)
	}
	got := waitEvent(t, miraapi.EventRoleplayCompleted, "roleplay_id", id)
	wantReport := scoring.ReportID(id, intNS, defaultTmpl)
	score, _ := got["score"].(float64)
	if got["report_id"] != wantReport || got["user_id"] != "usr_rp" || score <= 0 || score > 100 {
		t.Errorf("roleplay.completed = %v", got)
	}
	code, raw := get(t, "/v1/reports/"+wantReport)
	var rep scoring.Report
	_ = json.Unmarshal(raw, &rep)
	if code != http.StatusOK || rep.RoleplayID != id || rep.OverallScore != score || rep.Rep.SpeakerID != "Rep" || rep.DurationSeconds != 14 {
		t.Errorf("report %d: %+v", code, rep)
	}

	// Posting it again changes nothing.
	pipelineIdle(t)
	events := streamMessages(t, queue.EventsStream)
	code, resp = post(t, "/v1/roleplays", authHeader(), body)
	if code != http.StatusAccepted || !strings.Contains(string(resp), "duplicate") {
		t.Errorf("repeat POST: %d %s", code, resp)
	}
	// A Recall-format roleplay as the sentinel.
	sentinel := uniq(t, "rp")
	if code, resp := post(t, "/v1/roleplays", authHeader(), roleplayBody(sentinel, string(recalltest.SampleTranscript()), scoring.Rep{})); code != http.StatusAccepted {
		t.Fatalf("Recall-format roleplay: %d %s", code, resp)
	}
	waitEvent(t, miraapi.EventRoleplayCompleted, "roleplay_id", sentinel)
	if got := streamMessages(t, queue.EventsStream); got != events+1 {
		t.Errorf("events stored after the repeat and the sentinel: %d, want 1", got-events)
	}
	if n := len(consumer.matching(miraapi.EventRoleplayCompleted, "roleplay_id", id)); n != 1 {
		t.Errorf("roleplay.completed delivered %d times, want 1", n)
	}
}

func TestRoleplayRefusals(t *testing.T) {
	before := streamMessages(t, queue.InboundStream)
	id := uniq(t, "rp")
	for name, tc := range map[string]struct {
		body []byte
		code int
	}{
		"invalid JSON":      {[]byte(`{"roleplay_id":`), http.StatusBadRequest},
		"bad id":            {roleplayBody("a b", plainTranscript, scoring.Rep{}), http.StatusBadRequest},
		"no transcript":     {[]byte(fmt.Sprintf(`{"roleplay_id":%q,"user_id":"u"}`, id)), http.StatusBadRequest},
		"bad plain entry":   {roleplayBody(id, `[{"speaker":"","text":"x","start":0,"end":1}]`, scoring.Rep{}), http.StatusBadRequest},
		"no rep identified": {roleplayBody(id, plainTranscript, scoring.Rep{Name: "nobody"}), http.StatusUnprocessableEntity},
		"unknown template":  {[]byte(fmt.Sprintf(`{"roleplay_id":%q,"user_id":"u","template":"missing","transcript":%s}`, id, plainTranscript)), http.StatusUnprocessableEntity},
	} {
		if code, resp := post(t, "/v1/roleplays", authHeader(), tc.body); code != tc.code {
			t.Errorf("%s: %d %s, want %d", name, code, resp, tc.code)
		}
	}
	if code, _ := post(t, "/v1/roleplays", http.Header{}, roleplayBody(id, plainTranscript, scoring.Rep{Name: "Rep"})); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	if got := streamMessages(t, queue.InboundStream); got != before {
		t.Errorf("refused roleplays stored %d messages", got-before)
	}
}
