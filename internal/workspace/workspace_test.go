package workspace_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mira/mira-operator/internal/queue/queuetest"
	"github.com/mira/mira-operator/internal/workspace"
)

func TestValid(t *testing.T) {
	for ns, want := range map[string]bool{
		"team-a": true, "default": true, "": false, "Team": false, "a.b": false, "a*": false, "a>": false,
		"-a": false, "a_b": false, string(make([]byte, 64)): false,
	} {
		if got := workspace.Valid(ns); got != want {
			t.Errorf("Valid(%q) = %v, want %v", ns, got, want)
		}
	}
}

// Keys are prefixed with the namespace; the default workspace reads a key
// written before workspaces and its next write migrates it.
func TestScopedKVAndLegacyFallback(t *testing.T) {
	ctx := context.Background()
	_, js := queuetest.Start(t)
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "meeting.m1", []byte("old")); err != nil {
		t.Fatal(err)
	}
	other := workspace.Scoped(kv, "team-b", false)
	if _, err := other.Get(ctx, "meeting.m1"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("another workspace reads the legacy key: %v", err)
	}
	def := workspace.Scoped(kv, "team-a", true)
	e, err := def.Get(ctx, "meeting.m1")
	if err != nil || string(e.Value()) != "old" || e.Revision() != 0 {
		t.Fatalf("legacy read: %v %v", e, err)
	}
	if _, err := def.Update(ctx, "meeting.m1", []byte("new"), e.Revision()); err != nil {
		t.Fatalf("migrating write: %v", err)
	}
	raw, err := kv.Get(ctx, "team-a.meeting.m1")
	if err != nil || string(raw.Value()) != "new" {
		t.Fatalf("prefixed key after the migration: %v %v", raw, err)
	}
	if e, err := def.Get(ctx, "meeting.m1"); err != nil || string(e.Value()) != "new" || e.Revision() == 0 {
		t.Fatalf("read after the migration: %v %v", e, err)
	}
	// A second migrating write of the stale legacy entry conflicts.
	if _, err := def.Update(ctx, "meeting.m1", []byte("again"), 0); err == nil {
		t.Fatal("a write at revision 0 overwrote the migrated key")
	}
	if _, err := other.Create(ctx, "meeting.m1", []byte("b")); err != nil {
		t.Fatalf("same key in another workspace: %v", err)
	}
}
