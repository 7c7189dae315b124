package dataapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
)

// ErrNotFound is returned by a Source when a delivery or report does not
// exist in the namespace asked for.
var ErrNotFound = errors.New("not found")

// MaxListItems bounds one list answer; the newest items are kept.
const MaxListItems = 5000

// Source is what the API reads: the delivery log and the stored reports.
// An empty namespace means every namespace.
type Source interface {
	// Deliveries returns the namespace's delivery records, newest first,
	// and the revision of the log they were read at.
	Deliveries(ctx context.Context, namespace string) ([]Record, uint64, error)
	// WatchDeliveries sends the namespace's records as they are written
	// after revision from (0: the current records first, marked Initial),
	// until ctx ends; the channel is closed then.
	WatchDeliveries(ctx context.Context, namespace string, from uint64) (<-chan Change, error)
	// Delivery returns one record by delivery id.
	Delivery(ctx context.Context, namespace, id string) (*datav1.Delivery, error)
	// Reports returns the namespace's stored reports.
	Reports(ctx context.Context, namespace string) ([]StoredReport, error)
	// Report returns one stored report by report id.
	Report(ctx context.Context, namespace, id string) (*StoredReport, error)
}

// Record is a delivery-log record with its revision in the log.
type Record struct {
	datav1.Delivery
	Revision uint64
}

// Change is a record written to the log, seen by a watch.
type Change struct {
	Record
	// Initial marks the current records sent first by a watch from 0.
	Initial bool
}

// StoredReport is one entry of the reports bucket: the scored report's JSON
// (scoring.Report plus "namespace") under "<namespace>.<report id>".
type StoredReport struct {
	Namespace string
	ID        string
	JSON      []byte
}

// KVSource reads the JetStream KV buckets the receiver writes: the delivery
// log (keys "<endpoint uid>.<creation ms>.<delivery id>", records carry
// their namespace) and the reports (keys "<namespace>.<report id>").
type KVSource struct {
	DeliveryLog jetstream.KeyValue
	ReportsKV   jetstream.KeyValue
	// EndpointUIDs, when set, lists the uids of a namespace's endpoints
	// (the registry knows them), so a namespaced list reads only their
	// records. Without it a namespaced list scans the whole log. Records of
	// deleted endpoints stay visible in all-namespace lists only when set.
	EndpointUIDs func(namespace string) []string
}

// Deliveries implements Source. It reads the log in one pass of a KV
// watcher (the bucket's current values, then a marker), not one Get per
// key. The revision returned is the highest one read.
func (s *KVSource) Deliveries(ctx context.Context, namespace string) ([]Record, uint64, error) {
	filters := []string{">"}
	if namespace != "" && s.EndpointUIDs != nil {
		filters = filters[:0]
		for _, uid := range s.EndpointUIDs(namespace) {
			filters = append(filters, uid+".>")
		}
		if len(filters) == 0 {
			return nil, 0, nil
		}
	}
	w, err := s.DeliveryLog.WatchFiltered(ctx, filters, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, 0, fmt.Errorf("read delivery log: %w", err)
	}
	defer func() { _ = w.Stop() }()
	type keyed struct {
		key string
		rec Record
	}
	var all []keyed
	var rev uint64
	for {
		var e jetstream.KeyValueEntry
		select {
		case e = <-w.Updates():
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("read delivery log: %w", ctx.Err())
		}
		if e == nil {
			break // the current values are all delivered
		}
		rev = max(rev, e.Revision())
		r, err := decodeRecord(e)
		if err != nil {
			return nil, 0, err
		}
		if namespace == "" || r.Namespace == namespace {
			all = append(all, keyed{e.Key(), *r})
		}
	}
	// Keys sort by creation within an endpoint; order all by the time token.
	sort.Slice(all, func(i, j int) bool { return keyTime(all[i].key) > keyTime(all[j].key) })
	out := make([]Record, 0, min(len(all), MaxListItems))
	for _, k := range all[:min(len(all), MaxListItems)] {
		out = append(out, k.rec)
	}
	return out, rev, nil
}

