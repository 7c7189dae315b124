package signing

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The Recall.ai fixture from INTEGRATIONS.md.
const (
	recallSecret = "whsec_cmVjYWxsLWZpeHR1cmUta2V5LTAxMjM0NTY3ODlhYmM="
	recallID     = "msg_2fXq8ZrecallFixture01"
	recallTS     = "1741100531"
	recallBody   = `{"event":"bot.done","data":{"data":{"code":"done","sub_code":null,"updated_at":"2025-03-04T15:02:11.482913+00:00"},"bot":{"id":"6b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d","metadata":{"user_id":"usr_8812","workspace":"acme"}}}}`
	recallSig    = "v1,NlZU7rqpqxRQ3rylqQrOPDAN6soe16IGTl/kp0EuTp4="
)

func TestStandardSignatureMatchesRecallFixture(t *testing.T) {
	got := StandardSignature(StandardKey(recallSecret), recallID, 1741100531, []byte(recallBody))
	if got != recallSig {
		t.Fatalf("signature = %q, want %q", got, recallSig)
	}
}

func TestVerifyStandard(t *testing.T) {
	at := time.Unix(1741100531, 0)
	other, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		secrets []string
		h       Standard
		body    string
		now     time.Time
		want    error
	}{
		{"fixture", []string{recallSecret}, Standard{recallID, recallTS, recallSig}, recallBody, at, nil},
		{"rotation list, match second", []string{recallSecret}, Standard{recallID, recallTS, "v1,AAAA " + recallSig}, recallBody, at, nil},
		{"v1a entries are skipped", []string{recallSecret}, Standard{recallID, recallTS, "v1a," + strings.TrimPrefix(recallSig, "v1,")}, recallBody, at, ErrNoMatch},
		{"old secret among several", []string{other, recallSecret}, Standard{recallID, recallTS, recallSig}, recallBody, at, nil},
		{"wrong secret", []string{other}, Standard{recallID, recallTS, recallSig}, recallBody, at, ErrNoMatch},
		{"body changed by one byte", []string{recallSecret}, Standard{recallID, recallTS, recallSig}, recallBody + " ", at, ErrNoMatch},
		{"id changed", []string{recallSecret}, Standard{recallID + "x", recallTS, recallSig}, recallBody, at, ErrNoMatch},
		{"4m59s late is fine", []string{recallSecret}, Standard{recallID, recallTS, recallSig}, recallBody, at.Add(299 * time.Second), nil},
		{"too old", []string{recallSecret}, Standard{recallID, recallTS, recallSig}, recallBody, at.Add(301 * time.Second), ErrTimestampSkew},
		{"too far ahead", []string{recallSecret}, Standard{recallID, recallTS, recallSig}, recallBody, at.Add(-301 * time.Second), ErrTimestampSkew},
		{"timestamp not a number", []string{recallSecret}, Standard{recallID, "soon", recallSig}, recallBody, at, ErrInvalidTimestamp},
		{"missing id", []string{recallSecret}, Standard{"", recallTS, recallSig}, recallBody, at, ErrMissingHeaders},
		{"no secrets", nil, Standard{recallID, recallTS, recallSig}, recallBody, at, ErrInvalidSecret},
		{"garbage signature", []string{recallSecret}, Standard{recallID, recallTS, "v1,!!!"}, recallBody, at, ErrNoMatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyStandard(tt.secrets, tt.h, []byte(tt.body), tt.now, DefaultTolerance)
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifyStandard = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestStandardFromHeadersFallsBackToSvix(t *testing.T) {
	h := http.Header{}
	h.Set("svix-id", "a")
	h.Set("svix-timestamp", "1")
	h.Set("svix-signature", "v1,x")
	if got := StandardFromHeaders(h); got != (Standard{"a", "1", "v1,x"}) {
		t.Fatalf("svix headers: %+v", got)
	}
	h.Set("webhook-id", "b")
	h.Set("webhook-timestamp", "2")
	h.Set("webhook-signature", "v1,y")
	if got := StandardFromHeaders(h); got != (Standard{"b", "2", "v1,y"}) {
		t.Fatalf("webhook headers preferred: %+v", got)
	}
}

func TestSignStandardRotationListVerifiesWithEither(t *testing.T) {
	oldS, _ := GenerateSecret()
	newS, _ := GenerateSecret()
	body := []byte(`{"event":"report.completed"}`)
	sig := SignStandard([]string{newS, oldS}, "dlv_1", 1700000000, body)
	if n := len(strings.Fields(sig)); n != 2 {
		t.Fatalf("want 2 entries, got %d: %q", n, sig)
	}
	now := time.Unix(1700000000, 0)
	for _, s := range []string{oldS, newS} {
		if err := VerifyStandard([]string{s}, Standard{"dlv_1", "1700000000", sig}, body, now, DefaultTolerance); err != nil {
			t.Fatalf("verify with one of the rotation secrets: %v", err)
		}
	}
}

func TestMiraSignature(t *testing.T) {
	// Computed independently: printf '%s' '{"a":1}' | openssl dgst -sha256 -hmac 'whsec_test'
	const want = "51426af50a41dd7ff2cd3f116594734766d4018d15d6fb07169aee5d2959adf5"
	got := MiraSignature("whsec_test", []byte(`{"a":1}`))
	if got != want {
		t.Fatalf("MiraSignature = %q, want %q", got, want)
	}
	if !VerifyMira("whsec_test", []byte(`{"a":1}`), got) {
		t.Fatal("VerifyMira rejected its own signature")
	}
	if VerifyMira("whsec_test", []byte(`{"a":2}`), got) {
		t.Fatal("VerifyMira accepted a signature of another body")
	}
}

func TestGenerateSecret(t *testing.T) {
	s, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s, SecretPrefix) || len(StandardKey(s)) != 32 {
		t.Fatalf("secret %q: want whsec_ + base64 of 32 bytes", s)
	}
}
