package endpointstatus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/endpoints"
	evpub "github.com/mira/mira-operator/internal/events"
	"github.com/mira/mira-operator/internal/statuspatch"
)

// Writer aggregates delivery outcomes per endpoint and writes them to
// the endpoint's status at most once per interval, with server-side apply
// under the receiver's field manager.
//
// With several receiver replicas each one only sees its own deliveries. Every
// replica therefore merges what it learned (a statsDelta) into the shared
// entry of the stats bucket with a revision check, once per interval, and
// watches the bucket so its view (Disabled, handled annotations) follows the
// others. Only the elected replica writes status, from the merged entry.
type Writer struct {
	client   client.Client
	kv       jetstream.KeyValue
	recorder events.EventRecorder
	registry *endpoints.Registry
	interval time.Duration
	log      logr.Logger
	now      func() time.Time
	// patchCounter counts status writes (mira_status_patches_total).
	patchCounter prometheus.Counter
	// disabled holds each endpoint's disabledState, read without w.mu.
	disabled sync.Map

	mu    sync.Mutex
	byUID map[types.UID]*stats
	// patches counts status writes, for tests and benchmarks.
	patches map[types.UID]int
	kick    chan struct{}
	// elected is closed once this replica may write status; nil means always.
	elected <-chan struct{}
	// publisher, when set, receives the operational events (see
	// SetPublisher).
	publisher evpub.Publisher
}

// CountPatches counts every status write on c.
func (w *Writer) CountPatches(c prometheus.Counter) { w.patchCounter = c }

// SetElected makes status writes wait for the channel to close (the
// manager's Elected()). Stats are still merged into the bucket before that.
func (w *Writer) SetElected(ch <-chan struct{}) { w.elected = ch }

func (w *Writer) leader() bool {
	if w.elected == nil {
		return true
	}
	select {
	case <-w.elected:
		return true
	default:
		return false
	}
}

// NewWriter builds a writer; Run flushes it.
func NewWriter(c client.Client, kv jetstream.KeyValue, rec events.EventRecorder, reg *endpoints.Registry, interval time.Duration, log logr.Logger) *Writer {
	return &Writer{client: c, kv: kv, recorder: rec, registry: reg, interval: interval, log: log, now: time.Now,
		byUID: map[types.UID]*stats{}, patches: map[types.UID]int{}, kick: make(chan struct{}, 1)}
}

// load returns the stats of an endpoint, reading them from the bucket the
// first time. Callers hold w.mu.
func (w *Writer) load(ctx context.Context, e *endpoints.Endpoint) *stats {
	if s := w.byUID[e.UID]; s != nil {
		return s
	}
	obj := e.Object()
	s := &stats{Namespace: obj.Namespace, Name: obj.Name}
	if entry, err := w.kv.Get(ctx, string(e.UID)); err == nil {
		_ = json.Unmarshal(entry.Value(), s)
		s.rev = entry.Revision()
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		w.log.Error(err, "read endpoint stats", "endpoint", obj.Namespace+"/"+obj.Name)
	}
	// The status is the truth for Disabled when the bucket has nothing.
	if c := apimeta.FindStatusCondition(obj.Status.Conditions, miraapi.DisabledCondition); c != nil && c.Status == metav1.ConditionTrue && !s.Disabled && s.DisabledAt == nil {
		s.Disabled, s.DisabledReason, s.DisabledMessage = true, c.Reason, c.Message
		s.DisabledGeneration = c.ObservedGeneration
		s.DisabledAt = &c.LastTransitionTime
		s.pending().setDisabled(s, c.LastTransitionTime)
	}
	if s.Handled == nil {
		s.Handled = map[string]string{}
	}
	for k, v := range obj.Status.HandledAnnotations {
		if k != miraapi.RotateSecretAnnotation {
			if _, ok := s.Handled[k]; !ok {
				s.Handled[k] = v
				s.pending().setHandled(k, v)
			}
		}
	}
	s.flushedDegraded, s.flushedDisabled = s.degraded(), s.Disabled
	w.byUID[e.UID] = s
	w.publishLocked(e.UID, s)
	return s
}

// Disabled reports whether deliveries to the endpoint are stopped. It is a
// read without side effects and without the writer's lock: the state is
// published per endpoint whenever it changes. A spec change (a newer
// generation than the one disabled) re-enables the endpoint.
func (w *Writer) Disabled(e *endpoints.Endpoint) bool {
	obj := e.Object()
	if v, ok := w.disabled.Load(e.UID); ok {
		d := v.(disabledState)
		return d.disabled && obj.Generation <= d.generation
	}
	// Nothing loaded for this endpoint yet: its status is the truth.
	c := apimeta.FindStatusCondition(obj.Status.Conditions, miraapi.DisabledCondition)
	return c != nil && c.Status == metav1.ConditionTrue && obj.Generation <= c.ObservedGeneration
}

