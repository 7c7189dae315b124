package cli_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/events"
)

func TestReplayCommand(t *testing.T) {
	ns := newNamespace(t)
	got := make(chan []byte, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Data json.RawMessage `json:"data"`
		}
		_ = json.NewDecoder(r.Body).Decode(&b)
		got <- b.Data
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	// An event of this workspace stored before the endpoint exists.
	now := time.Now().UTC()
	ev := events.Event{ID: events.NewEventID(now), Type: miraapi.EventReportCompleted, Namespace: ns,
		Data: json.RawMessage(`{"report_id":"rep_cli_replay"}`), Time: now}
	if err := recv.Publisher.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	createEndpoint(t, ns, "late", srv.URL)

	out, err := plugin(t, "replay", "late", "-n", ns, "--since", "1h", "--event", miraapi.EventReportCompleted)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if !strings.Contains(out, "queued 1 deliveries") {
		t.Fatalf("replay output lacks the count:\n%s", out)
	}
	select {
	case d := <-got:
		if !strings.Contains(string(d), "rep_cli_replay") {
			t.Fatalf("replayed %s", d)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("the replayed delivery did not arrive")
	}

	// The receiver refuses a type the endpoint does not subscribe to.
	if _, err := plugin(t, "replay", "late", "-n", ns, "--since", "1h", "--event", miraapi.EventMeetingFailed); err == nil || !strings.Contains(err.Error(), "does not subscribe") {
		t.Fatalf("replay of an unsubscribed type: %v", err)
	}
	// Flags are checked before anything is annotated.
	for _, args := range [][]string{
		{"replay", "late", "-n", ns},
		{"replay", "late", "-n", ns, "--since", "1h", "--until", "2h"},
		{"redeliver", "late", "-n", ns, "--until", "1h"},
	} {
		if _, err := plugin(t, args...); err == nil {
			t.Errorf("kubectl mira %v: no error", args)
		}
	}
	// redeliver --failed-since gains --until.
	out, err = plugin(t, "redeliver", "late", "-n", ns, "--failed-since", "1h", "--until", "1m")
	if err != nil || !strings.Contains(out, "queued 0 deliveries again") || !strings.Contains(out, ";until=") {
		t.Fatalf("redeliver --until: %v\n%s", err, out)
	}
}
