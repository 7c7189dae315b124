package fanout

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// A delivery message carries its metadata in NATS headers and the body,
// exactly as it will be POSTed, as the message data. Encoding the message
// as JSON made every hand-out decode a base64 body and the metadata with
// reflection: the largest CPU item of the dispatcher's own work in the
// delivery bench profile. Messages queued as JSON by an earlier version
// (no Mira-Delivery-Id header) still decode.
const (
	hdrID        = "Mira-Delivery-Id"
	hdrEventID   = "Mira-Event-Id"
	hdrEventType = "Mira-Event-Type"
	hdrUID       = "Mira-Endpoint-Uid"
	hdrNamespace = "Mira-Namespace"
	hdrName      = "Mira-Endpoint"
	hdrCreated   = "Mira-Created"
	hdrRound     = "Mira-Round"
	hdrRecordRev = "Mira-Record-Rev"
	hdrFilter    = "Mira-Filter-Pending"
)

// NewMsg is the deliveries-stream message of m. The caller sets the
// message id (Nats-Msg-Id) through the publish options.
func (m *Message) NewMsg() *nats.Msg {
	h := nats.Header{
		hdrID:        {m.ID},
		hdrEventID:   {m.EventID},
		hdrEventType: {m.EventType},
		hdrUID:       {m.EndpointUID},
		hdrNamespace: {m.Namespace},
		hdrName:      {m.Name},
		hdrCreated:   {m.Created.UTC().Format(time.RFC3339Nano)},
	}
	if m.Round != 0 {
		h[hdrRound] = []string{strconv.Itoa(m.Round)}
	}
	if m.RecordRev != 0 {
		h[hdrRecordRev] = []string{strconv.FormatUint(m.RecordRev, 10)}
	}
	if m.FilterPending {
		h[hdrFilter] = []string{"1"}
	}
	return &nats.Msg{Subject: Subject(m.Namespace, m.EndpointUID), Header: h, Data: m.Body}
}

// DecodeMessage reads a deliveries-stream message: headers and body, or the
// JSON of an earlier version.
func DecodeMessage(h nats.Header, data []byte) (Message, error) {
	one := func(k string) string {
		if v := h[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	var m Message
	m.ID = one(hdrID)
	if m.ID == "" {
		if err := json.Unmarshal(data, &m); err != nil {
			return Message{}, err
		}
		if m.ID == "" {
			return Message{}, errors.New("delivery message without id")
		}
		return m, nil
	}
	m.EventID, m.EventType, m.EndpointUID = one(hdrEventID), one(hdrEventType), one(hdrUID)
	m.Namespace, m.Name, m.Body = one(hdrNamespace), one(hdrName), data
	var err error
	if m.Created, err = time.Parse(time.RFC3339Nano, one(hdrCreated)); err != nil {
		return Message{}, fmt.Errorf("delivery message %s: created: %w", m.ID, err)
	}
	if v := one(hdrRound); v != "" {
		if m.Round, err = strconv.Atoi(v); err != nil {
			return Message{}, fmt.Errorf("delivery message %s: round: %w", m.ID, err)
		}
	}
	if v := one(hdrRecordRev); v != "" {
		if m.RecordRev, err = strconv.ParseUint(v, 10, 64); err != nil {
			return Message{}, fmt.Errorf("delivery message %s: record revision: %w", m.ID, err)
		}
	}
	m.FilterPending = one(hdrFilter) == "1"
	return m, nil
}
