package receiver_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/deliverylog"
	"github.com/mira/mira-operator/internal/fanout"
)

// A consumer that answers 1 MiB bodies on every attempt used to grow the
// delivery record past the NATS max payload (8 MiB embedded) after about 8
// attempts; from then on no outcome could be stored and the delivery was
// sent again about once a second, forever. The record is now bounded: the
// delivery ends Dead after exactly maxAttempts requests.
func TestLargeResponsesManyAttempts(t *testing.T) {
	const maxAttempts = 10
	ns := newNamespace(t)
	big := bytes.Repeat([]byte("e"), 1<<20)
	c := newConsumer(func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Mira-Event") == miraapi.EventMeetingFailed {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write(big)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewServer(c)
	defer srv.Close()
	w, _ := createEndpoint(t, ns, "chatty", srv.URL, []string{miraapi.EventAll}, func(w *miraapi.WebhookEndpoint) {
		w.Spec.Delivery = &miraapi.DeliveryPolicy{MaxAttempts: ptr.To[int32](maxAttempts), Backoff: &miraapi.BackoffPolicy{
			Initial: &metav1.Duration{Duration: time.Second}, Max: &metav1.Duration{Duration: time.Second}, Jitter: ptr.To[int32](1)}}
	})
	count := func(event string) int {
		n := 0
		for _, r := range c.all() {
			if r.Header.Get("X-Mira-Event") == event {
				n++
			}
		}
		return n
	}
	countFailing := func() int { return count(miraapi.EventMeetingFailed) }
	// A successful delivery after each failed attempt keeps the circuit
	// breaker (5 consecutive failures) closed, so the attempts follow the
	// 1 s backoff.
	marker := 0
	delivered := func() {
		t.Helper()
		marker++
		publish(t, ns, miraapi.EventRoleplayCompleted, map[string]string{"roleplay_id": fmt.Sprint("rp-", marker)})
		eventually(t, "marker delivered", func() error {
			if n := count(miraapi.EventRoleplayCompleted); n < marker {
				return fmt.Errorf("%d of %d markers delivered", n, marker)
			}
			return nil
		})
	}
	id := publish(t, ns, miraapi.EventMeetingFailed, map[string]string{"meeting_id": "m-big"})
	dlv := fanout.DeliveryID(id, string(w.UID))
	var rec datav1.Delivery
	for k := 1; ; k++ {
		eventually(t, "next attempt or the end", func() error {
			if rec = getRecord(t, dlv); rec.State == datav1.StateDead || countFailing() >= k {
				return nil
			}
			return fmt.Errorf("attempt %d not made, state %q", k, rec.State)
		})
		if rec.State == datav1.StateDead {
			break
		}
		if n := countFailing(); n > maxAttempts {
			t.Fatalf("delivery %s state %q after %d attempts at the consumer (max %d)", dlv, rec.State, n, maxAttempts)
		}
		delivered()
	}
	// Nothing more is sent: one more event, delivered after the end, is the
	// marker that the queue moved on.
	delivered()
	if n := countFailing(); n != maxAttempts {
		t.Fatalf("consumer got %d attempts, want %d", n, maxAttempts)
	}
	if rec.AttemptCount != maxAttempts || len(rec.Attempts) == 0 {
		t.Fatalf("record counts %d attempts, keeps %d", rec.AttemptCount, len(rec.Attempts))
	}
	older := 0
	if rec.OlderAttempts != nil {
		older = rec.OlderAttempts.Count
	}
	if older+len(rec.Attempts) != maxAttempts || older == 0 {
		t.Fatalf("%d attempts kept + %d summarised, want %d with some summarised", len(rec.Attempts), older, maxAttempts)
	}
	if last := rec.Attempts[len(rec.Attempts)-1]; last.Number != maxAttempts || last.StatusCode != http.StatusInternalServerError {
		t.Fatalf("newest attempt %d code %d", last.Number, last.StatusCode)
	}
	if b, _ := json.Marshal(rec); len(b) > deliverylog.DefaultMaxRecordBytes {
		t.Fatalf("record has %d bytes, budget %d", len(b), deliverylog.DefaultMaxRecordBytes)
	}
}
