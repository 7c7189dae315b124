package deliverylog

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/queue/queuetest"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	ctx := context.Background()
	_, js := queuetest.Start(t)
	if err := queue.Ensure(ctx, js, queue.Config{}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, queue.DeliveryLogBucket)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(kv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Create never overwrites; Update only applies to the revision read.
func TestCreateOnlyIfAbsentAndUpdateByRevision(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rec := &datav1.Delivery{ID: "dlv_a", UID: "u1", State: datav1.StatePending, Created: created}
	rev, err := s.Create(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	delivered := *rec
	delivered.State, delivered.AttemptCount = datav1.StateDelivered, 1
	if _, err := s.Update(ctx, &delivered, rev); err != nil {
		t.Fatal(err)
	}
	// A late fan-out tries to create it again: refused, history kept.
	if _, err := s.Create(ctx, rec); !errors.Is(err, ErrConflict) {
		t.Fatalf("second Create: %v, want ErrConflict", err)
	}
	// A writer that read the old revision is refused too.
	if _, err := s.Update(ctx, rec, rev); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale Update: %v, want ErrConflict", err)
	}
	got, _, err := s.Get(ctx, "u1", created, "dlv_a")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != datav1.StateDelivered || got.AttemptCount != 1 {
		t.Fatalf("record %+v", got)
	}
	found, err := s.Find(ctx, "dlv_a")
	if err != nil || found.State != datav1.StateDelivered {
		t.Fatalf("Find: %+v %v", found, err)
	}
	if _, err := s.Find(ctx, "dlv_missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Find of a missing id: %v", err)
	}
}

func TestListNewestFirstWithStatesAndCursor(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, st := range []string{datav1.StateDelivered, datav1.StateDead, datav1.StatePending, datav1.StateDead} {
		id := "dlv_" + string(rune('a'+i))
		if _, err := s.Create(ctx, &datav1.Delivery{ID: id, UID: "u1", State: st, Created: t0.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Create(ctx, &datav1.Delivery{ID: "dlv_other", UID: "u2", State: datav1.StateDead, Created: t0}); err != nil {
		t.Fatal(err)
	}
	page, next, err := s.List(ctx, "u1", ListOptions{States: []string{"dead", "pending"}, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || page[0].ID != "dlv_d" || page[1].ID != "dlv_c" || next == "" {
		t.Fatalf("first page %v next %q", ids(page), next)
	}
	page, next, err = s.List(ctx, "u1", ListOptions{States: []string{"dead", "pending"}, Limit: 2, After: next})
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 1 || page[0].ID != "dlv_b" || next != "" {
		t.Fatalf("second page %v next %q", ids(page), next)
	}
}

func ids(ds []datav1.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

// A record within the budget is stored as it is; one over it is bounded
// before it is stored (encode's fast path must not skip Bound).
func TestStoredRecordsStayWithinTheBudget(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	s.MaxRecordBytes = MinMaxRecordBytes
	created := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	small := &datav1.Delivery{ID: "dlv_s", UID: "u1", State: datav1.StateRetrying, Created: created,
		Attempts: []datav1.Attempt{{Number: 1, StatusCode: 500, ResponseBody: "busy"}}}
	big := &datav1.Delivery{ID: "dlv_b", UID: "u1", State: datav1.StateRetrying, Created: created,
		Attempts: []datav1.Attempt{{Number: 1, StatusCode: 500, ResponseBody: strings.Repeat("x", 2*MinMaxRecordBytes)}}}
	for _, r := range []*datav1.Delivery{small, big} {
		if _, err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	got, _, err := s.Get(ctx, "u1", created, "dlv_s")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Attempts) != 1 || got.Attempts[0].ResponseBody != "busy" {
		t.Fatalf("small record changed: %+v", got)
	}
	got, _, err = s.Get(ctx, "u1", created, "dlv_b")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(got); len(b) > MinMaxRecordBytes {
		t.Fatalf("stored record is %d bytes, over the budget of %d", len(b), MinMaxRecordBytes)
	}
}
