package reliability

import (
	"context"
	"fmt"
	"github.com/mira/mira-operator/test/harness"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mira/mira-operator/internal/queue"
)

// Embedded mode, receiver SIGKILLed three times during a burst. The short
// mode leaves this to test/e2e (TestReceiverSurvivesSIGKILL, 3,000 events);
// the full mode runs it at 20,000.
func TestEmbeddedSIGKILL(t *testing.T) {
	if !full {
		t.Skip("short mode: test/e2e TestReceiverSurvivesSIGKILL covers it at 3,000 events; MIRA_RELIABILITY=full runs 20,000")
	}
	total := 20000
	setupIntegrations(t, nil)
	startManager(t)
	consumer, w := sink(t, "embedded-crash", "sink")
	dataDir := filepath.Join(t.TempDir(), "data")
	port := harness.FreePort(t)
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	var proc *harness.Process
	var mu sync.Mutex
	startRecv := func() {
		p := start(t, "receiver-embedded", receiverArgs(port, "--data-dir="+dataDir, "--default-workspace=embedded-crash")...)
		waitReady(t, url, p)
		mu.Lock()
		proc = p
		mu.Unlock()
	}
	startRecv()
	began := time.Now()
	var retries int64
	for kill := 1; kill <= 3; kill++ {
		from, to := total*(kill-1)/3, total*kill/3
		mid := from + (to-from)/2
		retries += burst(t, func() []string { return []string{url} }, from, mid, 32, 5*time.Minute)
		mu.Lock()
		p := proc
		mu.Unlock()
		p.Kill()
		t.Logf("SIGKILL %d after %d events, %d distinct delivered", kill, mid, consumer.Distinct())
		startRecv()
		retries += burst(t, func() []string { return []string{url} }, mid, to, 32, 5*time.Minute)
	}
	eventually(t, "every accepted event delivered", 10*time.Minute, func() error {
		if d := consumer.Distinct(); d < total {
			return fmt.Errorf("%d of %d distinct deliveries so far", d, total)
		}
		return nil
	})
	var status int64
	eventually(t, "status written", time.Minute, func() (err error) {
		status, err = delivered(t, w)
		if err == nil && status == 0 {
			err = fmt.Errorf("no status yet")
		}
		return err
	})
	distinct := consumer.Distinct()
	report(t, "embedded-sigkill-x3", map[string]any{
		"events": total, "delivered": distinct, "duplicates": consumer.Duplicates(), "lost": total - distinct,
		"sender_retries": retries, "status_delivered": status, "seconds": int(time.Since(began).Seconds()),
	})
	if distinct != total {
		t.Errorf("lost %d", total-distinct)
	}
}

// The API server stopped: deliveries go on from the receiver's caches, and
// status catches up once it is back.
func TestAPIServerOutage(t *testing.T) {
	total := scale(1000, 10000)
	outage := scale(5*time.Second, 30*time.Second)
	setupIntegrations(t, nil)
	startManager(t)
	consumer, w := sink(t, "apiserver-outage", "sink")
	port := harness.FreePort(t)
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	p := start(t, "receiver-outage", receiverArgs(port, "--data-dir="+filepath.Join(t.TempDir(), "data"), "--default-workspace=apiserver-outage")...)
	waitReady(t, url, p)
	urls := func() []string { return []string{url} }

	burst(t, urls, 0, total/2, 32, 3*time.Minute)
	eventually(t, "first half delivered", 3*time.Minute, func() error {
		if d := consumer.Distinct(); d < total/2 {
			return fmt.Errorf("%d of %d", d, total/2)
		}
		return nil
	})

	restarted := false
	restart := func() {
		if restarted {
			return
		}
		restarted = true
		if err := env.ControlPlane.APIServer.Start(); err != nil {
			t.Fatalf("start the API server again: %v", err)
		}
	}
	defer restart()
	// SIGKILL: a graceful kube-apiserver shutdown takes a minute (it drains
	// watches), and a crash is the harsher fault anyway.
	down := time.Now()
	killAPIServer(t)
	t.Logf("API server killed")
	burst(t, urls, total/2, total, 32, 3*time.Minute)
	eventually(t, "second half delivered while the API server is down", 3*time.Minute, func() error {
		if d := consumer.Distinct(); d < total {
			return fmt.Errorf("%d of %d", d, total)
		}
		return nil
	})
	duringOutage := time.Since(down)
	// Hold the outage for its full length (the scenario's duration, not a
	// synchronisation wait).
	if rest := outage - time.Since(down); rest > 0 {
		time.Sleep(rest)
	}
	restart()
	downFor := time.Since(down)
	up := time.Now()
	var status int64
	eventually(t, "status catches up", 3*time.Minute, func() (err error) {
		status, err = delivered(t, w)
		if err == nil && status != int64(total) {
			err = fmt.Errorf("status delivered %d of %d", status, total)
		}
		return err
	})
	if p.Exited() {
		t.Errorf("the receiver exited during the outage; see %s", p.Log)
	}
	distinct := consumer.Distinct()
	report(t, "apiserver-outage", map[string]any{
		"events": total, "delivered": distinct, "duplicates": consumer.Duplicates(), "lost": total - distinct,
		"outage_seconds": int(downFor.Seconds()), "second_half_delivered_during_outage_seconds": int(duringOutage.Seconds()),
		"status_catch_up_seconds": time.Since(up).Seconds(), "status_delivered": status,
	})
	if distinct != total {
		t.Errorf("lost %d", total-distinct)
	}
}

