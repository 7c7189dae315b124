package inbound

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/mira/mira-operator/internal/billing"
	"github.com/mira/mira-operator/internal/queue"
)

// stripeEvent renders a Stripe event body.
func stripeEvent(id, apiVersion, typ string, created int64, object map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": id, "object": "event", "api_version": apiVersion, "created": created, "livemode": false,
		"pending_webhooks": 1, "type": typ, "data": map[string]any{"object": object},
	})
	return b
}

// signStripe signs a body like Stripe does, now.
func signStripe(body []byte, secret string) http.Header {
	p := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: time.Now()})
	return http.Header{"Stripe-Signature": {p.Header}, "Content-Type": {"application/json"}}
}

func TestStripeEventsAppliedAndReadable(t *testing.T) {
	suffix := fmt.Sprint(time.Now().UnixNano())
	cus, user := "cus_T"+suffix, "usr_T"+suffix
	created := time.Now().Unix() - 60
	checkout := stripeEvent("evt_co"+suffix, stripe.APIVersion, "checkout.session.completed", created, map[string]any{
		"id": "cs_" + suffix, "object": "checkout.session", "mode": "subscription", "customer": cus,
		"subscription": "sub_" + suffix, "client_reference_id": user, "metadata": map[string]string{},
	})
	failed := stripeEvent("evt_pf"+suffix, stripe.APIVersion, "invoice.payment_failed", created+1, map[string]any{
		"id": "in_" + suffix, "object": "invoice", "customer": cus, "subscription": "sub_" + suffix,
		"amount_due": 2900, "amount_paid": 0, "attempt_count": 1, "next_payment_attempt": created + 86400,
		"hosted_invoice_url": "https://invoice.stripe.com/i/test", "status": "open", "paid": false, "currency": "usd",
	})
	for _, b := range [][]byte{checkout, failed} {
		code, resp := post(t, "/webhooks/stripe", signStripe(b, stripeSecret), b)
		if code != http.StatusOK || !strings.Contains(string(resp), "stored") {
			t.Fatalf("Stripe event: %d %s", code, resp)
		}
	}
	var c billing.Customer
	eventually(t, "customer billing state", func() error {
		code, raw := get(t, "/v1/billing/customers/"+cus)
		if code != http.StatusOK {
			return errCode(code)
		}
		c = billing.Customer{}
		if err := json.Unmarshal(raw, &c); err != nil {
			return err
		}
		// The two events are processed in parallel: wait for both.
		if c.Invoice == nil || c.UserID == "" {
			return fmt.Errorf("not both events applied yet: %+v", c)
		}
		return nil
	})
	if c.UserID != user || c.SubscriptionID != "sub_"+suffix || !c.ActionRequired || c.Invoice.AttemptCount != 1 ||
		c.Invoice.HostedInvoiceURL != "https://invoice.stripe.com/i/test" {
		t.Errorf("customer = %+v invoice %+v", c, c.Invoice)
	}
	code, raw := get(t, "/v1/billing/users/"+user)
	var ub UserBilling
	_ = json.Unmarshal(raw, &ub)
	if code != http.StatusOK || len(ub.Customers) != 1 || ub.Customers[0].ID != cus {
		t.Errorf("user billing %d: %s", code, raw)
	}
	if code, _ := get(t, "/v1/billing/customers/cus_unknown"+suffix); code != http.StatusNotFound {
		t.Errorf("unknown customer: %d, want 404", code)
	}

	// Stripe's duplicate delivery: acknowledged, not stored again.
	before := streamMessages(t, queue.InboundStream)
	code, resp := post(t, "/webhooks/stripe", signStripe(failed, stripeSecret), failed)
	if code != http.StatusOK || !strings.Contains(string(resp), "duplicate") {
		t.Errorf("duplicate: %d %s", code, resp)
	}
	if got := streamMessages(t, queue.InboundStream); got != before {
		t.Errorf("duplicate stored %d messages", got-before)
	}

	// Refusals.
	if code, resp := post(t, "/webhooks/stripe", signStripe(failed, "whsec_wrong"), failed); code != http.StatusUnauthorized || !strings.Contains(string(resp), unauthorizedBody) {
		t.Errorf("wrong secret: %d %s", code, resp)
	}
	newer := stripeEvent("evt_v"+suffix, "2024-06-20", "invoice.payment_failed", created, map[string]any{"id": "in_x", "object": "invoice", "customer": cus})
	code, resp = post(t, "/webhooks/stripe", signStripe(newer, stripeSecret), newer)
	if code != http.StatusOK || !strings.Contains(string(resp), `"ignored"`) || !strings.Contains(string(resp), stripe.APIVersion) || !strings.Contains(string(resp), "2024-06-20") {
		t.Errorf("api version mismatch (strict): %d %s", code, resp)
	}
	if got := streamMessages(t, queue.InboundStream); got != before {
		t.Errorf("refused events stored %d messages", got-before)
	}
}

