package recalltest

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Turn is one speaker's turn for Transcript.
type Turn struct {
	// ParticipantID is Recall's numeric participant id.
	ParticipantID int
	// Name is the display name; "" renders as null.
	Name string
	// IsHost renders is_host as true; false renders null, as Recall does
	// for participants it knows nothing about.
	IsHost bool
	// Email renders participant.email; "" renders null.
	Email string
	// Text is what was said; it is split into words on whitespace.
	Text string
}

// Word timing of Transcript, in milliseconds.
const (
	firstWordMs = 1420
	wordMs      = 300
	wordGapMs   = 100
	turnGapMs   = 800
)

// Rep and prospect of SampleTranscript.
const (
	// SampleRepID is the participant id of the sample's rep (the host).
	SampleRepID = 100
	// SampleRepName is the display name of the sample's rep.
	SampleRepName = "Dana Whitfield"
	// SampleProspectID is the participant id of the sample's prospect.
	SampleProspectID = 200
	// SampleProspectName is the display name of the sample's prospect.
	SampleProspectName = "Sam Ortega"
)

// SampleTurns returns the turns of SampleTranscript: a short discovery call
// in which the rep (host) asks questions, says "Um" and "uh" once each, and
// the prospect answers.
func SampleTurns() []Turn {
	rep := Turn{ParticipantID: SampleRepID, Name: SampleRepName, IsHost: true, Email: "dana@mira.example"}
	prospect := Turn{ParticipantID: SampleProspectID, Name: SampleProspectName}
	say := func(t Turn, text string) Turn { t.Text = text; return t }
	return []Turn{
		say(rep, "Hi Sam, thanks for joining. Um, how is your team handling call reviews today?"),
		say(prospect, "Honestly we listen to a few recordings each week, but it takes forever."),
		say(rep, "That makes sense. What would change if every call got a scorecard automatically?"),
		say(prospect, "We could coach new reps faster, like within their first month."),
		say(rep, "Great. So, uh, should we set up a pilot with your team next week?"),
		say(prospect, "Yes, let's do Tuesday."),
	}
}

// SampleTranscript is Transcript(SampleTurns()...): 69 words, 41 of them the
// rep's, in the current download format.
func SampleTranscript() []byte {
	return Transcript(SampleTurns()...)
}

// Transcript renders turns in Recall's current download format:
// [{"participant":{"id","name","is_host","platform","extra_data","email"},
// "words":[{"text","start_timestamp":{"relative","absolute"},
// "end_timestamp":{…}}]}]. Words are 0.3 s long, 0.1 s apart, with 0.8 s
// between turns, starting 1.42 s into the recording; absolute times are
// RFC 3339 strings counted from BaseTime.
func Transcript(turns ...Turn) []byte {
	type stamp struct {
		Relative float64 `json:"relative"`
		Absolute string  `json:"absolute"`
	}
	type word struct {
		Text  string `json:"text"`
		Start stamp  `json:"start_timestamp"`
		End   stamp  `json:"end_timestamp"`
	}
	type participant struct {
		ID        int            `json:"id"`
		Name      *string        `json:"name"`
		IsHost    *bool          `json:"is_host"`
		Platform  string         `json:"platform"`
		ExtraData map[string]any `json:"extra_data"`
		Email     *string        `json:"email"`
	}
	type entry struct {
		Participant participant `json:"participant"`
		Words       []word      `json:"words"`
	}
	at := func(ms int) stamp {
		return stamp{
			Relative: float64(ms) / 1000,
			Absolute: BaseTime.Add(time.Duration(ms) * time.Millisecond).Format(time.RFC3339Nano),
		}
	}
	out := make([]entry, 0, len(turns))
	ms := firstWordMs
	for _, t := range turns {
		e := entry{Participant: participant{ID: t.ParticipantID, Platform: "desktop", ExtraData: map[string]any{}}, Words: []word{}}
		if t.Name != "" {
			e.Participant.Name = &t.Name
		}
		if t.IsHost {
			e.Participant.IsHost = &t.IsHost
		}
		if t.Email != "" {
			e.Participant.Email = &t.Email
		}
		for _, w := range strings.Fields(t.Text) {
			e.Words = append(e.Words, word{Text: w, Start: at(ms), End: at(ms + wordMs)})
			ms += wordMs + wordGapMs
		}
		ms += turnGapMs
		out = append(out, e)
	}
	b, err := json.Marshal(out)
	if err != nil {
		panic(fmt.Sprintf("recalltest: marshal transcript: %v", err)) // only plain values: cannot happen
	}
	return b
}

// LegacyTranscript converts a current-format transcript into the legacy
// /bot/{id}/transcript/ format: [{"speaker","speaker_id","language",
// "words":[{"text","start_timestamp","end_timestamp"}]}] with float seconds.
func LegacyTranscript(current []byte) ([]byte, error) {
	v, err := legacyTranscript(current)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func legacyTranscript(current []byte) (any, error) {
	var in []struct {
		Participant struct {
			ID   json.RawMessage `json:"id"`
			Name *string         `json:"name"`
		} `json:"participant"`
		Words []struct {
			Text  string `json:"text"`
			Start *struct {
				Relative float64 `json:"relative"`
			} `json:"start_timestamp"`
			End *struct {
				Relative float64 `json:"relative"`
			} `json:"end_timestamp"`
		} `json:"words"`
	}
	if err := json.Unmarshal(current, &in); err != nil {
		return nil, fmt.Errorf("decode current-format transcript: %w", err)
	}
	type word struct {
		Text  string   `json:"text"`
		Start float64  `json:"start_timestamp"`
		End   *float64 `json:"end_timestamp"`
	}
	type entry struct {
		Speaker   *string         `json:"speaker"`
		SpeakerID json.RawMessage `json:"speaker_id,omitempty"`
		Language  string          `json:"language"`
		Words     []word          `json:"words"`
	}
	out := make([]entry, 0, len(in))
	for _, e := range in {
		le := entry{Speaker: e.Participant.Name, SpeakerID: e.Participant.ID, Language: "en", Words: []word{}}
		for _, w := range e.Words {
			lw := word{Text: w.Text}
			if w.Start != nil {
				lw.Start = w.Start.Relative
			}
			if w.End != nil {
				end := w.End.Relative
				lw.End = &end
			}
			le.Words = append(le.Words, lw)
		}
		out = append(out, le)
	}
	return out, nil
}
