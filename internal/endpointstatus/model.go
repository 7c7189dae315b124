package endpointstatus

import (
	"fmt"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

// maxPayloadInStatus bounds each recent attempt's payload in status.
const maxPayloadInStatus = 1024

// stats is one endpoint's delivery health, persisted in the stats bucket and
// written to the endpoint's status by the Writer.
type stats struct {
	Namespace           string                    `json:"namespace"`
	Name                string                    `json:"name"`
	Counts              miraapi.DeliveryCounts    `json:"counts"`
	LastDelivery        *miraapi.DeliveryAttempt  `json:"lastDelivery,omitempty"`
	LastSuccess         *metav1.Time              `json:"lastSuccess,omitempty"`
	LastFailure         *metav1.Time              `json:"lastFailure,omitempty"`
	FailingSince        *metav1.Time              `json:"failingSince,omitempty"`
	ConsecutiveFailures int32                     `json:"consecutiveFailures"`
	Recent              []miraapi.DeliveryAttempt `json:"recent,omitempty"`
	Disabled            bool                      `json:"disabled,omitempty"`
	DisabledReason      string                    `json:"disabledReason,omitempty"`
	DisabledMessage     string                    `json:"disabledMessage,omitempty"`
	DisabledGeneration  int64                     `json:"disabledGeneration,omitempty"`
	// DisabledAt is when Disabled last changed; the latest change wins when
	// replicas merge.
	DisabledAt *metav1.Time      `json:"disabledAt,omitempty"`
	Handled    map[string]string `json:"handled,omitempty"`

	// delta is what this replica learned since it last merged into the
	// bucket; rev is the bucket revision this view reflects.
	delta *statsDelta
	rev   uint64
	// statusDirty: the status does not show this view yet.
	statusDirty bool
	// What the last successful flush wrote, to emit Events on transitions.
	flushedDegraded, flushedDisabled bool
	flushedOnce                      bool
}

func (s *stats) degraded() bool {
	return s.ConsecutiveFailures >= miraapi.DegradedAfterFailures
}

// pending returns the delta of s, creating it. Callers hold w.mu.
func (s *stats) pending() *statsDelta {
	if s.delta == nil {
		s.delta = &statsDelta{}
	}
	return s.delta
}

// Outcome is what the dispatcher reports after an attempt or a skip.
type Outcome struct {
	// Attempt is zero for an outcome without an attempt (a skip, a delivery
	// that ended or waits before any attempt): it only moves the counts.
	Attempt miraapi.DeliveryAttempt
	// PrevState and State are the delivery's states before and after.
	PrevState, State string
	// Failed is true for a failed attempt.
	Failed bool
	// Gone is true when the endpoint answered 410 Gone.
	Gone bool
	// Filtered is true for an event spec.filter dropped: no delivery was
	// made, only the filtered count moves.
	Filtered bool
}

// Policy is what of an endpoint's spec the stats model needs.
type Policy struct {
	// Generation of the endpoint now.
	Generation int64
	// DisableAfter is how long continuous failure lasts before disabling.
	DisableAfter time.Duration
}

// disabledFor reports whether the stats hold the endpoint disabled at
// generation gen: a spec change (a newer generation) re-enables it.
func (s *stats) disabledFor(gen int64) bool {
	return s.Disabled && gen <= s.DisabledGeneration
}

// enable clears Disabled at now (a re-enable), noting it in the delta.
// It reports whether anything changed.
func (s *stats) enable(why string, now time.Time) bool {
	if !s.Disabled {
		return false
	}
	t := metav1.NewTime(now)
	s.Disabled, s.DisabledReason, s.DisabledMessage = false, "", "re-enabled: "+why
	s.ConsecutiveFailures, s.FailingSince, s.DisabledAt = 0, nil, &t
	d := s.pending()
	d.setDisabled(s, t)
	d.reset(t)
	return true
}

// recordOutcome applies one outcome to the view s and its pending delta:
// counts, recent attempts, the failure streak and the disable decision (a
// 410 Gone, or disableAfter of continuous failure). It is pure: data in,
// state out. It reports whether the endpoint was re-enabled (its spec
// changed since it was disabled) before the outcome applied.
func (s *stats) recordOutcome(o Outcome, p Policy, now time.Time) (reenabled bool) {
	if s.Disabled && !s.disabledFor(p.Generation) {
		reenabled = s.enable("spec changed", now)
	}
	a := o.Attempt
	if len(a.Payload) > maxPayloadInStatus {
		a.Payload = a.Payload[:maxPayloadInStatus] + "…"
	}
	d := s.pending()
	if o.Filtered {
		s.Counts.Filtered++
		d.Counts.Filtered++
		return reenabled
	}
	d.record(o, a)
	addState(&s.Counts, o.PrevState, -1)
	addState(&s.Counts, o.State, +1)
	if o.Attempt.Attempt == 0 {
		return reenabled
	}
	s.LastDelivery = &a
	s.Recent = addRecent(s.Recent, a)
	t := a.Time
	if !o.Failed {
		s.LastSuccess = &t
		s.ConsecutiveFailures, s.FailingSince = 0, nil
		return reenabled
	}
	s.LastFailure = &t
	s.ConsecutiveFailures++
	if s.FailingSince == nil {
		s.FailingSince = &t
	}
	switch {
	case s.Disabled:
		return reenabled
	case o.Gone:
		s.Disabled, s.DisabledReason = true, miraapi.GoneReason
		s.DisabledMessage = "the endpoint answered 410 Gone; deliveries are kept as skipped until it is re-enabled"
	case now.Sub(s.FailingSince.Time) >= p.DisableAfter && s.ConsecutiveFailures >= miraapi.DegradedAfterFailures:
		s.Disabled, s.DisabledReason = true, miraapi.ContinuousFailureReason
		s.DisabledMessage = fmt.Sprintf("every attempt failed since %s (disableAfter %s); deliveries are kept as skipped until it is re-enabled",
			s.FailingSince.UTC().Format(time.RFC3339), p.DisableAfter)
	default:
		return reenabled
	}
	s.DisabledGeneration = p.Generation
	at := metav1.NewTime(now)
	s.DisabledAt = &at
	d.setDisabled(s, at)
	return reenabled
}

// addState adds d to the count of a state. Counts are not clamped here:
// replicas' deltas must add up in any order (one replica's -1 Retrying may
// merge before another's +1); status shows negative counts as 0.
func addState(c *miraapi.DeliveryCounts, state string, d int64) {
	switch state {
	case datav1.StateDelivered:
		c.Delivered += d
	case datav1.StateRetrying:
		c.Retrying += d
	case datav1.StateDead:
		c.Dead += d
	case datav1.StateSkipped:
		c.Skipped += d
	}
}

func clampCounts(c miraapi.DeliveryCounts) miraapi.DeliveryCounts {
	for _, p := range []*int64{&c.Delivered, &c.Retrying, &c.Dead, &c.Skipped, &c.Filtered} {
		if *p < 0 {
			*p = 0
		}
	}
	return c
}

// maxRecent bounds the recent attempts kept per endpoint.
const maxRecent = 10

// statsDelta is what one receiver replica learned about an endpoint since it
// last merged into the shared stats bucket. Several replicas deliver for the
// same endpoint, so none of them knows the whole picture: each merges its
// delta into the bucket entry with a revision check (compare and swap), and
// the merge is built so that the order of merges does not change the result
// (counts add, times take the latest, recent attempts merge by time).
type statsDelta struct {
	// Counts are differences (a delivery moving from Retrying to Delivered
	// is -1 Retrying, +1 Delivered), so they may be negative.
	Counts miraapi.DeliveryCounts
	// Recent attempts, newest first, at most maxRecent.
	Recent      []miraapi.DeliveryAttempt
	LastSuccess *metav1.Time
	LastFailure *metav1.Time
	// ResetAt is the time of the last success or re-enable seen here; Failures
	// and FailingSince count the failed attempts after it (all of them when
	// ResetAt is nil).
	ResetAt      *metav1.Time
	Failures     int32
	FailingSince *metav1.Time
	// DisabledSet carries a change of the Disabled state made at DisabledAt.
	DisabledSet        bool
	Disabled           bool
	DisabledReason     string
	DisabledMessage    string
	DisabledGeneration int64
	DisabledAt         metav1.Time
	// Handled annotation values set here.
	Handled map[string]string
}

func laterTime(a, b *metav1.Time) *metav1.Time {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case b.After(a.Time):
		return b
	}
	return a
}

