package billing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// The INTEGRATIONS.md test vector.
const (
	fixtureSecret    = "whsec_stripeFixtureSecret0123456789"
	fixtureTimestamp = 1741100600
	fixtureBody      = `{"id":"evt_1QzFixtureA0001","object":"event","api_version":"2023-10-16","created":1741100598,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.payment_failed","data":{"object":{"id":"in_1QzFixtureInv01","object":"invoice","customer":"cus_RfixtureCust01","subscription":"sub_1QzFixtureSub01","amount_due":2900,"amount_paid":0,"attempt_count":1,"next_payment_attempt":1741359800,"hosted_invoice_url":"https://invoice.stripe.com/i/acct_fixture/test_fixture01","billing_reason":"subscription_cycle","status":"open","paid":false,"currency":"usd"}}}`
	fixtureV1        = "9c747dfb337d7eec7b1c3982d711a649d2d96ebd738fc999a759cfd32935511d"
)

func TestFixtureVector(t *testing.T) {
	mac := hmac.New(sha256.New, []byte(fixtureSecret))
	fmt.Fprintf(mac, "%d.%s", fixtureTimestamp, fixtureBody)
	if got := hex.EncodeToString(mac.Sum(nil)); got != fixtureV1 {
		t.Fatalf("HMAC-SHA256 of the fixture = %s, want %s", got, fixtureV1)
	}
	header := fmt.Sprintf("t=%d,v1=%s", fixtureTimestamp, fixtureV1)

	// With the default tolerance the fixture, signed in 2025, is too old.
	v, err := NewVerifier(VerifierOptions{Secret: fixtureSecret})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify([]byte(fixtureBody), header)
	if !errors.Is(err, ErrSignature) || !errors.Is(err, webhook.ErrTooOld) {
		t.Fatalf("Verify(fixture) error = %v, want ErrSignature wrapping webhook.ErrTooOld", err)
	}

	// With a tolerance reaching back to the fixture's timestamp the real
	// verifier accepts it: the signature itself is right.
	wide, err := NewVerifier(VerifierOptions{
		Secret:    fixtureSecret,
		Tolerance: time.Since(time.Unix(fixtureTimestamp, 0)) + time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := wide.Verify([]byte(fixtureBody), header)
	if err != nil {
		t.Fatalf("Verify(fixture) with a wide tolerance: %v", err)
	}
	if ev.ID != "evt_1QzFixtureA0001" || ev.Type != "invoice.payment_failed" || ev.Created != 1741100598 || ev.APIVersion != "2023-10-16" {
		t.Fatalf("fixture event = {ID:%s Type:%s Created:%d APIVersion:%s}", ev.ID, ev.Type, ev.Created, ev.APIVersion)
	}
}

func eventBody(id, apiVersion string) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","api_version":%q,"created":1767323045,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.subscription.updated","data":{"object":{"id":"sub_Verify01","object":"subscription","customer":"cus_Verify01","status":"active"}}}`, id, apiVersion))
}

func sign(body []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: at}).Header
}

func TestVerify(t *testing.T) {
	const secret = "whsec_testVerifySecret000111222333"
	good := eventBody("evt_Verify01", "2023-10-16")
	newer := eventBody("evt_Verify02", "2024-06-20")
	now := time.Now()
	tests := []struct {
		name      string
		policy    string
		secret    string
		body      []byte
		header    string
		wantErr   error // nil: success
		wantCause error // also matched when set
		wantID    string
	}{
		{name: "fresh signature", secret: secret, body: good, header: sign(good, secret, now), wantID: "evt_Verify01"},
		{name: "secret with trailing newline from a mounted file", secret: secret + "\n", body: good, header: sign(good, secret, now), wantID: "evt_Verify01"},
		{name: "rolled secret: second v1 matches", secret: secret, body: good,
			header: sign(good, "whsec_otherSecret", now) + ",v1=" + strings.SplitN(sign(good, secret, now), "v1=", 2)[1], wantID: "evt_Verify01"},
		{name: "wrong secret", secret: secret, body: good, header: sign(good, "whsec_wrongSecret", now),
			wantErr: ErrSignature, wantCause: webhook.ErrNoValidSignature},
		{name: "tampered body", secret: secret, body: []byte(strings.Replace(string(good), "active", "canceled", 1)), header: sign(good, secret, now),
			wantErr: ErrSignature, wantCause: webhook.ErrNoValidSignature},
		{name: "too old", secret: secret, body: good, header: sign(good, secret, now.Add(-10*time.Minute)),
			wantErr: ErrSignature, wantCause: webhook.ErrTooOld},
		{name: "missing header", secret: secret, body: good, header: "",
			wantErr: ErrSignature, wantCause: webhook.ErrNotSigned},
		{name: "malformed header", secret: secret, body: good, header: "t=1,v1",
			wantErr: ErrSignature, wantCause: webhook.ErrInvalidHeader},
		{name: "newer api version under strict", policy: APIVersionStrict, secret: secret, body: newer, header: sign(newer, secret, now),
			wantErr: ErrAPIVersion},
		{name: "newer api version under default policy", secret: secret, body: newer, header: sign(newer, secret, now),
			wantErr: ErrAPIVersion},
		{name: "newer api version under ignore", policy: APIVersionIgnore, secret: secret, body: newer, header: sign(newer, secret, now),
			wantID: "evt_Verify02"},
		{name: "signed body that is not JSON", secret: secret, body: []byte("not json"), header: sign([]byte("not json"), secret, now),
			wantErr: ErrPayload},
		{name: "signed JSON that is not an event", secret: secret, body: []byte(`{"hello":"world"}`), header: sign([]byte(`{"hello":"world"}`), secret, now),
			wantErr: ErrPayload},
		{name: "no secret configured", secret: "", body: good, header: sign(good, "", now),
			wantErr: ErrNotConfigured},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(VerifierOptions{Secret: tc.secret, APIVersionPolicy: tc.policy})
			if err != nil {
				t.Fatal(err)
			}
			ev, err := v.Verify(tc.body, tc.header)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if ev.ID != tc.wantID {
					t.Fatalf("event id = %q, want %q", ev.ID, tc.wantID)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tc.wantErr)
			}
			if tc.wantCause != nil && !errors.Is(err, tc.wantCause) {
				t.Fatalf("Verify error = %v, want it to wrap %v", err, tc.wantCause)
			}
			if ev.ID != "" {
				t.Fatalf("Verify returned event %q along with an error", ev.ID)
			}
			if tc.secret != "" && strings.Contains(err.Error(), strings.TrimSpace(tc.secret)) {
				t.Fatalf("error %q contains the secret", err)
			}
		})
	}
}

func TestVerifyAPIVersionErrorExplains(t *testing.T) {
	const secret = "whsec_testExplain"
	body := eventBody("evt_Explain01", "2024-06-20")
	v, err := NewVerifier(VerifierOptions{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(body, sign(body, secret, time.Now()))
	want := `stripe event api_version not supported: event evt_Explain01 has api_version "2024-06-20" but this receiver decodes "2023-10-16"; ` +
		`set the Stripe webhook endpoint's API version to "2023-10-16" or run with the "ignore" API version policy`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant %s", err, want)
	}
	if stripe.APIVersion != "2023-10-16" {
		t.Fatalf("stripe.APIVersion = %s, the docs pin 2023-10-16", stripe.APIVersion)
	}
}

