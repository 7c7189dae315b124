package dataapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	"github.com/mira/mira-operator/internal/dataapi"
	"github.com/mira/mira-operator/internal/deliverylog"
	"github.com/mira/mira-operator/internal/queue/queuetest"
)

// BenchmarkListNamespace measures one `kubectl get deliveries -n` worth of
// work behind the API: read a delivery log of 4,000 records in two
// namespaces, keep one namespace's 2,000 and convert them to objects.
func BenchmarkListNamespace(b *testing.B) {
	ctx := context.Background()
	_, js := queuetest.Start(b)
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "bench-log"})
	if err != nil {
		b.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 4000 {
		ns := []string{"team-a", "team-b"}[i%2]
		d := datav1.Delivery{
			ID: fmt.Sprintf("dlv_%026x", i), EventType: "report.completed", Namespace: ns, Endpoint: "crm",
			UID: "uid-" + ns, State: datav1.StateDelivered, Created: base.Add(time.Duration(i) * time.Second), AttemptCount: 1,
			Body:     `{"event":"report.completed","data":{"report_id":"rpt_1"}}`,
			Attempts: []datav1.Attempt{{Number: 1, StatusCode: 204, URL: "https://crm.example/hooks", RequestHeaders: map[string]string{"X-Mira-Event": "report.completed"}}},
		}
		raw, _ := json.Marshal(d)
		if _, err := kv.Put(ctx, deliverylog.Key(d.UID, d.Created, d.ID), raw); err != nil {
			b.Fatal(err)
		}
	}
	src := &dataapi.KVSource{DeliveryLog: kv}
	b.ResetTimer()
	for b.Loop() {
		recs, _, err := src.Deliveries(ctx, "team-a")
		if err != nil || len(recs) != 2000 {
			b.Fatalf("%d records, %v", len(recs), err)
		}
		for i := range recs {
			_ = dataapi.DeliveryObject(&recs[i].Delivery)
		}
	}
}
