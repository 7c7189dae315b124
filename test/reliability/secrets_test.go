package reliability

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	eventsv1 "k8s.io/api/events/v1"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

// Runs last (file order): no secret value the suite created (signing
// secrets, the API token, inbound secrets) appears in any process log (all
// run with --zap-log-level=debug), in Events, or in WebhookEndpoint status
// and conditions.
func TestZZSecretsNeverLeak(t *testing.T) {
	secretsMu.Lock()
	values := append([]string(nil), secrets...)
	secretsMu.Unlock()
	ctx := context.Background()

	logs, _ := filepath.Glob(filepath.Join(workDir, "*.log"))
	var bytesScanned int
	for _, path := range logs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		bytesScanned += len(b)
		for _, v := range values {
			if v != "" && strings.Contains(string(b), v) {
				t.Errorf("%s contains a secret value (%d chars)", filepath.Base(path), len(v))
			}
		}
	}
	evs := &eventsv1.EventList{}
	if err := k8s.List(ctx, evs); err != nil {
		t.Fatal(err)
	}
	eps := &miraapi.WebhookEndpointList{}
	if err := k8s.List(ctx, eps); err != nil {
		t.Fatal(err)
	}
	for what, obj := range map[string]any{"Events": evs, "WebhookEndpoints": eps} {
		b, _ := json.Marshal(obj)
		for _, v := range values {
			if v != "" && strings.Contains(string(b), v) {
				t.Errorf("%s contain a secret value (%d chars)", what, len(v))
			}
		}
	}
	report(t, "secrets-not-leaked", map[string]any{
		"secret_values": len(values), "process_logs": len(logs), "log_bytes": bytesScanned,
		"events": len(evs.Items), "endpoints": len(eps.Items),
	})
}
