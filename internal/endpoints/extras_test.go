package endpoints

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/eventfilter"
)

// Headers reads the Secret on every call (the receiver's reader caches it
// briefly), so a change reaches the next attempt; an invalid Secret is an
// error that names the key, never a value.
func TestHeadersFollowTheSecret(t *testing.T) {
	ctx := context.Background()
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "hdr"},
		Data: map[string][]byte{"Authorization": []byte("Bearer one")}}
	reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(secret).Build()
	reg, err := NewRegistry(RegistryOptions{Reader: reader})
	if err != nil {
		t.Fatal(err)
	}
	plain := reg.Observe(&miraapi.WebhookEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "plain", UID: "u1"}})
	if h, err := reg.Headers(ctx, plain); h != nil || err != nil {
		t.Fatalf("no headersSecretRef: %v, %v", h, err)
	}
	w := &miraapi.WebhookEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "ep", UID: "u2"},
		Spec: miraapi.WebhookEndpointSpec{HeadersSecretRef: &miraapi.LocalSecretReference{Name: "hdr"}}}
	e := reg.Observe(w)
	if h, err := reg.Headers(ctx, e); err != nil || string(h["Authorization"]) != "Bearer one" {
		t.Fatalf("Headers = %v, %v", h, err)
	}
	secret.Data = map[string][]byte{"Authorization": []byte("Bearer two")}
	if err := reader.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if h, err := reg.Headers(ctx, e); err != nil || string(h["Authorization"]) != "Bearer two" {
		t.Fatalf("after the change: %v, %v", h, err)
	}
	secret.Data = map[string][]byte{"Host": []byte("s3cr3t.example")}
	if err := reader.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	_, err = reg.Headers(ctx, e)
	if err == nil || !strings.Contains(err.Error(), `"Host"`) || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("reserved header: %v", err)
	}
}

// The filter compiles once per generation and again when the spec changes.
func TestFilterCompiledPerGeneration(t *testing.T) {
	reg, err := NewRegistry(RegistryOptions{Reader: fake.NewClientBuilder().WithScheme(runtime.NewScheme()).Build()})
	if err != nil {
		t.Fatal(err)
	}
	w := &miraapi.WebhookEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "ep", UID: "u", Generation: 1, ResourceVersion: "1"}}
	e := reg.Observe(w)
	if f, err := e.Filter(); f != nil || err != nil {
		t.Fatalf("no filter: %v, %v", f, err)
	}
	w2 := w.DeepCopy()
	w2.Generation, w2.ResourceVersion, w2.Spec.Filter = 2, "2", `event.type == "report.completed"`
	reg.Observe(w2)
	f1, err := e.Filter()
	if err != nil || f1 == nil {
		t.Fatalf("filter: %v, %v", f1, err)
	}
	if f2, _ := e.Filter(); f2 != f1 {
		t.Fatal("the filter was compiled again for the same generation")
	}
	ok, err := f1.Match(eventfilter.NewActivation(eventfilter.Event{Type: "report.completed"}))
	if !ok || err != nil {
		t.Fatalf("Match = %t, %v", ok, err)
	}
	w3 := w2.DeepCopy()
	w3.Generation, w3.ResourceVersion, w3.Spec.Filter = 3, "3", `event.type ==`
	reg.Observe(w3)
	if _, err := e.Filter(); err == nil {
		t.Fatal("a broken filter of a new generation compiled")
	}
}
