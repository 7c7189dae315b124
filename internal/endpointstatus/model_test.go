package endpointstatus

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

func attemptAt(id string, n int32, t time.Time, failed bool) (Outcome, miraapi.DeliveryAttempt) {
	a := miraapi.DeliveryAttempt{DeliveryID: id, Attempt: n, Time: metav1.NewTime(t), Outcome: "Delivered"}
	o := Outcome{Attempt: a, PrevState: datav1.StatePending, State: datav1.StateDelivered}
	if failed {
		a.Outcome, o.State, o.Failed = "Retrying", datav1.StateRetrying, true
		o.Attempt = a
	}
	return o, a
}

// Two replicas deliver for one endpoint; whatever order their deltas merge
// in, the bucket ends with the same counts, recent attempts and streak.
func TestStatsDeltasMergeInAnyOrder(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a, b := &statsDelta{}, &statsDelta{}
	for i := 0; i < 8; i++ {
		o, at := attemptAt(fmt.Sprintf("a%d", i), 1, t0.Add(time.Duration(2*i)*time.Second), false)
		a.record(o, at)
		o, at = attemptAt(fmt.Sprintf("b%d", i), 1, t0.Add(time.Duration(2*i+1)*time.Second), false)
		b.record(o, at)
	}
	// b saw a retry end on a (-1 Retrying there, +1 on a before): counts may
	// be negative in a delta and must still add up.
	a.Counts.Retrying++
	b.Counts.Retrying--
	// Later, b sees failures after its last success.
	for i := 0; i < 3; i++ {
		o, at := attemptAt("bf", int32(i+1), t0.Add(time.Minute+time.Duration(i)*time.Second), true)
		o.PrevState = datav1.StateRetrying
		b.record(o, at)
	}

	ab, ba := &stats{}, &stats{}
	ab.apply(a)
	ab.apply(b)
	ba.apply(b)
	ba.apply(a)
	for _, s := range []*stats{ab, ba} {
		if s.Counts.Delivered != 16 || s.Counts.Retrying != 0 {
			t.Errorf("counts = %+v, want 16 delivered, 0 retrying", s.Counts)
		}
		if len(s.Recent) != maxRecent || s.Recent[0].DeliveryID != "bf" || s.Recent[0].Attempt != 3 {
			t.Errorf("recent = %d, first %+v; want %d, newest first", len(s.Recent), s.Recent[0], maxRecent)
		}
		if s.ConsecutiveFailures != 3 || s.FailingSince == nil || !s.FailingSince.Equal(&metav1.Time{Time: t0.Add(time.Minute)}) {
			t.Errorf("streak = %d since %v, want 3 since %v", s.ConsecutiveFailures, s.FailingSince, t0.Add(time.Minute))
		}
		if s.LastDelivery == nil || s.LastDelivery.Attempt != 3 {
			t.Errorf("last delivery = %+v", s.LastDelivery)
		}
	}

	// A success on a after b's failures ends the streak, in either order.
	o, at := attemptAt("a-late", 1, t0.Add(2*time.Minute), false)
	late := &statsDelta{}
	late.record(o, at)
	ab.apply(late)
	if ab.ConsecutiveFailures != 0 || ab.FailingSince != nil {
		t.Errorf("after a later success: streak %d since %v, want none", ab.ConsecutiveFailures, ab.FailingSince)
	}
}

// The latest change of Disabled wins, whichever replica merges last.
func TestStatsDisabledLatestChangeWins(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	dis := &statsDelta{}
	dis.setDisabled(&stats{Disabled: true, DisabledReason: miraapi.GoneReason}, metav1.NewTime(t0))
	en := &statsDelta{}
	en.setDisabled(&stats{}, metav1.NewTime(t0.Add(time.Second)))
	en.reset(metav1.NewTime(t0.Add(time.Second)))
	en.setHandled(miraapi.EnableAnnotation, "1")

	for _, order := range [][]*statsDelta{{dis, en}, {en, dis}} {
		s := &stats{}
		for _, d := range order {
			s.apply(d)
		}
		if s.Disabled || s.Handled[miraapi.EnableAnnotation] != "1" {
			t.Errorf("disabled = %v handled = %v, want enabled and the annotation handled", s.Disabled, s.Handled)
		}
	}
	// A failed merge is retried with what came after it: same result.
	s := &stats{}
	s.apply(dis.then(en))
	if s.Disabled {
		t.Error("dis.then(en) left the endpoint disabled")
	}
}
