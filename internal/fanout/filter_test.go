package fanout

import (
	"encoding/json"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/endpoints"
	"github.com/mira/mira-operator/internal/eventfilter"
	"github.com/mira/mira-operator/internal/events"
)

func acceptsRegistry(tb testing.TB) *endpoints.Registry {
	tb.Helper()
	reg, err := endpoints.NewRegistry(endpoints.RegistryOptions{Reader: fake.NewClientBuilder().WithScheme(runtime.NewScheme()).Build()})
	if err != nil {
		tb.Fatal(err)
	}
	return reg
}

func TestAccepts(t *testing.T) {
	reg := acceptsRegistry(t)
	plain := reg.Observe(endpoint("p", "plain", []string{miraapi.EventReportCompleted, miraapi.EventEndpointDisabled}, true))
	filtered := endpoint("f", "filtered", []string{miraapi.EventReportCompleted}, true)
	filtered.Spec.Filter = `event.data.user_id == "usr_1"`
	flt := reg.Observe(filtered)
	broken := endpoint("b", "broken", []string{miraapi.EventReportCompleted}, true)
	broken.Spec.Filter = `event.data.user_id ==`
	brk := reg.Observe(broken)
	data := func(s string) json.RawMessage { return json.RawMessage(s) }
	tests := []struct {
		name               string
		ev                 events.Event
		e                  *endpoints.Endpoint
		wantOK, wantFilter bool
		wantErr            bool
		wantUnchecked      bool
	}{
		{"no filter", events.Event{Type: miraapi.EventReportCompleted, Data: data(`{}`)}, plain, true, false, false, false},
		{"match", events.Event{Type: miraapi.EventReportCompleted, Data: data(`{"user_id":"usr_1"}`)}, flt, true, false, false, false},
		{"no match", events.Event{Type: miraapi.EventReportCompleted, Data: data(`{"user_id":"usr_2"}`)}, flt, false, true, false, false},
		{"evaluation error is no match", events.Event{Type: miraapi.EventReportCompleted, Data: data(`{}`)}, flt, false, true, true, false},
		{"test events skip the filter", events.Event{Type: miraapi.EventWebhookTest, Only: "uid-f", Data: data(`{}`)}, flt, true, false, false, false},
		{"never about itself", events.Event{Type: miraapi.EventEndpointDisabled, Namespace: "ns", Except: "uid-p"}, plain, false, false, false, false},
		{"about another endpoint", events.Event{Type: miraapi.EventEndpointDisabled, Namespace: "ns", Except: "uid-x"}, plain, true, false, false, false},
		{"operational events stay in their namespace", events.Event{Type: miraapi.EventEndpointDisabled, Namespace: "other", Except: "uid-x"}, plain, false, false, false, false},
		{"a filter that does not compile lets it through unchecked", events.Event{Type: miraapi.EventReportCompleted, Data: data(`{}`)}, brk, true, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var act *eventfilter.Activation
			d := Accepts(tt.ev, tt.e, &act)
			if d.Deliver != tt.wantOK || d.Filtered != tt.wantFilter || (d.Err != nil) != tt.wantErr || d.Unchecked != tt.wantUnchecked {
				t.Fatalf("Accepts = %+v; want deliver %t, filtered %t, error %t, unchecked %t", d, tt.wantOK, tt.wantFilter, tt.wantErr, tt.wantUnchecked)
			}
		})
	}
}

// The fan-out's per-endpoint cost of the feature: an endpoint without a
// filter makes no CEL call and allocates nothing.
func BenchmarkAcceptsNoFilter(b *testing.B) {
	e := acceptsRegistry(b).Observe(endpoint("p", "plain", []string{miraapi.EventReportCompleted}, true))
	ev := events.Event{ID: "evt_1", Type: miraapi.EventReportCompleted, Data: json.RawMessage(`{"user_id":"usr_1"}`), Time: time.Now()}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var act *eventfilter.Activation
		if !Accepts(ev, e, &act).Deliver {
			b.Fatal("refused")
		}
	}
}

func BenchmarkAcceptsWithFilter(b *testing.B) {
	w := endpoint("f", "filtered", []string{miraapi.EventReportCompleted}, true)
	w.Spec.Filter = `event.data.user_id in ["usr_1", "usr_2"]`
	e := acceptsRegistry(b).Observe(w)
	ev := events.Event{ID: "evt_1", Type: miraapi.EventReportCompleted, Data: json.RawMessage(`{"user_id":"usr_1","report_id":"rep_1"}`), Time: time.Now()}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var act *eventfilter.Activation
		if !Accepts(ev, e, &act).Deliver {
			b.Fatal("refused")
		}
	}
}

func TestAcceptsNoFilterAllocatesNothing(t *testing.T) {
	e := acceptsRegistry(t).Observe(endpoint("p", "plain", []string{miraapi.EventReportCompleted}, true))
	ev := events.Event{ID: "evt_1", Type: miraapi.EventReportCompleted, Data: json.RawMessage(`{}`)}
	var act *eventfilter.Activation
	if n := testing.AllocsPerRun(100, func() { _ = Accepts(ev, e, &act) }); n != 0 {
		t.Fatalf("Accepts without a filter allocates %v times", n)
	}
	if act != nil {
		t.Fatal("an activation was built for an endpoint without a filter")
	}
}