func addCounts(c *miraapi.DeliveryCounts, d miraapi.DeliveryCounts) {
	c.Delivered += d.Delivered
	c.Retrying += d.Retrying
	c.Dead += d.Dead
	c.Skipped += d.Skipped
	c.Filtered += d.Filtered
}

// mergeRecent merges two newest-first attempt lists by time, drops repeats of
// the same attempt and keeps the newest maxRecent.
func mergeRecent(a, b []miraapi.DeliveryAttempt) []miraapi.DeliveryAttempt {
	if len(b) == 0 {
		return a
	}
	type key struct {
		id string
		n  int32
	}
	seen := map[key]bool{}
	out := make([]miraapi.DeliveryAttempt, 0, len(a)+len(b))
	for _, l := range [][]miraapi.DeliveryAttempt{b, a} {
		for _, at := range l {
			k := key{at.DeliveryID, at.Attempt}
			if seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, at)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.After(out[j].Time.Time) })
	if len(out) > maxRecent {
		out = out[:maxRecent]
	}
	return out
}

// addRecent is mergeRecent(list, {a}) for the one attempt each outcome
// adds: when list is in mergeRecent's order (newest first, no repeats, at
// most maxRecent), which every list it built is, it inserts a in place
// instead of building a map and sorting; otherwise it falls back to
// mergeRecent. It runs twice per delivery.
func addRecent(list []miraapi.DeliveryAttempt, a miraapi.DeliveryAttempt) []miraapi.DeliveryAttempt {
	if len(list) > maxRecent {
		return mergeRecent(list, []miraapi.DeliveryAttempt{a})
	}
	at := -1  // where a goes: after every attempt newer than it
	dup := -1 // the earlier copy of a, dropped
	for i, x := range list {
		if i > 0 && x.Time.After(list[i-1].Time.Time) {
			return mergeRecent(list, []miraapi.DeliveryAttempt{a})
		}
		for _, y := range list[:i] {
			if x.DeliveryID == y.DeliveryID && x.Attempt == y.Attempt {
				return mergeRecent(list, []miraapi.DeliveryAttempt{a})
			}
		}
		if x.DeliveryID == a.DeliveryID && x.Attempt == a.Attempt {
			dup = i
		}
		if at < 0 && !x.Time.After(a.Time.Time) {
			at = i
		}
	}
	if at < 0 {
		at = len(list)
	}
	out := make([]miraapi.DeliveryAttempt, 0, min(len(list)+1, maxRecent))
	for i, x := range list {
		if i == at {
			out = append(out, a)
		}
		if i != dup {
			out = append(out, x)
		}
	}
	if at == len(list) {
		out = append(out, a)
	}
	if len(out) > maxRecent {
		out = out[:maxRecent]
	}
	return out
}

