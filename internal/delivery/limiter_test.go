package delivery

import (
	"math"
	"testing"
	"time"
)

func TestRateLimit(t *testing.T) {
	clock := newFakeClock()
	l, err := NewRateLimit(2, 2, clock)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		advance  time.Duration
		wantOK   bool
		wantWait time.Duration
	}{
		{0, true, 0}, // burst of 2
		{0, true, 0},
		{0, false, 500 * time.Millisecond},
		{0, false, 500 * time.Millisecond}, // a refused Take consumes nothing
		{250 * time.Millisecond, false, 250 * time.Millisecond},
		{250 * time.Millisecond, true, 0},
		{0, false, 500 * time.Millisecond},
		{10 * time.Second, true, 0}, // refills up to the burst only
		{0, true, 0},
		{0, false, 500 * time.Millisecond},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		ok, wait := l.Take()
		if ok != s.wantOK || wait != s.wantWait {
			t.Fatalf("step %d: Take = (%v, %s), want (%v, %s)", i, ok, wait, s.wantOK, s.wantWait)
		}
	}
	var unlimited *RateLimit
	if ok, wait := unlimited.Take(); !ok || wait != 0 {
		t.Fatal("a nil RateLimit must be unlimited")
	}
}

func TestNewRateLimitRejects(t *testing.T) {
	tests := []struct {
		rate  float64
		burst int
	}{
		{0, 1}, {-1, 1}, {math.NaN(), 1}, {math.Inf(1), 1}, {1, -1},
	}
	for _, tt := range tests {
		if _, err := NewRateLimit(tt.rate, tt.burst, nil); err == nil {
			t.Errorf("NewRateLimit(%g, %d) accepted", tt.rate, tt.burst)
		}
	}
}
