// Package delivery holds the building blocks of one outgoing webhook attempt:
// the wire format (BuildBody, NewRequest), outbound address safety (Guard),
// the HTTP sender (Sender), the retry policy (Policy) and per-endpoint flow
// control (Breaker, RateLimit). Per-endpoint concurrency is the dispatcher's
// lane size (its fetch slots).
//
// The dispatcher that consumes the queue composes these pieces; nothing here
// sleeps, waits for a slot or keeps a queue of its own: limits report how
// long to wait instead.
package delivery

import "time"

// Clock tells the time. Tests inject a fake one.
type Clock interface {
	Now() time.Time
}

// systemClock is the real wall clock.
type systemClock struct{}

// Now returns time.Now().
func (systemClock) Now() time.Time { return time.Now() }

// clockOrSystem returns c, or the system clock when c is nil.
func clockOrSystem(c Clock) Clock {
	if c == nil {
		return systemClock{}
	}
	return c
}
