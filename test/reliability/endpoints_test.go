package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

// Helpers of the bad-consumer, inbound-flood and SSRF scenarios: endpoints
// with a delivery policy, and the receiver's delivery API.

// fastRetries is the policy of the bad-consumer and SSRF endpoints: 1 s
// attempt timeout, 3 attempts, 1 s initial backoff, so retries end in seconds.
func fastRetries() *miraapi.DeliveryPolicy {
	attempts := int32(3)
	return &miraapi.DeliveryPolicy{
		Timeout:     &metav1.Duration{Duration: time.Second},
		MaxAttempts: &attempts,
		Backoff:     &miraapi.BackoffPolicy{Initial: &metav1.Duration{Duration: time.Second}},
	}
}

// createEndpoint creates a WebhookEndpoint; the error is the API server's
// (a CEL refusal shows here).
func createEndpoint(ns, name, url string, events []string, policy *miraapi.DeliveryPolicy) (*miraapi.WebhookEndpoint, error) {
	w := &miraapi.WebhookEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: miraapi.WebhookEndpointSpec{URL: url, Events: events, Delivery: policy}}
	return w, k8s.Create(context.Background(), w)
}

// endpointConfigured waits until the controller has reconciled the
// endpoint's generation and returns its Ready condition (the receiver only
// delivers for Ready endpoints). The signing secret is remembered for the
// secrets check.
func endpointConfigured(t *testing.T, w *miraapi.WebhookEndpoint) metav1.Condition {
	t.Helper()
	ctx := context.Background()
	var cond metav1.Condition
	eventually(t, "endpoint "+w.Name+" reconciled", 2*time.Minute, func() error {
		cur := &miraapi.WebhookEndpoint{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: w.Namespace, Name: w.Name}, cur); err != nil {
			return err
		}
		c := apimeta.FindStatusCondition(cur.Status.Conditions, miraapi.ReadyCondition)
		if c == nil || c.ObservedGeneration != cur.Generation {
			return fmt.Errorf("not reconciled yet")
		}
		if c.Status == metav1.ConditionTrue && cur.Status.TargetURL == "" {
			return fmt.Errorf("no target URL yet")
		}
		cond = *c
		return nil
	})
	s := &corev1.Secret{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: w.Namespace, Name: w.Name + "-signing-secret"}, s); err == nil {
		rememberSecret(string(s.Data["signingSecret"]))
	}
	return cond
}

var apiClient = &http.Client{Timeout: 30 * time.Second}

// deliveries lists every delivery record of an endpoint through
// GET /v1/endpoints/{ns}/{name}/deliveries.
func deliveries(recvURL, ns, name string) ([]datav1.Delivery, error) {
	var all []datav1.Delivery
	cursor := ""
	for {
		u := fmt.Sprintf("%s/v1/endpoints/%s/%s/deliveries?limit=500", recvURL, ns, name)
		if cursor != "" {
			u += "&cursor=" + neturl.QueryEscape(cursor)
		}
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer "+apiToken)
		resp, err := apiClient.Do(req)
		if err != nil {
			return nil, err
		}
		var page datav1.DeliveryPage
		err = json.NewDecoder(resp.Body).Decode(&page)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET deliveries of %s/%s: %d", ns, name, resp.StatusCode)
		}
		if err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextCursor == "" || len(page.Items) == 0 {
			return all, nil
		}
		cursor = page.NextCursor
	}
}

// postTyped publishes one event of the given type with an explicit id.
func postTyped(recvURL, id, event string, data map[string]string) (int, error) {
	body, _ := json.Marshal(map[string]any{"id": id, "event": event, "data": data})
	req, _ := http.NewRequest(http.MethodPost, recvURL+"/v1/events", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := postClient.Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// signingSecret reads an endpoint's generated signing secret.
func signingSecret(t *testing.T, ns, name string) string {
	t.Helper()
	s := &corev1.Secret{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name + "-signing-secret"}, s); err != nil {
		t.Fatal(err)
	}
	return string(s.Data["signingSecret"])
}
