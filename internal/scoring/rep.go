package scoring

import (
	"errors"
	"fmt"
	"strings"
)

// Rules reported by SelectRep.
const (
	RuleID   = "id"   // matched Rep.ID against SpeakerID
	RuleName = "name" // matched Rep.Name against SpeakerName
	RuleHost = "host" // fell back to the participant marked as host
)

// ErrNoRep is returned (wrapped) when no participant of a transcript can be
// identified as the rep.
var ErrNoRep = errors.New("no participant is the rep")

// SelectRep returns the SpeakerID of the rep in t and the rule that chose it
// (RuleID, RuleName or RuleHost). See the package documentation for the order
// of the rules. It returns an error wrapping ErrNoRep when no rule applies.
func SelectRep(t Transcript, rep Rep) (speakerID string, rule string, err error) {
	if rep.ID != "" {
		for _, s := range t.Segments {
			if s.SpeakerID == rep.ID {
				return s.SpeakerID, RuleID, nil
			}
		}
	}
	if name := strings.TrimSpace(rep.Name); name != "" {
		for _, s := range t.Segments {
			if strings.EqualFold(strings.TrimSpace(s.SpeakerName), name) {
				return s.SpeakerID, RuleName, nil
			}
		}
	}
	for _, s := range t.Segments {
		if s.IsHost {
			return s.SpeakerID, RuleHost, nil
		}
	}
	return "", "", fmt.Errorf("%w: no speaker has id %q or name %q and none is marked host", ErrNoRep, rep.ID, rep.Name)
}
