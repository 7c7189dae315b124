package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

// statsConcurrency bounds the delivery-log reads of the endpoints page.
const statsConcurrency = 4

// Health is an endpoint's state in one word and one colour.
type Health struct {
	// Word: Ready, Suspended, Degraded, Disabled, Not ready or Unknown.
	Word string
	// Level: ok, warn, bad or off.
	Level string
	// Reason and Message of the condition that decided it.
	Reason, Message string
}

// health reads the conditions: Disabled beats not Ready beats Degraded.
func health(w *miraapi.WebhookEndpoint) Health {
	conds := w.Status.Conditions
	ready := meta.FindStatusCondition(conds, miraapi.ReadyCondition)
	if c := meta.FindStatusCondition(conds, miraapi.DisabledCondition); c != nil && c.Status == metav1.ConditionTrue {
		return Health{Word: "Disabled", Level: "bad", Reason: c.Reason, Message: c.Message}
	}
	if w.Spec.Suspend {
		h := Health{Word: "Suspended", Level: "off"}
		if ready != nil {
			h.Reason, h.Message = ready.Reason, ready.Message
		}
		return h
	}
	if ready == nil {
		return Health{Word: "Unknown", Level: "off", Message: "no Ready condition yet: is the manager running?"}
	}
	if ready.Status != metav1.ConditionTrue {
		return Health{Word: "Not ready", Level: "bad", Reason: ready.Reason, Message: ready.Message}
	}
	if c := meta.FindStatusCondition(conds, miraapi.DegradedCondition); c != nil && c.Status == metav1.ConditionTrue {
		return Health{Word: "Degraded", Level: "warn", Reason: c.Reason, Message: c.Message}
	}
	return Health{Word: "Ready", Level: "ok", Reason: ready.Reason, Message: ready.Message}
}

// endpointRow is one line of the endpoints page.
type endpointRow struct {
	EP       *miraapi.WebhookEndpoint
	Health   Health
	Target   string
	Stats    Stats
	StatsErr string
}

// Link is the endpoint's page.
func (r endpointRow) Link() string { return endpointPath(r.EP.Namespace, r.EP.Name) }

func endpointPath(ns, name string) string {
	return "/endpoints/" + url.PathEscape(ns) + "/" + url.PathEscape(name)
}

func deliveryPath(id string) string { return "/deliveries/" + url.PathEscape(id) }

func target(w *miraapi.WebhookEndpoint) string {
	if w.Status.TargetURL != "" {
		return w.Status.TargetURL
	}
	if w.Spec.URL != "" {
		return w.Spec.URL
	}
	if s := w.Spec.Service; s != nil {
		return "service " + w.ServiceNamespace() + "/" + s.Name
	}
	return ""
}

type endpointsData struct {
	Rows      []endpointRow
	Namespace string
	Note      string
	LogErr    string
}

