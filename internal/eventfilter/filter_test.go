package eventfilter

import (
	"strings"
	"testing"
	"time"
)

func TestMatch(t *testing.T) {
	ev := Event{ID: "evt_1", Type: "report.completed", Data: []byte(`{"user_id":"usr_2","score":81,"tags":["a","b"]}`),
		Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	tests := []struct {
		expr    string
		want    bool
		wantErr bool
	}{
		{`event.data.user_id in ["usr_1", "usr_2"]`, true, false},
		{`event.data.user_id in ["usr_1"]`, false, false},
		{`event.type == "report.completed" && event.data.score >= 80.0`, true, false},
		{`event.id.startsWith("evt_")`, true, false},
		{`event.timestamp > timestamp("2026-01-01T00:00:00Z")`, true, false},
		{`event.timestamp < timestamp("2026-01-01T00:00:00Z")`, false, false},
		{`event.data.tags.exists(t, t == "b")`, true, false},
		{`has(event.data.team) && event.data.team == "x"`, false, false},
		// A missing field is an evaluation error: no match.
		{`event.data.team == "x"`, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			f, err := Compile(tt.expr)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			got, err := f.Match(NewActivation(ev))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Match error = %v, want error %t", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("Match = %t, want %t", got, tt.want)
			}
		})
	}
}

func TestCompileRefuses(t *testing.T) {
	tests := []struct{ expr, msg string }{
		{`event.data.user_id ==`, "Syntax error"},
		{`1 + "a" == "b"`, "no matching overload"},
		{`"not a bool"`, "must return a bool"},
		{`unknown_var == 1`, "undeclared reference"},
		// Quadratic over event data: refused like an unbounded CRD rule.
		{`event.data.a.all(x, event.data.a.all(y, x == y))`, "too costly"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := Compile(tt.expr)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Compile(%q) error = %v, want it to contain %q", tt.expr, err, tt.msg)
			}
		})
	}
}

func TestCostLimitStopsEvaluation(t *testing.T) {
	// Linear, so within the estimate, but over a large list the actual
	// cost passes the per-evaluation limit: no match, with the reason.
	f, err := Compile(`event.data.a.all(x, x >= 0.0)`)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	list := func(n int) []byte {
		var b strings.Builder
		b.WriteString(`{"a":[`)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("1")
		}
		b.WriteString(`]}`)
		return []byte(b.String())
	}
	if ok, err := f.Match(NewActivation(Event{Data: list(100)})); !ok || err != nil {
		t.Fatalf("a short list: %t, %v", ok, err)
	}
	ok, err := f.Match(NewActivation(Event{Data: list(50000)}))
	if ok || err == nil || !strings.Contains(err.Error(), "cost limit exceeded") {
		t.Fatalf("a long list: %t, %v; want the cost limit", ok, err)
	}
}