// disabledState is what Disabled reads.
type disabledState struct {
	disabled   bool
	generation int64
}

// publishLocked makes s's Disabled state visible to Disabled. Callers hold w.mu.
func (w *Writer) publishLocked(uid types.UID, s *stats) {
	w.disabled.Store(uid, disabledState{disabled: s.Disabled, generation: s.DisabledGeneration})
}

// ReenableOnSpecChange records that a disabled endpoint whose spec changed
// since is enabled again (an Event and the status follow).
func (w *Writer) ReenableOnSpecChange(ctx context.Context, e *endpoints.Endpoint) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.load(ctx, e)
	if s.Disabled && !s.disabledFor(e.Object().Generation) && s.enable("spec changed", w.now()) {
		e.ResetFlowControl()
		w.publishLocked(e.UID, s)
		w.kickLocked()
	}
}

// Enable re-enables a disabled endpoint and records the annotation handled.
func (w *Writer) Enable(ctx context.Context, e *endpoints.Endpoint, annotationValue string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.load(ctx, e)
	s.Handled[miraapi.EnableAnnotation] = annotationValue
	s.pending().setHandled(miraapi.EnableAnnotation, annotationValue)
	if s.enable("annotation "+miraapi.EnableAnnotation, w.now()) {
		e.ResetFlowControl()
		w.publishLocked(e.UID, s)
	}
	w.kickLocked()
}

// Handled returns the last handled value of an action annotation.
func (w *Writer) Handled(ctx context.Context, e *endpoints.Endpoint, annotation string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.load(ctx, e).Handled[annotation]
}

// SetHandled records an action annotation value as handled.
func (w *Writer) SetHandled(ctx context.Context, e *endpoints.Endpoint, annotation, value string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.load(ctx, e)
	s.Handled[annotation] = value
	s.pending().setHandled(annotation, value)
	w.kickLocked()
}

// Record applies one outcome to the endpoint's stats.
func (w *Writer) Record(ctx context.Context, e *endpoints.Endpoint, o Outcome) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.load(ctx, e)
	obj := e.Object()
	wasDisabled := s.Disabled
	if s.recordOutcome(o, Policy{Generation: obj.Generation, DisableAfter: obj.GetDisableAfter()}, w.now()) {
		e.ResetFlowControl()
	}
	if s.Disabled != wasDisabled {
		w.publishLocked(e.UID, s)
	}
}

func (w *Writer) kickLocked() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Patches returns how many status writes went to an endpoint.
func (w *Writer) Patches(uid types.UID) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.patches[uid]
}

// Run flushes every interval until ctx ends, then once more. It runs on
// every replica (merging into the bucket); only the elected one writes
// status.
func (w *Writer) Run(ctx context.Context) error {
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go w.watch(wctx)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			w.Flush(fctx)
			cancel()
			return nil
		case <-t.C:
		case <-w.kick:
			// Annotation actions flush soon, but never more than once per interval.
			select {
			case <-ctx.Done():
				continue
			case <-t.C:
			}
		}
		w.Flush(ctx)
	}
}

