package fanout

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func sampleMessage() Message {
	return Message{
		ID: "dlv_0123456789abcdef01234567", EventID: "evt_1", EventType: "report.completed", EndpointUID: "uid-1",
		Namespace: "team-a", Name: "hook", Body: []byte(`{"event":"report.completed","data":{"report_id":"r1"},"timestamp":"2026-11-30T22:00:00Z"}`),
		Created: time.Date(2026, 11, 30, 22, 0, 0, 123456789, time.UTC), Round: 2, RecordRev: 42,
	}
}

func TestMessageHeadersRoundTrip(t *testing.T) {
	pending := sampleMessage()
	pending.FilterPending = true
	for _, want := range []Message{sampleMessage(), pending} {
		msg := want.NewMsg()
		if msg.Subject != Subject(want.Namespace, want.EndpointUID) {
			t.Fatalf("subject %q", msg.Subject)
		}
		got, err := DecodeMessage(msg.Header, msg.Data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded %+v, want %+v", got, want)
		}
	}
}

func TestDecodeMessageQueuedAsJSON(t *testing.T) {
	want := sampleMessage()
	want.RecordRev = 0 // earlier versions did not carry it
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeMessage(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
}

func TestDecodeMessageRefusesMalformed(t *testing.T) {
	for name, data := range map[string][]byte{"not JSON": []byte("{"), "no id": []byte("{}")} {
		if _, err := DecodeMessage(nil, data); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	sample := sampleMessage()
	m := sample.NewMsg()
	m.Header[hdrCreated] = []string{"yesterday"}
	if _, err := DecodeMessage(m.Header, m.Data); err == nil {
		t.Error("bad created time: decoded")
	}
}

// BenchmarkDecode compares the header encoding with the JSON one it
// replaced: go test -run x -bench Decode ./internal/fanout
func BenchmarkDecode(b *testing.B) {
	m := sampleMessage()
	msg := m.NewMsg()
	js, _ := json.Marshal(m)
	b.Run("headers", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeMessage(msg.Header, msg.Data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeMessage(nil, js); err != nil {
				b.Fatal(err)
			}
		}
	})
}
