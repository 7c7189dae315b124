package endpointstatus

import (
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/endpoints"
)

// Disabled is a read: it neither loads nor changes state, and a newer
// generation than the one disabled reads as enabled.
func TestDisabledIsARead(t *testing.T) {
	reg, err := endpoints.NewRegistry(endpoints.RegistryOptions{Reader: fake.NewClientBuilder().Build()})
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(nil, nil, nil, reg, time.Second, logr.Discard())
	obj := &miraapi.WebhookEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", UID: "u1", Generation: 3, ResourceVersion: "1"}}
	obj.Status.Conditions = []metav1.Condition{{Type: miraapi.DisabledCondition, Status: metav1.ConditionTrue, ObservedGeneration: 3}}
	e := reg.Observe(obj)
	// Nothing loaded: the status condition is the truth.
	if !w.Disabled(e) {
		t.Fatal("an endpoint whose status says Disabled at its generation reads as enabled")
	}
	if len(w.byUID) != 0 {
		t.Fatal("Disabled loaded stats")
	}
	// Published state wins; a newer generation reads as enabled without
	// touching the stats.
	s := &stats{Disabled: true, DisabledGeneration: 3}
	w.byUID[e.UID] = s
	w.publishLocked(e.UID, s)
	if !w.Disabled(e) {
		t.Fatal("disabled at generation 3, read as enabled at 3")
	}
	newer := obj.DeepCopy()
	newer.Generation, newer.ResourceVersion = 4, "2"
	reg.Observe(newer)
	if w.Disabled(e) {
		t.Fatal("a spec change did not re-enable the endpoint for reads")
	}
	if !s.Disabled || s.delta != nil {
		t.Fatalf("Disabled changed the stats: %+v", s)
	}
}
