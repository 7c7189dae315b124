package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/mira/mira-operator/test/harness"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/mira/mira-operator/internal/recall/recalltest"
	"github.com/mira/mira-operator/internal/testenv"
)

// listened is one line of `mira-operator listen --print-json`.
type listened struct {
	Event     string          `json:"event"`
	WebhookID string          `json:"webhook_id"`
	Verified  bool            `json:"verified"`
	Body      json.RawMessage `json:"body"`
}

// listener runs `mira-operator listen` and collects what it prints.
type listener struct {
	mu  sync.Mutex
	got []listened
}

func (l *listener) all() []listened {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]listened(nil), l.got...)
}

func (l *listener) count(event string) (verified, total int, ids []string) {
	for _, g := range l.all() {
		if g.Event == event {
			total++
			if g.Verified {
				verified++
			}
			ids = append(ids, g.WebhookID)
		}
	}
	return
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func plugin(t *testing.T, args ...string) string {
	t.Helper()
	// The same binary, installed as kubectl-mira.
	link := filepath.Join(workDir, "kubectl-mira")
	if _, err := os.Lstat(link); err != nil {
		if err := os.Symlink(binary, link); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(link, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl mira %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestFullFlow drives the product as a user would: YAML through kubectl,
// signed Recall and Stripe webhooks over HTTP, deliveries verified by
// `mira-operator listen`, status through kubectl get, a redelivery through
// the kubectl plugin.
func TestFullFlow(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatal("kubectl is needed on the PATH for the full-flow test")
	}
	const ns = "flow"
	recallSecret := "whsec_" + "Zmxvdy10ZXN0LXJlY2FsbC1zZWNyZXQtMDEyMzQ1Njc4OQ=="
	stripeSecret := "whsec_flowStripeSecret0123456789"
	kubectl(t, "create", "namespace", ns)
	kubectl(t, "create", "namespace", "mira-system", "--dry-run=client", "-o", "yaml")
	_ = exec.Command("kubectl", "--kubeconfig", kubeconfig, "create", "namespace", "mira-system").Run()
	_ = exec.Command("kubectl", "--kubeconfig", kubeconfig, "delete", "secret", "-n", "mira-system", "mira-integrations").Run()
	kubectl(t, "create", "secret", "generic", "mira-integrations", "-n", "mira-system",
		"--from-literal=api-token="+apiToken, "--from-literal=recall-webhook-secret="+recallSecret,
		"--from-literal=recall-api-key="+recalltest.DefaultAPIKey, "--from-literal=stripe-webhook-secret="+stripeSecret)

	// The fake Recall API (the real one is not reachable here).
	recallAPI := recalltest.NewServer()
	defer recallAPI.Close()
	recallAPI.AddBot("flow-bot-1", map[string]string{"user_id": "usr_flow"}, recalltest.SampleTranscript(), false)

	recvPort := harness.FreePort(t)
	recvURL := "http://127.0.0.1:" + strconv.Itoa(recvPort)
	listenPort := harness.FreePort(t)
	start(t, "manager", "manager", "--allow-insecure-urls", "--metrics-bind-address=0", "--health-probe-bind-address=0")
	// The plugin reads deliveries through the receiver's aggregated API,
	// registered as make run does.
	dataPort := harness.FreePort(t)
	dataCerts := filepath.Join(workDir, "flow-data-api")
	caBundle, err := testenv.WriteServingCert(dataCerts, []string{"mira-data-api.mira-system.svc"})
	if err != nil {
		t.Fatal(err)
	}
	start(t, "receiver", "receiver", "--listen=127.0.0.1:"+strconv.Itoa(recvPort), "--metrics-bind-address=0",
		"--data-api-bind-address=127.0.0.1:"+strconv.Itoa(dataPort), "--data-api-cert-dir="+dataCerts,
		"--data-dir="+filepath.Join(workDir, "flow-data"), "--integrations-secret=mira-system/mira-integrations",
		"--allowed-cidrs=127.0.0.0/8", "--status-interval=500ms", "--recall-api-url="+recallAPI.URL, "--default-workspace="+ns)
	kc, err := client.New(restCfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.RegisterLocalAPIService(context.Background(), kc, "mira-system", "mira-data-api", "data.platform.mira.io", dataPort, caBundle); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the data API is Available", 90*time.Second, func() error {
		ok, msg, err := testenv.APIServiceAvailable(context.Background(), kc, "v1alpha1.data.platform.mira.io")
		if err == nil && !ok {
			err = fmt.Errorf("not Available: %s", msg)
		}
		return err
	})
	// The plugin finds the local receiver through this Service's local-url annotation.
	svc := fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: mira-receiver
  namespace: mira-system
  annotations:
    platform.mira.io/local-url: %s
spec:
  ports: [{name: http, port: 8080}]
`, recvURL)
	applyYAML(t, svc)

	// YAML from config/samples: the ScoringTemplate as is, the local
	// listener endpoint pointed at this test's port.
	root := testenv.RepoRoot()
	kubectl(t, "apply", "-n", ns, "-f", filepath.Join(root, "config/samples/platform_v1alpha1_scoringtemplate.yaml"))
	raw, err := os.ReadFile(filepath.Join(root, "config/samples/dev/local-listener.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	endpointYAML := strings.ReplaceAll(strings.ReplaceAll(string(raw), "127.0.0.1:18070", "127.0.0.1:"+strconv.Itoa(listenPort)), "namespace: default", "namespace: "+ns)
	applyYAML(t, endpointYAML)
	eventually(t, "endpoint Ready", 60*time.Second, func() error {
		out := kubectl(t, "get", "whe", "local-listener", "-n", ns, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}")
		if out != "True" {
			return fmt.Errorf("Ready=%q", out)
		}
		return nil
	})

	// mira-operator listen verifies every delivery with the endpoint's secret.
	lst := &listener{}
	lp := start(t, "listen", "listen", "--endpoint="+ns+"/local-listener", "--addr=127.0.0.1:"+strconv.Itoa(listenPort), "--print-json")
	go func() {
		f, err := os.Open(lp.Log)
		if err != nil {
			return
		}
		defer func() { _ = f.Close() }()
		r := bufio.NewReader(f)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				select {
				case <-lp.Done:
					return
				case <-time.After(50 * time.Millisecond):
					continue
				}
			}
			var l listened
			if json.Unmarshal(line, &l) == nil && l.Event != "" {
				lst.mu.Lock()
				lst.got = append(lst.got, l)
				lst.mu.Unlock()
			}
		}
	}()
	eventually(t, "receiver ready", 60*time.Second, func() error { return httpOK(recvURL + "/readyz") })

	// A signed Recall bot.Done webhook.
	body := recalltest.BotDonePayload("flow-bot-1", map[string]string{"user_id": "usr_flow"}, time.Now().UTC())
	if code := postWithHeaders(t, recvURL+"/webhooks/recall", body, recalltest.SignedHeaders(recallSecret, "msg_flow_1", time.Now(), body)); code/100 != 2 {
		t.Fatalf("POST /webhooks/recall: %d", code)
	}
	eventually(t, "transcript_ready and report.completed verified at the listener", 90*time.Second, func() error {
		v1, _, _ := lst.count("meeting.transcript_ready")
		v2, _, _ := lst.count("report.completed")
		if v1 != 1 || v2 != 1 {
			return fmt.Errorf("verified transcript_ready %d, report.completed %d", v1, v2)
		}
		return nil
	})

	// A signed Stripe event is accepted and applied (no outgoing event).
	stripeBody := fmt.Sprintf(`{"id":"evt_flow_1","object":"event","api_version":"2023-10-16","created":%d,"type":"invoice.payment_failed","data":{"object":{"id":"in_flow_1","object":"invoice","customer":"cus_flow_1","subscription":"sub_flow_1","amount_due":2900,"amount_paid":0,"attempt_count":1,"next_payment_attempt":null,"hosted_invoice_url":"https://invoice.example/flow","status":"open","currency":"usd"}}}`, time.Now().Unix())
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: []byte(stripeBody), Secret: stripeSecret})
	if code := postWithHeaders(t, recvURL+"/webhooks/stripe", signed.Payload, http.Header{"Stripe-Signature": {signed.Header}}); code/100 != 2 {
		t.Fatalf("POST /webhooks/stripe: %d", code)
	}
	eventually(t, "billing state for the customer", 30*time.Second, func() error {
		req, _ := http.NewRequest(http.MethodGet, recvURL+"/v1/billing/customers/cus_flow_1", nil)
		req.Header.Set("Authorization", "Bearer "+apiToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		var c struct {
			ActionRequired bool `json:"ActionRequired"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&c)
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})

	// kubectl get shows the endpoint working.
	eventually(t, "status in kubectl get -o wide", 30*time.Second, func() error {
		out := kubectl(t, "get", "webhookendpoints", "-n", ns, "-o", "wide")
		if !strings.Contains(out, "local-listener") || !strings.Contains(out, "True") || !strings.Contains(out, "204") {
			return fmt.Errorf("%s", out)
		}
		return nil
	})

	// Redeliver the report through the plugin: it arrives a second time with
	// the same webhook-id, verified.
	_, _, ids := lst.count("report.completed")
	out := plugin(t, "deliveries", "local-listener", "-n", ns)
	if !strings.Contains(out, ids[0]) || !strings.Contains(out, "Delivered") {
		t.Fatalf("kubectl mira deliveries:\n%s", out)
	}
	plugin(t, "redeliver", "local-listener", ids[0], "-n", ns)
	eventually(t, "second delivery at the listener", 60*time.Second, func() error {
		v, total, got := lst.count("report.completed")
		if total != 2 || v != 2 || got[1] != ids[0] {
			return fmt.Errorf("report.completed verified %d of %d, ids %v", v, total, got)
		}
		return nil
	})
	if v, total, _ := lst.count("meeting.transcript_ready"); v != 1 || total != 1 {
		t.Fatalf("transcript_ready delivered %d times (verified %d), want once", total, v)
	}
}

func applyYAML(t *testing.T, y string) {
	t.Helper()
	cmd := exec.Command("kubectl", "--kubeconfig", kubeconfig, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(y)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

func httpOK(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %d", url, resp.StatusCode)
	}
	return nil
}

func postWithHeaders(t *testing.T, url string, body []byte, h http.Header) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}
