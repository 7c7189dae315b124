package endpointstatus

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

func TestRecordOutcome(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	mt := func(d time.Duration) *metav1.Time { x := metav1.NewTime(t0.Add(d)); return &x }
	failed := func(n int32) Outcome {
		return Outcome{PrevState: datav1.StatePending, State: datav1.StateRetrying, Failed: true,
			Attempt: miraapi.DeliveryAttempt{DeliveryID: "d", Attempt: n, Time: metav1.NewTime(t0)}}
	}
	tests := []struct {
		name  string
		start stats
		o     Outcome
		p     Policy
		now   time.Time
		// expected afterwards
		disabled      bool
		reason        string
		disabledGen   int64
		failures      int32
		reenabled     bool
		retrying, dlv int64
	}{
		{name: "success resets the streak",
			start: stats{ConsecutiveFailures: 3, FailingSince: mt(-time.Hour)},
			o: Outcome{PrevState: datav1.StatePending, State: datav1.StateDelivered,
				Attempt: miraapi.DeliveryAttempt{DeliveryID: "d", Attempt: 1, Time: metav1.NewTime(t0)}},
			p: Policy{Generation: 1, DisableAfter: time.Hour}, now: t0, failures: 0, dlv: 1},
		{name: "failure below disableAfter only counts",
			start: stats{ConsecutiveFailures: 9, FailingSince: mt(-30 * time.Minute)},
			o:     failed(1), p: Policy{Generation: 1, DisableAfter: time.Hour}, now: t0, failures: 10, retrying: 1},
		{name: "continuous failure past disableAfter disables",
			start: stats{ConsecutiveFailures: 9, FailingSince: mt(-2 * time.Hour)},
			o:     failed(1), p: Policy{Generation: 4, DisableAfter: time.Hour}, now: t0,
			disabled: true, reason: miraapi.ContinuousFailureReason, disabledGen: 4, failures: 10, retrying: 1},
		{name: "past disableAfter but too few failures stays enabled",
			start: stats{ConsecutiveFailures: 2, FailingSince: mt(-2 * time.Hour)},
			o:     failed(1), p: Policy{Generation: 1, DisableAfter: time.Hour}, now: t0, failures: 3, retrying: 1},
		{name: "410 Gone disables at once",
			o: func() Outcome { o := failed(1); o.Gone, o.State = true, datav1.StateDead; return o }(),
			p: Policy{Generation: 2, DisableAfter: time.Hour}, now: t0,
			disabled: true, reason: miraapi.GoneReason, disabledGen: 2, failures: 1},
		{name: "a spec change since disabling re-enables before the outcome",
			start: stats{Disabled: true, DisabledReason: miraapi.GoneReason, DisabledGeneration: 1, ConsecutiveFailures: 7, FailingSince: mt(-time.Hour)},
			o:     failed(1), p: Policy{Generation: 2, DisableAfter: time.Hour}, now: t0,
			reenabled: true, failures: 1, retrying: 1},
		{name: "disabled at this generation stays disabled",
			start: stats{Disabled: true, DisabledReason: miraapi.GoneReason, DisabledGeneration: 2, ConsecutiveFailures: 1, FailingSince: mt(-time.Hour)},
			o:     failed(1), p: Policy{Generation: 2, DisableAfter: time.Hour}, now: t0,
			disabled: true, reason: miraapi.GoneReason, disabledGen: 2, failures: 2, retrying: 1},
		{name: "a skip counts without touching the streak",
			start: stats{ConsecutiveFailures: 2, FailingSince: mt(-time.Hour)},
			o:     Outcome{PrevState: datav1.StatePending, State: datav1.StateSkipped},
			p:     Policy{Generation: 1, DisableAfter: time.Hour}, now: t0, failures: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.start
			re := s.recordOutcome(tt.o, tt.p, tt.now)
			if re != tt.reenabled || s.Disabled != tt.disabled || s.DisabledReason != tt.reason ||
				(tt.disabled && s.DisabledGeneration != tt.disabledGen) || s.ConsecutiveFailures != tt.failures {
				t.Fatalf("reenabled %v disabled %v (%q, gen %d) failures %d; want %v %v (%q, gen %d) %d",
					re, s.Disabled, s.DisabledReason, s.DisabledGeneration, s.ConsecutiveFailures,
					tt.reenabled, tt.disabled, tt.reason, tt.disabledGen, tt.failures)
			}
			if s.Counts.Retrying != tt.retrying || s.Counts.Delivered != tt.dlv {
				t.Fatalf("counts %+v, want retrying %d delivered %d", s.Counts, tt.retrying, tt.dlv)
			}
			// What changed must travel in the delta, so other replicas see it.
			if (tt.disabled != tt.start.Disabled || tt.reenabled) && (s.delta == nil || !s.delta.DisabledSet || s.delta.Disabled != s.Disabled) {
				t.Fatalf("the Disabled change is not in the delta: %+v", s.delta)
			}
		})
	}
}
