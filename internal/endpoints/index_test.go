package endpoints

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
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

// SigningSecrets reads the Secret at most once per secretRecheck per
// endpoint: a change shows at the first call after it, with the replaced
// value as the previous secret during the grace period.
func TestSigningSecretsRereadAfterRecheck(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	w := &miraapi.WebhookEndpoint{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "ep", UID: "u1", ResourceVersion: "1"},
		Spec:       miraapi.WebhookEndpointSpec{URL: "https://example.com/"},
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: w.SigningSecretName()},
		Data:       map[string][]byte{w.SigningSecretKey(): []byte("one")},
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(secret).Build()
	now := time.Unix(1_000_000, 0)
	reg, err := NewRegistry(RegistryOptions{Reader: c, RotationGrace: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	e := reg.Observe(w)
	get := func() (string, []string) {
		t.Helper()
		cur, prev, err := reg.SigningSecrets(context.Background(), e)
		if err != nil {
			t.Fatal(err)
		}
		return cur, prev
	}
	if cur, prev := get(); cur != "one" || len(prev) != 0 {
		t.Fatalf("first read: %q %v", cur, prev)
	}
	secret.Data[w.SigningSecretKey()] = []byte("two")
	if err := c.Update(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	now = now.Add(secretRecheck / 2)
	if cur, _ := get(); cur != "one" {
		t.Fatalf("within the recheck interval: %q, want the value read last", cur)
	}
	now = now.Add(secretRecheck)
	if cur, prev := get(); cur != "two" || len(prev) != 1 || prev[0] != "one" {
		t.Fatalf("after the recheck interval: %q %v, want two with previous one", cur, prev)
	}
}
