package scoring

import (
	"reflect"
	"testing"
)

func w(text string, start, end float64) Word { return Word{Text: text, Start: start, End: end} }

// call is a small meeting between the rep Riley ("r") and Casey ("c").
// Turns after merging (times in seconds):
//
//	1 r [0,6]     "Hi um thanks" + "for joining."  (two segments, merged) 6 s, 5 words
//	2 c [8,12]    "Sure. What's this?"                                   4 s, 3 words, 1 question
//	3 r [12.5,18.5] "You know, pricing matters. Does it? ?"              6 s, 6 words, 1 question
//	4 c [20,22]   "Yes basically"                                        2 s, 2 words
//	5 r [21.5,25] "Kind of next steps actually" (last End 0 → 25)        3.5 s, 5 words
//	6 c [30,30]   "Bye" (End 0)                                          0 s, 1 word
//
// Rep: 15.5 s, 16 words, 3 turns, longest 6 s, 1 question ("?" after "it?"
// is the same sentence). Casey: 6 s, 6 words. All speech 21.5 s. Meeting
// 0 → 30 s = 0.5 min, 5 switches.
func call() Transcript {
	return Transcript{Segments: []Segment{
		{SpeakerID: "r", SpeakerName: "Riley", Words: []Word{w("Hi", 0, 1), w("um", 1, 2), w("thanks", 2, 3)}},
		{SpeakerID: "r", SpeakerName: "Riley", Words: []Word{w("for", 4, 5), w("joining.", 5, 6)}},
		{SpeakerID: "c", SpeakerName: "Casey", Words: []Word{w("Sure.", 8, 9), w("What's", 9, 10), w("this?", 10, 12)}},
		{SpeakerID: "r", SpeakerName: "Riley", Words: []Word{w("You", 12.5, 13), w("know,", 13, 14), w("pricing", 14, 15), w("matters.", 15, 16), w("Does", 16, 17), w("it?", 17, 18), w("?", 18, 18.5)}},
		{SpeakerID: "c", SpeakerName: "Casey", Words: []Word{w("Yes", 20, 21), w("basically", 21, 22)}},
		{SpeakerID: "r", SpeakerName: "Riley", Words: []Word{w("Kind", 21.5, 22), w("of", 22, 23), w("next", 23, 24), w("steps", 24, 25), w("actually", 25, 0)}},
		{SpeakerID: "c", SpeakerName: "Casey", Words: []Word{w("Bye", 30, 0)}},
	}}
}

