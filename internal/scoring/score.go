package scoring

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"time"
)

// Input is everything Score needs. Exactly one of MeetingID and RoleplayID
// names the subject of the report.
type Input struct {
	// Transcript is what was said.
	Transcript Transcript
	// Template is the rubric.
	Template Template
	// Rep says who is being coached; see SelectRep.
	Rep Rep
	// ReportID is the report's id; empty means ReportID(subject, namespace, name).
	ReportID string
	// MeetingID is the subject of a meeting report.
	MeetingID string
	// RoleplayID is the subject of a roleplay report.
	RoleplayID string
	// UserID is the Mira user the report belongs to.
	UserID string
	// GeneratedAt is the report's time; it is written in UTC.
	GeneratedAt time.Time
}

// Report is a scored coaching report, in the JSON shape Mira stores and
// serves.
type Report struct {
	// ReportID is deterministic for a subject and template; see ReportID.
	ReportID string `json:"report_id"`
	// Namespace is the workspace the report belongs to; it is stored in
	// the reports bucket under "<namespace>.<report_id>".
	Namespace string `json:"namespace,omitempty"`
	// MeetingID is set for meeting reports.
	MeetingID string `json:"meeting_id,omitempty"`
	// RoleplayID is set for roleplay reports.
	RoleplayID string `json:"roleplay_id,omitempty"`
	// UserID is the Mira user the report belongs to.
	UserID string `json:"user_id"`
	// Template identifies the rubric, including the generation scored with.
	Template TemplateRef `json:"template"`
	// OverallScore is the weighted mean of the criterion scores, 0–100.
	OverallScore float64 `json:"overall_score"`
	// Passed is OverallScore >= PassingScore.
	Passed bool `json:"passed"`
	// PassingScore is copied from the template.
	PassingScore int `json:"passing_score"`
	// Criteria are the template's criteria in template order.
	Criteria []CriterionResult `json:"criteria"`
	// Participants are the speakers in order of first appearance.
	Participants []Participant `json:"participants"`
	// DurationSeconds is the meeting's length, first word to last.
	DurationSeconds float64 `json:"duration_seconds"`
	// Rep says who was scored and why.
	Rep RepSelection `json:"rep"`
	// GeneratedAt is the time the caller passed in, in UTC.
	GeneratedAt time.Time `json:"generated_at"`
}

// TemplateRef identifies the ScoringTemplate a report was scored with.
type TemplateRef struct {
	// Namespace of the ScoringTemplate.
	Namespace string `json:"namespace"`
	// Name of the ScoringTemplate.
	Name string `json:"name"`
	// Generation of the ScoringTemplate that was used.
	Generation int64 `json:"generation"`
}

// CriterionResult is one scored criterion.
type CriterionResult struct {
	// Name of the criterion.
	Name string `json:"name"`
	// Metric measured.
	Metric string `json:"metric"`
	// Unit of Value and Target.
	Unit string `json:"unit"`
	// Value measured, rounded to two decimals.
	Value float64 `json:"value"`
	// Target is the range that scores 100.
	Target Target `json:"target"`
	// Score is 0–100, rounded to one decimal.
	Score float64 `json:"score"`
	// Weight of the criterion in the overall score.
	Weight int `json:"weight"`
	// Evidence explains the value in words.
	Evidence string `json:"evidence"`
	// Keywords lists the keywords found and missing (keywordCoverage only).
	Keywords *KeywordEvidence `json:"keywords,omitempty"`
}

// Target is a criterion's target range; either end may be absent.
type Target struct {
	// Min is the lowest value that scores 100.
	Min *float64 `json:"min,omitempty"`
	// Max is the highest value that scores 100.
	Max *float64 `json:"max,omitempty"`
}

// KeywordEvidence lists a keywordCoverage criterion's keywords, as written
// in the template, split by whether the rep said them.
type KeywordEvidence struct {
	// Found are the keywords the rep said.
	Found []string `json:"found"`
	// Missing are the keywords the rep did not say.
	Missing []string `json:"missing"`
}

