// Package workspace holds what every stage needs to know about workspaces:
// a Mira workspace is a Kubernetes namespace, and everything an event
// touches (inbound secrets, ScoringTemplates, WebhookEndpoints, the
// delivery log, reports, billing state) belongs to one.
package workspace

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Valid reports whether ns can name a workspace: a Kubernetes namespace
// name (an RFC 1123 label), which is also a valid NATS subject token and
// KV key part.
func Valid(ns string) bool {
	return ns != "" && len(validation.IsDNS1123Label(ns)) == 0
}

// Key returns the bucket key of key in workspace ns: "<ns>.<key>".
func Key(ns, key string) string { return ns + "." + key }

// KV scopes a KeyValue bucket to one workspace: every key is prefixed
// with "<namespace>.". With legacy set (the default workspace after an
// upgrade), a key missing under its prefixed name is read from its
// unprefixed name, as written before workspaces existed; the entry comes
// back with revision 0, so the next compare-and-set write creates the
// prefixed key (a lazy migration; the old key is left to age out).
type KV struct {
	jetstream.KeyValue
	Namespace string
	Legacy    bool
}

// Scoped returns kv scoped to namespace ns.
func Scoped(kv jetstream.KeyValue, ns string, legacy bool) *KV {
	return &KV{KeyValue: kv, Namespace: ns, Legacy: legacy}
}

// Get reads a key of the workspace (see KV for the legacy fallback).
func (s *KV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	e, err := s.KeyValue.Get(ctx, Key(s.Namespace, key))
	if s.Legacy && errors.Is(err, jetstream.ErrKeyNotFound) {
		old, oerr := s.KeyValue.Get(ctx, key)
		if oerr == nil {
			return migrated{old}, nil
		}
	}
	return e, err
}

// Put writes a key of the workspace.
func (s *KV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	return s.KeyValue.Put(ctx, Key(s.Namespace, key), value)
}

// Create writes a key of the workspace that must not exist yet.
func (s *KV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	return s.KeyValue.Create(ctx, Key(s.Namespace, key), value, opts...)
}

// Update writes a key of the workspace at revision last (0: it must not
// exist, which is how a legacy entry is migrated).
func (s *KV) Update(ctx context.Context, key string, value []byte, last uint64) (uint64, error) {
	return s.KeyValue.Update(ctx, Key(s.Namespace, key), value, last)
}

// Delete deletes a key of the workspace.
func (s *KV) Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	return s.KeyValue.Delete(ctx, Key(s.Namespace, key), opts...)
}

// migrated is a legacy entry read for a workspace key: revision 0, so a
// write of it creates the prefixed key.
type migrated struct{ jetstream.KeyValueEntry }

// Revision is 0: the entry does not exist under its workspace key yet.
func (migrated) Revision() uint64 { return 0 }

type ctxKey struct{}

// With returns ctx carrying workspace ns.
func With(ctx context.Context, ns string) context.Context {
	return context.WithValue(ctx, ctxKey{}, ns)
}

// From returns the workspace ctx carries, "" when none.
func From(ctx context.Context) string {
	ns, _ := ctx.Value(ctxKey{}).(string)
	return ns
}
