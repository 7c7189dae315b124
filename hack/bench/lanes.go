package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/deliverylog"
	"github.com/mira/mira-operator/internal/dispatch"
	"github.com/mira/mira-operator/internal/endpoints"
	"github.com/mira/mira-operator/internal/queue"
)

func init() {
	Register(Suite{Name: "lanes", Title: "Dispatch lanes: what idle endpoints cost", Run: runLanesSuite})
}

// Settings of the lanes suite.
const (
	lanesEndpoints = 1000             // 10,000 did not settle within 15 min on the shared 2-core machine
	lanesSettle    = 90 * time.Second // bound on waiting for the lanes to start
	lanesIdle      = 10 * time.Second
)

// runLanesSuite measures the dispatcher with many configured endpoints and
// no deliveries at all: JetStream consumers created, time to create them,
// and the CPU and RSS the idle lanes cost afterwards. It needs no API server:
// the endpoints go straight into the registry, as its informer would put them.
func runLanesSuite(ctx context.Context) (Section, error) {
	dir, err := os.MkdirTemp("", "bench-lanes-")
	if err != nil {
		return Section{}, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	ns, err := queue.StartEmbedded(queue.EmbeddedOptions{DataDir: dir, Port: -1})
	if err != nil {
		return Section{}, err
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		ns.Shutdown()
		return Section{}, err
	}
	// Closed at the end unless the dispatcher could not be stopped.
	stop := func() { nc.Close(); ns.Shutdown() }
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	js, err := jetstream.New(nc)
	if err != nil {
		return Section{}, err
	}
	if err := queue.Ensure(ctx, js, queue.Config{}); err != nil {
		return Section{}, err
	}
	kv, err := js.KeyValue(ctx, queue.DeliveryLogBucket)
	if err != nil {
		return Section{}, err
	}
	log, err := deliverylog.New(kv)
	if err != nil {
		return Section{}, err
	}
	reg, err := endpoints.NewRegistry(endpoints.RegistryOptions{Reader: fake.NewClientBuilder().WithScheme(k8sruntime.NewScheme()).Build()})
	if err != nil {
		return Section{}, err
	}
	self := strconv.Itoa(os.Getpid())
	runtime.GC()
	rss0 := vmRSS(self, "VmRSS")
	for i := range lanesEndpoints {
		name := fmt.Sprintf("idle-%05d", i)
		w := &miraapi.WebhookEndpoint{
			ObjectMeta: metav1.ObjectMeta{Namespace: "bench-lanes", Name: name, UID: types.UID("uid-" + name), Generation: 1, ResourceVersion: "1"},
			Spec:       miraapi.WebhookEndpointSpec{URL: "http://127.0.0.1:9/" + name, Events: []string{miraapi.EventReportCompleted}},
		}
		w.Status.TargetURL = w.Spec.URL
		w.Status.Conditions = []metav1.Condition{{Type: miraapi.ReadyCondition, Status: metav1.ConditionTrue, ObservedGeneration: 1}}
		reg.Observe(w)
	}
	d := &dispatch.Dispatcher{JS: js, Log: log, Registry: reg, Logger: logr.Discard(), MaxPending: 10000, ShutdownGrace: time.Second}
	dctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	cpu0 := sampleCPU()
	t0 := time.Now()
	go func() { defer close(done); _ = d.Run(dctx) }()
	defer func() {
		cancel()
		// Bounded: with 1,000 lanes Run did not return within a minute once
		// (every fetch loop waiting for the connection's lock); the figures
		// are taken before.
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			stop = nil
			// Left running; the process ends after the report.
			fmt.Fprintln(os.Stderr, "    lanes: the dispatcher did not stop within 10s")
		}
	}()

	stream, err := js.Stream(ctx, queue.DeliveriesStream)
	if err != nil {
		return Section{}, err
	}
	consumers := func() int {
		info, err := stream.Info(ctx)
		if err != nil {
			return -1
		}
		return info.State.Consumers
	}
	fmt.Fprintf(os.Stderr, "    lanes: %d idle endpoints\n", lanesEndpoints)
	// Progress, so a slow start shows where it is.
	last := time.Now()
	var n int
	for n = consumers(); n < lanesEndpoints && time.Since(t0) < lanesSettle; n = consumers() {
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return Section{}, err
		}
		if time.Since(last) > 10*time.Second {
			fmt.Fprintf(os.Stderr, "    lanes: %d consumers after %s\n", n, time.Since(t0).Round(time.Second))
			last = time.Now()
		}
	}
	started := time.Since(t0)
	startCPU := sampleCPU().since(cpu0)
	fmt.Fprintf(os.Stderr, "    lanes: %d consumers after %s\n", n, started.Round(time.Millisecond))
	cpu1 := sampleCPU()
	if err := sleep(ctx, lanesIdle); err != nil {
		return Section{}, err
	}
	idle := sampleCPU().since(cpu1)
	rss := vmRSS(self, "VmRSS")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(os.Stderr, "    lanes: idle CPU %.2f cores, RSS %s MiB, goroutines %d\n",
		idle.self.Seconds()/idle.wall.Seconds(), mib(rss), runtime.NumGoroutine())

	var b strings.Builder
	fmt.Fprintf(&b, "%d WebhookEndpoints, Ready, subscribed to `report.completed`, put straight into an `endpoints.Registry` (no API server); "+
		"one `dispatch.Dispatcher` (`MaxPending` 10000, the flag default) on an embedded JetStream (file store in a temp dir) in this process; "+
		"no event is published, so every endpoint is idle. GOMAXPROCS %d on %d CPUs.\n\n", lanesEndpoints, runtime.GOMAXPROCS(0), runtime.NumCPU())
	b.WriteString(Table([]string{"endpoints (all idle)", "JetStream consumers on the deliveries stream", "time to create them (s)", "CPU while creating (bench process, CPU-s)",
		fmt.Sprintf("CPU over the next %s idle (cores)", lanesIdle), "RSS before → after (MiB)", "goroutines"}, [][]string{{
		strconv.Itoa(lanesEndpoints), fmt.Sprintf("**%d**", n), secs(started), fmt.Sprintf("%.1f", startCPU.self.Seconds()),
		fmt.Sprintf("**%.2f**", idle.self.Seconds()/idle.wall.Seconds()), mib(rss0) + " → " + mib(rss), strconv.Itoa(runtime.NumGoroutine())}}))
	fmt.Fprintf(&b, "\nInterpretation:\n\n"+
		"- The dispatcher starts a lane for every endpoint in the registry: a durable pull consumer `dispatch-<uid>` and a fetch loop that keeps a pull request "+
		"(5 s expiry) open. The consumer count therefore equals the number of endpoints, busy or not; on a NATS cluster with `--replicas 3` each is an R3 "+
		"Raft group, and each idle lane re-issues a pull request every 5 s (%d endpoints: about %d pull requests/s of idle traffic).\n"+
		"- The machine was shared with other engineers' builds during the run; the CPU figures are this process only.\n",
		lanesEndpoints, lanesEndpoints/5)
	goals := []Goal{{Text: "JetStream consumer count independent of the number of idle endpoints",
		Measured: fmt.Sprintf("%d consumers for %d idle endpoints", n, lanesEndpoints), Pass: n < lanesEndpoints/10}}
	return Section{Body: b.String(), Goals: goals}, nil
}
