package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/mira/mira-operator/test/harness"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

const apiToken = "e2e-token-abcdefghijklmnop"

// setupIntegrations creates the namespace and the integrations Secret.
func setupIntegrations(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	_ = k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mira-integrations"},
		StringData: map[string]string{"api-token": apiToken}}
	if err := k8s.Create(ctx, s); err != nil && !isAlreadyExists(err) {
		t.Fatal(err)
	}
}

func postEvent(url string, i int) (int, error) {
	body, _ := json.Marshal(map[string]any{"event": "report.completed", "data": map[string]string{"report_id": "r" + strconv.Itoa(i)}})
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/events", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// TestReceiverSurvivesSIGKILL kills the receiver three times during a burst
// and checks, at the consumer, that every accepted event was delivered.
func TestReceiverSurvivesSIGKILL(t *testing.T) {
	ctx := context.Background()
	setupIntegrations(t, "mira-system")
	ns := "crash"
	_ = k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})

	mgrPort := harness.FreePort(t)
	start(t, "manager", "manager", "--allow-insecure-urls", "--metrics-bind-address=0",
		"--health-probe-bind-address=127.0.0.1:"+strconv.Itoa(mgrPort))

	consumer := harness.NewConsumer()
	srv := httptest.NewServer(consumer)
	defer srv.Close()
	w := &miraapi.WebhookEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sink"},
		Spec: miraapi.WebhookEndpointSpec{URL: srv.URL, Events: []string{miraapi.EventAll}}}
	if err := k8s.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	eventually(t, "signing secret generated", 30*time.Second, func() error {
		s := &corev1.Secret{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "sink-signing-secret"}, s); err != nil {
			return err
		}
		consumer.SetSecret(string(s.Data["signingSecret"]))
		return nil
	})

	dataDir := filepath.Join(workDir, "crash-data")
	port := harness.FreePort(t)
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	startReceiver := func() *harness.Process {
		p := start(t, "receiver", "receiver", "--listen=127.0.0.1:"+strconv.Itoa(port), "--metrics-bind-address=0", "--data-api-bind-address=0",
			"--data-dir="+dataDir, "--integrations-secret=mira-system/mira-integrations", "--allowed-cidrs=127.0.0.0/8",
			"--status-interval=500ms", "--default-workspace="+ns)
		eventually(t, "receiver ready", 60*time.Second, func() error {
			resp, err := http.Get(url + "/readyz")
			if err != nil {
				return err
			}
			_ = resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("readyz %d", resp.StatusCode)
			}
			return nil
		})
		return p
	}

	const total = 3000
	accepted := map[int]bool{}
	next := 0
	proc := startReceiver()
	for kill := 1; kill <= 3; kill++ {
		// Send a third of the burst, with the kill landing in the middle of it.
		target := total * kill / 3
		killAt := next + (target-next)/2
		var wg sync.WaitGroup
		var mu sync.Mutex
		for next < target {
			i := next
			next++
			if i == killAt {
				wg.Wait()
				proc.Kill()
				t.Logf("SIGKILL %d after %d events sent, %d distinct delivered", kill, i, consumer.Distinct())
				proc = startReceiver()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, err := postEvent(url, i)
				if err == nil && code == http.StatusAccepted {
					mu.Lock()
					accepted[i] = true
					mu.Unlock()
				}
			}()
			if i%50 == 49 {
				wg.Wait()
			}
		}
		wg.Wait()
	}
	if len(accepted) != total {
		t.Fatalf("only %d of %d events were accepted with 202", len(accepted), total)
	}
	eventually(t, "every accepted event delivered", 3*time.Minute, func() error {
		if d := consumer.Distinct(); d < total {
			return fmt.Errorf("%d of %d distinct deliveries so far", d, total)
		}
		return nil
	})
	dups := consumer.Total() - int64(consumer.Distinct())
	t.Logf("delivered %d distinct, %d duplicates (at-least-once redeliveries after SIGKILL), %d bad signatures", consumer.Distinct(), dups, consumer.BadSignatures())
	if consumer.BadSignatures() != 0 {
		t.Fatalf("%d deliveries had an invalid X-Mira-Signature", consumer.BadSignatures())
	}
	proc.Stop()
}