// Participant summarizes one speaker.
type Participant struct {
	// SpeakerID identifies the speaker in the transcript.
	SpeakerID string `json:"speaker_id"`
	// Name is the speaker's display name, when known.
	Name string `json:"name,omitempty"`
	// IsRep is true for the participant who was scored.
	IsRep bool `json:"is_rep"`
	// Words is how many words the speaker said.
	Words int `json:"words"`
	// SpeakingSeconds is the total length of the speaker's turns.
	SpeakingSeconds float64 `json:"speaking_seconds"`
	// TalkRatio is the speaker's percent of all speaking time.
	TalkRatio float64 `json:"talk_ratio"`
	// Turns is how many turns the speaker took.
	Turns int `json:"turns"`
	// LongestTurnSeconds is the speaker's longest turn.
	LongestTurnSeconds float64 `json:"longest_turn_seconds"`
	// Questions is how many questions the speaker asked.
	Questions int `json:"questions"`
}

// RepSelection says which participant was scored as the rep.
type RepSelection struct {
	// SpeakerID of the rep.
	SpeakerID string `json:"speaker_id"`
	// Rule that chose the rep: RuleID, RuleName or RuleHost.
	Rule string `json:"rule"`
}

// MaxTimeSeconds bounds word times (about 31 years), so that sums of
// durations stay finite. Score rejects words outside ±MaxTimeSeconds.
const MaxTimeSeconds = 1e9

// ErrInvalidInput is wrapped by every Score error about its input (as
// opposed to ErrNoRep, which is about the transcript's participants).
var ErrInvalidInput = errors.New("invalid scoring input")

// ReportID returns the deterministic id of the report for a subject (meeting
// or roleplay id) and a template: "rpt_" and the first 24 hex digits of
// sha256(subject NUL namespace NUL name). The template generation is not part
// of it, so rescoring after a template edit replaces the report instead of
// adding a second one.
func ReportID(subjectID, templateNamespace, templateName string) string {
	sum := sha256.Sum256([]byte(subjectID + "\x00" + templateNamespace + "\x00" + templateName))
	return "rpt_" + hex.EncodeToString(sum[:])[:24]
}

// Score scores in.Transcript with in.Template for the rep chosen by
// SelectRep and returns the report. It fails with ErrInvalidInput on a bad
// input (no subject, a zero GeneratedAt, no criteria, weights that do not sum
// to 100, an unknown metric, a bad target range, keywords missing or
// misplaced, word times that are not finite or beyond MaxTimeSeconds) and with ErrNoRep when no participant is
// the rep.
func Score(in Input) (*Report, error) {
	if err := validate(in); err != nil {
		return nil, err
	}
	repID, rule, err := SelectRep(in.Transcript, in.Rep)
	if err != nil {
		return nil, fmt.Errorf("select rep: %w", err)
	}
	a := analyze(in.Transcript, repID)

	subject := in.MeetingID + in.RoleplayID // validate ensures exactly one is set
	r := &Report{
		ReportID:   in.ReportID,
		MeetingID:  in.MeetingID,
		RoleplayID: in.RoleplayID,
		UserID:     in.UserID,
		Template: TemplateRef{
			Namespace:  in.Template.Namespace,
			Name:       in.Template.Name,
			Generation: in.Template.Generation,
		},
		PassingScore:    in.Template.PassingScore,
		Criteria:        make([]CriterionResult, 0, len(in.Template.Criteria)),
		Participants:    make([]Participant, 0, len(a.participants)),
		DurationSeconds: round(a.duration, 2),
		Rep:             RepSelection{SpeakerID: repID, Rule: rule},
		GeneratedAt:     in.GeneratedAt.UTC(),
	}
	if r.ReportID == "" {
		r.ReportID = ReportID(subject, in.Template.Namespace, in.Template.Name)
	}

	var weighted float64
	for _, c := range in.Template.Criteria {
		m := a.measure(c)
		value := round(m.value, 2)
		score := RangeScore(value, c.Min, c.Max)
		weighted += score * float64(c.Weight)
		r.Criteria = append(r.Criteria, CriterionResult{
			Name:     c.Name,
			Metric:   c.Metric,
			Unit:     metricUnits[c.Metric],
			Value:    value,
			Target:   Target{Min: copyFloat(c.Min), Max: copyFloat(c.Max)},
			Score:    score,
			Weight:   c.Weight,
			Evidence: m.evidence,
			Keywords: m.keywords,
		})
	}
	r.OverallScore = round(weighted/100, 1) // validate ensures weights sum to 100
	r.Passed = r.OverallScore >= float64(in.Template.PassingScore)

	for _, p := range a.participants {
		ratio := 0.0
		if a.totalSeconds > 0 {
			ratio = p.seconds / a.totalSeconds * 100
		}
		r.Participants = append(r.Participants, Participant{
			SpeakerID:          p.id,
			Name:               p.name,
			IsRep:              p.id == repID,
			Words:              p.words,
			SpeakingSeconds:    round(p.seconds, 2),
			TalkRatio:          round(ratio, 2),
			Turns:              p.turns,
			LongestTurnSeconds: round(p.longestTurn, 2),
			Questions:          p.questions,
		})
	}
	return r, nil
}

