package scoring

import (
	"testing"
	"time"
)

// hour returns a 60-minute meeting: 600 segments of 15 words, 6 s each
// (0.4 s a word), 9,000 words, spoken by a host rep and two buyers chosen by
// a fixed pseudo-random sequence, so turns merge and switch.
func hour() Transcript {
	vocab := []string{"so", "um", "pricing", "is", "like", "the", "next", "steps,", "you", "know",
		"budget?", "we", "kind", "of", "need", "timeline.", "actually", "roi", "sure", "what?"}
	speakers := []Segment{
		{SpeakerID: "100", SpeakerName: "Dana Whitfield", IsHost: true},
		{SpeakerID: "200", SpeakerName: "Sam Ortega"},
		{SpeakerID: "300", SpeakerName: "Kim Lee"},
	}
	seed := uint32(1)
	t := Transcript{Segments: make([]Segment, 600)}
	for k := range t.Segments {
		seed = seed*1664525 + 1013904223
		s := speakers[(seed>>16)%3]
		s.Words = make([]Word, 15)
		for j := range s.Words {
			start := float64(k*6) + float64(j)*0.4
			s.Words[j] = Word{Text: vocab[(k*15+j)%len(vocab)], Start: start, End: start + 0.4}
		}
		t.Segments[k] = s
	}
	return t
}

func hourInput() Input {
	return Input{
		Transcript: hour(),
		Template: Template{Namespace: "sales", Name: "discovery", PassingScore: 70, Criteria: []Criterion{
			{Name: "talk", Weight: 15, Metric: MetricTalkRatio, Min: f(30), Max: f(60)},
			{Name: "monologue", Weight: 10, Metric: MetricLongestMonologue, Max: f(90)},
			{Name: "questions", Weight: 15, Metric: MetricQuestionRate, Min: f(10)},
			{Name: "fillers", Weight: 10, Metric: MetricFillerWordRate, Max: f(3)},
			{Name: "keywords", Weight: 20, Metric: MetricKeywordCoverage, Min: f(80), Keywords: []string{"pricing", "next steps", "budget", "timeline", "decision maker", "roi", "security review", "champion"}},
			{Name: "pace", Weight: 10, Metric: MetricWordsPerMinute, Min: f(130), Max: f(170)},
			{Name: "switches", Weight: 10, Metric: MetricInteractivity, Min: f(1)},
			{Name: "patience", Weight: 10, Metric: MetricPatience, Min: f(0.5), Max: f(3)},
		}},
		MeetingID:   "m-hour",
		UserID:      "u-1",
		GeneratedAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
	}
}

// TestScoreHour checks the benchmark's input is what it claims to be.
func TestScoreHour(t *testing.T) {
	r, err := Score(hourInput())
	if err != nil {
		t.Fatalf("Score: %v", err)
	}
	words := 0
	for _, p := range r.Participants {
		words += p.Words
	}
	// first word starts at 0, last ends at 599·6 + 14·0.4 + 0.4 = 3600
	if r.DurationSeconds != 3600 || words != 9000 || len(r.Participants) != 3 || len(r.Criteria) != 8 {
		t.Fatalf("duration %v, words %d, participants %d, criteria %d; want 3600, 9000, 3, 8",
			r.DurationSeconds, words, len(r.Participants), len(r.Criteria))
	}
	if r.Rep != (RepSelection{SpeakerID: "100", Rule: RuleHost}) {
		t.Fatalf("rep %+v, want host 100", r.Rep)
	}
}

func BenchmarkScore60Minutes(b *testing.B) {
	in := hourInput()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Score(in); err != nil {
			b.Fatal(err)
		}
	}
}
