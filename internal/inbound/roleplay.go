package inbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"

	"github.com/nats-io/nats.go/jetstream"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/recall"
	"github.com/mira/mira-operator/internal/scoring"
	"github.com/mira/mira-operator/internal/workspace"
)

// RoleplayRequest is the body of POST /v1/roleplays.
type RoleplayRequest struct {
	// RoleplayID identifies the roleplay; posting it again changes nothing.
	RoleplayID string `json:"roleplay_id"`
	// UserID is the Mira user who practised.
	UserID string `json:"user_id"`
	// Template names a ScoringTemplate of the templates namespace; empty
	// means the namespace's default template.
	Template string `json:"template,omitempty"`
	// Rep identifies the speaker being coached (participant id or name);
	// empty means the host, as for meetings.
	Rep scoring.Rep `json:"rep"`
	// Transcript is Recall's download format, or a plain list of
	// {speaker, text, start, end}.
	Transcript json.RawMessage `json:"transcript"`
}

// RoleplayCompleted is the data of roleplay.completed.
type RoleplayCompleted struct {
	RoleplayID string  `json:"roleplay_id"`
	ReportID   string  `json:"report_id"`
	UserID     string  `json:"user_id"`
	Score      float64 `json:"score"`
	Passed     bool    `json:"passed"`
}

var (
	idPattern       = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	templatePattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)
)

// validate checks the request and parses its transcript.
func (r *RoleplayRequest) validate() (scoring.Transcript, error) {
	switch {
	case !idPattern.MatchString(r.RoleplayID):
		return scoring.Transcript{}, errors.New("roleplay_id must be 1–128 characters of [A-Za-z0-9_-]")
	case r.UserID == "" || len(r.UserID) > 256:
		return scoring.Transcript{}, errors.New("user_id is required (at most 256 characters)")
	case r.Template != "" && !templatePattern.MatchString(r.Template):
		return scoring.Transcript{}, errors.New("template must be the name of a ScoringTemplate")
	case len(r.Rep.ID) > 256 || len(r.Rep.Name) > 256:
		return scoring.Transcript{}, errors.New("rep id and name must be at most 256 characters")
	}
	t, err := parseTranscript(r.Transcript)
	if err != nil {
		return scoring.Transcript{}, err
	}
	for _, s := range t.Segments {
		if len(s.Words) > 0 {
			return t, nil
		}
	}
	return scoring.Transcript{}, errors.New("transcript has no words")
}

// parseTranscript reads either transcript format: entries with "words" are
// Recall's (download or legacy) format, others the plain format.
func parseTranscript(raw json.RawMessage) (scoring.Transcript, error) {
	var probe []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return scoring.Transcript{}, errors.New("transcript must be a JSON array")
	}
	if len(probe) == 0 {
		return scoring.Transcript{}, errors.New("transcript is empty")
	}
	if _, ok := probe[0]["words"]; ok {
		t, err := recall.ParseTranscript(raw)
		if err != nil {
			return scoring.Transcript{}, fmt.Errorf("transcript (Recall format): %w", err)
		}
		return t, nil
	}
	t, err := scoring.ParsePlain(raw)
	if err != nil {
		return scoring.Transcript{}, fmt.Errorf("transcript (plain format): %w", err)
	}
	return t, nil
}

