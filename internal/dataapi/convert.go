package dataapi

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
)

// DeliveryObject maps a delivery-log record to the served object.
func DeliveryObject(r *datav1.Delivery) *datav1.DeliveryObject {
	o := &datav1.DeliveryObject{
		TypeMeta: metav1.TypeMeta{APIVersion: datav1.SchemeGroupVersion.String(), Kind: datav1.KindDelivery},
		ObjectMeta: metav1.ObjectMeta{
			Name:              datav1.NameFromID(r.ID),
			Namespace:         r.Namespace,
			CreationTimestamp: metav1.NewTime(r.Created),
			Labels: labelsOf(map[string]string{
				datav1.LabelEndpoint: r.Endpoint,
				datav1.LabelEvent:    r.EventType,
				datav1.LabelState:    r.State,
			}),
		},
		Spec: datav1.DeliverySpec{
			ID: r.ID, EventID: r.EventID, Event: r.EventType, Endpoint: r.Endpoint,
			EndpointUID: r.UID, URL: r.URL, Body: r.Body, BodyOmitted: r.BodyOmitted,
		},
		Status: datav1.DeliveryStatus{
			State: r.State, Reason: r.Reason, Round: i32(r.Round), AttemptCount: i32(r.AttemptCount),
			LastCode: i32(r.LastCode()), Updated: metav1.NewTime(r.Updated),
			FirstAttempt: timePtr(r.FirstAttempt), NextRetry: timePtr(r.NextRetry),
		},
	}
	for _, a := range r.Attempts {
		o.Status.Attempts = append(o.Status.Attempts, datav1.DeliveryAttempt{
			Attempt: i32(a.Number), Round: i32(a.Round), Time: metav1.NewTime(a.Time),
			DurationMillis: a.DurationMillis, URL: a.URL, RequestHeaders: a.RequestHeaders,
			StatusCode: i32(a.StatusCode), ResponseHeaders: a.ResponseHeaders, ResponseBody: a.ResponseBody,
			Error: a.Error, Outcome: a.Outcome, NextRetry: timePtr(a.NextRetry),
		})
	}
	if s := r.OlderAttempts; s != nil {
		sum := &datav1.DeliveryAttemptSummary{Count: i32(s.Count), First: metav1.NewTime(s.First), Last: metav1.NewTime(s.Last)}
		for _, c := range s.LastCodes {
			sum.LastCodes = append(sum.LastCodes, i32(c))
		}
		o.Status.OlderAttempts = sum
	}
	return o
}

// storedReport is the part of a stored scoring.Report the summary needs.
type storedReport struct {
	ReportID   string `json:"report_id"`
	MeetingID  string `json:"meeting_id"`
	RoleplayID string `json:"roleplay_id"`
	UserID     string `json:"user_id"`
	Template   struct {
		Name       string `json:"name"`
		Generation int64  `json:"generation"`
	} `json:"template"`
	OverallScore float64   `json:"overall_score"`
	Passed       bool      `json:"passed"`
	GeneratedAt  time.Time `json:"generated_at"`
}

// ReportObject maps a stored report to the served object; data holds the
// stored JSON unchanged.
func ReportObject(s *StoredReport) (*datav1.ReportObject, error) {
	var r storedReport
	if err := json.Unmarshal(s.JSON, &r); err != nil {
		return nil, fmt.Errorf("decode report %s/%s: %w", s.Namespace, s.ID, err)
	}
	id := r.ReportID
	if id == "" {
		id = s.ID
	}
	return &datav1.ReportObject{
		TypeMeta: metav1.TypeMeta{APIVersion: datav1.SchemeGroupVersion.String(), Kind: datav1.KindReport},
		ObjectMeta: metav1.ObjectMeta{
			Name:              datav1.NameFromID(id),
			Namespace:         s.Namespace,
			CreationTimestamp: metav1.NewTime(r.GeneratedAt),
			Labels: labelsOf(map[string]string{
				datav1.LabelUser:     r.UserID,
				datav1.LabelTemplate: r.Template.Name,
			}),
		},
		Spec: datav1.ReportSpec{
			ReportID: id, MeetingID: r.MeetingID, RoleplayID: r.RoleplayID, UserID: r.UserID,
			Template: r.Template.Name, TemplateGeneration: r.Template.Generation,
			OverallScore: strconv.FormatFloat(r.OverallScore, 'f', -1, 64), Passed: r.Passed,
		},
		Data: runtime.RawExtension{Raw: s.JSON},
	}, nil
}

// labelsOf keeps the values that are valid label values, so a selector can
// match them; others are left out rather than failing the object.
func labelsOf(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if v != "" && len(validation.IsValidLabelValue(v)) == 0 {
			out[k] = v
		}
	}
	return out
}

func timePtr(t *time.Time) *metav1.Time {
	if t == nil {
		return nil
	}
	m := metav1.NewTime(*t)
	return &m
}

// i32 narrows a count or status code, saturating instead of wrapping.
func i32(n int) int32 {
	return int32(max(min(n, math.MaxInt32), math.MinInt32)) //nolint:gosec // clamped above
}
