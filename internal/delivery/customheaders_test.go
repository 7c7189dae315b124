package delivery

import (
	"net/http"
	"strings"
	"testing"
)

func TestValidateCustomHeaders(t *testing.T) {
	tests := []struct {
		name string
		data map[string][]byte
		want string // substring of the error; "" for valid
	}{
		{"bearer and api key", map[string][]byte{"Authorization": []byte("Bearer tok"), "X-Api-Key": []byte("k")}, ""},
		{"bad token", map[string][]byte{"Bad Header": []byte("s3cr3t-v")}, `key "Bad Header" is not a valid header name`},
		{"x-mira prefix any case", map[string][]byte{"x-MIRA-signature": []byte("s3cr3t-v")}, `header "x-MIRA-signature" is set by Mira`},
		{"webhook prefix", map[string][]byte{"Webhook-Id": []byte("s3cr3t-v")}, `header "Webhook-Id" is set by Mira`},
		{"content-type", map[string][]byte{"content-type": []byte("text/plain")}, `header "content-type" is set by Mira`},
		{"host", map[string][]byte{"HOST": []byte("s3cr3t-evil")}, `header "HOST" is set by Mira`},
		{"user-agent", map[string][]byte{"User-Agent": []byte("s3cr3t-x")}, "set by Mira"},
		{"content-length", map[string][]byte{"Content-Length": []byte("s3cr3t-1")}, "set by Mira"},
		{"newline in value", map[string][]byte{"X-Ok": []byte("secret\r\nX-Injected: 1")}, `the value of header "X-Ok" is not a valid header value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateCustomHeaders(tt.data)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
			if err != nil {
				for _, v := range tt.data {
					if strings.Contains(err.Error(), string(v)) {
						t.Fatalf("error %q contains the header value", err)
					}
				}
			}
		})
	}
}

func TestSetAndMaskCustomHeaders(t *testing.T) {
	h := http.Header{}
	h.Set(HeaderSignature, "sig")
	data := map[string][]byte{"authorization": []byte("Bearer tok"), "X-Api-Key": []byte("k1")}
	if err := SetCustomHeaders(h, data); err != nil {
		t.Fatal(err)
	}
	if h.Get("Authorization") != "Bearer tok" || h.Get("X-Api-Key") != "k1" || h.Get(HeaderSignature) != "sig" {
		t.Fatalf("headers = %v", h)
	}
	flat := map[string]string{"Authorization": "Bearer tok", "X-Api-Key": "k1", HeaderSignature: "sig"}
	got := MaskCustomHeaders(flat, data)
	if got["Authorization"] != MaskedHeaderValue || got["X-Api-Key"] != MaskedHeaderValue || got[HeaderSignature] != "sig" {
		t.Fatalf("masked = %v", got)
	}
	if err := SetCustomHeaders(h, map[string][]byte{"X-Mira-Event": []byte("forged")}); err == nil || h.Get("X-Mira-Event") == "forged" {
		t.Fatalf("a reserved header was set: %v %v", err, h)
	}
}