// postRoleplay stores a roleplay for scoring: 202 once it is durable.
func (in *Inbound) postRoleplay(w http.ResponseWriter, r *http.Request) {
	body, ok := in.readBody(w, r, MaxRoleplayBytes, routeRoleplay)
	if !ok {
		return
	}
	var req RoleplayRequest
	if err := json.Unmarshal(body, &req); err != nil {
		in.count(routeRoleplay, outcomeInvalid)
		writeError(w, http.StatusBadRequest, "invalid JSON body")
		return
	}
	transcript, err := req.validate()
	if err != nil {
		in.count(routeRoleplay, outcomeInvalid)
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// A roleplay scored before (even outside the dedupe window) is done.
	st, err := in.loadState(r.Context(), "roleplay."+req.RoleplayID)
	if err != nil {
		in.answerStored(w, routeRoleplay, http.StatusAccepted, false, err, nil)
		return
	}
	if st.rev != 0 {
		in.answerStored(w, routeRoleplay, http.StatusAccepted, true, nil, map[string]string{"roleplay_id": req.RoleplayID})
		return
	}
	// Refuse what can never be scored now rather than failing later.
	tmpl, fail, err := in.resolveTemplate(r.Context(), req.Template)
	if err == nil && fail == nil {
		if _, _, err := scoring.SelectRep(transcript, req.Rep); err != nil {
			fail = &failure{Code: CodeScoringFailed, Message: fmt.Sprintf("no participant is the rep (template %s/%s): %v", tmpl.Namespace, tmpl.Name, err)}
		}
	}
	if fail != nil {
		in.count(routeRoleplay, outcomeInvalid)
		writeError(w, http.StatusUnprocessableEntity, fail.Message)
		return
	}
	dup, err := in.store(r.Context(), subjectRoleplay, req.RoleplayID, routeRoleplay, body)
	in.answerStored(w, routeRoleplay, http.StatusAccepted, dup, err, map[string]string{"roleplay_id": req.RoleplayID})
}

// handleRoleplay scores a stored roleplay and emits roleplay.completed.
func (in *Inbound) handleRoleplay(ctx context.Context, msg jetstream.Msg) error {
	var req RoleplayRequest
	var transcript scoring.Transcript
	err := json.Unmarshal(msg.Data(), &req)
	if err == nil {
		transcript, err = req.validate()
	}
	if err != nil {
		in.log.Error(err, "dropping a stored roleplay that does not validate")
		in.countPipeline(routeRoleplay, routeRoleplay, resultInvalid)
		return nil
	}
	defer in.lock("roleplay." + req.RoleplayID)()
	st, err := in.loadState(ctx, "roleplay."+req.RoleplayID)
	if err != nil {
		return err
	}
	if err := in.flush(ctx, st); err != nil {
		return err
	}
	if st.terminal() {
		in.countPipeline(routeRoleplay, routeRoleplay, resultReplayed)
		return nil
	}
	st.ID, st.UserID = req.RoleplayID, req.UserID
	tmpl, fail, err := in.resolveTemplate(ctx, req.Template)
	if err != nil {
		return err
	}
	var report *scoring.Report
	if fail == nil {
		report, err = scoring.Score(scoring.Input{
			Transcript: transcript, Template: tmpl, Rep: req.Rep,
			ReportID:   scoring.ReportID(req.RoleplayID, tmpl.Namespace, tmpl.Name),
			RoleplayID: req.RoleplayID, UserID: req.UserID, GeneratedAt: in.o.Now().UTC(),
		})
		if err != nil {
			f := scoreFailure(err)
			fail = &f
		}
	}
	if fail != nil {
		// There is no roleplay.failed event: the state records why.
		st.State, st.Code, st.Reason = stateFailed, fail.Code, fail.Message
		if err := in.saveState(ctx, st); err != nil {
			return err
		}
		in.log.Info("roleplay cannot be scored", "roleplay", req.RoleplayID, "code", fail.Code, "reason", fail.Message)
		in.countPipeline(routeRoleplay, routeRoleplay, resultFailed)
		return nil
	}
	report.Namespace = workspace.From(ctx)
	if err := in.storeReport(ctx, report.ReportID, report); err != nil {
		return err
	}
	st.ReportID = report.ReportID
	if err := in.transition(ctx, st, stateCompleted, in.event(miraapi.EventRoleplayCompleted, req.RoleplayID, "", RoleplayCompleted{
		RoleplayID: req.RoleplayID, ReportID: report.ReportID, UserID: req.UserID, Score: report.OverallScore, Passed: report.Passed,
	})); err != nil {
		return err
	}
	in.log.Info("roleplay scored", "roleplay", req.RoleplayID, "report", report.ReportID, "score", report.OverallScore)
	in.countPipeline(routeRoleplay, routeRoleplay, resultCompleted)
	return nil
}
