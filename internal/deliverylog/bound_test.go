package deliverylog

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
)

func attempts(n, bodyBytes int) []datav1.Attempt {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]datav1.Attempt, n)
	for i := range out {
		out[i] = datav1.Attempt{Number: i + 1, Time: t0.Add(time.Duration(i) * time.Minute), StatusCode: 500 + i%4,
			URL: "https://example.com/hook", RequestHeaders: map[string]string{"X-Mira-Event": "report.completed"},
			ResponseHeaders: map[string]string{"Content-Type": "text/plain"}, ResponseBody: strings.Repeat("x", bodyBytes), Outcome: "Failed"}
	}
	return out
}

func TestBound(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		attempts    int
		bodyBytes   int
		eventBody   int
		max         int
		wantKept    int
		wantOlder   int
		wantCodes   []int
		wantOmitted bool
	}{
		{name: "small record unchanged", attempts: 3, bodyBytes: 100, eventBody: 100, max: DefaultMaxRecordBytes, wantKept: 3},
		{name: "beyond the kept count", attempts: 12, bodyBytes: 100, eventBody: 100, max: DefaultMaxRecordBytes,
			wantKept: 10, wantOlder: 2, wantCodes: []int{500, 501}},
		{name: "large responses fold more", attempts: 10, bodyBytes: 200 << 10, eventBody: 100, max: DefaultMaxRecordBytes,
			wantKept: 5, wantOlder: 5, wantCodes: []int{500, 501, 502, 503, 500}},
		{name: "summary keeps the last codes only", attempts: 30, bodyBytes: 10, eventBody: 10, max: DefaultMaxRecordBytes,
			wantKept: 10, wantOlder: 20, wantCodes: []int{502, 503, 500, 501, 502, 503, 500, 501, 502, 503}},
		{name: "one huge response is cut", attempts: 2, bodyBytes: 2 << 20, eventBody: 100, max: DefaultMaxRecordBytes,
			wantKept: 1, wantOlder: 1, wantCodes: []int{500}},
		{name: "huge event body is dropped", attempts: 1, bodyBytes: 10, eventBody: 2 << 20, max: DefaultMaxRecordBytes,
			wantKept: 1, wantOmitted: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &datav1.Delivery{ID: "dlv_1", State: datav1.StateRetrying, Body: strings.Repeat("b", tc.eventBody),
				AttemptCount: tc.attempts, Attempts: attempts(tc.attempts, tc.bodyBytes)}
			Bound(r, tc.max)
			b, _ := json.Marshal(r)
			if len(b) > tc.max {
				t.Fatalf("record has %d bytes, budget %d", len(b), tc.max)
			}
			if len(r.Attempts) != tc.wantKept {
				t.Fatalf("kept %d attempts, want %d", len(r.Attempts), tc.wantKept)
			}
			if last := r.Attempts[len(r.Attempts)-1]; last.Number != tc.attempts {
				t.Fatalf("newest kept attempt is #%d, want #%d", last.Number, tc.attempts)
			}
			if r.BodyOmitted != tc.wantOmitted || (r.Body == "") != tc.wantOmitted {
				t.Fatalf("body omitted %v (len %d), want %v", r.BodyOmitted, len(r.Body), tc.wantOmitted)
			}
			if r.AttemptCount != tc.attempts || r.State != datav1.StateRetrying {
				t.Fatalf("count %d state %s changed", r.AttemptCount, r.State)
			}
			if tc.wantOlder == 0 {
				if r.OlderAttempts != nil {
					t.Fatalf("unexpected summary %+v", r.OlderAttempts)
				}
				return
			}
			s := r.OlderAttempts
			if s == nil || s.Count != tc.wantOlder || !s.First.Equal(t0) || !s.Last.Equal(t0.Add(time.Duration(tc.wantOlder-1)*time.Minute)) {
				t.Fatalf("summary %+v, want %d attempts from %s", s, tc.wantOlder, t0)
			}
			if len(s.LastCodes) != len(tc.wantCodes) {
				t.Fatalf("last codes %v, want %v", s.LastCodes, tc.wantCodes)
			}
			for i := range s.LastCodes {
				if s.LastCodes[i] != tc.wantCodes[i] {
					t.Fatalf("last codes %v, want %v", s.LastCodes, tc.wantCodes)
				}
			}
		})
	}
}

func TestRecordBudget(t *testing.T) {
	for _, tc := range []struct {
		payload int64
		want    int
	}{
		{0, DefaultMaxRecordBytes},
		{1 << 20, DefaultMaxRecordBytes},
		{8 << 20, DefaultMaxRecordBytes},
		{256 << 10, 240 << 10},
		{20 << 10, MinMaxRecordBytes},
	} {
		if got := RecordBudget(tc.payload); got != tc.want {
			t.Errorf("RecordBudget(%d) = %d, want %d", tc.payload, got, tc.want)
		}
	}
}