// record adds one outcome to the delta.
func (d *statsDelta) record(o Outcome, a miraapi.DeliveryAttempt) {
	addState(&d.Counts, o.PrevState, -1)
	addState(&d.Counts, o.State, +1)
	if o.Attempt.Attempt == 0 {
		return
	}
	d.Recent = addRecent(d.Recent, a)
	t := a.Time
	if !o.Failed {
		d.LastSuccess = laterTime(d.LastSuccess, &t)
		d.reset(t)
		return
	}
	d.LastFailure = laterTime(d.LastFailure, &t)
	d.Failures++
	if d.FailingSince == nil {
		d.FailingSince = &t
	}
}

// reset notes that the failure streak ended at t (a success or a re-enable).
func (d *statsDelta) reset(t metav1.Time) {
	d.ResetAt, d.Failures, d.FailingSince = &t, 0, nil
}

// setDisabled carries s's Disabled state, changed at t, in the delta.
func (d *statsDelta) setDisabled(s *stats, t metav1.Time) {
	d.DisabledSet, d.Disabled, d.DisabledReason, d.DisabledMessage = true, s.Disabled, s.DisabledReason, s.DisabledMessage
	d.DisabledGeneration, d.DisabledAt = s.DisabledGeneration, t
}

func (d *statsDelta) setHandled(k, v string) {
	if d.Handled == nil {
		d.Handled = map[string]string{}
	}
	d.Handled[k] = v
}

