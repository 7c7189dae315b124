package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

func template(ns, name string, isDefault bool) *miraapi.ScoringTemplate {
	return &miraapi.ScoringTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: miraapi.ScoringTemplateSpec{
			Default: isDefault,
			Criteria: []miraapi.Criterion{
				{Name: "talk", Metric: miraapi.MetricTalkRatio, Weight: 60, Target: &miraapi.TargetRange{Min: ptr.To(30.0), Max: ptr.To(50.0)}},
				{Name: "topics", Metric: miraapi.MetricKeywordCoverage, Weight: 40, Keywords: []string{"budget", "timeline"}},
			},
		},
	}
}

func waitTemplate(t *testing.T, ns, name string, status metav1.ConditionStatus, reason string) *miraapi.ScoringTemplate {
	t.Helper()
	var st *miraapi.ScoringTemplate
	eventually(t, fmt.Sprintf("template %s Ready=%s/%s", name, status, reason), func() error {
		st = &miraapi.ScoringTemplate{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, st); err != nil {
			return err
		}
		c := apimeta.FindStatusCondition(st.Status.Conditions, miraapi.ReadyCondition)
		if c == nil || c.Status != status || c.Reason != reason {
			return fmt.Errorf("condition %+v", c)
		}
		return nil
	})
	return st
}

func TestScoringTemplateDefaultConflict(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	a := template(ns, "a", true)
	if err := k8s.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	st := waitTemplate(t, ns, "a", metav1.ConditionTrue, miraapi.ValidReason)
	if st.Spec.PassingScore == nil || *st.Spec.PassingScore != 70 {
		t.Fatalf("passingScore default = %v, want 70", st.Spec.PassingScore)
	}
	if err := k8s.Create(ctx, template(ns, "plain", false)); err != nil {
		t.Fatal(err)
	}
	b := template(ns, "b", true)
	if err := k8s.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	// Both defaults report the conflict; the non-default template is fine.
	for _, name := range []string{"a", "b"} {
		st := waitTemplate(t, ns, name, metav1.ConditionFalse, miraapi.ConflictReason)
		msg := apimeta.FindStatusCondition(st.Status.Conditions, miraapi.ReadyCondition).Message
		if !strings.Contains(msg, "a, b") {
			t.Fatalf("conflict message %q does not name both templates", msg)
		}
	}
	waitTemplate(t, ns, "plain", metav1.ConditionTrue, miraapi.ValidReason)
	waitEvent(t, ns, "a", corev1.EventTypeWarning, miraapi.ConflictReason)

	// Removing one default clears the conflict on the other.
	if err := k8s.Delete(ctx, b); err != nil {
		t.Fatal(err)
	}
	waitTemplate(t, ns, "a", metav1.ConditionTrue, miraapi.ValidReason)
}

func TestScoringTemplateCEL(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	tests := []struct {
		name   string
		mutate func(*miraapi.ScoringTemplate)
		want   string
	}{
		{"weights do not sum to 100", func(s *miraapi.ScoringTemplate) { s.Spec.Criteria[0].Weight = 50 }, "criteria weights must sum to 100"},
		{"duplicate names", func(s *miraapi.ScoringTemplate) { s.Spec.Criteria[1].Name = "talk" }, "criteria names must be unique"},
		{"keywords missing", func(s *miraapi.ScoringTemplate) { s.Spec.Criteria[1].Keywords = nil }, "keywords are required for metric keywordCoverage"},
		{"keywords on other metric", func(s *miraapi.ScoringTemplate) { s.Spec.Criteria[0].Keywords = []string{"x"} }, "keywords are required for metric keywordCoverage and not allowed for other metrics"},
		{"unknown metric", func(s *miraapi.ScoringTemplate) { s.Spec.Criteria[0].Metric = "charisma" }, `Unsupported value: "charisma"`},
		{"min above max", func(s *miraapi.ScoringTemplate) {
			s.Spec.Criteria[0].Target = &miraapi.TargetRange{Min: ptr.To(60.0), Max: ptr.To(50.0)}
		}, "target.min must not exceed target.max"},
		{"passing score above 100", func(s *miraapi.ScoringTemplate) { s.Spec.PassingScore = ptr.To[int32](101) }, "spec.passingScore"},
		{"weight zero", func(s *miraapi.ScoringTemplate) { s.Spec.Criteria[0].Weight = 0 }, "weight"},
		{"no criteria", func(s *miraapi.ScoringTemplate) { s.Spec.Criteria = nil }, "spec.criteria"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := template(ns, fmt.Sprintf("bad-%d", i), false)
			tt.mutate(s)
			err := k8s.Create(ctx, s)
			if err == nil {
				t.Fatal("accepted a bad template")
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}
