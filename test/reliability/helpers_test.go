package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/mira/mira-operator/internal/testenv"
	"github.com/mira/mira-operator/test/harness"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

// The helpers follow test/e2e (process, eventually, countingConsumer).

const apiToken = "reliability-api-token-9f3c1d2e7a"

var (
	secretsMu sync.Mutex
	// secrets are every secret value the suite created; secrets_test.go
	// checks that none of them shows in logs, Events or status.
	secrets = []string{apiToken}
)

func rememberSecret(s string) {
	secretsMu.Lock()
	defer secretsMu.Unlock()
	secrets = append(secrets, s)
}

func startProcess(t *testing.T, name, bin string, args ...string) *harness.Process {
	t.Helper()
	return harness.Start(t, workDir, []string{"KUBECONFIG=" + kubeconfig}, name, bin, args...)
}

// start runs a mira-operator subcommand at debug verbosity.
func start(t *testing.T, name string, args ...string) *harness.Process {
	return startProcess(t, name, binary, append(args, "--zap-log-level=debug")...)
}

// eventually waits for a state the system converges to; see testenv.Eventually.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	testenv.Eventually(t, what, timeout, cond)
}

func ensureNamespace(t *testing.T, ns string) {
	t.Helper()
	err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// setupIntegrations creates mira-system and the integrations Secret.
func setupIntegrations(t *testing.T, extra map[string]string) {
	t.Helper()
	ensureNamespace(t, "mira-system")
	data := map[string]string{"api-token": apiToken}
	for k, v := range extra {
		data[k] = v
		rememberSecret(v)
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "mira-system", Name: "mira-integrations"}, StringData: data}
	ctx := context.Background()
	if err := k8s.Create(ctx, s); apierrors.IsAlreadyExists(err) {
		cur := &corev1.Secret{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: "mira-system", Name: "mira-integrations"}, cur); err != nil {
			t.Fatal(err)
		}
		if cur.StringData == nil {
			cur.StringData = map[string]string{}
		}
		for k, v := range data {
			cur.StringData[k] = v
		}
		if err := k8s.Update(ctx, cur); err != nil {
			t.Fatal(err)
		}
	} else if err != nil {
		t.Fatal(err)
	}
}

// startManager runs the controller manager.
func startManager(t *testing.T) *harness.Process {
	return start(t, "manager", "manager", "--allow-insecure-urls", "--metrics-bind-address=0",
		"--health-probe-bind-address=127.0.0.1:"+strconv.Itoa(harness.FreePort(t)))
}

// sink creates a WebhookEndpoint to a counting consumer and waits for its
// generated signing secret.
func sink(t *testing.T, ns, name string) (*harness.Consumer, *miraapi.WebhookEndpoint) {
	t.Helper()
	ctx := context.Background()
	ensureNamespace(t, ns)
	c := harness.NewConsumer()
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	w := &miraapi.WebhookEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: miraapi.WebhookEndpointSpec{URL: srv.URL, Events: []string{miraapi.EventAll}}}
	if err := k8s.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	eventually(t, "signing secret generated", time.Minute, func() error {
		s := &corev1.Secret{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name + "-signing-secret"}, s); err != nil {
			return err
		}
		c.SetSecret(string(s.Data["signingSecret"]))
		rememberSecret(string(s.Data["signingSecret"]))
		return nil
	})
	return c, w
}

// receiverArgs are the flags every receiver in the suite runs with.
func receiverArgs(port int, extra ...string) []string {
	return append([]string{"receiver", "--listen=127.0.0.1:" + strconv.Itoa(port), "--metrics-bind-address=0", "--data-api-bind-address=0",
		"--integrations-secret=mira-system/mira-integrations", "--allowed-cidrs=127.0.0.0/8", "--status-interval=500ms"}, extra...)
}

func waitReady(t *testing.T, url string, p *harness.Process) {
	t.Helper()
	eventually(t, "receiver ready at "+url, 2*time.Minute, func() error {
		if p != nil && p.Exited() {
			t.Fatalf("receiver exited before it was ready; log %s", p.Log)
		}
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
}

var postClient = &http.Client{Timeout: 30 * time.Second}

// runID keeps event ids of different test runs apart.
var runID = strconv.FormatInt(time.Now().UnixNano(), 36)

// postEvent publishes event i through POST /v1/events.
func postEvent(url string, i int, pad int) (int, error) {
	data := map[string]string{"report_id": "r" + strconv.Itoa(i)}
	if pad > 0 {
		data["padding"] = string(bytes.Repeat([]byte("x"), pad))
	}
	// The event id makes a retried POST idempotent: a sender that lost the
	// answer of a stored event (receiver killed mid-request) and retries does
	// not create a second event.
	body, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("evt_%s_%d", runID, i), "event": "report.completed", "data": data})
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/events", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := postClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// burst sends events [from, to) with a bounded number in flight; each event
// is retried (against the next URL) until it is accepted with 202, the way a
// sender retries a 5xx. It returns how many needed a retry.
func burst(t *testing.T, urls func() []string, from, to, inFlight int, deadline time.Duration) (retried int64) {
	t.Helper()
	sem := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	var failed atomic.Int64
	var retries atomic.Int64
	end := time.Now().Add(deadline)
	for i := from; i < to; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			for try := 0; ; try++ {
				us := urls()
				code, err := postEvent(us[(i+try)%len(us)], i, 0)
				if err == nil && code == http.StatusAccepted {
					return
				}
				if err == nil && code < 500 {
					failed.Add(1) // refused for good: a bug
					return
				}
				if time.Now().After(end) {
					failed.Add(1)
					return
				}
				retries.Add(1)
				time.Sleep(200 * time.Millisecond) // sender backoff, not synchronisation
			}
		}(i)
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d events were never accepted", n)
	}
	return retries.Load()
}

// endpointStatus reads the endpoint's delivered count from status.
func delivered(t *testing.T, w *miraapi.WebhookEndpoint) (int64, error) {
	cur := &miraapi.WebhookEndpoint{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: w.Namespace, Name: w.Name}, cur); err != nil {
		return 0, err
	}
	if cur.Status.Deliveries == nil {
		return 0, nil
	}
	return cur.Status.Deliveries.Delivered, nil
}

// report logs a scenario's figures and appends them to
// MIRA_RELIABILITY_REPORT when set.
func report(t *testing.T, scenario string, fields map[string]any) {
	t.Helper()
	fields["scenario"] = scenario
	fields["mode"] = scale("short", "full")
	b, _ := json.Marshal(fields)
	t.Logf("RESULT %s", b)
	if path := os.Getenv("MIRA_RELIABILITY_REPORT"); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err == nil {
			_, _ = f.Write(append(b, '\n'))
			_ = f.Close()
		}
	}
}
