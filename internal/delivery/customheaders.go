package delivery

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// MaskedHeaderValue replaces the value of a custom header wherever an
// attempt is shown (delivery log, status): the name is kept, the value never.
const MaskedHeaderValue = "******"

// maxCustomHeaders and maxCustomHeaderBytes bound a headers Secret.
const (
	maxCustomHeaders     = 32
	maxCustomHeaderBytes = 8 << 10
)

// reservedHeaders are the headers Mira sets itself; a headers Secret cannot
// override them (X-Mira-* and webhook-* are reserved as prefixes).
var reservedHeaders = map[string]bool{"Content-Type": true, "Content-Length": true, "Host": true, "User-Agent": true}

// ValidateCustomHeaders checks the keys and values of a headers Secret: each
// key must be an RFC 7230 token and not a header Mira owns, and each value a
// valid header value. Errors name the key, never the value.
func ValidateCustomHeaders(data map[string][]byte) error {
	if len(data) > maxCustomHeaders {
		return fmt.Errorf("the Secret has %d keys; at most %d headers are sent", len(data), maxCustomHeaders)
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := validateHeaderName(k); err != nil {
			return err
		}
		v := data[k]
		if len(v) > maxCustomHeaderBytes {
			return fmt.Errorf("the value of header %q is longer than %d bytes", k, maxCustomHeaderBytes)
		}
		if !httpguts.ValidHeaderFieldValue(string(v)) {
			return fmt.Errorf("the value of header %q is not a valid header value (control characters or line breaks)", k)
		}
	}
	return nil
}

func validateHeaderName(k string) error {
	if !httpguts.ValidHeaderFieldName(k) {
		return fmt.Errorf("key %q is not a valid header name (RFC 7230 token)", k)
	}
	c := http.CanonicalHeaderKey(k)
	lower := strings.ToLower(k)
	if reservedHeaders[c] || strings.HasPrefix(lower, "x-mira-") || strings.HasPrefix(lower, "webhook-") {
		return fmt.Errorf("header %q is set by Mira and cannot be overridden (reserved: X-Mira-*, webhook-*, Content-Type, Content-Length, Host, User-Agent)", k)
	}
	return nil
}

// ErrInvalidCustomHeaders wraps a validation failure at send time.
var ErrInvalidCustomHeaders = errors.New("invalid headers Secret")

// SetCustomHeaders adds the headers of a validated headers Secret to a
// request. It refuses (without touching the request) a Secret that does not
// validate, so a Secret edited after the controller checked it cannot
// override Mira's headers.
func SetCustomHeaders(h http.Header, data map[string][]byte) error {
	if err := ValidateCustomHeaders(data); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidCustomHeaders, err)
	}
	for k, v := range data {
		h.Set(k, string(v))
	}
	return nil
}

// MaskCustomHeaders returns a copy of a flattened header map in which the
// values of the headers named in data are masked.
func MaskCustomHeaders(flat map[string]string, data map[string][]byte) map[string]string {
	if len(data) == 0 || flat == nil {
		return flat
	}
	for k := range data {
		c := http.CanonicalHeaderKey(k)
		if _, ok := flat[c]; ok {
			flat[c] = MaskedHeaderValue
		}
	}
	return flat
}
