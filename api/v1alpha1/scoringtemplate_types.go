package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Metric names a measurement of the rep's behaviour in a transcript.
// +kubebuilder:validation:Enum=talkRatio;longestMonologue;questionRate;fillerWordRate;keywordCoverage;wordsPerMinute;interactivity;patience
type Metric string

// Metrics and their units.
const (
	// MetricTalkRatio: percent (0–100) of all speaking time that is the rep's.
	MetricTalkRatio Metric = "talkRatio"
	// MetricLongestMonologue: seconds of the rep's longest uninterrupted turn.
	MetricLongestMonologue Metric = "longestMonologue"
	// MetricQuestionRate: questions the rep asked per 10 minutes.
	MetricQuestionRate Metric = "questionRate"
	// MetricFillerWordRate: filler words per 100 words the rep spoke.
	MetricFillerWordRate Metric = "fillerWordRate"
	// MetricKeywordCoverage: percent (0–100) of the criterion's keywords the rep said.
	MetricKeywordCoverage Metric = "keywordCoverage"
	// MetricWordsPerMinute: the rep's words per minute of the rep's speaking time.
	MetricWordsPerMinute Metric = "wordsPerMinute"
	// MetricInteractivity: speaker switches per minute of meeting.
	MetricInteractivity Metric = "interactivity"
	// MetricPatience: mean seconds the rep waits after another speaker stops.
	MetricPatience Metric = "patience"
)

// ScoringTemplateSpec is the rubric a coaching report is scored with.
type ScoringTemplateSpec struct {
	// DisplayName is shown in reports.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	DisplayName string `json:"displayName,omitempty"`

	// Description of what the template coaches for.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// Default marks the template used when a meeting names none. At most one
	// template per namespace may be the default; with more, every default
	// template reports Ready=False reason Conflict and meetings without a
	// template name fail.
	// +optional
	Default bool `json:"default,omitempty"`

	// PassingScore is the overall score (0–100) at or above which a report
	// passes. Default 70.
	// +optional
	// +kubebuilder:default=70
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	PassingScore *int32 `json:"passingScore,omitempty"`

	// Criteria are scored 0–100 each against their target range; the overall
	// score is their mean weighted by weight. Weights must sum to 100.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	// +kubebuilder:validation:XValidation:rule="self.map(c, c.weight).sum() == 100",message="criteria weights must sum to 100"
	// +kubebuilder:validation:XValidation:rule="self.all(c, self.exists_one(d, d.name == c.name))",message="criteria names must be unique"
	Criteria []Criterion `json:"criteria"`
}

// Criterion is one scored line of the rubric.
// +kubebuilder:validation:XValidation:rule="self.metric == 'keywordCoverage' ? (has(self.keywords) && size(self.keywords) > 0) : !has(self.keywords)",message="keywords are required for metric keywordCoverage and not allowed for other metrics"
type Criterion struct {
	// Name identifies the criterion in reports; unique in the template.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9 _.-]*$`
	Name string `json:"name"`

	// Description tells the rep what good looks like.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Description string `json:"description,omitempty"`

	// Weight of this criterion in the overall score, 1–100.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Weight int32 `json:"weight"`

	// Metric measured, in its unit: talkRatio (percent), longestMonologue
	// (seconds), questionRate (questions per 10 minutes), fillerWordRate
	// (per 100 words), keywordCoverage (percent of keywords),
	// wordsPerMinute, interactivity (speaker switches per minute),
	// patience (seconds).
	// +required
	Metric Metric `json:"metric"`

	// Target range in the metric's unit; a value inside scores 100 and the
	// score falls linearly with the relative distance outside it.
	// +optional
	Target *TargetRange `json:"target,omitempty"`

	// Keywords the rep should say; required for keywordCoverage and only
	// allowed there. Matching ignores case and punctuation; a multi-word
	// keyword matches consecutive words.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=64
	Keywords []string `json:"keywords,omitempty"`
}

// TargetRange is a closed range; either end may be omitted.
// +kubebuilder:validation:XValidation:rule="!has(self.min) || !has(self.max) || self.min <= self.max",message="target.min must not exceed target.max"
type TargetRange struct {
	// Min is the lowest value that scores 100.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Min *float64 `json:"min,omitempty"`
	// Max is the highest value that scores 100.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Max *float64 `json:"max,omitempty"`
}

// ScoringTemplateStatus is the observed state of a ScoringTemplate.
type ScoringTemplateStatus struct {
	// Conditions: Ready, or Ready=False with reason Conflict when another
	// template in the namespace is also the default.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// ScoringTemplate is the rubric coaching reports are scored with.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=st,categories=mira
// +kubebuilder:printcolumn:name="Display Name",type=string,JSONPath=`.spec.displayName`
// +kubebuilder:printcolumn:name="Default",type=boolean,JSONPath=`.spec.default`
// +kubebuilder:printcolumn:name="Passing",type=integer,JSONPath=`.spec.passingScore`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ScoringTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the rubric.
	// +required
	Spec ScoringTemplateSpec `json:"spec"`

	// Status is what the controller observed.
	// +optional
	Status ScoringTemplateStatus `json:"status,omitempty"`
}

// ScoringTemplateList is a list of ScoringTemplates.
// +kubebuilder:object:root=true
type ScoringTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ScoringTemplate `json:"items"`
}

// GetPassingScore returns the passing score with its default applied.
func (t *ScoringTemplate) GetPassingScore() int {
	if t.Spec.PassingScore != nil {
		return int(*t.Spec.PassingScore)
	}
	return 70
}

func init() {
	SchemeBuilder.Register(&ScoringTemplate{}, &ScoringTemplateList{})
}