func (s *Server) endpoints(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ns := r.URL.Query().Get("namespace")
	d := endpointsData{Namespace: ns}
	list := &miraapi.WebhookEndpointList{}
	var opts []client.ListOption
	if ns != "" {
		opts = append(opts, client.InNamespace(ns))
	}
	err := s.opts.Client.List(ctx, list, opts...)
	if apierrors.IsForbidden(err) && ns == "" && s.opts.DefaultNamespace != "" {
		// Not allowed across namespaces: show the context's namespace.
		d.Note = fmt.Sprintf("You may not list WebhookEndpoints in every namespace (%v); showing namespace %s.", err, s.opts.DefaultNamespace)
		d.Namespace = s.opts.DefaultNamespace
		err = s.opts.Client.List(ctx, list, client.InNamespace(s.opts.DefaultNamespace))
	}
	if err != nil {
		s.fail(w, r, fmt.Errorf("list WebhookEndpoints: %w", err), "")
		return
	}
	sort.Slice(list.Items, func(i, j int) bool {
		a, b := list.Items[i], list.Items[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	d.Rows = make([]endpointRow, len(list.Items))
	var wg sync.WaitGroup
	sem := make(chan struct{}, statsConcurrency)
	var mu sync.Mutex
	for i := range list.Items {
		ep := &list.Items[i]
		d.Rows[i] = endpointRow{EP: ep, Health: health(ep), Target: target(ep)}
		wg.Add(1)
		go func(row *endpointRow) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			st, err := s.recentStats(ctx, row.EP.Namespace, row.EP.Name)
			if err != nil {
				row.StatsErr = err.Error()
				mu.Lock()
				if d.LogErr == "" {
					d.LogErr = err.Error()
				}
				mu.Unlock()
				return
			}
			row.Stats = st
		}(&d.Rows[i])
	}
	wg.Wait()
	s.render(w, r, http.StatusOK, "endpoints", "Webhook endpoints", "endpoints", d)
}

// Condition is a condition for display, Ready first.
type condRow struct {
	metav1.Condition
	Level string
}

func conditionRows(w *miraapi.WebhookEndpoint) []condRow {
	order := map[string]int{miraapi.ReadyCondition: 0, miraapi.DisabledCondition: 1, miraapi.DegradedCondition: 2}
	rank := func(t string) int {
		if n, ok := order[t]; ok {
			return n
		}
		return 9
	}
	cs := append([]metav1.Condition(nil), w.Status.Conditions...)
	sort.SliceStable(cs, func(i, j int) bool { return rank(cs[i].Type) < rank(cs[j].Type) })
	out := make([]condRow, 0, len(cs))
	for _, c := range cs {
		// Ready is good when True; Disabled, Degraded and the kstatus
		// Reconciling/Stalled conditions are good when False.
		good := c.Status == metav1.ConditionFalse
		if c.Type == miraapi.ReadyCondition {
			good = c.Status == metav1.ConditionTrue
		}
		level := "bad"
		switch {
		case c.Status == metav1.ConditionUnknown:
			level = "off"
		case good:
			level = "ok"
		case c.Type == miraapi.DegradedCondition || c.Type == "Reconciling":
			level = "warn"
		}
		out = append(out, condRow{Condition: c, Level: level})
	}
	return out
}

// policyRow is one line of the delivery policy, defaults applied.
type policyRow struct{ Name, Value string }

func policyRows(w *miraapi.WebhookEndpoint) []policyRow {
	rate := "unlimited"
	if n := w.GetRateLimit(); n > 0 {
		rate = strconv.Itoa(n) + "/s"
	}
	return []policyRow{
		{"Timeout", human(w.GetTimeout())},
		{"Max attempts", strconv.Itoa(w.GetMaxAttempts())},
		{"Max retry duration", human(w.GetMaxRetryDuration())},
		{"Backoff", fmt.Sprintf("%s doubling to %s, %.0f%% jitter", human(w.GetBackoffInitial()), human(w.GetBackoffMax()), 100*w.GetJitter())},
		{"Max concurrency", strconv.Itoa(w.GetMaxConcurrency())},
		{"Rate limit", rate},
		{"Disable after", human(w.GetDisableAfter()) + " of continuous failure"},
	}
}

// logFilter is the delivery-log form.
type logFilter struct {
	Outcome, Event, Since string
	Limit                 int
	Cursor                string
}

var outcomes = []string{"failed", "delivered", "retrying", "dead", "skipped", "pending"}

// maxFilterPages bounds how many log pages one page of an event-type
// filtered listing reads (Log cannot filter by event type).
const maxFilterPages = 5

func parseFilter(q url.Values, now time.Time) (logFilter, Query, error) {
	f := logFilter{Outcome: q.Get("outcome"), Event: q.Get("event"), Since: strings.TrimSpace(q.Get("since")), Cursor: q.Get("cursor"), Limit: 25}
	var out Query
	if f.Outcome != "" {
		ok := false
		for _, o := range outcomes {
			ok = ok || o == f.Outcome
		}
		if !ok {
			return f, out, badInput("outcome must be one of %s", strings.Join(outcomes, ", "))
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return f, out, badInput("limit must be a number from 1 to 500")
		}
		f.Limit = n
	}
	if f.Since != "" {
		t, err := parseSince(f.Since, now)
		if err != nil {
			return f, out, badInput("since: %v", err)
		}
		out.Since = t
	}
	out.Outcome, out.Limit, out.Cursor = f.Outcome, f.Limit, f.Cursor
	return f, out, nil
}

// parseSince accepts an RFC 3339 time, a datetime-local value (UTC) or a
// duration back from now, like `kubectl mira deliveries --since`.
func parseSince(v string, now time.Time) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration such as 1h", v)
	}
	return now.Add(-d).UTC().Truncate(time.Second), nil
}