func TestMetrics(t *testing.T) {
	// silentRep: the host "h" is the rep but never says a word; "c" speaks 0–10.
	silentRep := Transcript{Segments: []Segment{
		{SpeakerID: "h", IsHost: true},
		{SpeakerID: "c", Words: []Word{w("hello", 0, 5), w("anyone?", 5, 10)}},
	}}
	// nothing: nobody says anything.
	nothing := Transcript{Segments: []Segment{{SpeakerID: "h", IsHost: true}}}
	// repFirst: the rep opens, so no gap counts for the first turn; then
	// c [2,4] and the rep again [7,8]: one gap of 7 − 4 = 3 s.
	repFirst := Transcript{Segments: []Segment{
		{SpeakerID: "r", Words: []Word{w("hello", 0, 2)}},
		{SpeakerID: "c", Words: []Word{w("hi", 2, 4)}},
		{SpeakerID: "r", Words: []Word{w("so", 7, 8)}},
	}}
	// questions: "What? Why?" are two sentences, "Really?!" counts, a quoted
	// "price?" counts, a lone "?" token after "ok" ends the "ok" sentence (5)
	// and the second lone "?" adds nothing. Meeting 0 → 120 s = 0.2 × 10
	// min, so 5 questions → 25 per 10 minutes.
	questions := Transcript{Segments: []Segment{
		{SpeakerID: "r", Words: []Word{w("What?", 0, 1), w("Why?", 1, 2), w("Really?!", 2, 3), w(`"price?"`, 3, 4), w("ok", 4, 5), w("?", 5, 6), w("?", 6, 7)}},
		{SpeakerID: "c", Words: []Word{w("fine", 110, 120)}},
	}}
	// fillers: "like" alone, "sort of" once, "of" alone is not a filler, and
	// "you" without "know" is not; across two rep turns "you" | "know" does
	// not form a phrase. Rep words: 4 + 2 = 6 with 2 fillers → 33.33 per 100.
	fillers := Transcript{Segments: []Segment{
		{SpeakerID: "r", Words: []Word{w("LIKE,", 0, 1), w("sort", 1, 2), w("of", 2, 3), w("you", 3, 4)}},
		{SpeakerID: "c", Words: []Word{w("yes", 4, 5)}},
		{SpeakerID: "r", Words: []Word{w("know", 5, 6), w("of", 6, 7)}},
	}}
	// gapped: an empty segment of "c" between two "r" segments is ignored, so
	// the turns are r [0,3] and c [3,4]: 1 switch in 4 s → 1 / (4/60) = 15.
	gapped := Transcript{Segments: []Segment{
		{SpeakerID: "r", Words: []Word{w("a", 0, 1)}},
		{SpeakerID: "c"},
		{SpeakerID: "r", Words: []Word{w("b", 2, 3)}},
		{SpeakerID: "c", Words: []Word{w("c", 3, 4)}},
	}}
	tests := []struct {
		name     string
		t        Transcript
		rep      string
		c        Criterion
		want     float64 // after rounding to two decimals
		evidence string
		keywords *KeywordEvidence
	}{
		// 15.5 / 21.5 × 100 = 72.0930… → 72.09
		{"talkRatio", call(), "r", Criterion{Metric: MetricTalkRatio}, 72.09, "rep spoke 15.5 s of 21.5 s of speech", nil},
		{"talkRatio silent rep", silentRep, "h", Criterion{Metric: MetricTalkRatio}, 0, "rep spoke 0.0 s of 10.0 s of speech", nil},
		{"talkRatio nobody spoke", nothing, "h", Criterion{Metric: MetricTalkRatio}, 0, "nobody spoke for a measurable time", nil},
		// turns 6, 6 and 3.5 s
		{"longestMonologue", call(), "r", Criterion{Metric: MetricLongestMonologue}, 6, "longest of 3 rep turns: 6.0 s", nil},
		// Casey's turns are 4, 2 and 0 s
		{"longestMonologue other speaker", call(), "c", Criterion{Metric: MetricLongestMonologue}, 4, "longest of 3 rep turns: 4.0 s", nil},
		// 1 question / (30 s / 600 s) = 20
		{"questionRate", call(), "r", Criterion{Metric: MetricQuestionRate}, 20, "rep questions: 1 in 0.5 minutes", nil},
		{"questionRate sentences", questions, "r", Criterion{Metric: MetricQuestionRate}, 25, "rep questions: 5 in 2.0 minutes", nil},
		{"questionRate no duration", nothing, "h", Criterion{Metric: MetricQuestionRate}, 0, "rep questions: 0; the meeting has no measurable duration", nil},
		// um, "you know", "kind of", actually = 4 of 16 words → 25
		{"fillerWordRate", call(), "r", Criterion{Metric: MetricFillerWordRate}, 25, "filler words: 4 of 16 rep words", nil},
		// 2 / 6 × 100 = 33.333… → 33.33
		{"fillerWordRate phrases", fillers, "r", Criterion{Metric: MetricFillerWordRate}, 33.33, "filler words: 2 of 6 rep words", nil},
		{"fillerWordRate no words", silentRep, "h", Criterion{Metric: MetricFillerWordRate}, 0, "rep said no words", nil},
		// distinct keywords: pricing, next steps, roi, this, thanks for ("pricing!"
		// repeats "Pricing"). The rep said pricing, "next steps" and "thanks
		// for" (across two merged segments); "this" was said only by Casey.
		// 3 / 5 = 60
		{"keywordCoverage", call(), "r", Criterion{Metric: MetricKeywordCoverage, Keywords: []string{"Pricing", " next steps", "ROI", "pricing!", "this", "thanks for"}},
			60, "rep said 3 of 5 keywords", &KeywordEvidence{Found: []string{"Pricing", "next steps", "thanks for"}, Missing: []string{"ROI", "this"}}},
		// "joining sure" would span Riley's and Casey's turns: not said.
		{"keywordCoverage not across turns", call(), "r", Criterion{Metric: MetricKeywordCoverage, Keywords: []string{"joining sure"}},
			0, "rep said 0 of 1 keywords", &KeywordEvidence{Found: []string{}, Missing: []string{"joining sure"}}},
		// 16 words / (15.5 s / 60) = 960 / 15.5 = 61.9354… → 61.94
		{"wordsPerMinute", call(), "r", Criterion{Metric: MetricWordsPerMinute}, 61.94, "rep words: 16 in 15.5 s of speaking", nil},
		{"wordsPerMinute no speaking time", silentRep, "h", Criterion{Metric: MetricWordsPerMinute}, 0, "rep words: 0 in no measurable speaking time", nil},
		// 5 switches / 0.5 min = 10
		{"interactivity", call(), "r", Criterion{Metric: MetricInteractivity}, 10, "speaker switches: 5 in 0.5 minutes", nil},
		{"interactivity empty segment ignored", gapped, "r", Criterion{Metric: MetricInteractivity}, 15, "speaker switches: 1 in 0.1 minutes", nil},
		{"longestMonologue empty segment ignored", gapped, "r", Criterion{Metric: MetricLongestMonologue}, 3, "longest of 1 rep turns: 3.0 s", nil},
		{"interactivity no duration", nothing, "h", Criterion{Metric: MetricInteractivity}, 0, "speaker switches: 0; the meeting has no measurable duration", nil},
		// gaps 12.5 − 12 = 0.5 and 21.5 − 22 = −0.5 → 0; mean 0.25
		{"patience", call(), "r", Criterion{Metric: MetricPatience}, 0.25, "mean of 2 gaps before rep turns that follow another speaker", nil},
		{"patience rep opens", repFirst, "r", Criterion{Metric: MetricPatience}, 3, "mean of 1 gaps before rep turns that follow another speaker", nil},
		{"patience no gaps", silentRep, "h", Criterion{Metric: MetricPatience}, 0, "rep never spoke right after another speaker", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := analyze(tt.t, tt.rep).measure(tt.c)
			if got := round(m.value, 2); got != tt.want {
				t.Errorf("value = %v (%v), want %v", got, m.value, tt.want)
			}
			if m.evidence != tt.evidence {
				t.Errorf("evidence = %q, want %q", m.evidence, tt.evidence)
			}
			if !reflect.DeepEqual(m.keywords, tt.keywords) {
				t.Errorf("keywords = %+v, want %+v", m.keywords, tt.keywords)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	tests := map[string]string{
		"pricing":    "pricing",
		"Pricing,":   "pricing",
		"follow-up":  "followup",
		"¿Qué?":      "qué",
		"$1,000":     "1000",
		"?":          "",
		"“ÉCOLE”":    "école",
		"don't":      "dont",
		"":           "",
		"UM...":      "um",
		"v2.0-beta!": "v20beta",
	}
	for in, want := range tests {
		if got := normalize(in); got != want {
			t.Errorf("normalize(%q) = %q, want %q", in, got, want)
		}
	}
}
