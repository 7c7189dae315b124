package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
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
	"github.com/mira/mira-operator/internal/signing"
)

// The helpers follow test/e2e (process, eventually, countingConsumer).

const apiToken = "reliability-api-token-9f3c1d2e7a"

var (
	secretsMu sync.Mutex
	// secrets are every secret value the suite created; zz_secrets_test.go
	// checks that none of them shows in logs, Events or status.
	secrets = []string{apiToken}
)

func rememberSecret(s string) {
	secretsMu.Lock()
	defer secretsMu.Unlock()
	secrets = append(secrets, s)
}

// process is a running child process with its output in a log file.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func startProcess(t *testing.T, name, bin string, args ...string) *process {
	t.Helper()
	logPath := filepath.Join(workDir, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			if len(out) > 8000 {
				out = out[len(out)-8000:]
			}
			t.Logf("--- %s log (tail) ---\n%s", name, out)
		}
	})
	return p
}

// start runs a mira-operator subcommand at debug verbosity.
func start(t *testing.T, name string, args ...string) *process {
	return startProcess(t, name, binary, append(args, "--zap-log-level=debug")...)
}

func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// countingConsumer counts deliveries by webhook-id and checks signatures.
type countingConsumer struct {
	secret  atomic.Value
	mu      sync.Mutex
	byID    map[string]int
	total   atomic.Int64
	badSigs atomic.Int64
}

func newConsumer() *countingConsumer { return &countingConsumer{byID: map[string]int{}} }

func (c *countingConsumer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if s, _ := c.secret.Load().(string); s != "" && !signing.VerifyMira(s, body, r.Header.Get("X-Mira-Signature")) {
		c.badSigs.Add(1)
	}
	c.mu.Lock()
	c.byID[r.Header.Get("webhook-id")]++
	c.mu.Unlock()
	c.total.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

func (c *countingConsumer) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byID)
}

func (c *countingConsumer) duplicates() int64 { return c.total.Load() - int64(c.distinct()) }

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
func startManager(t *testing.T) *process {
	return start(t, "manager", "manager", "--allow-insecure-urls", "--metrics-bind-address=0",
		"--health-probe-bind-address=127.0.0.1:"+strconv.Itoa(freePort(t)))
}

// sink creates a WebhookEndpoint to a counting consumer and waits for its
// generated signing secret.
func sink(t *testing.T, ns, name string) (*countingConsumer, *miraapi.WebhookEndpoint) {
	t.Helper()
	ctx := context.Background()
	ensureNamespace(t, ns)
	c := newConsumer()
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
		c.secret.Store(string(s.Data["signingSecret"]))
		rememberSecret(string(s.Data["signingSecret"]))
		return nil
	})
	return c, w
}

// receiverArgs are the flags every receiver in the suite runs with.
func receiverArgs(port int, extra ...string) []string {
	return append([]string{"receiver", "--listen=127.0.0.1:" + strconv.Itoa(port), "--metrics-bind-address=0",
		"--integrations-secret=mira-system/mira-integrations", "--allowed-cidrs=127.0.0.0/8", "--status-interval=500ms"}, extra...)
}

func waitReady(t *testing.T, url string, p *process) {
	t.Helper()
	eventually(t, "receiver ready at "+url, 2*time.Minute, func() error {
		if p != nil && p.exited() {
			t.Fatalf("receiver exited before it was ready; log %s", p.log)
		}
		resp, err := http.Get(url + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
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
	resp.Body.Close()
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
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			_, _ = f.Write(append(b, '\n'))
			f.Close()
		}
	}
}