// then returns the delta of d followed by n (used when a merge failed and
// more happened meanwhile).
func (d *statsDelta) then(n *statsDelta) *statsDelta {
	if d == nil {
		return n
	}
	if n == nil {
		return d
	}
	out := *d
	addCounts(&out.Counts, n.Counts)
	out.Recent = mergeRecent(d.Recent, n.Recent)
	out.LastSuccess = laterTime(d.LastSuccess, n.LastSuccess)
	out.LastFailure = laterTime(d.LastFailure, n.LastFailure)
	if n.ResetAt != nil {
		out.ResetAt, out.Failures, out.FailingSince = n.ResetAt, n.Failures, n.FailingSince
	} else {
		out.Failures += n.Failures
		if out.FailingSince == nil {
			out.FailingSince = n.FailingSince
		}
	}
	if n.DisabledSet {
		out.DisabledSet, out.Disabled, out.DisabledReason, out.DisabledMessage = true, n.Disabled, n.DisabledReason, n.DisabledMessage
		out.DisabledGeneration, out.DisabledAt = n.DisabledGeneration, n.DisabledAt
	}
	if len(n.Handled) > 0 {
		out.Handled = map[string]string{}
		for k, v := range d.Handled {
			out.Handled[k] = v
		}
		for k, v := range n.Handled {
			out.Handled[k] = v
		}
	}
	return &out
}

// apply merges a delta into stats (the shared bucket entry or a replica's
// view of it).
func (s *stats) apply(d *statsDelta) {
	if d == nil {
		return
	}
	addCounts(&s.Counts, d.Counts)
	s.Recent = mergeRecent(s.Recent, d.Recent)
	if len(s.Recent) > 0 && (s.LastDelivery == nil || !s.LastDelivery.Time.After(s.Recent[0].Time.Time)) {
		a := s.Recent[0]
		s.LastDelivery = &a
	}
	s.LastSuccess = laterTime(s.LastSuccess, d.LastSuccess)
	s.LastFailure = laterTime(s.LastFailure, d.LastFailure)
	switch {
	case d.ResetAt != nil && (s.FailingSince == nil || !s.FailingSince.After(d.ResetAt.Time)):
		// The streak recorded so far began before this replica saw a
		// success: only the failures after that success count.
		s.ConsecutiveFailures, s.FailingSince = d.Failures, d.FailingSince
	default:
		// Failures on both sides belong to the same streak.
		s.ConsecutiveFailures += d.Failures
		if s.FailingSince == nil || (d.FailingSince != nil && d.FailingSince.Before(s.FailingSince)) {
			s.FailingSince = d.FailingSince
		}
	}
	if s.ConsecutiveFailures == 0 {
		s.FailingSince = nil
	}
	if d.DisabledSet && (s.DisabledAt == nil || !d.DisabledAt.Before(s.DisabledAt)) {
		s.Disabled, s.DisabledReason, s.DisabledMessage = d.Disabled, d.DisabledReason, d.DisabledMessage
		s.DisabledGeneration = d.DisabledGeneration
		at := d.DisabledAt
		s.DisabledAt = &at
	}
	if len(d.Handled) > 0 && s.Handled == nil {
		s.Handled = map[string]string{}
	}
	for k, v := range d.Handled {
		s.Handled[k] = v
	}
}
