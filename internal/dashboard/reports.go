package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/scoring"
)

// A report is read by id (Log.Report). The reports page lists the reports
// that report.completed and roleplay.completed deliveries announced to the
// workspace's endpoints (the newest reportScanDeliveries of each), and opens
// any other by id.
const reportScanDeliveries = 200

// reportRef is a report announced by a delivery.
type reportRef struct {
	ID, Subject, User, Event string
	Time                     time.Time
	Endpoint, Delivery       string
}

type reportsData struct {
	Namespace string
	Refs      []reportRef
	Err       string
}

func (s *Server) reports(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if id := strings.TrimSpace(q.Get("id")); id != "" {
		http.Redirect(w, r, "/reports/"+url.PathEscape(id), http.StatusSeeOther)
		return
	}
	ns := q.Get("namespace")
	if ns == "" {
		ns = s.opts.DefaultNamespace
	}
	d := reportsData{Namespace: ns}
	refs, err := s.announcedReports(r.Context(), ns)
	if err != nil {
		d.Err = err.Error()
	}
	d.Refs = refs
	s.render(w, r, http.StatusOK, "reports", "Reports", "reports", d)
}

func (s *Server) announcedReports(ctx context.Context, ns string) ([]reportRef, error) {
	list := &miraapi.WebhookEndpointList{}
	if err := s.opts.Client.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("list WebhookEndpoints in %s: %w", ns, err)
	}
	seen := map[string]bool{}
	var out []reportRef
	for _, ep := range list.Items {
		p, err := s.opts.Log.Deliveries(ctx, ns, ep.Name, Query{Limit: reportScanDeliveries})
		if err != nil {
			return out, fmt.Errorf("list deliveries of %s/%s: %w", ns, ep.Name, err)
		}
		for _, dl := range p.Items {
			if dl.EventType != miraapi.EventReportCompleted && dl.EventType != miraapi.EventRoleplayCompleted {
				continue
			}
			var body struct {
				Data struct {
					ReportID   string `json:"report_id"`
					MeetingID  string `json:"meeting_id"`
					RoleplayID string `json:"roleplay_id"`
					UserID     string `json:"user_id"`
				} `json:"data"`
			}
			if json.Unmarshal([]byte(dl.Body), &body) != nil || body.Data.ReportID == "" || seen[body.Data.ReportID] {
				continue
			}
			seen[body.Data.ReportID] = true
			subject := body.Data.MeetingID
			if subject == "" {
				subject = body.Data.RoleplayID
			}
			out = append(out, reportRef{
				ID: body.Data.ReportID, Subject: subject, User: body.Data.UserID, Event: dl.EventType,
				Time: dl.Created, Endpoint: ep.Name, Delivery: dl.ID,
			})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	return out, nil
}

// criterionView is one criterion for display.
type criterionView struct {
	scoring.CriterionResult
	TargetText string
	Level      string
}

type reportData struct {
	R        *scoring.Report
	Criteria []criterionView
	Level    string
}

func targetText(t scoring.Target, unit string) string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	u := ""
	if unit != "" {
		u = " " + unit
	}
	switch {
	case t.Min != nil && t.Max != nil:
		return f(*t.Min) + "–" + f(*t.Max) + u
	case t.Min != nil:
		return "≥ " + f(*t.Min) + u
	case t.Max != nil:
		return "≤ " + f(*t.Max) + u
	}
	return "–"
}

func scoreLevel(score float64) string {
	switch {
	case score >= 80:
		return "ok"
	case score >= 50:
		return "warn"
	}
	return "bad"
}

func (s *Server) report(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rep, err := s.opts.Log.Report(r.Context(), id)
	if err != nil {
		s.fail(w, r, fmt.Errorf("read report %s: %w", id, err), "/reports")
		return
	}
	d := reportData{R: rep, Level: "bad"}
	if rep.Passed {
		d.Level = "ok"
	}
	for _, c := range rep.Criteria {
		d.Criteria = append(d.Criteria, criterionView{CriterionResult: c, TargetText: targetText(c.Target, c.Unit), Level: scoreLevel(c.Score)})
	}
	s.render(w, r, http.StatusOK, "report", "Report "+rep.ReportID, "reports", d)
}
