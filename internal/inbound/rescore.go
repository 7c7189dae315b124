package inbound

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"
)

var meetingIDPattern = regexp.MustCompile(`^mtg_[0-9a-f]{24}$`)

// RescoreAnswer is the answer of POST /v1/meetings/{id}/rescore.
type RescoreAnswer struct {
	Status     string `json:"status"`
	MeetingID  string `json:"meeting_id"`
	Generation int    `json:"generation"`
	// PreviousCode is the failure code being retried.
	PreviousCode string `json:"previous_code"`
}

// postRescore scores again a meeting that failed for a Mira-side reason
// (template missing or conflicting, Recall API key missing, no transcript
// provider), once the operator fixed it. The meeting's record moves from
// failed to a new generation with compare-and-set, so two rescore calls
// start one run; the run is an ordinary inbound message, and the report id
// stays derived from meeting and template, so no duplicate report appears.
func (in *Inbound) postRescore(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !meetingIDPattern.MatchString(id) {
		writeError(w, http.StatusNotFound, "no such meeting")
		return
	}
	st, err := in.loadState(r.Context(), "meeting."+id)
	if err != nil {
		in.log.Error(err, "read meeting", "meeting", id)
		writeError(w, http.StatusServiceUnavailable, "the pipeline state is unavailable")
		return
	}
	switch {
	case st.rev == 0:
		writeError(w, http.StatusNotFound, "no such meeting")
		return
	case st.State != stateFailed:
		writeError(w, http.StatusConflict, fmt.Sprintf("meeting %s is %s; only a failed meeting can be rescored", id, displayState(st.State)))
		return
	case !rescorable(st.Code):
		writeError(w, http.StatusConflict, fmt.Sprintf(
			"meeting %s failed with %s, which is not a Mira-side cause that rescoring can fix (rescorable: %s, %s, %s, %s, %s)",
			id, st.Code, CodeTemplateNotFound, CodeNoTemplate, CodeTemplateConflict, CodeRecallKeyMissing, CodeNoTranscriptConfigured))
		return
	}
	prev := st.Code
	st.Generation++
	st.State, st.Code, st.SubCode, st.Reason = "", "", "", ""
	st.WaitingSince, st.Polls, st.Poller, st.Attempts = time.Time{}, 0, "", 0
	if err := in.saveState(r.Context(), st); err != nil {
		if errors.Is(err, errStateConflict) {
			writeError(w, http.StatusConflict, "the meeting changed meanwhile; try again")
			return
		}
		in.log.Error(err, "start rescoring", "meeting", id)
		writeError(w, http.StatusServiceUnavailable, "the pipeline state is unavailable")
		return
	}
	// The run is a bot.done of the meeting's bot: metadata and transcript
	// come from Retrieve Bot, as for a legacy event.
	body, _ := json.Marshal(map[string]any{
		"event": "bot.done",
		"data":  map[string]any{"data": map[string]any{"code": "done", "sub_code": nil}, "bot": map[string]any{"id": st.BotID, "metadata": map[string]string{}}},
	})
	msgID := fmt.Sprintf("rescore-%s-%d", id, st.Generation)
	if _, err := in.store(r.Context(), subjectRecall, msgID, routeRecall, body); err != nil {
		in.log.Error(err, "queue rescoring", "meeting", id)
		writeError(w, http.StatusServiceUnavailable, "the rescoring run could not be queued; try again")
		return
	}
	in.log.Info("meeting rescoring queued", "meeting", id, "generation", st.Generation, "previousCode", prev)
	writeJSON(w, http.StatusAccepted, RescoreAnswer{Status: "rescoring", MeetingID: id, Generation: st.Generation, PreviousCode: prev})
}

func displayState(s string) string {
	if s == "" {
		return "in progress"
	}
	return s
}
