// Package queuetest starts a real, embedded JetStream server for tests.
package queuetest

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mira/mira-operator/internal/queue"
)

// Start runs an embedded JetStream server with its store in a temporary
// directory and returns a connected JetStream context. Everything is torn
// down when the test ends.
func Start(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	ns, err := queue.StartEmbedded(queue.EmbeddedOptions{DataDir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatalf("start embedded JetStream: %v", err)
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		ns.Shutdown()
		t.Fatalf("connect to embedded JetStream: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream context: %v", err)
	}
	t.Cleanup(func() {
		nc.Close()
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return nc, js
}
