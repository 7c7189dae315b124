package endpointstatus

import (
	"fmt"
	"math/rand/v2"
	"slices"
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

// addRecent must give exactly what mergeRecent gives for one attempt, on
// lists mergeRecent built (its fast path) and on lists it did not (out of
// order, repeated, too long: the fallback), including ties in time and an
// attempt already in the list.
func TestAddRecentMatchesMergeRecent(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(id string, n int32, sec int) miraapi.DeliveryAttempt {
		return miraapi.DeliveryAttempt{DeliveryID: id, Attempt: n, Time: metav1.NewTime(t0.Add(time.Duration(sec) * time.Second)), Outcome: id}
	}
	rng := rand.New(rand.NewPCG(9, 1)) //nolint:gosec // G404: a seeded, reproducible test input, not a secret
	random := func() miraapi.DeliveryAttempt {
		// Few ids and times, so repeats and ties are common.
		return at(fmt.Sprintf("d%d", rng.IntN(6)), int32(1+rng.IntN(2)), rng.IntN(8))
	}
	check := func(name string, list []miraapi.DeliveryAttempt, a miraapi.DeliveryAttempt) {
		t.Helper()
		before := slices.Clone(list)
		want := mergeRecent(slices.Clone(list), []miraapi.DeliveryAttempt{a})
		got := addRecent(list, a)
		if !slices.EqualFunc(got, want, func(x, y miraapi.DeliveryAttempt) bool {
			return x.DeliveryID == y.DeliveryID && x.Attempt == y.Attempt && x.Time.Equal(&y.Time) && x.Outcome == y.Outcome
		}) {
			t.Fatalf("%s: addRecent(%v, %v) = %v, mergeRecent gives %v", name, list, a, got, want)
		}
		if !slices.Equal(list, before) {
			t.Fatalf("%s: addRecent changed its input", name)
		}
	}
	// Lists as the model builds them.
	for range 2000 {
		var list []miraapi.DeliveryAttempt
		for range rng.IntN(14) {
			list = mergeRecent(list, []miraapi.DeliveryAttempt{random()})
		}
		check("built", list, random())
	}
	// Lists the model never builds: the fallback.
	for range 2000 {
		list := make([]miraapi.DeliveryAttempt, rng.IntN(13))
		for i := range list {
			list[i] = random()
		}
		check("arbitrary", list, random())
	}
	// The edges by hand.
	check("empty", nil, at("x", 1, 3))
	check("newest", []miraapi.DeliveryAttempt{at("a", 1, 5), at("b", 1, 2)}, at("x", 1, 9))
	check("oldest", []miraapi.DeliveryAttempt{at("a", 1, 5), at("b", 1, 2)}, at("x", 1, 0))
	check("tie goes first", []miraapi.DeliveryAttempt{at("a", 1, 5), at("b", 1, 2)}, at("x", 1, 5))
	check("replaces its copy", []miraapi.DeliveryAttempt{at("a", 1, 5), at("x", 1, 2)}, at("x", 1, 7))
}
