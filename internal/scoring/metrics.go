package scoring

import (
	"fmt"
	"math"
	"strings"
	"unicode"
)

// Metric units as they appear in reports.
var metricUnits = map[string]string{
	MetricTalkRatio:        "percent",
	MetricLongestMonologue: "seconds",
	MetricQuestionRate:     "questions per 10 minutes",
	MetricFillerWordRate:   "fillers per 100 words",
	MetricKeywordCoverage:  "percent of keywords",
	MetricWordsPerMinute:   "words per minute",
	MetricInteractivity:    "switches per minute",
	MetricPatience:         "seconds",
}

// singleFillers and phraseFillers are the filler words documented in the
// package doc; phrases are keyed by their first word.
var (
	singleFillers = map[string]bool{
		"um": true, "uh": true, "erm": true, "ah": true, "like": true,
		"basically": true, "actually": true, "literally": true,
	}
	phraseFillers = map[string]string{"you": "know", "sort": "of", "kind": "of"}
)

// turn is one or more consecutive segments of the same speaker.
type turn struct {
	speaker    string
	start, end float64
	// tokens are the normalized words (letters and digits only, lowercase).
	tokens    []string
	questions int
}

func (t turn) seconds() float64 { return max(0, t.end-t.start) }

// participantStats is what the report says about one speaker.
type participantStats struct {
	id, name    string
	host        bool
	words       int
	seconds     float64
	turns       int
	longestTurn float64
	questions   int
}

// analysis is the transcript digested once per Score call; every metric reads
// from it.
type analysis struct {
	turns        []turn
	duration     float64
	totalSeconds float64
	participants []*participantStats
	rep          *participantStats
	repID        string
}

// wordEnd is when a word ends: End, or Start when End is missing or earlier.
func wordEnd(w Word) float64 {
	if w.End < w.Start {
		return w.Start
	}
	return w.End
}

