package v1alpha1

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"https://hooks.example.com/mira", "https://hooks.example.com/mira"},
		{"https://hooks.example.com/mira?token=s3cr3t&x=1", "https://hooks.example.com/mira?token=redacted&x=redacted"},
		{"https://hooks.example.com/mira?token=a&token=b", "https://hooks.example.com/mira?token=redacted&token=redacted"},
		{"https://user:p%40ss@hooks.example.com/", "https://redacted@hooks.example.com/"},
		{"https://tok@hooks.example.com/?k=v", "https://redacted@hooks.example.com/?k=redacted"},
		{"https://hooks.example.com/#access_token=abc", "https://hooks.example.com/#redacted"},
		{"http://[::1]:%zz/", "(unparseable URL)"},
	} {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTargetComesFromTheSpec(t *testing.T) {
	port := int32(8443)
	tests := []struct {
		name string
		w    WebhookEndpoint
		want string
	}{
		{"url, status ignored", WebhookEndpoint{Spec: WebhookEndpointSpec{URL: "https://a.example.com/h?t=1"},
			Status: WebhookEndpointStatus{TargetURL: "http://169.254.169.254/"}}, "https://a.example.com/h?t=1"},
		{"service defaults", WebhookEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a"},
			Spec: WebhookEndpointSpec{Service: &ServiceReference{Name: "hook"}}}, "https://hook.team-a.svc:443/"},
		{"service http, port and path", WebhookEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a"},
			Spec:   WebhookEndpointSpec{Service: &ServiceReference{Name: "hook", Scheme: "http", Port: &port, Path: "/in"}},
			Status: WebhookEndpointStatus{TargetURL: "http://evil.example.com/"}}, "http://hook.team-a.svc:8443/in"},
	}
	for _, tc := range tests {
		got, err := tc.w.Target()
		if err != nil || got != tc.want {
			t.Errorf("%s: Target() = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	if _, err := (&WebhookEndpoint{}).Target(); err == nil {
		t.Error("an empty spec has a target")
	}
}
