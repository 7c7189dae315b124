package scoring

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func f(v float64) *float64 { return &v }

// allMetrics scores call() on every metric. Expected values (see call and
// TestMetrics) and scores:
//
//	talk        talkRatio        max 50      72.09 → 100(1 − 22.09/50) = 55.82 → 55.8   ×20
//	monologue   longestMonologue max 60      6     → 100                                ×10
//	questions   questionRate     min 10      20    → 100                                ×10
//	fillers     fillerWordRate   max 5       25    → 100(1 − 20/5) < 0 → 0              ×10
//	keywords    keywordCoverage  min 80      60    → 100(1 − 20/80) = 75                ×20
//	pace        wordsPerMinute   120–160     61.94 → 100(1 − 58.06/120) = 51.61… → 51.6 ×10
//	switches    interactivity    min 2       10    → 100                                ×10
//	patience    patience         min 0.5     0.25  → 100(1 − 0.25/0.5) = 50             ×10
//
// overall = (55.8·20 + 100·10 + 100·10 + 0·10 + 75·20 + 51.6·10 + 100·10 + 50·10) / 100
// = (1116 + 1000 + 1000 + 0 + 1500 + 516 + 1000 + 500) / 100 = 66.32 → 66.3
func allMetrics(passing int) Template {
	return Template{Namespace: "sales", Name: "discovery", Generation: 4, PassingScore: passing, Criteria: []Criterion{
		{Name: "talk", Weight: 20, Metric: MetricTalkRatio, Max: f(50)},
		{Name: "monologue", Weight: 10, Metric: MetricLongestMonologue, Max: f(60)},
		{Name: "questions", Weight: 10, Metric: MetricQuestionRate, Min: f(10)},
		{Name: "fillers", Weight: 10, Metric: MetricFillerWordRate, Max: f(5)},
		{Name: "keywords", Weight: 20, Metric: MetricKeywordCoverage, Min: f(80), Keywords: []string{"Pricing", "next steps", "ROI", "pricing!", "this", "thanks for"}},
		{Name: "pace", Weight: 10, Metric: MetricWordsPerMinute, Min: f(120), Max: f(160)},
		{Name: "switches", Weight: 10, Metric: MetricInteractivity, Min: f(2)},
		{Name: "patience", Weight: 10, Metric: MetricPatience, Min: f(0.5)},
	}}
}

var generatedAt = time.Date(2026, 3, 1, 9, 30, 0, 0, time.FixedZone("CET", 3600))

