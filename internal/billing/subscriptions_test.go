package billing

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// stripeAPI is a stand-in for Stripe's GET /v1/subscriptions/{id}: Bearer
// key auth, Stripe-Version header, Stripe's error envelope.
type stripeAPI struct {
	mu       sync.Mutex
	key      string
	subs     map[string]string
	requests []string
}

func (s *stripeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Method+" "+r.URL.Path+" "+r.Header.Get("Stripe-Version"))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_test")
	if r.Header.Get("Authorization") != "Bearer "+s.key {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"message":"Invalid API Key provided: sk_test_****","type":"invalid_request_error"}}`)
		return
	}
	id, ok := strings.CutPrefix(r.URL.Path, "/v1/subscriptions/")
	body, found := s.subs[id]
	if r.Method != http.MethodGet || !ok || !found {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"code":"resource_missing","message":"No such subscription: '%s'","param":"id","type":"invalid_request_error"}}`, id) //nolint:gosec // G705: a JSON stand-in of the Stripe API
		return
	}
	fmt.Fprint(w, body)
}

func TestCheckoutRetrievesTheSubscription(t *testing.T) {
	api := &stripeAPI{key: "sk_test_fixture", subs: map[string]string{
		"sub_K": subObj("sub_K", "cus_K", "active", "price_pro", 1767225600, false),
	}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	var key string
	var keyMu sync.Mutex
	tests := []struct {
		name, key, customer, sub string
		want                     Customer
		wantErr                  bool
	}{
		{"with a key: a complete record", "sk_test_fixture", "cus_K", "sub_K", Customer{
			ID: "cus_K", UserID: "usr_K", SubscriptionID: "sub_K", Status: stripe.SubscriptionStatusActive, PriceID: "price_pro",
			CurrentPeriodEnd: time.Unix(1767225600, 0).UTC(), Updated: map[string]int64{"checkout": 100, "subscription": 100},
		}, false},
		{"without a key: pending update", "", "cus_L", "sub_L", Customer{
			ID: "cus_L", UserID: "usr_K", SubscriptionID: "sub_L", Status: StatusPendingUpdate, Updated: map[string]int64{"checkout": 100},
		}, false},
		{"a refused key is retried later", "sk_test_wrong", "cus_M", "sub_K", Customer{}, true},
	}
	kv := newBucket(t)
	p := newProcessor(t, kv, nil)
	p.SetSubscriptionSource(&StripeSubscriptions{URL: srv.URL, Key: func(context.Context) string {
		keyMu.Lock()
		defer keyMu.Unlock()
		return key
	}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keyMu.Lock()
			key = tt.key
			keyMu.Unlock()
			ev := event(t, "evt_"+tt.customer, "checkout.session.completed", 100, checkoutObj("subscription", tt.customer, tt.sub, "usr_K", `{}`))
			out, err := p.Apply(context.Background(), ev)
			if tt.wantErr {
				if err == nil || out != OutcomeError {
					t.Fatalf("Apply() = %s, %v; want an error to retry", out, err)
				}
				return
			}
			if err != nil || out != OutcomeApplied {
				t.Fatalf("Apply() = %s, %v", out, err)
			}
			got, err := p.Customer(context.Background(), tt.customer)
			if err != nil {
				t.Fatal(err)
			}
			got.UpdatedAt, got.LastEventID, got.RecentEventIDs = time.Time{}, "", nil
			if dump(got) != dump(tt.want) {
				t.Errorf("customer\n got %s\nwant %s", dump(got), dump(tt.want))
			}
		})
	}
	// An older subscription event after the retrieval is stale.
	old := event(t, "evt_K_created", "customer.subscription.created", 99, subObj("sub_K", "cus_K", "incomplete", "price_pro", 0, false))
	if out, err := p.Apply(context.Background(), old); err != nil || out != OutcomeStale {
		t.Errorf("older customer.subscription.created: %s, %v; want stale", out, err)
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if len(api.requests) == 0 || api.requests[0] != "GET /v1/subscriptions/sub_K "+stripe.APIVersion {
		t.Errorf("Stripe requests %v", api.requests)
	}
}
