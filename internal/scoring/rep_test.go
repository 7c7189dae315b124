package scoring

import (
	"errors"
	"testing"
)

func TestSelectRep(t *testing.T) {
	withHost := Transcript{Segments: []Segment{
		{SpeakerID: "1", SpeakerName: "Dana", IsHost: true},
		{SpeakerID: "2", SpeakerName: " Sam Ortega "},
		{SpeakerID: "3", SpeakerName: "sam ortega"},
	}}
	noHost := Transcript{Segments: []Segment{
		{SpeakerID: "2", SpeakerName: "Sam"},
		{SpeakerID: "3", SpeakerName: "Kim"},
	}}
	tests := []struct {
		name     string
		t        Transcript
		rep      Rep
		wantID   string
		wantRule string
		wantErr  bool
	}{
		{"id wins", withHost, Rep{ID: "2"}, "2", RuleID, false},
		{"id wins over name", withHost, Rep{ID: "3", Name: "Dana"}, "3", RuleID, false},
		{"name when id unknown, first match, trimmed and case-insensitive", withHost, Rep{ID: "9", Name: "SAM ORTEGA "}, "2", RuleName, false},
		{"name only", noHost, Rep{Name: "kim"}, "3", RuleName, false},
		{"host when neither matches", withHost, Rep{ID: "9", Name: "nobody"}, "1", RuleHost, false},
		{"host when rep is empty", withHost, Rep{}, "1", RuleHost, false},
		{"empty id does not match an empty speaker id", Transcript{Segments: []Segment{{SpeakerID: ""}}}, Rep{}, "", "", true},
		{"no match and no host", noHost, Rep{ID: "x", Name: "y"}, "", "", true},
		{"empty transcript", Transcript{}, Rep{ID: "1"}, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, rule, err := SelectRep(tt.t, tt.rep)
			if tt.wantErr {
				if !errors.Is(err, ErrNoRep) {
					t.Fatalf("err = %v, want ErrNoRep", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("SelectRep: %v", err)
			}
			if id != tt.wantID || rule != tt.wantRule {
				t.Fatalf("got (%q, %q), want (%q, %q)", id, rule, tt.wantID, tt.wantRule)
			}
		})
	}
}
