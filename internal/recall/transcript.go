package recall

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mira/mira-operator/internal/scoring"
)

// MaxTranscriptWords bounds the words ParseTranscript accepts in one
// transcript. Ten hours of fast speech is well under it.
const MaxTranscriptWords = 200_000

// UnknownSpeaker is the SpeakerID of a turn whose participant has neither an
// id nor a name.
const UnknownSpeaker = "unknown"

// ErrTranscriptTooLarge is returned by ParseTranscript for a transcript with
// more than MaxTranscriptWords words.
var ErrTranscriptTooLarge = errors.New("transcript has too many words")

// ParseTranscript parses a Recall transcript in either format into a
// scoring.Transcript, one Segment per entry, in order:
//
//   - current (download_url): [{"participant":{"id","name","is_host",…},
//     "words":[{"text","start_timestamp":{"relative","absolute"},
//     "end_timestamp":{…}|null}]}]
//   - legacy (/bot/{id}/transcript/): [{"speaker","speaker_id","language",
//     "words":[{"text","start_timestamp":1.42,"end_timestamp":3.9}]}]
//
// The format is detected per entry (an entry with a "participant" object is
// current). Decoding is lenient: a timestamp may be a number of seconds or an
// object whose "relative" is one; a missing or null end gives End 0; entries
// and words that are not objects, and words without text, are skipped.
// SpeakerID is the participant id (speaker_id) as a decimal string, else the
// name, else UnknownSpeaker. It fails when raw is not a JSON array or when
// the transcript has more than MaxTranscriptWords words.
func ParseTranscript(raw []byte) (scoring.Transcript, error) {
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '[' {
		return scoring.Transcript{}, errors.New("decode transcript: not a JSON array")
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		return scoring.Transcript{}, fmt.Errorf("decode transcript: %w", err)
	}
	out := scoring.Transcript{Segments: make([]scoring.Segment, 0, len(entries))}
	total := 0
	for _, e := range entries {
		entry := object(e)
		if entry == nil {
			continue
		}
		words := array(entry["words"])
		total += len(words)
		if total > MaxTranscriptWords {
			return scoring.Transcript{}, fmt.Errorf("%w: more than %d", ErrTranscriptTooLarge, MaxTranscriptWords)
		}
		var seg scoring.Segment
		if p := object(entry["participant"]); p != nil {
			seg.SpeakerID = scalar(p["id"])
			seg.SpeakerName = scalar(p["name"])
			seg.IsHost = boolean(p["is_host"])
		} else {
			seg.SpeakerID = scalar(entry["speaker_id"])
			seg.SpeakerName = scalar(entry["speaker"])
			seg.IsHost = boolean(entry["is_host"])
		}
		seg.SpeakerName = strings.TrimSpace(seg.SpeakerName)
		seg.SpeakerID = strings.TrimSpace(seg.SpeakerID)
		if seg.SpeakerID == "" {
			seg.SpeakerID = seg.SpeakerName
		}
		if seg.SpeakerID == "" {
			seg.SpeakerID = UnknownSpeaker
		}
		seg.Words = make([]scoring.Word, 0, len(words))
		for _, w := range words {
			word := object(w)
			if word == nil {
				continue
			}
			text := strings.TrimSpace(scalar(word["text"]))
			if text == "" {
				continue
			}
			seg.Words = append(seg.Words, scoring.Word{
				Text:  text,
				Start: seconds(word["start_timestamp"]),
				End:   seconds(word["end_timestamp"]),
			})
		}
		out.Segments = append(out.Segments, seg)
	}
	return out, nil
}

// seconds reads a word timestamp: a number (legacy) or an object whose
// "relative" field is one (current). Anything else is 0.
func seconds(raw json.RawMessage) float64 {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		raw = object(raw)["relative"]
	}
	f, _ := number(raw)
	return f
}
