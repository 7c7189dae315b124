// Package signing implements the two signature schemes Mira speaks:
//
//   - Mira's documented outgoing signature: X-Mira-Signature is the lowercase
//     hex HMAC-SHA256 of the exact body bytes, keyed with the signing secret
//     string exactly as stored (including any "whsec_" prefix).
//   - Standard Webhooks (also used by Svix and so by Recall.ai): the signed
//     content is "<id>.<unix timestamp>.<body>", the key is the base64-decoded
//     part of a "whsec_" secret, and the header carries one or more
//     space-separated "v1,<base64 HMAC-SHA256>" entries.
//
// Every comparison is constant-time and works on raw bytes.
package signing

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix is the prefix of Standard Webhooks secrets.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a Standard Webhooks timestamp may be from now,
// in either direction, as in the reference libraries.
const DefaultTolerance = 5 * time.Minute

// Errors returned by Verify. They are deliberately coarse: callers answer
// every one of them with the same generic 401 so that no oracle leaks.
var (
	ErrMissingHeaders   = errors.New("signature headers missing")
	ErrInvalidTimestamp = errors.New("signature timestamp invalid")
	ErrTimestampSkew    = errors.New("signature timestamp outside tolerance")
	ErrNoMatch          = errors.New("no signature matched")
	ErrInvalidSecret    = errors.New("signing secret invalid")
)

// GenerateSecret returns a new Standard Webhooks secret: "whsec_" followed by
// the standard base64 encoding of 32 random bytes.
func GenerateSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// MiraSignature returns the X-Mira-Signature value for body: lowercase hex
// HMAC-SHA256 keyed with the secret string's bytes as-is.
func MiraSignature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// VerifyMira reports whether signature is the Mira signature of body.
func VerifyMira(secret string, body []byte, signature string) bool {
	want := MiraSignature(secret, body)
	return hmac.Equal([]byte(want), []byte(strings.ToLower(strings.TrimSpace(signature))))
}

// StandardKey returns the HMAC key of a Standard Webhooks secret: the
// base64-decoded part after "whsec_". A secret without the prefix is decoded
// whole; a secret that is not base64 is used as raw bytes, so that operators
// who bring their own non-whsec secret can still be served the extra headers.
func StandardKey(secret string) []byte {
	s := strings.TrimPrefix(secret, SecretPrefix)
	if k, err := base64.StdEncoding.DecodeString(s); err == nil && len(k) > 0 {
		return k
	}
	if k, err := base64.RawStdEncoding.DecodeString(s); err == nil && len(k) > 0 {
		return k
	}
	return []byte(secret)
}

// StandardSignature returns one "v1,<base64>" entry for the given message.
func StandardSignature(key []byte, id string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// SignStandard returns the webhook-signature header value: one entry per
// secret, space-separated, so that consumers verify during a rotation with
// either the old or the new secret.
func SignStandard(secrets []string, id string, timestamp int64, body []byte) string {
	parts := make([]string, 0, len(secrets))
	for _, s := range secrets {
		parts = append(parts, StandardSignature(StandardKey(s), id, timestamp, body))
	}
	return strings.Join(parts, " ")
}

// Standard holds the three Standard Webhooks header values of a request.
type Standard struct {
	ID        string
	Timestamp string
	Signature string
}

// HeaderGetter is satisfied by http.Header.
type HeaderGetter interface {
	Get(key string) string
}

// StandardFromHeaders reads webhook-id/-timestamp/-signature, falling back to
// the legacy svix-id/-timestamp/-signature family when the first is absent.
func StandardFromHeaders(h HeaderGetter) Standard {
	s := Standard{ID: h.Get("webhook-id"), Timestamp: h.Get("webhook-timestamp"), Signature: h.Get("webhook-signature")}
	if s.ID == "" && s.Timestamp == "" && s.Signature == "" {
		s = Standard{ID: h.Get("svix-id"), Timestamp: h.Get("svix-timestamp"), Signature: h.Get("svix-signature")}
	}
	return s
}

// CheckStandardHeaders checks what can be checked before the body is read:
// the three headers are present and the timestamp is within tolerance.
// Receivers call it first so that an unsigned request is refused without
// its body being read.
func CheckStandardHeaders(h Standard, now time.Time, tolerance time.Duration) error {
	if h.ID == "" || h.Timestamp == "" || h.Signature == "" {
		return ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(h.Timestamp, 10, 64)
	if err != nil {
		return ErrInvalidTimestamp
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrTimestampSkew
	}
	return nil
}

// VerifyStandard checks a Standard Webhooks signature over the raw body.
// It accepts the message if any "v1," entry matches under any of the secrets
// (constant-time), ignores other versions such as "v1a", and rejects
// timestamps further than tolerance from now in either direction.
func VerifyStandard(secrets []string, h Standard, body []byte, now time.Time, tolerance time.Duration) error {
	if err := CheckStandardHeaders(h, now, tolerance); err != nil {
		return err
	}
	if len(secrets) == 0 {
		return ErrInvalidSecret
	}
	var got [][]byte
	for _, entry := range strings.Fields(h.Signature) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		got = append(got, raw)
	}
	matched := false
	for _, secret := range secrets {
		m := hmac.New(sha256.New, StandardKey(secret))
		m.Write([]byte(h.ID))
		m.Write([]byte{'.'})
		m.Write([]byte(h.Timestamp))
		m.Write([]byte{'.'})
		m.Write(body)
		want := m.Sum(nil)
		for _, g := range got {
			// Keep comparing after a match so timing does not reveal which entry matched.
			if hmac.Equal(want, g) {
				matched = true
			}
		}
	}
	if !matched {
		return ErrNoMatch
	}
	return nil
}