func TestScoreReport(t *testing.T) {
	got, err := Score(Input{
		Transcript:  call(),
		Template:    allMetrics(70),
		Rep:         Rep{Name: "riley"},
		MeetingID:   "m-1",
		UserID:      "u-7",
		GeneratedAt: generatedAt,
	})
	if err != nil {
		t.Fatalf("Score: %v", err)
	}
	want := &Report{
		// sha256("m-1\x00sales\x00discovery") = a06effea54710e2cb9416400…
		ReportID:     "rpt_a06effea54710e2cb9416400",
		MeetingID:    "m-1",
		UserID:       "u-7",
		Template:     TemplateRef{Namespace: "sales", Name: "discovery", Generation: 4},
		OverallScore: 66.3,
		Passed:       false,
		PassingScore: 70,
		Criteria: []CriterionResult{
			{Name: "talk", Metric: MetricTalkRatio, Unit: "percent", Value: 72.09, Target: Target{Max: f(50)}, Score: 55.8, Weight: 20, Evidence: "rep spoke 15.5 s of 21.5 s of speech"},
			{Name: "monologue", Metric: MetricLongestMonologue, Unit: "seconds", Value: 6, Target: Target{Max: f(60)}, Score: 100, Weight: 10, Evidence: "longest of 3 rep turns: 6.0 s"},
			{Name: "questions", Metric: MetricQuestionRate, Unit: "questions per 10 minutes", Value: 20, Target: Target{Min: f(10)}, Score: 100, Weight: 10, Evidence: "rep questions: 1 in 0.5 minutes"},
			{Name: "fillers", Metric: MetricFillerWordRate, Unit: "fillers per 100 words", Value: 25, Target: Target{Max: f(5)}, Score: 0, Weight: 10, Evidence: "filler words: 4 of 16 rep words"},
			{Name: "keywords", Metric: MetricKeywordCoverage, Unit: "percent of keywords", Value: 60, Target: Target{Min: f(80)}, Score: 75, Weight: 20, Evidence: "rep said 3 of 5 keywords",
				Keywords: &KeywordEvidence{Found: []string{"Pricing", "next steps", "thanks for"}, Missing: []string{"ROI", "this"}}},
			{Name: "pace", Metric: MetricWordsPerMinute, Unit: "words per minute", Value: 61.94, Target: Target{Min: f(120), Max: f(160)}, Score: 51.6, Weight: 10, Evidence: "rep words: 16 in 15.5 s of speaking"},
			{Name: "switches", Metric: MetricInteractivity, Unit: "switches per minute", Value: 10, Target: Target{Min: f(2)}, Score: 100, Weight: 10, Evidence: "speaker switches: 5 in 0.5 minutes"},
			{Name: "patience", Metric: MetricPatience, Unit: "seconds", Value: 0.25, Target: Target{Min: f(0.5)}, Score: 50, Weight: 10, Evidence: "mean of 2 gaps before rep turns that follow another speaker"},
		},
		Participants: []Participant{
			// Riley: 15.5 / 21.5 = 72.09 %; Casey: 6 / 21.5 = 27.906… → 27.91 %
			{SpeakerID: "r", Name: "Riley", IsRep: true, Words: 16, SpeakingSeconds: 15.5, TalkRatio: 72.09, Turns: 3, LongestTurnSeconds: 6, Questions: 1},
			{SpeakerID: "c", Name: "Casey", IsRep: false, Words: 6, SpeakingSeconds: 6, TalkRatio: 27.91, Turns: 3, LongestTurnSeconds: 4, Questions: 1},
		},
		DurationSeconds: 30,
		Rep:             RepSelection{SpeakerID: "r", Rule: RuleName},
		GeneratedAt:     time.Date(2026, 3, 1, 8, 30, 0, 0, time.UTC),
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Fatalf("report mismatch\ngot:  %s\nwant: %s", g, w)
	}
	raw, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	for _, frag := range []string{`"report_id":"rpt_a06effea54710e2cb9416400"`, `"generated_at":"2026-03-01T08:30:00Z"`, `"target":{"min":120,"max":160}`, `"rep":{"speaker_id":"r","rule":"name"}`, `"keywords":{"found":["Pricing","next steps","thanks for"],"missing":["ROI","this"]}`} {
		if !strings.Contains(string(raw), frag) {
			t.Errorf("JSON lacks %s:\n%s", frag, raw)
		}
	}
	if strings.Contains(string(raw), "roleplay_id") {
		t.Errorf("meeting report has a roleplay_id: %s", raw)
	}
}

func TestScoreDeterministic(t *testing.T) {
	in := Input{Transcript: call(), Template: allMetrics(70), Rep: Rep{ID: "r"}, RoleplayID: "rp-9", UserID: "u", GeneratedAt: generatedAt}
	var outs [2][]byte
	for i := range outs {
		r, err := Score(in)
		if err != nil {
			t.Fatalf("Score: %v", err)
		}
		if outs[i], err = json.Marshal(r); err != nil {
			t.Fatalf("marshal: %v", err)
		}
	}
	if string(outs[0]) != string(outs[1]) {
		t.Fatalf("two runs differ:\n%s\n%s", outs[0], outs[1])
	}
	// sha256("rp-9\x00sales\x00discovery") = ac5885260506efd88b86c14e…
	if !strings.Contains(string(outs[0]), `"report_id":"rpt_ac5885260506efd88b86c14e","roleplay_id":"rp-9"`) {
		t.Fatalf("unexpected id or subject: %s", outs[0])
	}
}

