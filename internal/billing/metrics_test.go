package billing

import (
	"context"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetrics(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	kv := newBucket(t)
	p := newProcessor(t, kv, reg)
	for _, ev := range []struct {
		id, typ string
		created int64
		obj     string
	}{
		{"evt_P0", "invoice.payment_failed", 400, invObj("in_P", "cus_P", "open", 2900, 0, 2, "null")},         // applied
		{"evt_P1", "invoice.payment_failed", 300, invObj("in_P", "cus_P", "open", 2900, 0, 1, "1741359800")},   // stale
		{"evt_P2", "customer.created", 300, `{"id":"cus_P","object":"customer"}`},                              // ignored, other
		{"evt_P3", "charge.refunded", 300, `{"id":"ch_P","object":"charge"}`},                                  // ignored, other
		{"evt_P4", "customer.subscription.updated", 300, subObj("sub_P", "", "active", "price_Pro", 1, false)}, // invalid
	} {
		_, _ = p.Apply(ctx, event(t, ev.id, ev.typ, ev.created, ev.obj))
	}
	// A redelivered stale event is stale again (stale events are not
	// recorded); a redelivered applied one is a duplicate.
	_, _ = p.Apply(ctx, event(t, "evt_P1", "invoice.payment_failed", 300, invObj("in_P", "cus_P", "open", 2900, 0, 1, "1741359800")))
	_, _ = p.Apply(ctx, event(t, "evt_P0", "invoice.payment_failed", 400, invObj("in_P", "cus_P", "open", 2900, 0, 2, "null")))

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			got = append(got, f.GetName()+"{"+strings.Join(labels, ",")+"} "+strconv.FormatFloat(m.GetCounter().GetValue(), 'f', -1, 64))
		}
	}
	sort.Strings(got)
	want := []string{
		"mira_billing_events_total{outcome=applied,type=invoice.payment_failed} 1",
		"mira_billing_events_total{outcome=duplicate,type=invoice.payment_failed} 1",
		"mira_billing_events_total{outcome=ignored,type=other} 2",
		"mira_billing_events_total{outcome=invalid,type=customer.subscription.updated} 1",
		"mira_billing_events_total{outcome=stale,type=invoice.payment_failed} 2",
		"mira_billing_payment_failures_total{} 1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("metrics:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}

	// A second processor on the same registry is refused, not a panic.
	if _, err := NewProcessor(kv, reg); err == nil || !strings.HasPrefix(err.Error(), "new billing processor: register billing metrics: ") {
		t.Fatalf("second NewProcessor on one registry: error = %v", err)
	}
	if _, err := NewProcessor(nil, nil); err == nil || err.Error() != "new billing processor: nil key-value bucket" {
		t.Fatalf("NewProcessor(nil) error = %v", err)
	}
}
