package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrNotFound is returned when a delivery or report does not exist.
var ErrNotFound = errors.New("not found")

// LogStore keeps delivery records in a JetStream KV bucket.
type LogStore struct {
	kv jetstream.KeyValue
}

// NewLogStore wraps the delivery-log bucket.
func NewLogStore(kv jetstream.KeyValue) (*LogStore, error) {
	if kv == nil {
		return nil, errors.New("delivery log needs a KV bucket")
	}
	return &LogStore{kv: kv}, nil
}

// LogKey is "<endpoint uid>.<creation time>.<delivery id>": the middle token
// (milliseconds since the epoch, zero-padded) makes keys sort by creation.
func LogKey(uid string, created time.Time, id string) string {
	return fmt.Sprintf("%s.%013d.%s", uid, created.UnixMilli(), id)
}

// Get returns the record of a delivery to an endpoint.
func (s *LogStore) Get(ctx context.Context, uid string, created time.Time, id string) (*Record, uint64, error) {
	return s.get(ctx, LogKey(uid, created, id), id)
}

func (s *LogStore) get(ctx context.Context, key, id string) (*Record, uint64, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read delivery %s: %w", id, err)
	}
	r := &Record{}
	if err := json.Unmarshal(e.Value(), r); err != nil {
		return nil, 0, fmt.Errorf("decode delivery %s: %w", id, err)
	}
	return r, e.Revision(), nil
}

// Put stores a record.
func (s *LogStore) Put(ctx context.Context, r *Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode delivery %s: %w", r.ID, err)
	}
	if _, err := s.kv.Put(ctx, LogKey(r.UID, r.Created, r.ID), b); err != nil {
		return fmt.Errorf("store delivery %s: %w", r.ID, err)
	}
	return nil
}

// Find returns a delivery by id alone.
func (s *LogStore) Find(ctx context.Context, id string) (*Record, error) {
	if !validToken(id) {
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
	// After is the cursor: the id of the last record of the previous page.
	After string
}

// List returns an endpoint's records, newest first, and the cursor of the
// next page ("" at the end). The cursor is the log key of the last record.
func (s *LogStore) List(ctx context.Context, uid string, o ListOptions) ([]Record, string, error) {
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
	var out []Record
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

func validToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