// RangeScore scores v against the target range [lo, hi] (either may be
// nil) as described in the package documentation, rounded to one decimal.
func RangeScore(v float64, lo, hi *float64) float64 {
	var s float64
	switch {
	case lo != nil && v < *lo:
		if *lo > 0 {
			s = 100 * (1 - (*lo-v)/(*lo))
		}
	case hi != nil && v > *hi:
		if *hi > 0 {
			s = 100 * (1 - (v-*hi)/(*hi))
		}
	default:
		s = 100
	}
	return round(min(100, max(0, s)), 1)
}

// validate checks everything Score relies on.
func validate(in Input) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidInput}, args...)...)
	}
	if (in.MeetingID == "") == (in.RoleplayID == "") {
		return bad("exactly one of meeting id and roleplay id must be set")
	}
	if in.GeneratedAt.IsZero() {
		return bad("generation time is not set")
	}
	t := in.Template
	if t.Namespace == "" || t.Name == "" {
		return bad("template namespace and name must be set")
	}
	if t.PassingScore < 0 || t.PassingScore > 100 {
		return bad("passing score %d is outside 0–100", t.PassingScore)
	}
	if len(t.Criteria) == 0 {
		return bad("template %s/%s has no criteria", t.Namespace, t.Name)
	}
	names := map[string]bool{}
	sum := 0
	for i, c := range t.Criteria {
		if c.Name == "" {
			return bad("criterion %d has no name", i)
		}
		if names[c.Name] {
			return bad("criterion name %q is not unique", c.Name)
		}
		names[c.Name] = true
		if c.Weight < 1 || c.Weight > 100 {
			return bad("criterion %q weight %d is outside 1–100", c.Name, c.Weight)
		}
		sum += c.Weight
		if _, ok := metricUnits[c.Metric]; !ok {
			return bad("criterion %q has unknown metric %q", c.Name, c.Metric)
		}
		for _, b := range []*float64{c.Min, c.Max} {
			if b != nil && (math.IsNaN(*b) || math.IsInf(*b, 0) || *b < 0) {
				return bad("criterion %q target bound %v is not a finite number >= 0", c.Name, *b)
			}
		}
		if c.Min != nil && c.Max != nil && *c.Min > *c.Max {
			return bad("criterion %q target min %v exceeds max %v", c.Name, *c.Min, *c.Max)
		}
		if c.Metric == MetricKeywordCoverage {
			if len(c.Keywords) == 0 {
				return bad("criterion %q measures keywordCoverage but has no keywords", c.Name)
			}
			for _, k := range c.Keywords {
				if len(keywordTokens(k)) == 0 {
					return bad("criterion %q keyword %q has no letters or digits", c.Name, k)
				}
			}
		} else if len(c.Keywords) > 0 {
			return bad("criterion %q has keywords but measures %s", c.Name, c.Metric)
		}
	}
	if sum != 100 {
		return bad("criteria weights sum to %d, not 100", sum)
	}
	for i, s := range in.Transcript.Segments {
		for j, w := range s.Words {
			if !finite(w.Start) || !finite(w.End) || math.Abs(w.Start) > MaxTimeSeconds || math.Abs(w.End) > MaxTimeSeconds {
				return bad("segment %d word %d has a time that is not a finite number within ±%g s", i, j, float64(MaxTimeSeconds))
			}
		}
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// round rounds x to the given number of decimals, never returning -0.
func round(x float64, decimals int) float64 {
	p := math.Pow10(decimals)
	r := math.Round(x*p) / p
	if r == 0 {
		return 0
	}
	return r
}

func copyFloat(f *float64) *float64 {
	if f == nil {
		return nil
	}
	v := *f
	return &v
}
