// Package queue owns Mira's durable state on NATS JetStream: an embedded
// server by default, an external cluster with --nats-url, the same code.
package queue

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedOptions configures the in-process JetStream server.
type EmbeddedOptions struct {
	// DataDir holds JetStream's file store. Required.
	DataDir string
	// SyncInterval is how often the file store fsyncs. Zero keeps the NATS
	// default (2 minutes): writes are in the OS page cache as soon as they are
	// acknowledged, which survives a killed process but not a power cut.
	// SyncAlways makes every write reach the disk before it is acknowledged.
	SyncInterval time.Duration
	SyncAlways   bool
	// Port to listen on for clients; -1 (the default when zero) means no TCP
	// listener: clients connect in-process.
	Port int
	// Host to listen on when Port is set; defaults to 127.0.0.1.
	Host string
	// MaxStore bounds the JetStream file store in bytes; 0 means the server's
	// default (a share of the disk).
	MaxStore int64
}

// StartEmbedded starts a JetStream-enabled NATS server in this process and
// waits until it is ready for connections.
func StartEmbedded(o EmbeddedOptions) (*server.Server, error) {
	if o.DataDir == "" {
		return nil, errors.New("embedded JetStream needs a data directory")
	}
	port := o.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	host := o.Host
	if host == "" {
		host = "127.0.0.1"
	}
	opts := &server.Options{
		ServerName:         "mira-embedded",
		Host:               host,
		Port:               port,
		JetStream:          true,
		StoreDir:           o.DataDir,
		JetStreamMaxStore:  o.MaxStore,
		NoSigs:             true,
		NoLog:              true,
		DontListen:         o.Port < 0,
		SyncInterval:       o.SyncInterval,
		SyncAlways:         o.SyncAlways,
		MaxPayload:         8 << 20,
		JetStreamMaxMemory: 64 << 20,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("create embedded NATS server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded NATS server did not become ready within 30s")
	}
	return ns, nil
}