// normalize lowercases s and drops every rune that is not a letter or digit.
func normalize(s string) string {
	simple := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			simple = false
			break
		}
	}
	if simple {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// endsQuestion reports whether a word ends a question: it ends in "?" once
// trailing "!", quotes and closing brackets are ignored.
func endsQuestion(text string) bool {
	return strings.HasSuffix(strings.TrimRight(text, "!\"'”’»)]}"), "?")
}

// analyze builds turns and per-speaker statistics. repID must come from
// SelectRep on the same transcript.
func analyze(t Transcript, repID string) *analysis {
	a := &analysis{repID: repID}
	index := map[string]*participantStats{}
	first, last := math.Inf(1), math.Inf(-1)
	var prevQuestion bool
	for _, s := range t.Segments {
		p := index[s.SpeakerID]
		if p == nil {
			p = &participantStats{id: s.SpeakerID}
			index[s.SpeakerID] = p
			a.participants = append(a.participants, p)
		}
		if p.name == "" {
			p.name = strings.TrimSpace(s.SpeakerName)
		}
		p.host = p.host || s.IsHost
		if len(s.Words) == 0 {
			continue
		}
		n := len(a.turns)
		if n == 0 || a.turns[n-1].speaker != s.SpeakerID {
			a.turns = append(a.turns, turn{speaker: s.SpeakerID, start: math.Inf(1), end: math.Inf(-1)})
			n++
			prevQuestion = false
		}
		cur := &a.turns[n-1]
		for _, w := range s.Words {
			cur.start = min(cur.start, w.Start)
			cur.end = max(cur.end, wordEnd(w))
			tok := normalize(w.Text)
			q := endsQuestion(w.Text)
			if q && !(tok == "" && prevQuestion) {
				cur.questions++
			}
			prevQuestion = q
			if tok != "" {
				cur.tokens = append(cur.tokens, tok)
			}
		}
		first, last = min(first, cur.start), max(last, cur.end)
	}
	if len(a.turns) > 0 {
		a.duration = max(0, last-first)
	}
	for _, tr := range a.turns {
		p := index[tr.speaker]
		sec := tr.seconds()
		p.words += len(tr.tokens)
		p.seconds += sec
		p.turns++
		p.longestTurn = max(p.longestTurn, sec)
		p.questions += tr.questions
		a.totalSeconds += sec
	}
	a.rep = index[repID]
	if a.rep == nil { // unreachable when repID came from SelectRep
		a.rep = &participantStats{id: repID}
	}
	return a
}

// measured is one metric's value with the evidence behind it.
type measured struct {
	value    float64
	evidence string
	keywords *KeywordEvidence
}

// measure computes c's metric for the rep. c must have been validated.
func (a *analysis) measure(c Criterion) measured {
	rep := a.rep
	switch c.Metric {
	case MetricTalkRatio:
		if a.totalSeconds == 0 {
			return measured{0, "nobody spoke for a measurable time", nil}
		}
		return measured{rep.seconds / a.totalSeconds * 100,
			fmt.Sprintf("rep spoke %.1f s of %.1f s of speech", rep.seconds, a.totalSeconds), nil}
	case MetricLongestMonologue:
		return measured{rep.longestTurn,
			fmt.Sprintf("longest of %d rep turns: %.1f s", rep.turns, rep.longestTurn), nil}
	case MetricQuestionRate:
		if a.duration == 0 {
			return measured{0, fmt.Sprintf("rep questions: %d; the meeting has no measurable duration", rep.questions), nil}
		}
		return measured{float64(rep.questions) / (a.duration / 600),
			fmt.Sprintf("rep questions: %d in %.1f minutes", rep.questions, a.duration/60), nil}
	case MetricFillerWordRate:
		n := a.fillers()
		if rep.words == 0 {
			return measured{0, "rep said no words", nil}
		}
		return measured{float64(n) / float64(rep.words) * 100,
			fmt.Sprintf("filler words: %d of %d rep words", n, rep.words), nil}
	case MetricKeywordCoverage:
		return a.keywordCoverage(c.Keywords)
	case MetricWordsPerMinute:
		if rep.seconds == 0 {
			return measured{0, fmt.Sprintf("rep words: %d in no measurable speaking time", rep.words), nil}
		}
		return measured{float64(rep.words) / (rep.seconds / 60),
			fmt.Sprintf("rep words: %d in %.1f s of speaking", rep.words, rep.seconds), nil}
	case MetricInteractivity:
		switches := max(0, len(a.turns)-1)
		if a.duration == 0 {
			return measured{0, fmt.Sprintf("speaker switches: %d; the meeting has no measurable duration", switches), nil}
		}
		return measured{float64(switches) / (a.duration / 60),
			fmt.Sprintf("speaker switches: %d in %.1f minutes", switches, a.duration/60), nil}
	case MetricPatience:
		var sum float64
		var n int
		for i := 1; i < len(a.turns); i++ {
			if a.turns[i].speaker == a.repID && a.turns[i-1].speaker != a.repID {
				sum += max(0, a.turns[i].start-a.turns[i-1].end)
				n++
			}
		}
		if n == 0 {
			return measured{0, "rep never spoke right after another speaker", nil}
		}
		return measured{sum / float64(n),
			fmt.Sprintf("mean of %d gaps before rep turns that follow another speaker", n), nil}
	}
	panic("scoring: unvalidated metric " + c.Metric) // validate rejects unknown metrics
}

// fillers counts the rep's filler words; a two-word phrase counts once.
func (a *analysis) fillers() int {
	n := 0
	for _, tr := range a.turns {
		if tr.speaker != a.repID {
			continue
		}
		toks := tr.tokens
		for i := 0; i < len(toks); i++ {
			if second, ok := phraseFillers[toks[i]]; ok && i+1 < len(toks) && toks[i+1] == second {
				n++
				i++
			} else if singleFillers[toks[i]] {
				n++
			}
		}
	}
	return n
}

// keywordTokens splits a keyword into normalized words; it is empty when the
// keyword has no letters or digits.
func keywordTokens(k string) []string {
	var out []string
	for _, f := range strings.Fields(k) {
		if t := normalize(f); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// keywordCoverage measures which distinct keywords the rep said.
func (a *analysis) keywordCoverage(keywords []string) measured {
	ev := &KeywordEvidence{Found: []string{}, Missing: []string{}}
	seen := map[string]bool{}
	total := 0
	for _, k := range keywords {
		toks := keywordTokens(k)
		key := strings.Join(toks, " ")
		if seen[key] {
			continue
		}
		seen[key] = true
		total++
		if a.repSaid(toks) {
			ev.Found = append(ev.Found, strings.TrimSpace(k))
		} else {
			ev.Missing = append(ev.Missing, strings.TrimSpace(k))
		}
	}
	// validate guarantees total > 0.
	return measured{float64(len(ev.Found)) / float64(total) * 100,
		fmt.Sprintf("rep said %d of %d keywords", len(ev.Found), total), ev}
}

// repSaid reports whether the rep said the words of phrase consecutively
// within one turn.
func (a *analysis) repSaid(phrase []string) bool {
	for _, tr := range a.turns {
		if tr.speaker != a.repID {
			continue
		}
	scan:
		for i := 0; i+len(phrase) <= len(tr.tokens); i++ {
			for j, w := range phrase {
				if tr.tokens[i+j] != w {
					continue scan
				}
			}
			return true
		}
	}
	return false
}
