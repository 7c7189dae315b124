package inbound

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/scoring"
)

// Failure codes of meeting.failed that Mira sets itself (Recall's own codes,
// such as "fatal", pass through).
const (
	CodeTranscriptFailed      = "transcript_failed"
	CodeTranscriptUnavailable = "transcript_unavailable"
	CodeTemplateNotFound      = "scoring_template_not_found"
	CodeNoTemplate            = "no_scoring_template"
	CodeTemplateConflict      = "scoring_template_conflict"
	CodeScoringFailed         = "scoring_failed"
	// CodeTranscriptEmpty: Recall's finished transcript has no words.
	CodeTranscriptEmpty = "transcript_empty"
	// CodeTranscriptTimeout: the transcript was not ready within
	// --recall-transcript-timeout.
	CodeTranscriptTimeout = "transcript_timeout"
	// CodeNoTranscriptConfigured: the recording has no transcript and the
	// workspace's recall-transcript-provider is "none" (or invalid).
	CodeNoTranscriptConfigured = "no_transcript_configured"
	// CodeRecallKeyMissing: the integrations Secret has no recall-api-key.
	CodeRecallKeyMissing = "recall_api_key_missing"
)

// rescorable says whether a meeting that failed with code may be scored
// again: the cause is on Mira's side and the operator can fix it.
func rescorable(code string) bool {
	switch code {
	case CodeTemplateNotFound, CodeNoTemplate, CodeTemplateConflict, CodeRecallKeyMissing, CodeNoTranscriptConfigured:
		return true
	}
	return false
}

// failure is why a meeting or roleplay cannot produce a report.
type failure struct {
	Code    string
	SubCode string
	Message string
}

// resolveTemplate returns the named ScoringTemplate of the templates
// namespace, or with an empty name the namespace's single default template
// that is Ready. A *failure means the subject cannot be scored (no retry
// helps); an error is transient.
func (in *Inbound) resolveTemplate(ctx context.Context, name string) (scoring.Template, *failure, error) {
	ns := in.templatesNamespace(ctx)
	if name != "" {
		t := &miraapi.ScoringTemplate{}
		if err := in.templates.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, t); err != nil {
			if apierrors.IsNotFound(err) {
				return scoring.Template{}, &failure{Code: CodeTemplateNotFound,
					Message: fmt.Sprintf("ScoringTemplate %s/%s does not exist", ns, name)}, nil
			}
			return scoring.Template{}, nil, fmt.Errorf("get ScoringTemplate %s/%s: %w", ns, name, err)
		}
		return toScoring(t), nil, nil
	}
	names, err := miraapi.DefaultTemplates(ctx, in.templates, ns)
	if err != nil {
		return scoring.Template{}, nil, err
	}
	switch len(names) {
	case 0:
		return scoring.Template{}, &failure{Code: CodeNoTemplate, Message: fmt.Sprintf(
			"no scoring_template was given and namespace %s has no default ScoringTemplate (spec.default: true)", ns)}, nil
	case 1:
	default:
		return scoring.Template{}, &failure{Code: CodeTemplateConflict, Message: fmt.Sprintf(
			"no scoring_template was given and namespace %s has %d default ScoringTemplates (%s); keep exactly one",
			ns, len(names), strings.Join(names, ", "))}, nil
	}
	t := &miraapi.ScoringTemplate{}
	if err := in.templates.Get(ctx, types.NamespacedName{Namespace: ns, Name: names[0]}, t); err != nil {
		return scoring.Template{}, nil, fmt.Errorf("get default ScoringTemplate %s/%s: %w", ns, names[0], err)
	}
	ready := apimeta.FindStatusCondition(t.Status.Conditions, miraapi.ReadyCondition)
	switch {
	case ready == nil || ready.ObservedGeneration < t.Generation:
		// Not reconciled yet: the controller will say shortly.
		return scoring.Template{}, nil, fmt.Errorf("default ScoringTemplate %s/%s is not reconciled yet", ns, t.Name)
	case ready.Status != metav1.ConditionTrue:
		return scoring.Template{}, &failure{Code: CodeTemplateConflict, Message: fmt.Sprintf(
			"the default ScoringTemplate %s/%s is not Ready (%s: %s)", ns, t.Name, ready.Reason, ready.Message)}, nil
	}
	return toScoring(t), nil, nil
}

// toScoring converts the API type to the scorer's input.
func toScoring(t *miraapi.ScoringTemplate) scoring.Template {
	out := scoring.Template{
		Namespace: t.Namespace, Name: t.Name, Generation: t.Generation, PassingScore: t.GetPassingScore(),
		Criteria: make([]scoring.Criterion, 0, len(t.Spec.Criteria)),
	}
	for _, c := range t.Spec.Criteria {
		sc := scoring.Criterion{
			Name: c.Name, Description: c.Description, Weight: int(c.Weight), Metric: string(c.Metric),
			Keywords: append([]string(nil), c.Keywords...),
		}
		if c.Target != nil {
			if c.Target.Min != nil {
				v := *c.Target.Min
				sc.Min = &v
			}
			if c.Target.Max != nil {
				v := *c.Target.Max
				sc.Max = &v
			}
		}
		out.Criteria = append(out.Criteria, sc)
	}
	return out
}
