package dataapi

import (
	"strings"
	"testing"
	"time"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
)

func TestDeliveryObject(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	next := created.Add(time.Minute)
	r := &datav1.Delivery{
		ID: "dlv_0a", EventType: "report.completed", Namespace: "team-a", Endpoint: strings.Repeat("e", 64), UID: "u",
		State: datav1.StateRetrying, Created: created, Updated: created, AttemptCount: 2, NextRetry: &next,
		Attempts:      []datav1.Attempt{{Number: 1, StatusCode: 500}, {Number: 2, StatusCode: 0, Error: "timeout"}},
		OlderAttempts: &datav1.AttemptSummary{Count: 3, First: created, Last: created, LastCodes: []int{502, 503}},
	}
	o := DeliveryObject(r)
	if o.Name != "dlv-0a" || o.Namespace != "team-a" || o.Spec.ID != "dlv_0a" || !o.CreationTimestamp.Time.Equal(created) {
		t.Errorf("meta %+v spec %+v", o.ObjectMeta, o.Spec)
	}
	// A 64-character endpoint name is no valid label value: left out.
	if _, ok := o.Labels[datav1.LabelEndpoint]; ok || o.Labels[datav1.LabelState] != "Retrying" || o.Labels[datav1.LabelEvent] != "report.completed" {
		t.Errorf("labels %v", o.Labels)
	}
	if o.Status.LastCode != 0 || o.Status.AttemptCount != 2 || len(o.Status.Attempts) != 2 || o.Status.Attempts[1].Error != "timeout" ||
		o.Status.NextRetry == nil || !o.Status.NextRetry.Time.Equal(next) {
		t.Errorf("status %+v", o.Status)
	}
	if s := o.Status.OlderAttempts; s == nil || s.Count != 3 || len(s.LastCodes) != 2 || s.LastCodes[1] != 503 {
		t.Errorf("older attempts %+v", s)
	}
}

func TestReportObject(t *testing.T) {
	raw := `{"report_id":"rpt_ab","user_id":"u 1","template":{"name":"disc","generation":4},"overall_score":66.67,"passed":false,"generated_at":"2026-01-02T03:04:05Z"}`
	o, err := ReportObject(&StoredReport{Namespace: "team-a", ID: "rpt_ab", JSON: []byte(raw)})
	if err != nil {
		t.Fatal(err)
	}
	if o.Name != "rpt-ab" || o.Spec.OverallScore != "66.67" || o.Spec.TemplateGeneration != 4 || string(o.Data.Raw) != raw {
		t.Errorf("report %+v", o)
	}
	// "u 1" is no valid label value; the template is.
	if _, ok := o.Labels[datav1.LabelUser]; ok || o.Labels[datav1.LabelTemplate] != "disc" {
		t.Errorf("labels %v", o.Labels)
	}
	if _, err := ReportObject(&StoredReport{Namespace: "a", ID: "x", JSON: []byte("{")}); err == nil {
		t.Error("a broken report decoded")
	}
}

func TestI32Saturates(t *testing.T) {
	for in, want := range map[int]int32{0: 0, 7: 7, 1 << 40: 1<<31 - 1, -(1 << 40): -1 << 31} {
		if got := i32(in); got != want {
			t.Errorf("i32(%d) = %d, want %d", in, got, want)
		}
	}
}