func TestRangeScore(t *testing.T) {
	tests := []struct {
		name   string
		v      float64
		lo, hi *float64
		want   float64
	}{
		{"no bounds", 5, nil, nil, 100},
		{"at min", 10, f(10), f(20), 100},
		{"at max", 20, f(10), f(20), 100},
		{"half of min", 5, f(10), f(20), 50},                       // 100(1 − 5/10)
		{"zero below min", 0, f(10), nil, 0},                       // 100(1 − 10/10)
		{"negative clamps to 0", -5, f(10), nil, 0},                // 100(1 − 15/10) = −50
		{"quarter above max", 25, f(10), f(20), 75},                // 100(1 − 5/20)
		{"double max", 40, nil, f(20), 0},                          // 100(1 − 20/20)
		{"far above max clamps to 0", 50, nil, f(20), 0},           // 100(1 − 30/20) = −50
		{"max 0 exceeded", 0.01, nil, f(0), 0},                     // bound 0: any distance scores 0
		{"max 0 met", 0, nil, f(0), 100},                           //
		{"min 0 met", 0, f(0), nil, 100},                           //
		{"only min, rounds down", 10, f(30), nil, 33.3},            // 100(1 − 20/30) = 33.33…
		{"only max, rounds down", 3.5, nil, f(3), 83.3},            // 100(1 − 0.5/3) = 83.33…
		{"rounds up", 2, f(3), nil, 66.7},                          // 100(1 − 1/3) = 66.66…
		{"point range inside", 7, f(7), f(7), 100},                 //
		{"point range above", 7.7, f(7), f(7), 90},                 // 100(1 − 0.7/7)
		{"above only max when min also set", 30, f(10), f(20), 50}, // 100(1 − 10/20)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RangeScore(tt.v, tt.lo, tt.hi); got != tt.want {
				t.Fatalf("RangeScore(%v) = %v, want %v", tt.v, got, tt.want)
			}
		})
	}
}

func TestScoreOverallAndPassed(t *testing.T) {
	// call(): talkRatio 72.09, questionRate 20.
	tests := []struct {
		name        string
		criteria    []Criterion
		passing     int
		wantOverall float64
		wantPassed  bool
	}{
		// talk 55.8 (max 50) ×60, questions 100 ×40: (3348 + 4000)/100 = 73.48 → 73.5
		{"weighted mean, passes", []Criterion{
			{Name: "talk", Weight: 60, Metric: MetricTalkRatio, Max: f(50)},
			{Name: "q", Weight: 40, Metric: MetricQuestionRate, Min: f(10)},
		}, 73, 73.5, true},
		{"weighted mean, fails by 0.5", []Criterion{
			{Name: "talk", Weight: 60, Metric: MetricTalkRatio, Max: f(50)},
			{Name: "q", Weight: 40, Metric: MetricQuestionRate, Min: f(10)},
		}, 74, 73.5, false},
		// weights swap: 55.8×40 + 100×60 = 2232 + 6000 → 82.32 → 82.3
		{"weights matter", []Criterion{
			{Name: "talk", Weight: 40, Metric: MetricTalkRatio, Max: f(50)},
			{Name: "q", Weight: 60, Metric: MetricQuestionRate, Min: f(10)},
		}, 70, 82.3, true},
		{"equal to passing score passes", []Criterion{
			{Name: "q", Weight: 100, Metric: MetricQuestionRate, Min: f(10)},
		}, 100, 100, true},
		// questionRate 20 with min 40: 100(1 − 20/40) = 50
		{"passing score 0 always passes", []Criterion{
			{Name: "q", Weight: 100, Metric: MetricQuestionRate, Min: f(40)},
		}, 0, 50, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Score(Input{
				Transcript:  call(),
				Template:    Template{Namespace: "ns", Name: "t", PassingScore: tt.passing, Criteria: tt.criteria},
				Rep:         Rep{ID: "r"},
				MeetingID:   "m",
				GeneratedAt: generatedAt,
			})
			if err != nil {
				t.Fatalf("Score: %v", err)
			}
			if r.OverallScore != tt.wantOverall || r.Passed != tt.wantPassed {
				t.Fatalf("overall %v passed %v, want %v %v", r.OverallScore, r.Passed, tt.wantOverall, tt.wantPassed)
			}
		})
	}
}

