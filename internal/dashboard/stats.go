package dashboard

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// Rates and the chart are computed from the delivery log, not from the
// status counters: status counts deliveries since the receiver's data began
// and cannot be cut by time. A delivery counts in the window of its creation
// time; Delivered is a success, Retrying and Dead are failures, Pending and
// Skipped are not counted.

// statsWindow is how far back rates and the chart look.
const statsWindow = 24 * time.Hour

// Reading more than this many deliveries for one endpoint's figures stops,
// and the figures say they are partial.
const (
	statsPageSize = 500
	statsMaxPages = 4
)

// Rate is a success rate over a window.
type Rate struct {
	OK, Failed int
	// Partial is set when the log had more deliveries than were read.
	Partial bool
}

// Total is the number of finished or failing deliveries in the window.
func (r Rate) Total() int { return r.OK + r.Failed }

// String is "97.5%", or "–" without deliveries.
func (r Rate) String() string {
	if r.Total() == 0 {
		return "–"
	}
	p := 100 * float64(r.OK) / float64(r.Total())
	s := strconv.FormatFloat(p, 'f', 1, 64)
	if r.OK == r.Total() {
		s = "100"
	}
	if r.Partial {
		return "≈" + s + "%"
	}
	return s + "%"
}

// Level is the rate's colour: ok, warn, bad or none.
func (r Rate) Level() string {
	switch {
	case r.Total() == 0:
		return "none"
	case r.Failed == 0:
		return "ok"
	case r.OK*100 >= 95*r.Total():
		return "warn"
	}
	return "bad"
}

// Title explains the figure.
func (r Rate) Title() string {
	t := fmt.Sprintf("%d delivered, %d retrying or dead (deliveries created in the window, from the delivery log)", r.OK, r.Failed)
	if r.Partial {
		t += "; only the newest deliveries were read"
	}
	return t
}

// Stats are an endpoint's figures from its recent delivery log.
type Stats struct {
	Hour, Day Rate
	Chart     Chart
}

// computeStats counts recent deliveries (newest first) into rates and
// hourly buckets ending at now.
func computeStats(items []Delivery, partial bool, now time.Time) Stats {
	var st Stats
	st.Hour.Partial, st.Day.Partial = false, partial
	counts := make([]Bucket, chartBuckets)
	start := now.Add(-statsWindow)
	for i := range counts {
		counts[i].Start = start.Add(time.Duration(i) * statsWindow / chartBuckets)
	}
	for i := range items {
		d := &items[i]
		if d.Created.Before(start) || d.Created.After(now) {
			continue
		}
		ok, failed := d.State == StateDelivered, d.Failed()
		if !ok && !failed {
			continue
		}
		b := int(d.Created.Sub(start) * chartBuckets / statsWindow)
		if b >= chartBuckets {
			b = chartBuckets - 1
		}
		if ok {
			st.Day.OK++
			counts[b].OK++
		} else {
			st.Day.Failed++
			counts[b].Failed++
		}
		if !d.Created.Before(now.Add(-time.Hour)) {
			if ok {
				st.Hour.OK++
			} else {
				st.Hour.Failed++
			}
		}
	}
	st.Chart = newChart(counts, now)
	return st
}

// recentStats reads the endpoint's deliveries of the last day and computes
// its figures.
func (s *Server) recentStats(ctx context.Context, namespace, name string) (Stats, error) {
	now := s.opts.Now()
	var items []Delivery
	q := Query{Since: now.Add(-statsWindow), Limit: statsPageSize}
	partial := false
	for i := 0; ; i++ {
		p, err := s.opts.Log.Deliveries(ctx, namespace, name, q)
		if err != nil {
			return Stats{}, err
		}
		items = append(items, p.Items...)
		if p.NextCursor == "" {
			break
		}
		if i+1 == statsMaxPages {
			partial = true
			break
		}
		q.Cursor = p.NextCursor
	}
	return computeStats(items, partial, now), nil
}
