package recall_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/mira/mira-operator/internal/recall"
	"github.com/mira/mira-operator/internal/recall/recalltest"
	"github.com/mira/mira-operator/internal/scoring"
)

func TestParseTranscript(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want scoring.Transcript
	}{
		{
			name: "current, absolute as string and as number, null end",
			raw: `[
			 {"participant":{"id":100,"name":"Dana","is_host":true,"platform":"desktop","extra_data":{},"email":"dana@example.com"},
			  "words":[
			   {"text":"Hello","start_timestamp":{"relative":1.42,"absolute":"2025-03-04T15:00:01.42Z"},"end_timestamp":{"relative":1.9,"absolute":"2025-03-04T15:00:01.9Z"}},
			   {"text":"there?","start_timestamp":{"relative":2,"absolute":1741100402.0},"end_timestamp":null}
			  ]},
			 {"participant":{"id":200,"name":null,"is_host":null,"email":null},
			  "words":[{"text":"Hi","start_timestamp":{"relative":3.5,"absolute":null},"end_timestamp":{"relative":3.75,"absolute":null}}]}
			]`,
			want: scoring.Transcript{Segments: []scoring.Segment{
				{SpeakerID: "100", SpeakerName: "Dana", IsHost: true, Words: []scoring.Word{{Text: "Hello", Start: 1.42, End: 1.9}, {Text: "there?", Start: 2}}},
				{SpeakerID: "200", Words: []scoring.Word{{Text: "Hi", Start: 3.5, End: 3.75}}},
			}},
		},
		{
			name: "current without id falls back to the name, then to unknown",
			raw: `[
			 {"participant":{"name":"Sam"},"words":[{"text":"yes","start_timestamp":{"relative":"4.5"}}]},
			 {"participant":{"id":null,"name":null},"words":[]}
			]`,
			want: scoring.Transcript{Segments: []scoring.Segment{
				{SpeakerID: "Sam", SpeakerName: "Sam", Words: []scoring.Word{{Text: "yes", Start: 4.5}}},
				{SpeakerID: "unknown", Words: []scoring.Word{}},
			}},
		},
		{
			name: "legacy",
			raw: `[
			 {"speaker":"Dana","speaker_id":100,"language":"en","words":[{"text":"So","start_timestamp":1.42,"end_timestamp":3.9},{"text":"um","start_timestamp":4,"end_timestamp":null}]},
			 {"speaker":null,"language":null,"words":[{"text":"Right.","start_timestamp":5.25}]},
			 {"speaker":"Sam","words":[{"text":"  ","start_timestamp":6},"junk",{"text":"ok","start_timestamp":"bad","end_timestamp":7}]}
			]`,
			want: scoring.Transcript{Segments: []scoring.Segment{
				{SpeakerID: "100", SpeakerName: "Dana", Words: []scoring.Word{{Text: "So", Start: 1.42, End: 3.9}, {Text: "um", Start: 4}}},
				{SpeakerID: "unknown", Words: []scoring.Word{{Text: "Right.", Start: 5.25}}},
				{SpeakerID: "Sam", SpeakerName: "Sam", Words: []scoring.Word{{Text: "ok", End: 7}}},
			}},
		},
		{
			name: "mixed formats and non-object entries",
			raw:  `[7, null, {"speaker":"A","words":[{"text":"a","start_timestamp":1,"end_timestamp":2}]}, {"participant":{"id":1},"words":[{"text":"b","start_timestamp":{"relative":3},"end_timestamp":{"relative":4}}]}]`,
			want: scoring.Transcript{Segments: []scoring.Segment{
				{SpeakerID: "A", SpeakerName: "A", Words: []scoring.Word{{Text: "a", Start: 1, End: 2}}},
				{SpeakerID: "1", Words: []scoring.Word{{Text: "b", Start: 3, End: 4}}},
			}},
		},
		{
			name: "empty",
			raw:  `[]`,
			want: scoring.Transcript{Segments: []scoring.Segment{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := recall.ParseTranscript([]byte(tt.raw))
			if err != nil {
				t.Fatalf("ParseTranscript() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseTranscript()\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseTranscriptErrors(t *testing.T) {
	for _, raw := range []string{``, `null`, `{"words":[]}`, `[{"speaker":"a"`, `"[]"`} {
		if _, err := recall.ParseTranscript([]byte(raw)); err == nil {
			t.Errorf("ParseTranscript(%q) succeeded, want an error", raw)
		}
	}
}

func TestParseTranscriptWordLimit(t *testing.T) {
	build := func(words int) []byte {
		var b strings.Builder
		b.WriteString(`[{"speaker":"a","words":[`)
		for i := range words {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"text":"w","start_timestamp":1}`)
		}
		b.WriteString(`]}]`)
		return []byte(b.String())
	}
	got, err := recall.ParseTranscript(build(recall.MaxTranscriptWords))
	if err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	if n := len(got.Segments[0].Words); n != recall.MaxTranscriptWords {
		t.Fatalf("at the limit: %d words, want %d", n, recall.MaxTranscriptWords)
	}
	if _, err := recall.ParseTranscript(build(recall.MaxTranscriptWords + 1)); !errors.Is(err, recall.ErrTranscriptTooLarge) {
		t.Fatalf("past the limit: error = %v, want ErrTranscriptTooLarge", err)
	}
}

// TestParseTranscriptSample pins recalltest's sample so scoring tests can
// rely on its shape, and checks that its legacy rendering parses the same.
func TestParseTranscriptSample(t *testing.T) {
	current, err := recall.ParseTranscript(recalltest.SampleTranscript())
	if err != nil {
		t.Fatal(err)
	}
	legacyRaw, err := recalltest.LegacyTranscript(recalltest.SampleTranscript())
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := recall.ParseTranscript(legacyRaw)
	if err != nil {
		t.Fatal(err)
	}
	// The legacy format has no is_host; otherwise both must agree.
	stripped := scoring.Transcript{}
	for _, s := range current.Segments {
		s.IsHost = false
		stripped.Segments = append(stripped.Segments, s)
	}
	if !reflect.DeepEqual(legacy, stripped) {
		t.Fatalf("legacy rendering differs\n got %+v\nwant %+v", legacy, stripped)
	}

	type shape struct {
		id, name string
		host     bool
		words    int
		first    scoring.Word
	}
	want := []shape{
		{"100", "Dana Whitfield", true, 14, scoring.Word{Text: "Hi", Start: 1.42, End: 1.72}},
		{"200", "Sam Ortega", false, 13, scoring.Word{Text: "Honestly", Start: 7.82, End: 8.12}},
		{"100", "Dana Whitfield", true, 13, scoring.Word{Text: "That", Start: 13.82, End: 14.12}},
		{"200", "Sam Ortega", false, 11, scoring.Word{Text: "We", Start: 19.82, End: 20.12}},
		{"100", "Dana Whitfield", true, 14, scoring.Word{Text: "Great.", Start: 25.02, End: 25.32}},
		{"200", "Sam Ortega", false, 4, scoring.Word{Text: "Yes,", Start: 31.42, End: 31.72}},
	}
	if len(current.Segments) != len(want) {
		t.Fatalf("sample has %d segments, want %d", len(current.Segments), len(want))
	}
	for i, w := range want {
		s := current.Segments[i]
		got := shape{s.SpeakerID, s.SpeakerName, s.IsHost, len(s.Words), s.Words[0]}
		if got != w {
			t.Errorf("segment %d = %+v, want %+v", i, got, w)
		}
	}
}
