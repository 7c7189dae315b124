package delivery

import (
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestConcurrency(t *testing.T) {
	c, err := NewConcurrency(0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if !c.TryAcquire() {
			t.Fatalf("acquire %d of the default 4 refused", i+1)
		}
	}
	if c.TryAcquire() {
		t.Fatal("5th acquire granted")
	}
	c.Release()
	if !c.TryAcquire() || c.InFlight() != 4 {
		t.Fatalf("after a release: in flight %d, want a slot then 4", c.InFlight())
	}
	for range 10 {
		c.Release() // extra releases must not create slots
	}
	if c.InFlight() != 0 {
		t.Fatalf("in flight %d after releasing everything", c.InFlight())
	}
	granted := 0
	for range 10 {
		if c.TryAcquire() {
			granted++
		}
	}
	if granted != 4 {
		t.Fatalf("granted %d after extra releases, want 4", granted)
	}
	if _, err := NewConcurrency(-1); err == nil {
		t.Fatal("negative limit accepted")
	}
}

func TestConcurrencyUnderContention(t *testing.T) {
	c, err := NewConcurrency(3)
	if err != nil {
		t.Fatal(err)
	}
	var granted atomic.Int32
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.TryAcquire() {
				granted.Add(1)
			}
		}()
	}
	wg.Wait()
	if granted.Load() != 3 {
		t.Fatalf("granted %d of 64 concurrent acquires, want 3", granted.Load())
	}
}

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
