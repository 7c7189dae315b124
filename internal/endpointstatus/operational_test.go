package endpointstatus

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

func TestTransitions(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	failing := func(n int32) stats {
		return stats{ConsecutiveFailures: n, FailingSince: &t0, LastDelivery: &miraapi.DeliveryAttempt{StatusCode: 500}}
	}
	disabled := failing(1)
	disabled.Disabled, disabled.DisabledReason, disabled.DisabledMessage, disabled.DisabledAt = true, miraapi.GoneReason, "gone", &t0
	both := failing(5)
	both.Disabled, both.DisabledReason, both.DisabledAt = true, miraapi.ContinuousFailureReason, &t0
	healthy := stats{LastSuccess: &t0}
	enabled := stats{DisabledAt: &t0, DisabledMessage: "re-enabled: annotation"}
	tests := []struct {
		name                     string
		s                        stats
		wasDegraded, wasDisabled bool
		want                     []string
	}{
		{"no change while failing", failing(3), false, false, nil},
		{"degraded", failing(5), false, false, []string{miraapi.EventEndpointDegraded}},
		{"still degraded", failing(6), true, false, nil},
		{"disabled by 410", disabled, false, false, []string{miraapi.EventEndpointDisabled}},
		{"degraded and disabled in one flush", both, false, false, []string{miraapi.EventEndpointDegraded, miraapi.EventEndpointDisabled}},
		{"disabled after degraded", both, true, false, []string{miraapi.EventEndpointDisabled}},
		{"recovered from degraded", healthy, true, false, []string{miraapi.EventEndpointRecovered}},
		{"re-enabled: one recovered for both", enabled, true, true, []string{miraapi.EventEndpointRecovered}},
		{"healthy stays quiet", healthy, false, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := transitions(&tt.s, tt.wasDegraded, tt.wasDisabled, time.Hour)
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i].typ != tt.want[i] {
					t.Fatalf("event %d = %s, want %s", i, got[i].typ, tt.want[i])
				}
			}
		})
	}
	// The same transition gives the same cause (so the same event id) on
	// any replica and any retry; another streak gives another.
	a := transitions(&disabled, false, false, time.Hour)[0].cause
	b := transitions(&disabled, false, false, time.Hour)[0].cause
	later := disabled
	t1 := metav1.NewTime(t0.Add(time.Minute))
	later.DisabledAt = &t1
	if a != b || a == transitions(&later, false, false, time.Hour)[0].cause {
		t.Fatalf("causes %q %q %q", a, b, transitions(&later, false, false, time.Hour)[0].cause)
	}
}