// watch follows the stats bucket so this replica's view includes what the
// others merged; the elected replica writes status for those endpoints too.
func (w *Writer) watch(ctx context.Context) {
	for ctx.Err() == nil {
		kw, err := w.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
		if err != nil {
			w.log.V(1).Info("watch endpoint stats", "error", err.Error())
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		for entry := range kw.Updates() {
			if entry != nil {
				w.adopt(ctx, entry)
			}
		}
		_ = kw.Stop()
	}
}

// adopt takes a newer bucket entry as this replica's view, keeping what it
// has not merged yet.
func (w *Writer) adopt(ctx context.Context, entry jetstream.KeyValueEntry) {
	uid := types.UID(entry.Key())
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.byUID[uid]
	if s == nil {
		e := w.registry.Get(uid)
		if e == nil {
			return
		}
		s = w.load(ctx, e)
		s.statusDirty = true
		return
	}
	if entry.Revision() <= s.rev {
		return
	}
	var cur stats
	if err := json.Unmarshal(entry.Value(), &cur); err != nil {
		return
	}
	w.replaceViewLocked(uid, s, &cur, entry.Revision())
}

// replaceViewLocked makes merged (at revision rev) plus the pending delta the
// view of s. Callers hold w.mu.
func (w *Writer) replaceViewLocked(uid types.UID, s *stats, merged *stats, rev uint64) {
	d, fd, fdis, fo := s.delta, s.flushedDegraded, s.flushedDisabled, s.flushedOnce
	*s = *merged
	s.Recent = append([]miraapi.DeliveryAttempt(nil), merged.Recent...)
	s.Handled = map[string]string{}
	for k, v := range merged.Handled {
		s.Handled[k] = v
	}
	s.apply(d)
	s.delta, s.rev, s.statusDirty = d, rev, true
	s.flushedDegraded, s.flushedDisabled, s.flushedOnce = fd, fdis, fo
	w.publishLocked(uid, s)
}

// merge adds a delta to the endpoint's bucket entry with a revision check,
// retrying on conflicts with other replicas, and returns the merged entry.
func (w *Writer) merge(ctx context.Context, uid types.UID, ns, name string, d *statsDelta) (*stats, uint64, error) {
	key := string(uid)
	for i := 0; ; i++ {
		cur := &stats{}
		var rev uint64
		entry, err := w.kv.Get(ctx, key)
		switch {
		case err == nil:
			if err := json.Unmarshal(entry.Value(), cur); err != nil {
				cur = &stats{}
			}
			rev = entry.Revision()
		case errors.Is(err, jetstream.ErrKeyNotFound):
		default:
			return nil, 0, err
		}
		if cur.Namespace == "" {
			cur.Namespace, cur.Name = ns, name
		}
		cur.apply(d)
		b, err := json.Marshal(cur)
		if err != nil {
			return nil, 0, err
		}
		if rev == 0 {
			rev, err = w.kv.Create(ctx, key, b)
		} else {
			rev, err = w.kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			return cur, rev, nil
		}
		if i >= 20 || !(errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)) {
			return nil, 0, err
		}
	}
}

// Flush merges every endpoint's pending delta into the bucket and, on the
// elected replica, writes the status of every endpoint whose view changed.
func (w *Writer) Flush(ctx context.Context) {
	type mjob struct {
		uid      types.UID
		ns, name string
		d        *statsDelta
	}
	w.mu.Lock()
	var merges []mjob
	for uid, s := range w.byUID {
		if s.delta != nil {
			merges = append(merges, mjob{uid, s.Namespace, s.Name, s.delta})
			s.delta = nil
		}
	}
	w.mu.Unlock()
	parallel(len(merges), func(i int) {
		j := merges[i]
		merged, rev, err := w.merge(ctx, j.uid, j.ns, j.name, j.d)
		w.mu.Lock()
		defer w.mu.Unlock()
		s := w.byUID[j.uid]
		if s == nil {
			return
		}
		if err != nil {
			w.log.Error(err, "merge endpoint stats", "endpoint", j.ns+"/"+j.name)
			s.delta = j.d.then(s.delta) // try again next interval
			return
		}
		if rev > s.rev {
			w.replaceViewLocked(j.uid, s, merged, rev)
		}
		s.statusDirty = true
	})

	if !w.leader() {
		return
	}
	type job struct {
		uid types.UID
		s   stats
	}
	w.mu.Lock()
	var jobs []job
	for uid, s := range w.byUID {
		if s.statusDirty {
			cp := *s
			cp.delta = nil
			cp.Recent = append([]miraapi.DeliveryAttempt(nil), s.Recent...)
			cp.Handled = map[string]string{}
			for k, v := range s.Handled {
				cp.Handled[k] = v
			}
			jobs = append(jobs, job{uid, cp})
			s.statusDirty = false
		}
	}
	w.mu.Unlock()
	parallel(len(jobs), func(i int) {
		j := jobs[i]
		wrote, err := w.write(ctx, j.uid, &j.s)
		w.mu.Lock()
		defer w.mu.Unlock()
		if err == nil && wrote {
			// Counted even when the view was dropped meanwhile: the write
			// happened.
			w.patches[j.uid]++
			if w.patchCounter != nil {
				w.patchCounter.Inc()
			}
		}
		s := w.byUID[j.uid]
		if s == nil {
			return
		}
		if err != nil {
			s.statusDirty = true // try again next interval
			return
		}
		s.flushedDegraded, s.flushedDisabled, s.flushedOnce = j.s.degraded(), j.s.Disabled, true
	})
}

// parallel runs f(0..n-1), 16 at a time.
func parallel(n int, f func(int)) {
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			f(i)
		}(i)
	}
	wg.Wait()
}

