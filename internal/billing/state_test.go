package billing

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mira/mira-operator/internal/queue/queuetest"
)

func TestEncodeID(t *testing.T) {
	tests := []struct {
		id      string
		want    string
		wantErr error
	}{
		{id: "cus_RfixtureCust01", want: "cus_RfixtureCust01"},
		{id: "usr_8812", want: "usr_8812"},
		{id: "6b1f2c3d-4e5f", want: "-NmIxZjJjM2QtNGU1Zg"},
		{id: "a.b", want: "-YS5i"},
		{id: "-x", want: "-LXg"},
		{id: "ops@acme.example", want: "-b3BzQGFjbWUuZXhhbXBsZQ"},
		{id: "ü", want: "-w7w"},
		{id: strings.Repeat("a", 255), want: strings.Repeat("a", 255)},
		{id: strings.Repeat("a", 256), wantErr: ErrInvalidID},
		{id: "", wantErr: ErrInvalidID},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			got, err := EncodeID(tc.id)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("EncodeID(%q) error = %v, want %v", tc.id, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("EncodeID(%q) = %q, %v; want %q", tc.id, got, err, tc.want)
			}
		})
	}
	keys := []struct {
		f    func(string) (string, error)
		id   string
		want string
	}{
		{CustomerKey, "cus_A", "customer.cus_A"},
		{UserKey, "ops@acme.example", "user.-b3BzQGFjbWUuZXhhbXBsZQ"},
	}
	for _, k := range keys {
		if got, err := k.f(k.id); err != nil || got != k.want {
			t.Fatalf("key of %q = %q, %v; want %q", k.id, got, err, k.want)
		}
	}
}

func TestEnsureBucket(t *testing.T) {
	ctx := context.Background()
	_, js := queuetest.Start(t)
	for i := range 2 { // idempotent
		kv, err := EnsureBucket(ctx, js, 1)
		if err != nil {
			t.Fatalf("EnsureBucket #%d: %v", i+1, err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config
		if st.Bucket() != BucketName || st.History() != 1 || cfg.Storage != jetstream.FileStorage || cfg.Replicas != 1 {
			t.Fatalf("bucket %s history %d storage %s replicas %d; want %s 1 file 1",
				st.Bucket(), st.History(), cfg.Storage, cfg.Replicas, BucketName)
		}
	}
	for _, bad := range []struct {
		js       jetstream.JetStream
		replicas int
		want     string
	}{
		{js, 0, "ensure billing bucket: replicas must be between 1 and 5, got 0"},
		{nil, 1, "ensure billing bucket: nil JetStream context"},
	} {
		if _, err := EnsureBucket(ctx, bad.js, bad.replicas); err == nil || err.Error() != bad.want {
			t.Fatalf("EnsureBucket error = %v, want %q", err, bad.want)
		}
	}
}
