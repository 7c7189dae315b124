package inbound

import (
	"bytes"
	"context"
	"errors"
	dto "github.com/prometheus/client_model/go"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/mira/mira-operator/internal/integrations"
	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/recall/recalltest"
)

func TestRecallRejectsBadInputAndStoresNothing(t *testing.T) {
	bot := uniq(t, "bot")
	body := recalltest.BotDonePayload(bot, nil, time.Now())
	before := streamMessages(t, queue.InboundStream)

	badSig := recalltest.SignedHeaders("whsec_"+"d3Jvbmcta2V5LXdyb25nLWtleS0wMTIzNDU2Nzg5", "msg_bad_"+bot, time.Now(), body)
	expired := recalltest.SignedHeaders(recallSecret, "msg_old_"+bot, time.Now().Add(-10*time.Minute), body)
	future := recalltest.SignedHeaders(recallSecret, "msg_future_"+bot, time.Now().Add(10*time.Minute), body)
	tampered := recalltest.SignedHeaders(recallSecret, "msg_tampered_"+bot, time.Now(), body)
	unsigned := http.Header{"Content-Type": {"application/json"}}
	var bodies []string
	for name, h := range map[string]http.Header{"bad signature": badSig, "expired": expired, "future": future, "unsigned": unsigned, "tampered": tampered} {
		b := body
		if name == "tampered" {
			b = bytes.Replace(body, []byte(bot), []byte("other-bot"), 1)
		}
		code, resp := post(t, "/webhooks/recall", h, b)
		if code != http.StatusUnauthorized {
			t.Errorf("%s: %d %s, want 401", name, code, resp)
		}
		bodies = append(bodies, string(resp))
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Errorf("401 bodies differ: %q vs %q", b, bodies[0])
		}
	}

	big := append([]byte(`{"event":"bot.done","data":{"pad":"`), bytes.Repeat([]byte("x"), MaxWebhookBytes)...)
	big = append(big, `"}}`...)
	if code, _ := post(t, "/webhooks/recall", recalltest.SignedHeaders(recallSecret, "msg_big_"+bot, time.Now(), big), big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized: %d, want 413", code)
	}
	for _, invalid := range []string{`{"event":`, `[1,2]`, `{"data":{}}`} {
		b := []byte(invalid)
		// Signed but never acceptable: 200 "ignored", so Svix stops retrying.
		if code, resp := post(t, "/webhooks/recall", recalltest.SignedHeaders(recallSecret, "msg_inv_"+bot, time.Now(), b), b); code != http.StatusOK ||
			!strings.Contains(string(resp), `"ignored"`) || !strings.Contains(string(resp), reasonNotAnEvent) {
			t.Errorf("signed %q: %d %s, want 200 ignored", invalid, code, resp)
		}
	}
	if got := streamMessages(t, queue.InboundStream); got != before {
		t.Errorf("refused requests stored %d messages", got-before)
	}
}

func TestMissingRecallSecretRefusesOnlyThatRoute(t *testing.T) {
	ctx := context.Background()
	setKeys := func(keys map[string]string) {
		s := &corev1.Secret{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: intNS, Name: intName}, s); err != nil {
			t.Fatal(err)
		}
		s.Data = nil
		s.StringData = keys
		if err := k8s.Update(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	keys := integrationKeys()
	delete(keys, integrations.RecallWebhookSecretKey)
	setKeys(keys)
	defer func() {
		setKeys(integrationKeys())
		eventually(t, "Recall signing secret back", func() error {
			if in.integrations.Value(context.Background(), integrations.RecallWebhookSecretKey) != recallSecret {
				return errors.New("not yet")
			}
			return nil
		})
	}()
	// A correctly signed webhook is refused like a badly signed one (401,
	// never a 5xx, nothing said about which key is missing), and counted
	// as not configured.
	body := recalltest.BotDonePayload("b-unconfigured", nil, time.Now())
	before := requestCount(t, routeRecall, outcomeNotConfigured)
	eventually(t, "Recall route refuses signed webhooks", func() error {
		code, resp := post(t, "/webhooks/recall", recalltest.SignedHeaders(recallSecret, "msg_unconfigured", time.Now(), body), body)
		if code != http.StatusUnauthorized || !strings.Contains(string(resp), unauthorizedBody) {
			return errCode(code)
		}
		return nil
	})
	if requestCount(t, routeRecall, outcomeNotConfigured) <= before {
		t.Errorf("mira_inbound_requests_total{recall,not_configured} did not grow")
	}
	if code, _ := post(t, "/webhooks/stripe", nil, []byte(`{}`)); code != http.StatusUnauthorized {
		t.Errorf("Stripe route: %d, want 401 (configured, unsigned)", code)
	}
	if code, _ := get(t, "/v1/reports/rpt_000000000000000000000000"); code != http.StatusNotFound {
		t.Errorf("reports route: %d, want 404", code)
	}
	req, _ := http.NewRequest(http.MethodGet, recvURL+"/readyz", nil)
	if code, _ := do(t, req); code != http.StatusOK {
		t.Errorf("/readyz: %d", code)
	}
}

type errCode int

func (e errCode) Error() string { return http.StatusText(int(e)) }

func TestSignedButUnacceptableIsIgnoredAndCounted(t *testing.T) {
	before := ignoredCount(t, routeRecall, reasonIDTooLong)
	stored := streamMessages(t, queue.InboundStream)
	body := recalltest.BotDonePayload("b-long-id", nil, time.Now())
	longID := "msg_" + strings.Repeat("x", maxWebhookIDLength)
	code, resp := post(t, "/webhooks/recall", recalltest.SignedHeaders(recallSecret, longID, time.Now(), body), body)
	if code != http.StatusOK || !strings.Contains(string(resp), reasonIDTooLong) {
		t.Errorf("id too long: %d %s, want 200 ignored", code, resp)
	}
	if got := ignoredCount(t, routeRecall, reasonIDTooLong) - before; got != 1 {
		t.Errorf("mira_inbound_ignored_total{recall,id_too_long} grew by %v, want 1", got)
	}
	if got := streamMessages(t, queue.InboundStream); got != stored {
		t.Errorf("an ignored webhook stored %d messages", got-stored)
	}
}

func requestCount(t *testing.T, route, outcome string) float64 {
	t.Helper()
	m := &dto.Metric{}
	if err := in.metrics.requests.WithLabelValues(route, outcome).Write(m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func ignoredCount(t *testing.T, route, reason string) float64 {
	t.Helper()
	m := &dto.Metric{}
	if err := in.metrics.ignored.WithLabelValues(route, reason).Write(m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
