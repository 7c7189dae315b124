// Package deliverylog is the durable log of every delivery: one
// datav1.Delivery per (event, endpoint) in a JetStream KV bucket, created by
// the fan-out, updated by the dispatcher after every attempt, and read by the
// API and the annotation actions.
package deliverylog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	"github.com/mira/mira-operator/internal/events"
)

// ErrNotFound is returned when a delivery does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a record changed since it was read (Update)
// or already exists (Create).
var ErrConflict = errors.New("delivery record changed meanwhile")

// Store keeps delivery records in a JetStream KV bucket.
type Store struct {
	kv jetstream.KeyValue
	// MaxRecordBytes bounds a stored record (see Bound); it must stay below
	// the connection's max payload. New sets DefaultMaxRecordBytes.
	MaxRecordBytes int
}

// New wraps the delivery-log bucket.
func New(kv jetstream.KeyValue) (*Store, error) {
	if kv == nil {
		return nil, errors.New("delivery log needs a KV bucket")
	}
	return &Store{kv: kv, MaxRecordBytes: DefaultMaxRecordBytes}, nil
}

// RecordBudget is the record byte budget for a connection whose max
// payload is maxPayload: the payload minus room for the message headers,
// at most DefaultMaxRecordBytes.
func RecordBudget(maxPayload int64) int {
	b := maxPayload - 16<<10
	if b <= 0 || b > DefaultMaxRecordBytes {
		return DefaultMaxRecordBytes
	}
	return max(int(b), MinMaxRecordBytes)
}

// encode bounds and encodes a record. A record already within its bounds
// (the common case) is encoded once: Bound measures by encoding, so calling
// it first encoded every record twice.
func (s *Store) encode(r *datav1.Delivery) ([]byte, error) {
	if len(r.Attempts) <= datav1.MaxLoggedAttempts {
		if b, err := json.Marshal(r); err == nil && len(b) <= max(s.MaxRecordBytes, MinMaxRecordBytes) {
			return b, nil
		}
	}
	Bound(r, s.MaxRecordBytes)
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode delivery %s: %w", r.ID, err)
	}
	return b, nil
}

// Key is "<endpoint uid>.<creation time>.<delivery id>": the middle token
// (milliseconds since the epoch, zero-padded) makes keys sort by creation.
func Key(uid string, created time.Time, id string) string {
	return fmt.Sprintf("%s.%013d.%s", uid, created.UnixMilli(), id)
}

// Get returns the record of a delivery to an endpoint and its revision.
func (s *Store) Get(ctx context.Context, uid string, created time.Time, id string) (*datav1.Delivery, uint64, error) {
	return s.get(ctx, Key(uid, created, id), id)
}

func (s *Store) get(ctx context.Context, key, id string) (*datav1.Delivery, uint64, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read delivery %s: %w", id, err)
	}
	r := &datav1.Delivery{}
	if err := json.Unmarshal(e.Value(), r); err != nil {
		return nil, 0, fmt.Errorf("decode delivery %s: %w", id, err)
	}
	return r, e.Revision(), nil
}

// Create stores a new record only if none exists under its key, so a
// fan-out redone late (after the stream's dedupe window) never resets a
// delivery's history. It returns ErrConflict when the record exists.
func (s *Store) Create(ctx context.Context, r *datav1.Delivery) (uint64, error) {
	b, err := s.encode(r)
	if err != nil {
		return 0, err
	}
	rev, err := s.kv.Create(ctx, Key(r.UID, r.Created, r.ID), b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, ErrConflict
	}
	if err != nil {
		return 0, fmt.Errorf("create delivery %s: %w", r.ID, err)
	}
	return rev, nil
}

// Update stores a record read at revision rev (0: create it). It returns
// ErrConflict when the record changed meanwhile.
func (s *Store) Update(ctx context.Context, r *datav1.Delivery, rev uint64) (uint64, error) {
	if rev == 0 {
		return s.Create(ctx, r)
	}
	b, err := s.encode(r)
	if err != nil {
		return 0, err
	}
	rev, err = s.kv.Update(ctx, Key(r.UID, r.Created, r.ID), b, rev)
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, ErrConflict
	}
	if err != nil {
		return 0, fmt.Errorf("store delivery %s: %w", r.ID, err)
	}
	return rev, nil
}

// Find returns a delivery by id alone.
func (s *Store) Find(ctx context.Context, id string) (*datav1.Delivery, error) {
	if !events.ValidID(id) {
		return nil, ErrNotFound
	}
	keys, err := s.kv.ListKeysFiltered(ctx, "*.*."+id)
	if err != nil {
		return nil, fmt.Errorf("look up delivery %s: %w", id, err)
	}
	defer func() { _ = keys.Stop() }()
	for k := range keys.Keys() {
		r, _, err := s.get(ctx, k, id)
		return r, err
	}
	return nil, ErrNotFound
}

// ListOptions filter and page a listing.
type ListOptions struct {
	// States keeps only records in one of these states; empty keeps all.
	States []string
	// Since keeps only records created at or after this time.
	Since time.Time
	// Limit is the page size (default 50, at most 500).
	Limit int
	// After is the cursor: the key of the last record of the previous page.
	After string
}

// List returns an endpoint's records, newest first, and the cursor of the
// next page ("" at the end). The cursor is the log key of the last record.
func (s *Store) List(ctx context.Context, uid string, o ListOptions) ([]datav1.Delivery, string, error) {
	if o.Limit <= 0 {
		o.Limit = 50
	}
	if o.Limit > 500 {
		o.Limit = 500
	}
	lister, err := s.kv.ListKeysFiltered(ctx, uid+".>")
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries of %s: %w", uid, err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	_ = lister.Stop()
	sort.Sort(sort.Reverse(sort.StringSlice(keys)))
	if o.After != "" {
		i := sort.Search(len(keys), func(i int) bool { return keys[i] < o.After })
		keys = keys[i:]
	}
	want := map[string]bool{}
	for _, st := range o.States {
		want[strings.ToLower(st)] = true
	}
	var out []datav1.Delivery
	next, lastKey := "", ""
	for _, key := range keys {
		_, id, _ := strings.Cut(key[len(uid)+1:], ".")
		r, _, err := s.get(ctx, key, id)
		if errors.Is(err, ErrNotFound) {
			continue // expired meanwhile
		}
		if err != nil {
			return nil, "", err
		}
		if len(want) > 0 && !want[strings.ToLower(r.State)] {
			continue
		}
		if !o.Since.IsZero() && r.Created.Before(o.Since) {
			continue
		}
		if len(out) == o.Limit {
			next = lastKey
			break
		}
		out = append(out, *r)
		lastKey = key
	}
	return out, next, nil
}
