// Package events is the first stage after ingestion: a Mira event is stored
// durably in the events stream (Publish), from which the fan-out reads it.
// It also serves POST /v1/events, the API that publishes an event directly.
package events

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Event is one Mira event as stored in the events stream.
type Event struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	// Namespace is the workspace the event belongs to: fan-out reaches only
	// WebhookEndpoints in this namespace, and it is part of the subject.
	Namespace string          `json:"namespace"`
	Data      json.RawMessage `json:"data"`
	Time      time.Time       `json:"time"`
	// Only, when set, restricts the fan-out to one endpoint uid regardless
	// of subscriptions (test events).
	Only string `json:"only,omitempty"`
	// Except, when set, keeps the fan-out from the endpoint with this uid:
	// an operational event is never delivered to the endpoint it is about.
	Except string `json:"except,omitempty"`
}

// NewEventID returns a random event id that sorts by time.
func NewEventID(now time.Time) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("evt_%013d%s", now.UnixMilli(), hex.EncodeToString(b[:]))
}

// DerivedEventID is a deterministic event id, for events whose cause has an
// id of its own (a meeting, a roleplay, a test request).
func DerivedEventID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "evt_" + hex.EncodeToString(h.Sum(nil)[:13])
}