// A full data directory: JetStream refuses writes, and POST /v1/events must
// then answer 5xx (the sender retries), never 2xx for an event not stored.
func TestDiskFull(t *testing.T) {
	setupIntegrations(t, nil)
	port := harness.FreePort(t)
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	dataDir := filepath.Join(t.TempDir(), "data")
	p := start(t, "receiver-diskfull", receiverArgs(port, "--data-dir="+dataDir, "--max-store-bytes=16777216")...)
	waitReady(t, url, p)

	var accepted, refused5xx, other atomic.Int64
	codes := map[int]int{}
	var mu sync.Mutex
	const pad = 16 << 10
	for i := 0; i < 400 && refused5xx.Load() < 50; i++ {
		code, err := postEvent(url, i, pad)
		mu.Lock()
		codes[code]++
		mu.Unlock()
		switch {
		case err != nil:
			other.Add(1)
		case code == http.StatusAccepted:
			accepted.Add(1)
		case code >= 500:
			refused5xx.Add(1)
		default:
			other.Add(1)
		}
	}
	p.Stop()

	// Count what was really stored.
	ns, err := queue.StartEmbedded(queue.EmbeddedOptions{DataDir: dataDir, Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, queue.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	report(t, "disk-full", map[string]any{
		"max_store_bytes": 1 << 20, "event_bytes": pad, "accepted_202": accepted.Load(), "refused_5xx": refused5xx.Load(),
		"other": other.Load(), "stored_events": info.State.Msgs, "codes": fmt.Sprint(codes),
	})
	if refused5xx.Load() == 0 {
		t.Fatalf("no request was refused with 5xx once the store was full (codes %v)", codes)
	}
	if other.Load() != 0 {
		t.Errorf("%d answers were neither 202 nor 5xx (codes %v)", other.Load(), codes)
	}
	if int64(info.State.Msgs) < accepted.Load() {
		t.Errorf("%d events were accepted with 202 but only %d are stored", accepted.Load(), info.State.Msgs)
	}
}

// killAPIServer SIGKILLs the envtest kube-apiserver this suite started (found
// by its --secure-port) and lets envtest notice, so Start can run it again.
func killAPIServer(t *testing.T) {
	t.Helper()
	u, err := neturl.Parse(restCfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	want := "--secure-port=" + u.Port()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	pid := 0
	for _, f := range procs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if filepath.Base(args[0]) == "kube-apiserver" && slices.Contains(args, want) {
			pid, _ = strconv.Atoi(filepath.Base(filepath.Dir(f)))
			break
		}
	}
	if pid == 0 {
		t.Fatalf("no kube-apiserver process with %s", want)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// envtest's Stop returns at once for an exited process.
	eventually(t, "envtest notices the API server is gone", time.Minute, func() error {
		return env.ControlPlane.APIServer.Stop()
	})
}
