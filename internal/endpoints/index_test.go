package endpoints

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

// The per-namespace, per-type index follows what the informer reports:
// new endpoints, a changed spec.events, deletions; and it never returns
// another namespace's endpoints.
func TestSubscribedFollowsTheRegistry(t *testing.T) {
	reg, err := NewRegistry(RegistryOptions{Reader: fake.NewClientBuilder().WithScheme(runtime.NewScheme()).Build()})
	if err != nil {
		t.Fatal(err)
	}
	ep := func(ns, name, rv string, evs ...string) *miraapi.WebhookEndpoint {
		return &miraapi.WebhookEndpoint{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "-" + name), ResourceVersion: rv},
			Spec:       miraapi.WebhookEndpointSpec{URL: "https://example.com/" + name, Events: evs},
		}
	}
	names := func(ns, typ string) []string {
		var out []string
		for _, e := range reg.Subscribed(ns, typ) {
			out = append(out, e.Object().Name)
		}
		slices.Sort(out)
		return out
	}
	check := func(step, ns, typ string, want ...string) {
		t.Helper()
		if got := names(ns, typ); !slices.Equal(got, want) {
			t.Errorf("%s: Subscribed(%s, %s) = %v, want %v", step, ns, typ, got, want)
		}
	}
	reg.Observe(ep("a", "all", "1", miraapi.EventAll))
	reg.Observe(ep("a", "failed", "1", miraapi.EventMeetingFailed))
	reg.Observe(ep("b", "all", "1", miraapi.EventAll))
	check("start", "a", miraapi.EventReportCompleted, "all")
	check("start", "a", miraapi.EventMeetingFailed, "all", "failed")
	check("start", "c", miraapi.EventMeetingFailed)

	reg.Observe(ep("a", "late", "1", miraapi.EventReportCompleted))
	check("added", "a", miraapi.EventReportCompleted, "all", "late")

	reg.Observe(ep("a", "failed", "2", miraapi.EventReportCompleted))
	check("events changed", "a", miraapi.EventReportCompleted, "all", "failed", "late")
	check("events changed", "a", miraapi.EventMeetingFailed, "all")

	reg.remove(ep("a", "all", "3"))
	check("removed", "a", miraapi.EventReportCompleted, "failed", "late")
	check("removed", "b", miraapi.EventReportCompleted, "all")
}
