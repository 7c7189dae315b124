package scoring

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParsePlain(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want Transcript
	}{
		{"words share the span", // 3 words over [1.5, 3]: 0.5 s each
			`[{"speaker":"Rep","text":"hello there  friend","start":1.5,"end":3},
			  {"speaker":" Rep ","text":"ok?","start":4,"end":4.5,"extra":true},
			  {"speaker":"Buyer","text":"","start":5,"end":5}]`,
			Transcript{Segments: []Segment{
				{SpeakerID: "Rep", SpeakerName: "Rep", Words: []Word{w("hello", 1.5, 2), w("there", 2, 2.5), w("friend", 2.5, 3)}},
				{SpeakerID: "Rep", SpeakerName: "Rep", Words: []Word{w("ok?", 4, 4.5)}},
				{SpeakerID: "Buyer", SpeakerName: "Buyer", Words: []Word{}},
			}}},
		{"zero-length entry", `[{"speaker":"a","text":"x y","start":2,"end":2}]`,
			Transcript{Segments: []Segment{{SpeakerID: "a", SpeakerName: "a", Words: []Word{w("x", 2, 2), w("y", 2, 2)}}}}},
		// 3 words over [0, 1]: ends at 1/3, 2/3 and exactly 1.
		{"last word ends at end", `[{"speaker":"a","text":"x y z","start":0,"end":1}]`,
			Transcript{Segments: []Segment{{SpeakerID: "a", SpeakerName: "a", Words: []Word{w("x", 0, 1.0/3), w("y", 1.0/3, 2.0/3), w("z", 2.0/3, 1)}}}}},
		{"empty array", ` [ ] `, Transcript{Segments: []Segment{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePlain([]byte(tt.raw))
			if err != nil {
				t.Fatalf("ParsePlain: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParsePlainRejects(t *testing.T) {
	tests := []struct {
		name, raw, want string
	}{
		{"empty input", ``, "decode plain transcript"},
		{"object", `{"speaker":"a"}`, "not a JSON array"},
		{"not an object", `[1]`, "decode plain transcript entry 0"},
		{"null entry", `[null]`, "entry 0: speaker is empty"},
		{"empty speaker", `[{"speaker":"","text":"x","start":0,"end":1}]`, "entry 0: speaker is empty"},
		{"blank speaker", `[{"speaker":"a","text":"x","start":0,"end":1},{"speaker":" \t","text":"x","start":0,"end":1}]`, "entry 1: speaker is empty"},
		{"end before start", `[{"speaker":"a","text":"x","start":2,"end":1}]`, "end 1 is before start 2"},
		{"missing end", `[{"speaker":"a","text":"x","start":2}]`, "start and end are required"},
		{"null start", `[{"speaker":"a","text":"x","start":null,"end":1}]`, "start and end are required"},
		{"negative start", `[{"speaker":"a","text":"x","start":-1,"end":1}]`, "start -1 is negative"},
		{"time too far", `[{"speaker":"a","text":"x","start":0,"end":1000000001}]`, "times must be finite and at most 1e+09 s"},
		{"overflowing number", `[{"speaker":"a","text":"x","start":0,"end":1e400}]`, "decode plain transcript entry 0"},
		{"string time", `[{"speaker":"a","text":"x","start":"0","end":1}]`, "decode plain transcript entry 0"},
		{"unterminated", `[{"speaker":"a","text":"x","start":0,"end":1}`, "decode plain transcript"},
		{"trailing data", `[] x`, "decode plain transcript"},
		{"second array", `[] []`, "data after the array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePlain([]byte(tt.raw))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParsePlainLimits(t *testing.T) {
	entries := func(n int, text string) []byte {
		var b strings.Builder
		b.WriteString("[")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`{"speaker":"a","text":"` + text + `","start":0,"end":1}`)
		}
		b.WriteString("]")
		return []byte(b.String())
	}
	if tr, err := ParsePlain(entries(MaxPlainEntries, "")); err != nil || len(tr.Segments) != MaxPlainEntries {
		t.Fatalf("at the entry limit: %d segments, err %v", len(tr.Segments), err)
	}
	if _, err := ParsePlain(entries(MaxPlainEntries+1, "")); !errors.Is(err, ErrPlainTooLarge) {
		t.Fatalf("over the entry limit: err = %v, want ErrPlainTooLarge", err)
	}
	if _, err := ParsePlain(entries(1, strings.Repeat("a ", MaxPlainWords+1))); !errors.Is(err, ErrPlainTooLarge) {
		t.Fatalf("over the word limit: err = %v, want ErrPlainTooLarge", err)
	}
}

func FuzzParsePlain(f *testing.F) {
	f.Add([]byte(`[{"speaker":"Rep","text":"hello there, um, how are you?","start":0,"end":3},{"speaker":"Buyer","text":"Fine. Pricing?","start":3.5,"end":5}]`))
	f.Add([]byte(`[{"speaker":"a","text":"","start":0,"end":0}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"speaker":"a","text":"x","start":2,"end":1}]`))
	f.Add([]byte(`[{"speaker":"a","text":"x\u00a0y\tz","start":1e300,"end":1.7e308}]`))
	f.Add([]byte(`[{"speaker":"a","text":"x y z","start":999999999.9,"end":1e9},{"speaker":"b","text":"w","start":0,"end":1e9}]`))
	f.Add([]byte(`{"speaker":"a"}`))
	f.Add([]byte(`[{"speaker":"a","text":"x","start":0,"end":1}] trailing`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		tr, err := ParsePlain(raw)
		if err != nil {
			return
		}
		for i, s := range tr.Segments {
			if s.SpeakerID == "" || s.SpeakerID != strings.TrimSpace(s.SpeakerID) || s.SpeakerName != s.SpeakerID {
				t.Fatalf("segment %d: bad speaker %q / %q", i, s.SpeakerID, s.SpeakerName)
			}
			prev := math.Inf(-1)
			for j, wd := range s.Words {
				if wd.Text == "" || strings.TrimSpace(wd.Text) != wd.Text {
					t.Fatalf("segment %d word %d: bad text %q", i, j, wd.Text)
				}
				if !finite(wd.Start) || !finite(wd.End) || wd.Start < 0 || wd.End < wd.Start || wd.Start < prev {
					t.Fatalf("segment %d word %d: bad times %v–%v after %v", i, j, wd.Start, wd.End, prev)
				}
				prev = wd.Start
			}
		}
		if len(tr.Segments) == 0 {
			return
		}
		// Whatever parses must score without panicking and encode as JSON.
		r, err := Score(Input{
			Transcript:  tr,
			Template:    allMetrics(70),
			Rep:         Rep{Name: tr.Segments[0].SpeakerName},
			RoleplayID:  "rp",
			GeneratedAt: time.Unix(0, 0),
		})
		if err != nil {
			t.Fatalf("Score of a parsed transcript: %v", err)
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("marshal report: %v", err)
		}
		if r.OverallScore < 0 || r.OverallScore > 100 {
			t.Fatalf("overall score %v outside 0–100", r.OverallScore)
		}
	})
}