type endpointData struct {
	EP         *miraapi.WebhookEndpoint
	Health     Health
	Target     string
	Conditions []condRow
	Policy     []policyRow
	Secret     string
	Generated  bool
	Stats      Stats
	StatsErr   string
	Filter     logFilter
	Outcomes   []string
	EventTypes []string
	Items      []Delivery
	LogErr     string
	Next       string
	First      string
	Self       string
	Scanned    int
}

func (s *Server) endpoint(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	key := types.NamespacedName{Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}
	ep := &miraapi.WebhookEndpoint{}
	if err := s.opts.Client.Get(ctx, key, ep); err != nil {
		s.fail(w, r, fmt.Errorf("read WebhookEndpoint %s: %w", key, err), "/endpoints")
		return
	}
	f, q, err := parseFilter(r.URL.Query(), s.opts.Now())
	if err != nil {
		s.fail(w, r, err, endpointPath(key.Namespace, key.Name))
		return
	}
	d := endpointData{
		EP: ep, Health: health(ep), Target: target(ep), Conditions: conditionRows(ep), Policy: policyRows(ep),
		Secret: ep.SigningSecretName() + " (key " + ep.SigningSecretKey() + ")", Generated: ep.UsesGeneratedSecret(),
		Filter: f, Outcomes: outcomes, EventTypes: append(append(append([]string(nil), miraapi.EventTypes...), miraapi.EventWebhookTest), miraapi.OperationalEventTypes...),
		Self: r.URL.RequestURI(),
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		st, err := s.recentStats(ctx, key.Namespace, key.Name)
		if err != nil {
			d.StatsErr = err.Error()
			return
		}
		d.Stats = st
	}()
	d.Items, d.Next, d.Scanned, err = s.filteredLog(ctx, key, f, q)
	if err != nil {
		d.LogErr = err.Error()
	}
	wg.Wait()
	base := url.Values{}
	for k, v := range map[string]string{"outcome": f.Outcome, "event": f.Event, "since": f.Since} {
		if v != "" {
			base.Set(k, v)
		}
	}
	if f.Limit != 25 {
		base.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Cursor != "" {
		d.First = endpointPath(key.Namespace, key.Name) + "?" + base.Encode() + "#log"
	}
	if d.Next != "" {
		base.Set("cursor", d.Next)
		d.Next = endpointPath(key.Namespace, key.Name) + "?" + base.Encode() + "#log"
	}
	s.render(w, r, http.StatusOK, "endpoint", key.String(), "endpoints", d)
}

// filteredLog reads one page of the log; with an event-type filter it reads
// up to maxFilterPages log pages and keeps the matching deliveries.
func (s *Server) filteredLog(ctx context.Context, key types.NamespacedName, f logFilter, q Query) ([]Delivery, string, int, error) {
	var out []Delivery
	scanned := 0
	for i := 0; i < maxFilterPages; i++ {
		p, err := s.opts.Log.Deliveries(ctx, key.Namespace, key.Name, q)
		if err != nil {
			return nil, "", 0, fmt.Errorf("list deliveries of %s: %w", key, err)
		}
		scanned += len(p.Items)
		for _, d := range p.Items {
			if f.Event == "" || d.EventType == f.Event {
				out = append(out, d)
			}
		}
		if f.Event == "" || len(out) >= f.Limit || p.NextCursor == "" {
			return out, p.NextCursor, scanned, nil
		}
		q.Cursor = p.NextCursor
	}
	return out, q.Cursor, scanned, nil
}
