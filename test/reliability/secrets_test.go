package reliability

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/test/harness"
)

// No secret value appears in any process log (all run with
// --zap-log-level=debug), in Events, or in WebhookEndpoint status and
// conditions. The test makes its own traffic, so it means the same alone,
// shuffled or after the other scenarios: it sets fresh inbound secrets,
// starts a manager and a receiver, lets the manager generate a signing
// secret, and has events published with the API token and delivered signed
// with that secret. Then it scans every log of the suite so far (its own
// processes' logs included, and they must not be empty), the Events and the
// WebhookEndpoints for every secret value the suite has created.
func TestSecretsNeverLeak(t *testing.T) {
	random := func() string {
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	inbound := map[string]string{
		"recall-webhook-secret": "whsec_" + random(),
		"recall-api-key":        "recall-key-" + strings.NewReplacer("+", "", "/", "", "=", "").Replace(random()),
		"stripe-webhook-secret": "whsec_" + strings.NewReplacer("+", "", "/", "", "=", "").Replace(random()),
	}
	setupIntegrations(t, inbound)
	mgr := startManager(t)
	const ns = "secrets-leak"
	consumer, w := sink(t, ns, "sink")
	port := harness.FreePort(t)
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	rcv := start(t, "receiver-secrets", receiverArgs(port, "--data-dir="+filepath.Join(t.TempDir(), "data"), "--watch-namespace="+ns, "--default-workspace="+ns)...)
	waitReady(t, url, rcv)

	const events = 5
	for i := 0; i < events; i++ {
		code, err := postEvent(url, 900000+i, 0)
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("publish event %d: %d %v", i, code, err)
		}
	}
	eventually(t, "the events delivered, signed", 2*time.Minute, func() error {
		if d := consumer.Distinct(); d < events {
			return fmt.Errorf("%d of %d delivered", d, events)
		}
		return nil
	})
	if n := consumer.BadSignatures(); n != 0 {
		t.Fatalf("%d deliveries with a bad signature: the secret under test was not the one used", n)
	}
	eventually(t, "delivery status written back", time.Minute, func() error {
		if n, err := delivered(t, w); err != nil || n < events {
			return fmt.Errorf("status shows %d delivered (%v)", n, err)
		}
		return nil
	})

	secretsMu.Lock()
	values := append([]string(nil), secrets...)
	secretsMu.Unlock()
	// The API token, the generated signing secret and the three inbound
	// secrets at least.
	if len(values) < 5 {
		t.Fatalf("only %d secret values recorded, want the API token, the signing secret and 3 inbound secrets", len(values))
	}
	// Our own processes wrote their logs (at debug verbosity) by now.
	for _, p := range []*harness.Process{mgr, rcv} {
		if fi, err := os.Stat(p.Log); err != nil || fi.Size() == 0 {
			t.Fatalf("the %s log %s is empty or missing (%v): nothing to scan", p.Name, p.Log, err)
		}
	}

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
	ctx := context.Background()
	evs := &eventsv1.EventList{}
	if err := k8s.List(ctx, evs); err != nil {
		t.Fatal(err)
	}
	eps := &miraapi.WebhookEndpointList{}
	if err := k8s.List(ctx, eps); err != nil {
		t.Fatal(err)
	}
	if len(eps.Items) == 0 {
		t.Fatal("no WebhookEndpoints to scan")
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
		"events": len(evs.Items), "endpoints": len(eps.Items), "deliveries": consumer.Distinct(),
	})
}
