package endpoints

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/delivery"
)

// An endpoint with TLS settings gets its own sender; it must keep the
// receiver's --max-response-bytes like the shared senders do.
func TestTLSSenderKeepsMaxResponseBytes(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("x", 4096)))
	}))
	defer srv.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "ca", ResourceVersion: "1"},
		Data:       map[string][]byte{"ca.crt": caPEM},
	}).Build()
	reg, err := NewRegistry(RegistryOptions{Reader: reader, MaxResponseBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	e := reg.Observe(&miraapi.WebhookEndpoint{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "tls", UID: "u1", ResourceVersion: "1"},
		Spec: miraapi.WebhookEndpointSpec{URL: srv.URL, TLS: &miraapi.TLSConfig{
			CASecretRef: &miraapi.CASecretReference{Name: "ca"},
		}},
	})
	sender, err := reg.Sender(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	req, err := delivery.NewRequest(context.Background(), srv.URL, delivery.Message{
		ID: "dlv_1", EventType: miraapi.EventReportCompleted, Body: []byte(`{}`), Secret: "s",
	}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	res := sender.Send(context.Background(), req, 5*time.Second)
	if res.Outcome != delivery.OutcomeSuccess {
		t.Fatalf("outcome %v: %v", res.Outcome, res.Err)
	}
	if len(res.BodyExcerpt) != 100 {
		t.Fatalf("response excerpt of the TLS sender is %d bytes, want --max-response-bytes 100", len(res.BodyExcerpt))
	}
}

func TestDeliverable(t *testing.T) {
	ready := func(status metav1.ConditionStatus, reason string, gen int64) []metav1.Condition {
		return []metav1.Condition{{Type: miraapi.ReadyCondition, Status: status, Reason: reason, Message: "m", ObservedGeneration: gen}}
	}
	tests := []struct {
		name       string
		gen        int64
		conditions []metav1.Condition
		target     string
		want       bool
		reason     string
	}{
		{"never reconciled", 1, nil, "", false, "the WebhookEndpoint is not reconciled yet"},
		{"spec edited, not observed", 2, ready(metav1.ConditionTrue, "Ready", 1), "https://a", false, "generation 2 of the WebhookEndpoint is not reconciled yet"},
		{"secret missing", 1, ready(metav1.ConditionFalse, "SecretNotFound", 1), "https://a", false, "the WebhookEndpoint is not Ready (SecretNotFound: m)"},
		{"ready without target", 1, ready(metav1.ConditionTrue, "Ready", 1), "", false, "the WebhookEndpoint has no usable target: endpoint has neither url nor service"},
		{"ready", 1, ready(metav1.ConditionTrue, "Ready", 1), "https://a", true, ""},
		{"suspended", 1, ready(metav1.ConditionFalse, miraapi.SuspendedReason, 1), "https://a", true, ""},
		{"disabled by the receiver", 1, ready(metav1.ConditionFalse, miraapi.DisabledReason, 1), "https://a", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &miraapi.WebhookEndpoint{ObjectMeta: metav1.ObjectMeta{Generation: tt.gen}}
			// The target comes from the spec; status.targetURL (display
			// only, writable by anyone who may patch status) is ignored.
			w.Status.Conditions, w.Spec.URL, w.Status.TargetURL = tt.conditions, tt.target, "http://169.254.169.254/"
			ok, reason := Deliverable(w)
			if ok != tt.want || reason != tt.reason {
				t.Fatalf("Deliverable = %v %q, want %v %q", ok, reason, tt.want, tt.reason)
			}
			if got, err := Target(w); ok && (err != nil || got != tt.target) {
				t.Fatalf("Target = %q, %v; want %q from the spec", got, err, tt.target)
			}
		})
	}
}

// All follows additions and removals although it reuses its list between
// changes.
func TestAllFollowsMembership(t *testing.T) {
	reg, err := NewRegistry(RegistryOptions{Reader: fake.NewClientBuilder().Build()})
	if err != nil {
		t.Fatal(err)
	}
	ep := func(uid string) *miraapi.WebhookEndpoint {
		return &miraapi.WebhookEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: uid, UID: types.UID(uid), ResourceVersion: "1"}}
	}
	if n := len(reg.All()); n != 0 {
		t.Fatalf("%d endpoints in an empty registry", n)
	}
	reg.Observe(ep("a"))
	reg.Observe(ep("b"))
	if n := len(reg.All()); n != 2 {
		t.Fatalf("%d endpoints after two were added, want 2", n)
	}
	reg.Observe(ep("a")) // an update is no new member
	reg.remove(ep("b"))
	if all := reg.All(); len(all) != 1 || all[0].UID != "a" {
		t.Fatalf("after removing b: %d endpoints", len(all))
	}
}
