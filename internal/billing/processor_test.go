package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stripe/stripe-go/v76"

	"github.com/mira/mira-operator/internal/queue/queuetest"
)

// base is the fixed clock of the tests: the n-th write gets base + n seconds.
var base = time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)

// newBucket starts a real embedded JetStream and returns the billing bucket.
func newBucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	_, js := queuetest.Start(t)
	kv, err := EnsureBucket(context.Background(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// newProcessor returns a processor whose clock ticks one second per write.
func newProcessor(t *testing.T, kv jetstream.KeyValue, reg prometheus.Registerer) *Processor {
	t.Helper()
	p, err := NewProcessor(kv, reg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	n := 0
	p.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		n++
		return base.Add(time.Duration(n) * time.Second)
	}
	return p
}

// at is the clock value of the n-th write.
func at(n int) time.Time { return base.Add(time.Duration(n) * time.Second) }

// event builds a Stripe event the way the verifier decodes one, in the
// shape of INTEGRATIONS.md.
func event(t *testing.T, id, typ string, created int64, object string) stripe.Event {
	t.Helper()
	body := fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2023-10-16","created":%d,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":%q,"data":{"object":%s}}`,
		id, created, typ, object)
	var ev stripe.Event
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		t.Fatalf("fixture event %s: %v", id, err)
	}
	return ev
}

func checkoutObj(mode, customer, subscription, clientRef, metadata string) string {
	return fmt.Sprintf(`{"id":"cs_test_%s","object":"checkout.session","mode":%q,"customer":%s,"subscription":%s,"client_reference_id":%s,"metadata":%s,"status":"complete","payment_status":"paid"}`,
		customer, mode, jsonOrNull(customer), jsonOrNull(subscription), jsonOrNull(clientRef), metadata)
}

func subObj(id, customer, status, price string, periodEnd int64, cancelAtEnd bool) string {
	return fmt.Sprintf(`{"id":%q,"object":"subscription","customer":%s,"status":%q,"cancel_at_period_end":%t,"current_period_end":%d,"items":{"object":"list","data":[{"id":"si_%s","object":"subscription_item","price":{"id":%q,"object":"price","currency":"usd","unit_amount":2900}}]}}`,
		id, jsonOrNull(customer), status, cancelAtEnd, periodEnd, id, price)
}

// invObj builds an invoice; next is the raw JSON of next_payment_attempt
// ("null" or a number).
func invObj(id, customer, status string, due, paid, attempts int64, next string) string {
	return fmt.Sprintf(`{"id":%q,"object":"invoice","customer":%q,"subscription":"sub_X","amount_due":%d,"amount_paid":%d,"attempt_count":%d,"next_payment_attempt":%s,"hosted_invoice_url":"https://invoice.stripe.com/i/acct_test/%s","billing_reason":"subscription_cycle","status":%q,"paid":%t,"currency":"usd"}`,
		id, customer, due, paid, attempts, next, id, status, status == "paid")
}

func jsonOrNull(s string) string {
	if s == "" {
		return "null"
	}
	return fmt.Sprintf("%q", s)
}

type step struct {
	ev      stripe.Event
	want    Outcome
	wantErr error
}

func TestApply(t *testing.T) {
	kv := newBucket(t)
	tests := []struct {
		name     string
		customer string
		steps    func(t *testing.T) []step
		want     *Customer // nil: no record
	}{
		{
			name:     "checkout then subscription.updated",
			customer: "cus_A",
			steps: func(t *testing.T) []step {
				return []step{
					{ev: event(t, "evt_A1", "checkout.session.completed", 100, checkoutObj("subscription", "cus_A", "sub_A", "usr_A", `{}`)), want: OutcomeApplied},
					{ev: event(t, "evt_A2", "customer.subscription.updated", 110, subObj("sub_A", "cus_A", "active", "price_Pro", 1743800000, false)), want: OutcomeApplied},
				}
			},
			want: &Customer{
				ID: "cus_A", UserID: "usr_A", SubscriptionID: "sub_A", Status: "active", PriceID: "price_Pro",
				CurrentPeriodEnd: time.Unix(1743800000, 0).UTC(),
				Updated:          map[string]int64{"checkout": 100, "subscription": 110},
				LastEventID:      "evt_A2", RecentEventIDs: []string{"evt_A1", "evt_A2"}, UpdatedAt: at(2),
			},
		},
		{
			name:     "subscription.updated before checkout keeps the subscription state",
			customer: "cus_B",
			steps: func(t *testing.T) []step {
				return []step{
					{ev: event(t, "evt_B2", "customer.subscription.updated", 210, subObj("sub_B", "cus_B", "active", "price_Pro", 1743800000, false)), want: OutcomeApplied},
					{ev: event(t, "evt_B1", "checkout.session.completed", 200, checkoutObj("subscription", "cus_B", "sub_B", "", `{"user_id":"usr_B"}`)), want: OutcomeApplied},
				}
			},
			want: &Customer{
				ID: "cus_B", UserID: "usr_B", SubscriptionID: "sub_B", Status: "active", PriceID: "price_Pro",
				CurrentPeriodEnd: time.Unix(1743800000, 0).UTC(),
				Updated:          map[string]int64{"checkout": 200, "subscription": 210},
				LastEventID:      "evt_B1", RecentEventIDs: []string{"evt_B2", "evt_B1"}, UpdatedAt: at(2),
			},
		},
		{
			name:     "out of order: an older update is stale",
			customer: "cus_C",
			steps: func(t *testing.T) []step {
				return []step{
					{ev: event(t, "evt_C2", "customer.subscription.updated", 200, subObj("sub_C", "cus_C", "past_due", "price_Team", 1743900000, true)), want: OutcomeApplied},
					{ev: event(t, "evt_C1", "customer.subscription.updated", 100, subObj("sub_C", "cus_C", "active", "price_Pro", 1743800000, false)), want: OutcomeStale},
				}
			},
			want: &Customer{
				ID: "cus_C", SubscriptionID: "sub_C", Status: "past_due", PriceID: "price_Team",
				CurrentPeriodEnd: time.Unix(1743900000, 0).UTC(), CancelAtPeriodEnd: true,
				Updated:     map[string]int64{"subscription": 200},
				LastEventID: "evt_C2", RecentEventIDs: []string{"evt_C2"}, UpdatedAt: at(1),
			},
		},
		{
			name:     "deleted; an update of the same second does not revive it",
			customer: "cus_D",
			steps: func(t *testing.T) []step {
				return []step{
					{ev: event(t, "evt_D1", "customer.subscription.updated", 100, subObj("sub_D", "cus_D", "active", "price_Pro", 1743800000, true)), want: OutcomeApplied},
					{ev: event(t, "evt_D2", "customer.subscription.deleted", 150, subObj("sub_D", "cus_D", "canceled", "price_Pro", 1743800000, false)), want: OutcomeApplied},
					{ev: event(t, "evt_D3", "customer.subscription.updated", 150, subObj("sub_D", "cus_D", "active", "price_Pro", 1743800000, false)), want: OutcomeStale},
				}
			},
			want: &Customer{
				ID: "cus_D", SubscriptionID: "sub_D", Status: "canceled", PriceID: "price_Pro",
				CurrentPeriodEnd: time.Unix(1743800000, 0).UTC(),
				Updated:          map[string]int64{"subscription": 150},
				LastEventID:      "evt_D2", RecentEventIDs: []string{"evt_D1", "evt_D2"}, UpdatedAt: at(2),
			},
		},
		{
			name:     "payment_failed with no further retry requires action",
			customer: "cus_E",
			steps: func(t *testing.T) []step {
				return []step{
					{ev: event(t, "evt_E1", "invoice.payment_failed", 300, invObj("in_E", "cus_E", "open", 2900, 0, 1, "1741359800")), want: OutcomeApplied},
					{ev: event(t, "evt_E2", "invoice.payment_failed", 400, invObj("in_E", "cus_E", "open", 2900, 0, 4, "null")), want: OutcomeApplied},
				}
			},
			want: &Customer{
				ID: "cus_E",
				Invoice: &Invoice{ID: "in_E", Status: "open", AmountDue: 2900, AmountPaid: 0, AttemptCount: 4, NextPaymentAttempt: 0,
					HostedInvoiceURL: "https://invoice.stripe.com/i/acct_test/in_E", Currency: "usd"},
				ActionRequired: true,
				Updated:        map[string]int64{"invoice": 400},
				LastEventID:    "evt_E2", RecentEventIDs: []string{"evt_E1", "evt_E2"}, UpdatedAt: at(2),
			},
		},
		{
			name:     "payment_failed then payment_succeeded clears action required",
			customer: "cus_F",
			steps: func(t *testing.T) []step {
				return []step{
					{ev: event(t, "evt_F1", "invoice.payment_failed", 300, invObj("in_F", "cus_F", "open", 2900, 0, 1, "1741359800")), want: OutcomeApplied},
					{ev: event(t, "evt_F2", "invoice.payment_succeeded", 350, invObj("in_F", "cus_F", "paid", 2900, 2900, 2, "null")), want: OutcomeApplied},
					{ev: event(t, "evt_F1", "invoice.payment_failed", 300, invObj("in_F", "cus_F", "open", 2900, 0, 1, "1741359800")), want: OutcomeDuplicate},
				}
			},
			want: &Customer{
				ID: "cus_F",
				Invoice: &Invoice{ID: "in_F", Status: "paid", AmountDue: 2900, AmountPaid: 2900, AttemptCount: 2, NextPaymentAttempt: 0,
					HostedInvoiceURL: "https://invoice.stripe.com/i/acct_test/in_F", Currency: "usd"},
				Updated:     map[string]int64{"invoice": 350},
				LastEventID: "evt_F2", RecentEventIDs: []string{"evt_F1", "evt_F2"}, UpdatedAt: at(2),
			},
		},
		{
			name:     "a late payment_failed after payment_succeeded is stale",
			customer: "cus_G",
			steps: func(t *testing.T) []step {
				return []step{
					{ev: event(t, "evt_G2", "invoice.payment_succeeded", 350, invObj("in_G", "cus_G", "paid", 2900, 2900, 2, "null")), want: OutcomeApplied},
					{ev: event(t, "evt_G1", "invoice.payment_failed", 300, invObj("in_G", "cus_G", "open", 2900, 0, 1, "1741359800")), want: OutcomeStale},
				}
			},
			want: &Customer{
				ID: "cus_G",
				Invoice: &Invoice{ID: "in_G", Status: "paid", AmountDue: 2900, AmountPaid: 2900, AttemptCount: 2, NextPaymentAttempt: 0,
					HostedInvoiceURL: "https://invoice.stripe.com/i/acct_test/in_G", Currency: "usd"},
				Updated:     map[string]int64{"invoice": 350},
				LastEventID: "evt_G2", RecentEventIDs: []string{"evt_G2"}, UpdatedAt: at(1),
			},
		},
		{
			name:     "duplicate event id changes nothing",
			customer: "cus_H",
			steps: func(t *testing.T) []step {
				ev := event(t, "evt_H1", "customer.subscription.updated", 100, subObj("sub_H", "cus_H", "trialing", "price_Pro", 1743800000, false))
				return []step{{ev: ev, want: OutcomeApplied}, {ev: ev, want: OutcomeDuplicate}}
			},
			want: &Customer{
				ID: "cus_H", SubscriptionID: "sub_H", Status: "trialing", PriceID: "price_Pro",
				CurrentPeriodEnd: time.Unix(1743800000, 0).UTC(),
				Updated:          map[string]int64{"subscription": 100},
				LastEventID:      "evt_H1", RecentEventIDs: []string{"evt_H1"}, UpdatedAt: at(1),
			},
		},
		{
			name:     "unknown type and non-subscription checkout are ignored",
			customer: "cus_I",
			steps: func(t *testing.T) []step {
				return []step{
					{ev: event(t, "evt_I1", "customer.created", 100, `{"id":"cus_I","object":"customer"}`), want: OutcomeIgnored},
					{ev: event(t, "evt_I2", "checkout.session.completed", 100, checkoutObj("payment", "cus_I", "", "usr_I", `{}`)), want: OutcomeIgnored},
				}
			},
			want: nil,
		},
		{
			name:     "events without a customer are invalid",
			customer: "cus_J",
			steps: func(t *testing.T) []step {
				return []step{
					{ev: event(t, "evt_J1", "customer.subscription.updated", 100, subObj("sub_J", "", "active", "price_Pro", 1743800000, false)), want: OutcomeInvalid, wantErr: ErrInvalidEvent},
					{ev: event(t, "evt_J2", "checkout.session.completed", 100, checkoutObj("subscription", "", "sub_J", "usr_J", `{}`)), want: OutcomeInvalid, wantErr: ErrInvalidEvent},
					{ev: event(t, "evt_J3", "invoice.payment_failed", 100, `{"id":"in_J","object":"invoice","customer":null}`), want: OutcomeInvalid, wantErr: ErrInvalidEvent},
					{ev: event(t, "evt_J4", "invoice.payment_failed", 100, `{"id":"in_J","object":"invoice","customer":"cus_J","amount_due":"lots"}`), want: OutcomeInvalid, wantErr: ErrInvalidEvent},
				}
			},
			want: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			p := newProcessor(t, kv, nil)
			for i, s := range tc.steps(t) {
				got, err := p.Apply(ctx, s.ev)
				if s.wantErr == nil && err != nil || s.wantErr != nil && !errors.Is(err, s.wantErr) {
					t.Fatalf("step %d (%s %s): error = %v, want %v", i, s.ev.ID, s.ev.Type, err, s.wantErr)
				}
				if got != s.want {
					t.Fatalf("step %d (%s %s): outcome = %q, want %q", i, s.ev.ID, s.ev.Type, got, s.want)
				}
			}
			c, err := p.Customer(ctx, tc.customer)
			if tc.want == nil {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("Customer(%s) = %+v, %v; want ErrNotFound", tc.customer, c, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c, *tc.want) {
				t.Fatalf("customer state:\n got  %s\n want %s", dump(c), dump(*tc.want))
			}
		})
	}
}

func dump(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestRecentEventIDsAreBounded(t *testing.T) {
	ctx := context.Background()
	p := newProcessor(t, newBucket(t), nil)
	for i := 1; i <= 40; i++ {
		ev := event(t, fmt.Sprintf("evt_%02d", i), "invoice.payment_succeeded", int64(1000+i), invObj("in_K", "cus_K", "paid", 100, 100, 1, "null"))
		if out, err := p.Apply(ctx, ev); out != OutcomeApplied || err != nil {
			t.Fatalf("apply %s: %s, %v", ev.ID, out, err)
		}
	}
	c, err := p.Customer(ctx, "cus_K")
	if err != nil {
		t.Fatal(err)
	}
	want := make([]string, 0, 32)
	for i := 9; i <= 40; i++ {
		want = append(want, fmt.Sprintf("evt_%02d", i))
	}
	if !reflect.DeepEqual(c.RecentEventIDs, want) {
		t.Fatalf("RecentEventIDs = %v, want %v", c.RecentEventIDs, want)
	}
}

func TestUserLookup(t *testing.T) {
	ctx := context.Background()
	p := newProcessor(t, newBucket(t), nil)
	const email = "ops@acme.example" // not a plain key token: stored under an encoded key
	steps := []stripe.Event{
		event(t, "evt_U1", "checkout.session.completed", 100, checkoutObj("subscription", "cus_U1", "sub_U1", "usr_U", `{}`)),
		event(t, "evt_U2", "checkout.session.completed", 200, checkoutObj("subscription", "cus_U2", "sub_U2", "", `{"user_id":"usr_U"}`)),
		event(t, "evt_U3", "checkout.session.completed", 300, checkoutObj("subscription", "cus_U3", "sub_U3", email, `{"user_id":"ignored_when_client_reference_id_is_set"}`)),
		event(t, "evt_U1", "checkout.session.completed", 100, checkoutObj("subscription", "cus_U1", "sub_U1", "usr_U", `{}`)), // duplicate
	}
	for _, ev := range steps {
		if _, err := p.Apply(ctx, ev); err != nil {
			t.Fatalf("apply %s: %v", ev.ID, err)
		}
	}
	tests := []struct {
		user          string
		wantUser      User
		wantCustomers []string
		wantSubs      []string
		wantErr       error
	}{
		{user: "usr_U", wantUser: User{ID: "usr_U", CustomerIDs: []string{"cus_U1", "cus_U2"}},
			wantCustomers: []string{"cus_U1", "cus_U2"}, wantSubs: []string{"sub_U1", "sub_U2"}},
		{user: email, wantUser: User{ID: email, CustomerIDs: []string{"cus_U3"}},
			wantCustomers: []string{"cus_U3"}, wantSubs: []string{"sub_U3"}},
		{user: "ignored_when_client_reference_id_is_set", wantErr: ErrNotFound},
		{user: "usr_nobody", wantErr: ErrNotFound},
		{user: "", wantErr: ErrInvalidID},
	}
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			u, customers, err := p.User(ctx, tc.user)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("User(%q) error = %v, want %v", tc.user, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(u, tc.wantUser) {
				t.Fatalf("user = %+v, want %+v", u, tc.wantUser)
			}
			var ids, subs []string
			for _, c := range customers {
				ids = append(ids, c.ID)
				subs = append(subs, c.SubscriptionID)
				if c.UserID != tc.user {
					t.Fatalf("customer %s has UserID %q, want %q", c.ID, c.UserID, tc.user)
				}
			}
			if !reflect.DeepEqual(ids, tc.wantCustomers) || !reflect.DeepEqual(subs, tc.wantSubs) {
				t.Fatalf("customers %v subscriptions %v, want %v %v", ids, subs, tc.wantCustomers, tc.wantSubs)
			}
		})
	}
}

// wantMerged is the state after checkout, subscription.updated and
// payment_failed for cus_M, in any order.
func wantMerged(updatedAt time.Time, eventIDs []string, last string) Customer {
	return Customer{
		ID: "cus_M", UserID: "usr_M", SubscriptionID: "sub_M", Status: "past_due", PriceID: "price_Pro",
		CurrentPeriodEnd: time.Unix(1743800000, 0).UTC(),
		Invoice: &Invoice{ID: "in_M", Status: "open", AmountDue: 2900, AttemptCount: 1, NextPaymentAttempt: 1741359800,
			HostedInvoiceURL: "https://invoice.stripe.com/i/acct_test/in_M", Currency: "usd"},
		ActionRequired: true,
		Updated:        map[string]int64{"checkout": 100, "subscription": 110, "invoice": 120},
		LastEventID:    last, RecentEventIDs: eventIDs, UpdatedAt: updatedAt,
	}
}

func mergeEvents(t *testing.T) (checkout, sub, inv stripe.Event) {
	return event(t, "evt_M1", "checkout.session.completed", 100, checkoutObj("subscription", "cus_M", "sub_M", "usr_M", `{}`)),
		event(t, "evt_M2", "customer.subscription.updated", 110, subObj("sub_M", "cus_M", "past_due", "price_Pro", 1743800000, false)),
		event(t, "evt_M3", "invoice.payment_failed", 120, invObj("in_M", "cus_M", "open", 2900, 0, 1, "1741359800"))
}

// TestConcurrentWritersConverge makes a second receiver write the same
// customer between the first one's read and write, on both the create path
// (no record yet) and the update path: the first one's write conflicts,
// it re-reads and both changes land.
func TestConcurrentWritersConverge(t *testing.T) {
	tests := []struct {
		name      string
		existing  bool // checkout applied first, so both writers update
		wantIDs   []string
		wantLast  string
		wantCalls int
	}{
		{name: "create conflict", existing: false, wantIDs: []string{"evt_M3", "evt_M2"}, wantLast: "evt_M2", wantCalls: 2},
		{name: "update conflict", existing: true, wantIDs: []string{"evt_M1", "evt_M3", "evt_M2"}, wantLast: "evt_M2", wantCalls: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			kv := newBucket(t)
			a, b := newProcessor(t, kv, nil), newProcessor(t, kv, nil)
			checkout, sub, inv := mergeEvents(t)
			if tc.existing {
				if out, err := b.Apply(ctx, checkout); out != OutcomeApplied || err != nil {
					t.Fatalf("checkout: %s, %v", out, err)
				}
			}
			calls := 0
			a.beforeWrite = func(string) {
				calls++
				if calls == 1 {
					if out, err := b.Apply(ctx, inv); out != OutcomeApplied || err != nil {
						t.Errorf("interleaved payment_failed: %s, %v", out, err)
					}
				}
			}
			if out, err := a.Apply(ctx, sub); out != OutcomeApplied || err != nil {
				t.Fatalf("subscription.updated: %s, %v", out, err)
			}
			if calls != tc.wantCalls {
				t.Fatalf("writer A tried %d writes, want %d (one conflict, one retry)", calls, tc.wantCalls)
			}
			c, err := a.Customer(ctx, "cus_M")
			if err != nil {
				t.Fatal(err)
			}
			want := wantMerged(c.UpdatedAt, tc.wantIDs, tc.wantLast)
			if !tc.existing {
				want.UserID = ""
				want.Updated = map[string]int64{"subscription": 110, "invoice": 120}
			}
			if !reflect.DeepEqual(c, want) {
				t.Fatalf("customer state:\n got  %s\n want %s", dump(c), dump(want))
			}
		})
	}
}

func TestConcurrentGoroutinesConverge(t *testing.T) {
	ctx := context.Background()
	kv := newBucket(t)
	checkout, sub, inv := mergeEvents(t)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, ev := range []stripe.Event{checkout, sub, inv} {
		p := newProcessor(t, kv, nil)
		wg.Go(func() {
			out, err := p.Apply(ctx, ev)
			if err == nil && out != OutcomeApplied {
				err = fmt.Errorf("%s: outcome %s", ev.ID, out)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	p := newProcessor(t, kv, nil)
	c, err := p.Customer(ctx, "cus_M")
	if err != nil {
		t.Fatal(err)
	}
	// The order of the writes is up to the scheduler; the merged state is not.
	want := wantMerged(c.UpdatedAt, c.RecentEventIDs, c.LastEventID)
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("customer state:\n got  %s\n want %s", dump(c), dump(want))
	}
	ids := map[string]bool{}
	for _, id := range c.RecentEventIDs {
		ids[id] = true
	}
	if len(c.RecentEventIDs) != 3 || !ids["evt_M1"] || !ids["evt_M2"] || !ids["evt_M3"] {
		t.Fatalf("RecentEventIDs = %v, want evt_M1, evt_M2 and evt_M3 once each", c.RecentEventIDs)
	}
	if _, linked, err := p.User(ctx, "usr_M"); err != nil || len(linked) != 1 || linked[0].ID != "cus_M" {
		t.Fatalf("User(usr_M) = %v, %v; want cus_M", linked, err)
	}
}

func TestConflictRetriesAreBounded(t *testing.T) {
	ctx := context.Background()
	kv := newBucket(t)
	p := newProcessor(t, kv, nil)
	checkout, sub, _ := mergeEvents(t)
	if _, err := p.Apply(ctx, checkout); err != nil {
		t.Fatal(err)
	}
	calls := 0
	p.beforeWrite = func(key string) {
		calls++
		// Another writer touches the record every time.
		e, err := kv.Get(ctx, key)
		if err != nil {
			t.Errorf("get %s: %v", key, err)
			return
		}
		if _, err := kv.Put(ctx, key, e.Value()); err != nil {
			t.Errorf("put %s: %v", key, err)
		}
	}
	out, err := p.Apply(ctx, sub)
	if out != OutcomeError || !errors.Is(err, ErrConflict) {
		t.Fatalf("Apply = %s, %v; want error, ErrConflict", out, err)
	}
	if calls != maxAttempts {
		t.Fatalf("write attempts = %d, want %d", calls, maxAttempts)
	}
}

// TestApplyFixture runs the INTEGRATIONS.md event through the real verifier
// and the processor.
func TestApplyFixture(t *testing.T) {
	v, err := NewVerifier(VerifierOptions{
		Secret:    fixtureSecret,
		Tolerance: time.Since(time.Unix(fixtureTimestamp, 0)) + time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := v.Verify([]byte(fixtureBody), fmt.Sprintf("t=%d,v1=%s", fixtureTimestamp, fixtureV1))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p := newProcessor(t, newBucket(t), nil)
	if out, err := p.Apply(ctx, ev); out != OutcomeApplied || err != nil {
		t.Fatalf("Apply(fixture) = %s, %v", out, err)
	}
	c, err := p.Customer(ctx, "cus_RfixtureCust01")
	if err != nil {
		t.Fatal(err)
	}
	want := Customer{
		ID: "cus_RfixtureCust01",
		Invoice: &Invoice{ID: "in_1QzFixtureInv01", Status: "open", AmountDue: 2900, AmountPaid: 0, AttemptCount: 1,
			NextPaymentAttempt: 1741359800, HostedInvoiceURL: "https://invoice.stripe.com/i/acct_fixture/test_fixture01", Currency: "usd"},
		ActionRequired: true,
		Updated:        map[string]int64{"invoice": 1741100598},
		LastEventID:    "evt_1QzFixtureA0001", RecentEventIDs: []string{"evt_1QzFixtureA0001"}, UpdatedAt: at(1),
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("customer state:\n got  %s\n want %s", dump(c), dump(want))
	}
}
