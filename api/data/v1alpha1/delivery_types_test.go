package v1alpha1

import (
	"encoding/json"
	"testing"
	"time"
)

// storedDelivery is a delivery-log entry exactly as receivers before this
// package wrote it to JetStream; it must read and write back unchanged.
const storedDelivery = `{"id":"dlv_0123456789abcdef0123456789","event_id":"evt_1","event":"report.completed","namespace":"team-a","endpoint":"crm","endpoint_uid":"9f1c","url":"https://crm.example/hooks","state":"Retrying","round":1,"created":"2026-01-02T03:04:05Z","updated":"2026-01-02T03:04:07Z","first_attempt":"2026-01-02T03:04:06Z","next_retry":"2026-01-02T03:04:11Z","body":"{\"event\":\"report.completed\"}","attempt_count":1,"attempts":[{"attempt":1,"round":1,"time":"2026-01-02T03:04:06Z","duration_ms":12,"url":"https://crm.example/hooks","request_headers":{"X-Mira-Event":"report.completed"},"status_code":500,"response_headers":{"Content-Type":"text/plain"},"response_body":"down","error":"HTTP 500","outcome":"Retrying","next_retry":"2026-01-02T03:04:11Z"}],"reason":"waiting"}`

func TestDeliveryJSONIsStable(t *testing.T) {
	var d Delivery
	if err := json.Unmarshal([]byte(storedDelivery), &d); err != nil {
		t.Fatal(err)
	}
	if d.State != StateRetrying || d.AttemptCount != 1 || len(d.Attempts) != 1 || d.Attempts[0].StatusCode != 500 ||
		!d.Created.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) || d.UID != "9f1c" || d.EventType != "report.completed" {
		t.Fatalf("decoded %+v", d)
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != storedDelivery {
		t.Fatalf("re-encoded differently:\n got %s\nwant %s", b, storedDelivery)
	}
}

func TestFinal(t *testing.T) {
	for state, want := range map[string]bool{
		StatePending: false, StateRetrying: false, StateDelivered: true, StateDead: true, StateSkipped: true,
	} {
		if got := (&Delivery{State: state}).Final(); got != want {
			t.Errorf("Final(%s) = %v, want %v", state, got, want)
		}
	}
}
