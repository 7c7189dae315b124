package receiver

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// DeliveryID is deterministic in the event and the endpoint, so a replayed
// event never makes a second delivery.
func DeliveryID(eventID, endpointUID string) string {
	h := sha256.Sum256([]byte(eventID + "\x00" + endpointUID))
	return "dlv_" + hex.EncodeToString(h[:13])
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
