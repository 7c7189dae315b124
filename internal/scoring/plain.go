package scoring

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits of ParsePlain.
const (
	// MaxPlainEntries is the most entries a plain transcript may have.
	MaxPlainEntries = 100_000
	// MaxPlainWords is the most words a plain transcript may have in total.
	MaxPlainWords = 1_000_000
)

// ErrPlainTooLarge is wrapped by ParsePlain when a transcript exceeds
// MaxPlainEntries or MaxPlainWords.
var ErrPlainTooLarge = errors.New("plain transcript too large")

// plainEntry is one element of the plain roleplay format.
type plainEntry struct {
	Speaker string   `json:"speaker"`
	Text    string   `json:"text"`
	Start   *float64 `json:"start"`
	End     *float64 `json:"end"`
}

// ParsePlain parses the roleplay plain format: a JSON array of
// {"speaker": "…", "text": "…", "start": 1.5, "end": 4.0} with times in
// seconds. Each entry becomes one Segment (consecutive entries of one speaker
// stay separate; Score merges them into a turn) whose SpeakerID and
// SpeakerName are the trimmed speaker. The text is split into words on white
// space and the words get equal shares of [start, end] in order: word i of n
// spans start + (end−start)·i/n to start + (end−start)·(i+1)/n.
//
// It rejects input that is not a JSON array of objects, an entry with an
// empty speaker, a missing, negative or non-finite start or end, an end past
// MaxTimeSeconds, end before start, more than MaxPlainEntries entries or more than MaxPlainWords words.
// Unknown fields are ignored.
func ParsePlain(raw []byte) (Transcript, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return Transcript{}, fmt.Errorf("decode plain transcript: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return Transcript{}, errors.New("decode plain transcript: not a JSON array")
	}
	out := Transcript{Segments: []Segment{}}
	words := 0
	for i := 0; dec.More(); i++ {
		if i == MaxPlainEntries {
			return Transcript{}, fmt.Errorf("%w: more than %d entries", ErrPlainTooLarge, MaxPlainEntries)
		}
		var e plainEntry
		if err := dec.Decode(&e); err != nil {
			return Transcript{}, fmt.Errorf("decode plain transcript entry %d: %w", i, err)
		}
		speaker := strings.TrimSpace(e.Speaker)
		switch {
		case speaker == "":
			return Transcript{}, fmt.Errorf("plain transcript entry %d: speaker is empty", i)
		case e.Start == nil || e.End == nil:
			return Transcript{}, fmt.Errorf("plain transcript entry %d: start and end are required", i)
		case !finite(*e.Start) || !finite(*e.End) || *e.End > MaxTimeSeconds:
			return Transcript{}, fmt.Errorf("plain transcript entry %d: times must be finite and at most %g s", i, float64(MaxTimeSeconds))
		case *e.Start < 0:
			return Transcript{}, fmt.Errorf("plain transcript entry %d: start %v is negative", i, *e.Start)
		case *e.End < *e.Start:
			return Transcript{}, fmt.Errorf("plain transcript entry %d: end %v is before start %v", i, *e.End, *e.Start)
		}
		fields := strings.Fields(e.Text)
		words += len(fields)
		if words > MaxPlainWords {
			return Transcript{}, fmt.Errorf("%w: more than %d words", ErrPlainTooLarge, MaxPlainWords)
		}
		seg := Segment{SpeakerID: speaker, SpeakerName: speaker, Words: make([]Word, len(fields))}
		start, end, n := *e.Start, *e.End, float64(len(fields))
		at := func(k int) float64 { return min(end, start+(end-start)*(float64(k)/n)) }
		for j, f := range fields {
			seg.Words[j] = Word{Text: f, Start: at(j), End: at(j + 1)}
		}
		if len(fields) > 0 {
			// Pin the last word to the entry's end so rounding cannot move it.
			seg.Words[len(fields)-1].End = end
		}
		out.Segments = append(out.Segments, seg)
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return Transcript{}, fmt.Errorf("decode plain transcript: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Transcript{}, errors.New("decode plain transcript: data after the array")
	}
	return out, nil
}
