package recall_test

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/mira/mira-operator/internal/recall"
	"github.com/mira/mira-operator/internal/recall/recalltest"
)

func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(fixtureBody))
	f.Add(recalltest.BotFatalPayload("b", "meeting_not_found", map[string]string{"user_id": "u"}, recalltest.BaseTime))
	f.Add(recalltest.LegacyStatusChangePayload("b", "done", "", "https://zoom.us/j/1", recalltest.BaseTime))
	f.Add(recalltest.TranscriptFailedPayload("b", "r", "t", "zoom_captions_failure", nil, recalltest.BaseTime))
	f.Add([]byte(`{"event":"bot.status_change","data":{"bot_id":1,"status":null}}`))
	f.Add([]byte(`{"event":"bot.","data":{"bot":{"id":{"x":1},"metadata":[1]}}}`))
	f.Add([]byte(`{"event":7}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := recall.ParseEvent(body)
		// The HTTP handler's cheap check accepts exactly what parses.
		if cerr := recall.CheckEvent(body); (cerr == nil) != (err == nil) {
			t.Fatalf("CheckEvent() = %v, ParseEvent() = %v", cerr, err)
		}
		if err != nil {
			if !errors.Is(err, recall.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("ParseEvent accepted invalid JSON %q", body)
		}
		if ev.Type == "" {
			t.Fatal("accepted an event without a type")
		}
		switch ev.Kind {
		case recall.KindBotStatus, recall.KindTranscriptDone, recall.KindTranscriptFailed, recall.KindTranscriptStatus,
			recall.KindRecordingStatus, recall.KindUnknown:
		default:
			t.Fatalf("Kind = %q", ev.Kind)
		}
		if ev.Legacy && ev.Metadata != nil {
			t.Fatal("legacy event with metadata")
		}
		if (ev.IsDone() || ev.IsFatal()) && ev.Kind != recall.KindBotStatus {
			t.Fatal("done/fatal on a non-bot event")
		}
	})
}

func FuzzParseTranscript(f *testing.F) {
	f.Add(recalltest.SampleTranscript())
	legacy, err := recalltest.LegacyTranscript(recalltest.SampleTranscript())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(legacy)
	f.Add([]byte(`[{"participant":{"id":1,"name":null,"is_host":null},"words":[{"text":"a","start_timestamp":{"relative":1,"absolute":1741100402},"end_timestamp":null}]}]`))
	f.Add([]byte(`[{"speaker":null,"speaker_id":"x","words":[{"text":"b","start_timestamp":"NaN","end_timestamp":1e999}]}]`))
	f.Add([]byte(`[1,"x",null,{"words":{}}]`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		tr, err := recall.ParseTranscript(raw)
		if err != nil {
			return
		}
		words := 0
		for _, s := range tr.Segments {
			if s.SpeakerID == "" {
				t.Fatal("segment without a speaker id")
			}
			for _, w := range s.Words {
				words++
				if w.Text == "" {
					t.Fatal("word without text")
				}
				for _, v := range []float64{w.Start, w.End} {
					if math.IsNaN(v) || math.IsInf(v, 0) {
						t.Fatalf("non-finite time %v", v)
					}
				}
			}
		}
		if words > recall.MaxTranscriptWords {
			t.Fatalf("%d words accepted", words)
		}
		// A parsed transcript must be encodable (it is stored as JSON).
		if _, err := json.Marshal(tr); err != nil {
			t.Fatalf("parsed transcript does not encode: %v", err)
		}
	})
}