// WatchDeliveries implements Source with a KV watcher. Records that age
// out of the log (its TTL) leave no trace a watcher could report.
func (s *KVSource) WatchDeliveries(ctx context.Context, namespace string, from uint64) (<-chan Change, error) {
	opts := []jetstream.WatchOpt{jetstream.IgnoreDeletes()}
	if from > 0 {
		opts = append(opts, jetstream.ResumeFromRevision(from))
	}
	w, err := s.DeliveryLog.WatchFiltered(ctx, []string{">"}, opts...)
	if err != nil {
		return nil, fmt.Errorf("watch delivery log: %w", err)
	}
	out := make(chan Change)
	go func() {
		defer close(out)
		defer func() { _ = w.Stop() }()
		initial := from == 0
		for {
			var e jetstream.KeyValueEntry
			var ok bool
			select {
			case e, ok = <-w.Updates():
				if !ok {
					return
				}
			case <-ctx.Done():
				return
			}
			if e == nil {
				initial = false // caught up: what follows are changes
				continue
			}
			r, err := decodeRecord(e)
			if err != nil || namespace != "" && r.Namespace != namespace {
				continue
			}
			select {
			case out <- Change{Record: *r, Initial: initial}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func decodeRecord(e jetstream.KeyValueEntry) (*Record, error) {
	r := &Record{Revision: e.Revision()}
	if err := json.Unmarshal(e.Value(), &r.Delivery); err != nil {
		return nil, fmt.Errorf("decode delivery %s: %w", e.Key(), err)
	}
	return r, nil
}

// Delivery implements Source.
func (s *KVSource) Delivery(ctx context.Context, namespace, id string) (*datav1.Delivery, error) {
	if !validToken(id) {
		return nil, ErrNotFound
	}
	keys, err := listKeys(ctx, s.DeliveryLog, []string{"*.*." + id})
	if err != nil {
		return nil, fmt.Errorf("look up delivery %s: %w", id, err)
	}
	for _, k := range keys {
		r, err := s.readDelivery(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if r.Namespace == namespace {
			return r, nil
		}
	}
	return nil, ErrNotFound
}

// Reports implements Source. Keys "<namespace>.<report id>" are read as
// such; legacy keys "<report id>" (written before reports were namespaced)
// belong to the namespace their JSON names ("namespace", else the
// template's).
func (s *KVSource) Reports(ctx context.Context, namespace string) ([]StoredReport, error) {
	filters := []string{">"} // NATS refuses overlapping filters: ">" alone
	if namespace != "" {
		if !validToken(namespace) {
			return nil, nil
		}
		filters = []string{namespace + ".*", "*"}
	}
	keys, err := listKeys(ctx, s.ReportsKV, filters)
	if err != nil {
		return nil, fmt.Errorf("list reports: %w", err)
	}
	var out []StoredReport
	for _, k := range keys {
		if len(out) == MaxListItems {
			break
		}
		r, err := s.readKey(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if namespace == "" || r.Namespace == namespace {
			out = append(out, *r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Report implements Source.
func (s *KVSource) Report(ctx context.Context, namespace, id string) (*StoredReport, error) {
	if !validToken(namespace) || !validToken(id) {
		return nil, ErrNotFound
	}
	r, err := s.readKey(ctx, namespace+"."+id)
	if errors.Is(err, ErrNotFound) {
		r, err = s.readKey(ctx, id) // legacy key
	}
	if err != nil {
		return nil, err
	}
	if r.Namespace != namespace {
		return nil, ErrNotFound
	}
	return r, nil
}

// readKey reads a report entry under either key scheme.
func (s *KVSource) readKey(ctx context.Context, key string) (*StoredReport, error) {
	e, err := s.ReportsKV.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read report %s: %w", key, err)
	}
	if ns, id, ok := strings.Cut(key, "."); ok {
		return &StoredReport{Namespace: ns, ID: id, JSON: e.Value()}, nil
	}
	var owner struct {
		Namespace string `json:"namespace"`
		Template  struct {
			Namespace string `json:"namespace"`
		} `json:"template"`
	}
	if err := json.Unmarshal(e.Value(), &owner); err != nil {
		return nil, ErrNotFound // not a report this API can place
	}
	ns := owner.Namespace
	if ns == "" {
		ns = owner.Template.Namespace
	}
	if ns == "" {
		return nil, ErrNotFound
	}
	return &StoredReport{Namespace: ns, ID: key, JSON: e.Value()}, nil
}

func (s *KVSource) readDelivery(ctx context.Context, key string) (*datav1.Delivery, error) {
	e, err := s.DeliveryLog.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read delivery %s: %w", key, err)
	}
	r := &datav1.Delivery{}
	if err := json.Unmarshal(e.Value(), r); err != nil {
		return nil, fmt.Errorf("decode delivery %s: %w", key, err)
	}
	return r, nil
}

// listKeys returns the keys matching any of the filters (none: empty).
func listKeys(ctx context.Context, kv jetstream.KeyValue, filters []string) ([]string, error) {
	lister, err := kv.ListKeysFiltered(ctx, filters...)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = lister.Stop() }()
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	return keys, nil
}

// keyTime is the zero-padded creation token of a delivery-log key.
func keyTime(key string) string {
	parts := strings.SplitN(key, ".", 3)
	if len(parts) < 2 {
		return ""
	}
	return parts[1]
}

// validToken reports whether s can stand as one NATS subject token: no
// wildcards, dots or spaces, so a name cannot widen a key filter.
func validToken(s string) bool {
	return s != "" && !strings.ContainsAny(s, ".*> \t\r\n")
}