// write applies the receiver's part of an endpoint's status; wrote is
// false when the endpoint is gone and nothing was written.
func (w *Writer) write(ctx context.Context, uid types.UID, s *stats) (wrote bool, err error) {
	e := w.registry.Get(uid)
	if e == nil {
		w.mu.Lock()
		delete(w.byUID, uid)
		w.disabled.Delete(uid)
		w.mu.Unlock()
		return false, nil
	}
	obj := e.Object()

	now := metav1.NewTime(w.now())
	degraded := metav1.Condition{Type: miraapi.DegradedCondition, Status: metav1.ConditionFalse, Reason: miraapi.DeliveriesHealthyReason,
		Message: fmt.Sprintf("fewer than %d consecutive failed attempts", miraapi.DegradedAfterFailures), ObservedGeneration: obj.Generation, LastTransitionTime: now}
	if s.degraded() {
		degraded.Status, degraded.Reason = metav1.ConditionTrue, miraapi.DeliveriesFailingReason
		degraded.Message = fmt.Sprintf("%d consecutive failed attempts since %s; the endpoint is disabled after %s of continuous failure",
			s.ConsecutiveFailures, s.FailingSince.UTC().Format(time.RFC3339), obj.GetDisableAfter())
	}
	disabled := metav1.Condition{Type: miraapi.DisabledCondition, Status: metav1.ConditionFalse, Reason: miraapi.EnabledReason,
		Message: "deliveries are attempted", ObservedGeneration: obj.Generation, LastTransitionTime: now}
	if s.DisabledMessage != "" && !s.Disabled {
		disabled.Message = s.DisabledMessage
	}
	if s.Disabled {
		// The generation it was disabled at: a later spec change re-enables
		// it, and the controller's Ready must not read it as disabled then.
		disabled.Status, disabled.Reason, disabled.Message = metav1.ConditionTrue, s.DisabledReason, s.DisabledMessage
		disabled.ObservedGeneration = s.DisabledGeneration
	}
	for _, c := range []*metav1.Condition{&degraded, &disabled} {
		if prev := apimeta.FindStatusCondition(obj.Status.Conditions, c.Type); prev != nil && prev.Status == c.Status {
			c.LastTransitionTime = prev.LastTransitionTime
		}
	}
	counts := clampCounts(s.Counts)
	status := miraapi.WebhookEndpointStatus{
		Conditions:          []metav1.Condition{degraded, disabled},
		LastDelivery:        s.LastDelivery,
		LastSuccessTime:     s.LastSuccess,
		LastFailureTime:     s.LastFailure,
		FailingSince:        s.FailingSince,
		ConsecutiveFailures: s.ConsecutiveFailures,
		Deliveries:          &counts,
		RecentAttempts:      s.Recent,
		HandledAnnotations:  s.Handled,
	}
	if len(status.HandledAnnotations) == 0 {
		status.HandledAnnotations = nil
	}
	if err := statuspatch.Apply(ctx, w.client, miraapi.GroupVersion.WithKind("WebhookEndpoint"), obj.Namespace, obj.Name, &status, miraapi.ReceiverFieldManager); err != nil {
		w.log.Error(err, "write delivery status", "endpoint", obj.Namespace+"/"+obj.Name)
		return false, err
	}
	w.emitTransitions(ctx, obj, s)
	return true, nil
}

func (w *Writer) emitTransitions(ctx context.Context, obj *miraapi.WebhookEndpoint, s *stats) {
	w.mu.Lock()
	cur := w.byUID[obj.UID]
	var wasDegraded, wasDisabled bool
	if cur != nil {
		wasDegraded, wasDisabled = cur.flushedDegraded, cur.flushedDisabled
	}
	w.mu.Unlock()
	w.publishOperational(ctx, obj, s, wasDegraded, wasDisabled)
	switch {
	case s.Disabled && !wasDisabled:
		w.recorder.Eventf(obj, nil, corev1.EventTypeWarning, s.DisabledReason, "Disable", "%s", s.DisabledMessage)
	case !s.Disabled && wasDisabled:
		w.recorder.Eventf(obj, nil, corev1.EventTypeNormal, miraapi.EnabledReason, "Enable", "deliveries resumed")
	}
	switch {
	case s.degraded() && !wasDegraded:
		w.recorder.Eventf(obj, nil, corev1.EventTypeWarning, miraapi.DeliveriesFailingReason, "Deliver",
			"%d consecutive failed attempts; last: %s", s.ConsecutiveFailures, lastError(s))
	case !s.degraded() && wasDegraded:
		w.recorder.Eventf(obj, nil, corev1.EventTypeNormal, miraapi.DeliveriesHealthyReason, "Deliver", "deliveries succeed again")
	}
}

func lastError(s *stats) string {
	if s.LastDelivery == nil {
		return ""
	}
	if s.LastDelivery.Error != "" {
		return s.LastDelivery.Error
	}
	return fmt.Sprintf("HTTP %d", s.LastDelivery.StatusCode)
}