func TestScoreRejects(t *testing.T) {
	good := func() Input {
		return Input{Transcript: call(), Template: allMetrics(70), Rep: Rep{ID: "r"}, MeetingID: "m", GeneratedAt: generatedAt}
	}
	tests := []struct {
		name   string
		mutate func(*Input)
		want   string
	}{
		{"no subject", func(in *Input) { in.MeetingID = "" }, "exactly one of meeting id and roleplay id"},
		{"two subjects", func(in *Input) { in.RoleplayID = "rp" }, "exactly one of meeting id and roleplay id"},
		{"no time", func(in *Input) { in.GeneratedAt = time.Time{} }, "generation time is not set"},
		{"no template name", func(in *Input) { in.Template.Name = "" }, "template namespace and name must be set"},
		{"passing score", func(in *Input) { in.Template.PassingScore = 101 }, "passing score 101 is outside 0–100"},
		{"no criteria", func(in *Input) { in.Template.Criteria = nil }, "template sales/discovery has no criteria"},
		{"weights sum", func(in *Input) { in.Template.Criteria[0].Weight = 19 }, "criteria weights sum to 99, not 100"},
		{"weight zero", func(in *Input) { in.Template.Criteria[0].Weight = 0 }, `criterion "talk" weight 0 is outside 1–100`},
		{"unknown metric", func(in *Input) { in.Template.Criteria[1].Metric = "charisma" }, `criterion "monologue" has unknown metric "charisma"`},
		{"duplicate name", func(in *Input) { in.Template.Criteria[1].Name = "talk" }, `criterion name "talk" is not unique`},
		{"unnamed", func(in *Input) { in.Template.Criteria[2].Name = "" }, "criterion 2 has no name"},
		{"min above max", func(in *Input) { in.Template.Criteria[5].Min = f(200) }, `criterion "pace" target min 200 exceeds max 160`},
		{"negative bound", func(in *Input) { in.Template.Criteria[0].Max = f(-1) }, `criterion "talk" target bound -1 is not a finite number >= 0`},
		{"keywords missing", func(in *Input) { in.Template.Criteria[4].Keywords = nil }, `criterion "keywords" measures keywordCoverage but has no keywords`},
		{"keyword of punctuation", func(in *Input) { in.Template.Criteria[4].Keywords = []string{"ok", " ?! "} }, `criterion "keywords" keyword " ?! " has no letters or digits`},
		{"keywords on another metric", func(in *Input) { in.Template.Criteria[0].Keywords = []string{"x"} }, `criterion "talk" has keywords but measures talkRatio`},
		{"non-finite time", func(in *Input) { in.Transcript.Segments[2].Words[1].End = math.Inf(1) }, "segment 2 word 1 has a time that is not a finite number within ±1e+09 s"},
		{"NaN time", func(in *Input) { in.Transcript.Segments[0].Words[0].Start = math.NaN() }, "segment 0 word 0 has a time that is not a finite"},
		{"time too far", func(in *Input) { in.Transcript.Segments[0].Words[0].Start = -1.5e9 }, "segment 0 word 0 has a time that is not a finite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := good()
			tt.mutate(&in)
			r, err := Score(in)
			if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalidInput containing %q", err, tt.want)
			}
			if r != nil {
				t.Fatalf("report returned with error")
			}
		})
	}

	t.Run("no rep", func(t *testing.T) {
		in := good()
		in.Rep = Rep{ID: "zz"} // call() has no host
		if _, err := Score(in); !errors.Is(err, ErrNoRep) {
			t.Fatalf("err = %v, want ErrNoRep", err)
		}
	})
	t.Run("good input scores", func(t *testing.T) {
		if _, err := Score(good()); err != nil {
			t.Fatalf("Score: %v", err)
		}
	})
}

func TestReportID(t *testing.T) {
	tests := []struct {
		subject, ns, name, want string
	}{
		// values from: printf 'm-1\0sales\0discovery' | sha256sum
		{"m-1", "sales", "discovery", "rpt_a06effea54710e2cb9416400"},
		{"rp-9", "sales", "discovery", "rpt_ac5885260506efd88b86c14e"},
	}
	for _, tt := range tests {
		if got := ReportID(tt.subject, tt.ns, tt.name); got != tt.want {
			t.Errorf("ReportID(%q, %q, %q) = %q, want %q", tt.subject, tt.ns, tt.name, got, tt.want)
		}
	}
	// The separator keeps shifted boundaries apart.
	if ReportID("m", "ab", "c") == ReportID("m", "a", "bc") {
		t.Error("ReportID ignores field boundaries")
	}
	// A template edit (new generation) keeps the id; a caller-set id wins.
	in := Input{Transcript: call(), Template: allMetrics(70), Rep: Rep{ID: "r"}, MeetingID: "m-1", GeneratedAt: generatedAt}
	r1, err1 := Score(in)
	in.Template.Generation = 99
	r2, err2 := Score(in)
	in.ReportID = "custom"
	r3, err3 := Score(in)
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatalf("Score: %v", err)
	}
	if r1.ReportID != "rpt_a06effea54710e2cb9416400" || r2.ReportID != r1.ReportID || r3.ReportID != "custom" {
		t.Fatalf("ids %q %q %q", r1.ReportID, r2.ReportID, r3.ReportID)
	}
	if r2.Template.Generation != 99 {
		t.Fatalf("generation %d, want 99", r2.Template.Generation)
	}
}