// The ignore policy accepts an event of another API version; the handler
// is served on its own with a verifier under that policy.
func TestStripeAPIVersionIgnorePolicy(t *testing.T) {
	o := in.o
	o.StripeAPIVersionPolicy = billing.APIVersionIgnore
	lenient := &Inbound{o: o, js: in.js, integrations: in.integrations, workspaces: in.workspaces, defaultNS: in.defaultNS,
		verifiers: map[string]stripeVerifier{}, metrics: in.metrics, log: in.log}
	srv := httptest.NewServer(http.HandlerFunc(lenient.postStripe))
	defer srv.Close()

	suffix := fmt.Sprint(time.Now().UnixNano())
	cus := "cus_I" + suffix
	newer := stripeEvent("evt_i"+suffix, "2024-06-20", "customer.subscription.updated", time.Now().Unix(), map[string]any{
		"id": "sub_I" + suffix, "object": "subscription", "customer": cus, "status": "past_due",
		"current_period_end": time.Now().Add(720 * time.Hour).Unix(), "cancel_at_period_end": false,
		"items": map[string]any{"object": "list", "data": []any{map[string]any{"id": "si_1", "price": map[string]any{"id": "price_pro"}}}},
	})
	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(string(newer)))
	req.Header = signStripe(newer, stripeSecret)
	if code, resp := do(t, req); code != http.StatusOK {
		t.Fatalf("ignore policy: %d %s", code, resp)
	}
	// Stored in the one inbound stream, the shared pipeline applies it.
	eventually(t, "subscription applied", func() error {
		code, raw := get(t, "/v1/billing/customers/"+cus)
		if code != http.StatusOK {
			return errCode(code)
		}
		var c billing.Customer
		if err := json.Unmarshal(raw, &c); err != nil {
			return err
		}
		if c.Status != stripe.SubscriptionStatusPastDue || c.PriceID != "price_pro" {
			return fmt.Errorf("customer %+v", c)
		}
		return nil
	})
}

const stripeAPIKey = "sk_test_inboundFixture"

// serveStripeSubscription answers Retrieve Subscription in Stripe's wire
// format: Bearer key auth, the subscription object, Stripe's error envelope.
func serveStripeSubscription(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer "+stripeAPIKey {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"message":"Invalid API Key provided","type":"invalid_request_error"}}`)
		return
	}
	id, ok := strings.CutPrefix(r.URL.Path, "/v1/subscriptions/")
	if !ok || r.Method != http.MethodGet {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"code":"resource_missing","message":"No such resource","type":"invalid_request_error"}}`)
		return
	}
	cus := "cus_" + strings.TrimPrefix(id, "sub_")
	fmt.Fprintf(w, `{"id":%q,"object":"subscription","customer":%q,"status":"active","cancel_at_period_end":false,"current_period_end":1767225600,"items":{"object":"list","data":[{"id":"si_1","object":"subscription_item","price":{"id":"price_team","object":"price","currency":"usd","unit_amount":2900}}]}}`, id, cus) //nolint:gosec // G705: a JSON stand-in of the Stripe API
}

// A checkout makes a complete customer record: with stripe-api-key the
// subscription is retrieved; without one the status says it is pending.
func TestCheckoutRecordsTheSubscription(t *testing.T) {
	checkout := func(suffix string) string {
		cus := "cus_" + suffix
		b := stripeEvent("evt_co"+suffix, stripe.APIVersion, "checkout.session.completed", time.Now().Unix()-5, map[string]any{
			"id": "cs_" + suffix, "object": "checkout.session", "mode": "subscription", "customer": cus,
			"subscription": "sub_" + suffix, "client_reference_id": "usr_" + suffix, "metadata": map[string]string{},
		})
		if code, resp := post(t, "/webhooks/stripe", signStripe(b, stripeSecret), b); code != http.StatusOK {
			t.Fatalf("checkout: %d %s", code, resp)
		}
		return cus
	}
	customer := func(cus string) billing.Customer {
		var c billing.Customer
		eventually(t, "customer "+cus, func() error {
			code, raw := get(t, "/v1/billing/customers/"+cus)
			if code != http.StatusOK {
				return errCode(code)
			}
			return json.Unmarshal(raw, &c)
		})
		return c
	}
	without := customer(checkout(fmt.Sprint("nokey", time.Now().UnixNano())))
	if without.Status != billing.StatusPendingUpdate || without.PriceID != "" {
		t.Errorf("without a key: status %q price %q, want %q and none", without.Status, without.PriceID, billing.StatusPendingUpdate)
	}
	setIntegrationKey(t, StripeAPIKeyKey, stripeAPIKey)
	defer setIntegrationKey(t, StripeAPIKeyKey, "")
	with := customer(checkout(fmt.Sprint("key", time.Now().UnixNano())))
	if with.Status != stripe.SubscriptionStatusActive || with.PriceID != "price_team" || with.CurrentPeriodEnd.Unix() != 1767225600 {
		t.Errorf("with a key: %+v", with)
	}
}