func TestSetSecretRotates(t *testing.T) {
	const oldSecret, newSecret = "whsec_oldSecret", "whsec_newSecret"
	body := eventBody("evt_Rotate01", "2023-10-16")
	v, err := NewVerifier(VerifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		set     *string
		signed  string
		wantErr error
		wantCfg bool
	}{
		{signed: oldSecret, wantErr: ErrNotConfigured, wantCfg: false},
		{set: ptr(oldSecret), signed: oldSecret, wantErr: nil, wantCfg: true},
		{set: ptr(newSecret), signed: oldSecret, wantErr: ErrSignature, wantCfg: true},
		{signed: newSecret, wantErr: nil, wantCfg: true},
		{set: ptr(" \n"), signed: newSecret, wantErr: ErrNotConfigured, wantCfg: false},
	}
	for i, s := range steps {
		if s.set != nil {
			v.SetSecret(*s.set)
		}
		if got := v.Configured(); got != s.wantCfg {
			t.Fatalf("step %d: Configured() = %v, want %v", i, got, s.wantCfg)
		}
		_, err := v.Verify(body, sign(body, s.signed, time.Now()))
		if s.wantErr == nil && err != nil || s.wantErr != nil && !errors.Is(err, s.wantErr) {
			t.Fatalf("step %d: Verify error = %v, want %v", i, err, s.wantErr)
		}
	}
}

func ptr(s string) *string { return &s }

func TestNewVerifierValidates(t *testing.T) {
	tests := []struct {
		name    string
		opts    VerifierOptions
		wantErr string
	}{
		{name: "negative tolerance", opts: VerifierOptions{Secret: "whsec_x", Tolerance: -time.Second},
			wantErr: "stripe verifier: tolerance must not be negative, got -1s"},
		{name: "unknown policy", opts: VerifierOptions{Secret: "whsec_x", APIVersionPolicy: "lenient"},
			wantErr: `stripe verifier: api version policy "lenient" is not "strict" or "ignore"`},
		{name: "defaults", opts: VerifierOptions{Secret: "whsec_x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(tc.opts)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if v.tolerance != webhook.DefaultTolerance || !v.strict {
					t.Fatalf("defaults: tolerance %s strict %v, want %s true", v.tolerance, v.strict, webhook.DefaultTolerance)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("NewVerifier error = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
