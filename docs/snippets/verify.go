// Command verify checks a Mira webhook delivery with Go's standard library
// only. In an http.Handler, read the raw body with io.ReadAll(r.Body) before
// any JSON decoding and pass r.Header.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// VerifyMiraSignature checks X-Mira-Signature: lowercase hex HMAC-SHA256 of
// the raw body, keyed with the signing secret string exactly as stored in
// the Secret ("whsec_" prefix included).
func VerifyMiraSignature(secret string, body []byte, signature string) bool {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	expected := hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(expected), []byte(signature))
}

// VerifyWebhookSignature checks webhook-signature (Standard Webhooks):
// space-separated "v1,<base64>" entries, HMAC-SHA256 over
// "<webhook-id>.<webhook-timestamp>.<raw body>", keyed with the
// base64-decoded part of the secret after "whsec_". Any matching v1 entry
// passes (during a secret rotation there is one per secret); stale
// timestamps do not.
func VerifyWebhookSignature(secret string, h http.Header, body []byte, tolerance time.Duration) bool {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	unix, err := strconv.ParseInt(ts, 10, 64)
	if id == "" || sigs == "" || err != nil {
		return false
	}
	if age := time.Since(time.Unix(unix, 0)); age > tolerance || age < -tolerance {
		return false
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	expected := mac.Sum(nil)
	for _, entry := range strings.Split(sigs, " ") {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, expected) {
			return true
		}
	}
	return false
}

// Command line: MIRA_SIGNING_SECRET=whsec_… X_MIRA_SIGNATURE=… WEBHOOK_ID=… \
// WEBHOOK_TIMESTAMP=… WEBHOOK_SIGNATURE=… go run ./docs/snippets < body.json
func main() {
	body, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	secret := os.Getenv("MIRA_SIGNING_SECRET")
	h := http.Header{}
	h.Set("webhook-id", os.Getenv("WEBHOOK_ID"))
	h.Set("webhook-timestamp", os.Getenv("WEBHOOK_TIMESTAMP"))
	h.Set("webhook-signature", os.Getenv("WEBHOOK_SIGNATURE"))
	mira := VerifyMiraSignature(secret, body, os.Getenv("X_MIRA_SIGNATURE"))
	standard := VerifyWebhookSignature(secret, h, body, 5*time.Minute)
	fmt.Println("X-Mira-Signature:", result(mira))
	fmt.Println("webhook-signature:", result(standard))
	if !mira || !standard {
		os.Exit(1)
	}
}

func result(ok bool) string {
	if ok {
		return "ok"
	}
	return "rejected"
}
