package reliability

import (
	"fmt"
	"github.com/mira/mira-operator/test/harness"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

// ssrfTargets are url hosts the outbound guard refuses before any
// connection (internal/delivery guard tests): metadata addresses, loopback
// in several encodings, link-local, IPv4-mapped IPv6, private, CGNAT,
// multicast, unspecified, and non-canonical IPv4 forms. None of them is
// ever dialled: literals are refused before the dial, names (localhost) at
// dial time before connect.
var ssrfTargets = []string{
	"169.254.169.254", "[fd00:ec2::254]", "100.100.100.200", "169.254.170.2",
	"127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]", "[::ffff:169.254.169.254]",
	"0.0.0.0", "[::]", "10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1",
	"[fc00::1]", "[fe80::1]", "224.0.0.1", "[64:ff9b::7f00:1]",
	"2130706433", "0177.0.0.1", "0x7f.1", "127.1", "127.0.0.1.",
}

// SSRF end to end: endpoints whose url targets refused addresses end Dead
// with an attempt outcome Blocked; with --allowed-cidrs=127.0.0.0/8 a
// loopback consumer is delivered to (and a private target stays refused).
func TestSSRF(t *testing.T) {
	const ns, allowedNS = "ssrf", "ssrf-allowed"
	setupIntegrations(t, nil)
	ensureNamespace(t, ns)
	ensureNamespace(t, allowedNS)
	startManager(t)

	outcome := map[string]string{} // host -> refused-at-apply | not-ready | blocked
	created := map[string]*miraapi.WebhookEndpoint{}
	for i, host := range ssrfTargets {
		w, err := createEndpoint(ns, fmt.Sprintf("target-%02d", i), "http://"+host+"/hook", []string{miraapi.EventAll}, fastRetries())
		if err != nil {
			outcome[host] = "refused-at-apply"
			t.Logf("%s refused at apply: %v", host, err)
			continue
		}
		created[host] = w
	}
	for host, w := range created {
		if c := endpointConfigured(t, w); c.Status != "True" {
			outcome[host] = "not-ready: " + c.Reason
			delete(created, host)
		}
	}

	// A receiver without --allowed-cidrs: the default guard.
	port := harness.FreePort(t)
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	p := start(t, "receiver-ssrf", "receiver", "--listen=127.0.0.1:"+strconv.Itoa(port), "--metrics-bind-address=0", "--data-api-bind-address=0",
		"--integrations-secret=mira-system/mira-integrations", "--status-interval=500ms",
		"--data-dir="+filepath.Join(t.TempDir(), "data"), "--watch-namespace="+ns, "--default-workspace="+ns)
	waitReady(t, url, p)
	eventually(t, "event accepted", time.Minute, func() error {
		code, err := postTyped(url, "evt_ssrf_"+runID, miraapi.EventReportCompleted, map[string]string{"report_id": "ssrf"})
		if err != nil || code != http.StatusAccepted {
			return fmt.Errorf("POST: %d %v", code, err)
		}
		return nil
	})
	records := map[string]datav1.Delivery{}
	eventually(t, "every SSRF delivery settled", 2*time.Minute, func() error {
		for host, w := range created {
			recs, err := deliveries(url, ns, w.Name)
			if err != nil {
				return err
			}
			if len(recs) != 1 || recs[0].State == datav1.StatePending || recs[0].State == datav1.StateRetrying || len(recs[0].Attempts) == 0 {
				return fmt.Errorf("%s: %d records, not settled", host, len(recs))
			}
			records[host] = recs[0]
		}
		return nil
	})
	for host, rec := range records {
		a := rec.Attempts[len(rec.Attempts)-1]
		if rec.State != datav1.StateDead || len(rec.Attempts) != 1 || a.Outcome != "Blocked" || a.StatusCode != 0 {
			t.Errorf("%s: %s after %d attempts, last outcome %s (status %d, error %q); want Dead after 1 Blocked attempt",
				host, rec.State, len(rec.Attempts), a.Outcome, a.StatusCode, a.Error)
			outcome[host] = "NOT BLOCKED: " + rec.State
			continue
		}
		reason := a.Error
		if i := strings.LastIndex(reason, ": "); i >= 0 {
			reason = reason[i+2:]
		}
		outcome[host] = "blocked: " + reason
	}
	p.Stop()

	// Allowed: --allowed-cidrs=127.0.0.0/8 lets a loopback consumer through;
	// a private target next to it is still refused.
	consumer, _ := sink(t, allowedNS, "loopback")
	private, err := createEndpoint(allowedNS, "private", "http://10.0.0.1/hook", []string{miraapi.EventAll}, fastRetries())
	if err != nil {
		t.Fatal(err)
	}
	endpointConfigured(t, private)
	port2 := harness.FreePort(t)
	url2 := "http://127.0.0.1:" + strconv.Itoa(port2)
	p2 := start(t, "receiver-ssrf-allowed", receiverArgs(port2, "--data-dir="+filepath.Join(t.TempDir(), "data"), "--watch-namespace="+allowedNS, "--default-workspace="+allowedNS)...)
	waitReady(t, url2, p2)
	if code, err := postTyped(url2, "evt_ssrf_allowed_"+runID, miraapi.EventReportCompleted, map[string]string{"report_id": "allowed"}); err != nil || code != http.StatusAccepted {
		t.Fatalf("POST: %d %v", code, err)
	}
	eventually(t, "loopback consumer delivered to", time.Minute, func() error {
		if consumer.Distinct() != 1 {
			return fmt.Errorf("%d deliveries", consumer.Distinct())
		}
		return nil
	})
	var privateRec datav1.Delivery
	eventually(t, "private target settled", time.Minute, func() error {
		recs, err := deliveries(url2, allowedNS, "private")
		if err != nil {
			return err
		}
		if len(recs) != 1 || recs[0].State != datav1.StateDead {
			return fmt.Errorf("%d records", len(recs))
		}
		privateRec = recs[0]
		return nil
	})
	if a := privateRec.Attempts[len(privateRec.Attempts)-1]; a.Outcome != "Blocked" {
		t.Errorf("10.0.0.1 under --allowed-cidrs=127.0.0.0/8: outcome %s, want Blocked", a.Outcome)
	}

	blocked, apply := 0, 0
	for _, o := range outcome {
		switch {
		case strings.HasPrefix(o, "blocked"):
			blocked++
		case o == "refused-at-apply":
			apply++
		}
	}
	report(t, "ssrf", map[string]any{
		"targets": len(ssrfTargets), "blocked_at_delivery": blocked, "refused_at_apply": apply,
		"outcomes": outcome, "allowed_loopback_delivered": consumer.Distinct(), "allowed_bad_signatures": consumer.BadSignatures(),
		"private_under_allowed_cidrs": privateRec.Attempts[len(privateRec.Attempts)-1].Outcome,
	})
	if blocked+apply != len(ssrfTargets) {
		t.Errorf("%d of %d targets refused (outcomes %v)", blocked+apply, len(ssrfTargets), outcome)
	}
	if consumer.BadSignatures() != 0 {
		t.Errorf("%d bad signatures", consumer.BadSignatures())
	}
}
