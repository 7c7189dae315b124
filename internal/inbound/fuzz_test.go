package inbound

import (
	"encoding/json"
	"testing"

	"github.com/mira/mira-operator/internal/recall/recalltest"
	"github.com/mira/mira-operator/internal/scoring"
)

// FuzzRoleplayRequest feeds arbitrary bodies through the roleplay request's
// decoding and validation (both transcript formats): it must never panic,
// and an accepted request has an id, a user and a transcript with words.
func FuzzRoleplayRequest(f *testing.F) {
	f.Add(roleplayBody("rp1", plainTranscript, scoring.Rep{}))
	f.Add([]byte(`{"roleplay_id":"rp2","user_id":"u","transcript":` + string(recalltest.SampleTranscript()) + `}`))
	f.Add([]byte(`{"roleplay_id":"rp3","user_id":"u","transcript":[{"speaker":"a","text":"hi","start":1e308,"end":1e308}]}`))
	f.Add([]byte(`{"roleplay_id":"rp4","user_id":"u","transcript":[{"words":null}]}`))
	f.Add([]byte(`{"transcript":{}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req RoleplayRequest
		if json.Unmarshal(body, &req) != nil {
			return
		}
		tr, err := req.validate()
		if err != nil {
			return
		}
		words := 0
		for _, s := range tr.Segments {
			words += len(s.Words)
		}
		if req.RoleplayID == "" || req.UserID == "" || words == 0 {
			t.Fatalf("accepted %q with %d words", body, words)
		}
	})
}
