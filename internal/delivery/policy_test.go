package delivery

import (
	"math"
	"strings"
	"testing"
	"time"
)

func fixed(v float64) func() float64 { return func() float64 { return v } }

func TestPolicyWithDefaults(t *testing.T) {
	want := Policy{Timeout: 15 * time.Second, MaxAttempts: 18, MaxRetryDuration: 24 * time.Hour, BackoffInitial: 5 * time.Second, BackoffMax: 4 * time.Hour, Jitter: 0.2}
	if got := (Policy{}).WithDefaults(); got != want {
		t.Fatalf("defaults = %+v, want %+v", got, want)
	}
	set := Policy{Timeout: 30 * time.Second, MaxAttempts: 3, MaxRetryDuration: time.Hour, BackoffInitial: time.Second, BackoffMax: time.Minute, Jitter: 0.5}
	if got := set.WithDefaults(); got != set {
		t.Fatalf("WithDefaults changed set fields: %+v", got)
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       Policy
		wantErr string
	}{
		{"zero is the defaults", Policy{}, ""},
		{"explicit", Policy{Timeout: 30 * time.Second, MaxAttempts: 5, BackoffInitial: time.Second, BackoffMax: time.Second, Jitter: 1}, ""},
		{"timeout above bound", Policy{Timeout: 61 * time.Second}, "timeout 1m1s outside"},
		{"negative timeout", Policy{Timeout: -time.Second}, "timeout -1s outside"},
		{"negative attempts", Policy{MaxAttempts: -1}, "max attempts -1"},
		{"negative retry duration", Policy{MaxRetryDuration: -time.Hour}, "max retry duration"},
		{"max below default initial", Policy{BackoffMax: time.Second}, "maximum backoff 1s is below initial backoff 5s"},
		{"initial above default max", Policy{BackoffInitial: 5 * time.Hour}, "maximum backoff 4h0m0s is below initial backoff 5h0m0s"},
		{"jitter above 1", Policy{Jitter: 1.5}, "jitter 1.5 outside"},
		{"negative jitter", Policy{Jitter: -0.1}, "jitter -0.1 outside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestPolicyBackoff(t *testing.T) {
	def := Policy{}
	small := Policy{BackoffInitial: time.Second, BackoffMax: 10 * time.Second, Jitter: 0.5}
	huge := Policy{BackoffInitial: time.Second, BackoffMax: time.Duration(math.MaxInt64), Jitter: 0.2}
	tests := []struct {
		name    string
		p       Policy
		attempt int
		rnd     float64
		want    time.Duration
	}{
		{"1st, no jitter drawn", def, 1, 0, 5 * time.Second},
		{"2nd", def, 2, 0, 10 * time.Second},
		{"3rd", def, 3, 0, 20 * time.Second},
		{"4th", def, 4, 0, 40 * time.Second},
		{"5th", def, 5, 0, 80 * time.Second},
		{"6th", def, 6, 0, 160 * time.Second},
		{"7th", def, 7, 0, 320 * time.Second},
		{"8th", def, 8, 0, 640 * time.Second},
		{"9th", def, 9, 0, 1280 * time.Second},
		{"10th", def, 10, 0, 2560 * time.Second},
		{"11th", def, 11, 0, 5120 * time.Second},
		{"12th", def, 12, 0, 10240 * time.Second},
		{"13th capped at 4h", def, 13, 0, 4 * time.Hour},
		{"1000th capped, no overflow", def, 1000, 0, 4 * time.Hour},
		{"attempt 0 is the first", def, 0, 0, 5 * time.Second},
		{"half jitter drawn", def, 1, 0.5, 4500 * time.Millisecond},
		{"full jitter drawn", def, 1, 1, 4 * time.Second},
		{"jitter after the cap", def, 20, 0.5, 3*time.Hour + 36*time.Minute},
		{"rnd out of range is clamped", def, 1, 7, 4 * time.Second},
		{"custom 1st", small, 1, 1, 500 * time.Millisecond},
		{"custom 4th", small, 4, 1, 4 * time.Second},
		{"custom capped", small, 5, 1, 5 * time.Second},
		{"unbounded max does not overflow", huge, 80, 0, time.Second << 33},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Backoff(tt.attempt, fixed(tt.rnd)); got != tt.want {
				t.Fatalf("Backoff(%d, %g) = %s, want %s", tt.attempt, tt.rnd, got, tt.want)
			}
		})
	}
	// nil rnd: random, within [d×(1−Jitter), d].
	for range 100 {
		if got := def.Backoff(3, nil); got < 16*time.Second || got > 20*time.Second {
			t.Fatalf("Backoff(3, nil) = %s, want within [16s, 20s]", got)
		}
	}
}

func TestPolicyNext(t *testing.T) {
	first := time.Date(2025, 3, 4, 15, 0, 0, 0, time.UTC)
	def := Policy{}
	tests := []struct {
		name       string
		p          Policy
		attempt    int
		now        time.Time
		retryAfter time.Duration
		wantDelay  time.Duration
		wantGiveUp bool
	}{
		{"after 1st", def, 1, first, 0, 5 * time.Second, false},
		{"after 3rd", def, 3, first.Add(time.Minute), 0, 20 * time.Second, false},
		{"after 11th", def, 11, first.Add(3 * time.Hour), 0, 5120 * time.Second, false},
		{"after 17th", def, 17, first.Add(10 * time.Hour), 0, 4 * time.Hour, false},
		{"after 18th: attempts exhausted", def, 18, first.Add(14 * time.Hour), 0, 0, true},
		{"custom attempts, before the last", Policy{MaxAttempts: 3}, 2, first, 0, 10 * time.Second, false},
		{"custom attempts exhausted", Policy{MaxAttempts: 3}, 3, first, 0, 0, true},
		{"shorter Retry-After ignored", def, 3, first, 10 * time.Second, 20 * time.Second, false},
		{"longer Retry-After honoured", def, 3, first, 120 * time.Second, 120 * time.Second, false},
		{"Retry-After capped at the 4h backoff max", def, 3, first, 5 * time.Hour, 4 * time.Hour, false},
		{"Retry-After cap is at least 1h", Policy{BackoffMax: 10 * time.Minute}, 3, first, 5 * time.Hour, time.Hour, false},
		{"Retry-After cap follows a larger BackoffMax", Policy{BackoffMax: 2 * time.Hour}, 3, first, 5 * time.Hour, 2 * time.Hour, false},
		{"retry lands exactly at the window end", def, 3, first.Add(24*time.Hour - 20*time.Second), 0, 20 * time.Second, false},
		{"retry would land after the window", def, 3, first.Add(24*time.Hour - 19*time.Second), 0, 0, true},
		{"Retry-After pushes past the window", def, 3, first.Add(23*time.Hour + 30*time.Minute), 2 * time.Hour, 0, true},
		{"custom window", Policy{MaxRetryDuration: time.Minute}, 2, first.Add(55 * time.Second), 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			delay, giveUp := tt.p.Next(tt.attempt, first, tt.now, tt.retryAfter, fixed(0))
			if delay != tt.wantDelay || giveUp != tt.wantGiveUp {
				t.Fatalf("Next = (%s, %v), want (%s, %v)", delay, giveUp, tt.wantDelay, tt.wantGiveUp)
			}
		})
	}
}
