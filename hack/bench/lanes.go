package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/delivery"
	"github.com/mira/mira-operator/internal/deliverylog"
	"github.com/mira/mira-operator/internal/dispatch"
	"github.com/mira/mira-operator/internal/endpoints"
	"github.com/mira/mira-operator/internal/endpointstatus"
	"github.com/mira/mira-operator/internal/events"
	"github.com/mira/mira-operator/internal/fanout"
	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/testenv"
)

func init() {
	Register(Suite{Name: "lanes", Title: "Dispatch lanes: 10,000 endpoints configured, 100 active", Run: runLanesSuite})
}

// Settings of the lanes suite.
const (
	lanesActive   = 100
	lanesRate     = 1000 // events/s in all, each to one active endpoint
	lanesDuration = 10 * time.Second
	lanesLaneIdle = 5 * time.Second
	lanesInactive = 10 * time.Second
	lanesNS       = "bench-lanes"
)

// lanesNamespace is endpoint i's namespace: the endpoints are spread over
// lanesActive workspaces, one active endpoint in each.
func lanesNamespace(i int) string { return fmt.Sprintf("%s-%03d", lanesNS, i%lanesActive) }

// lanesScales are the configured endpoint counts compared.
var lanesScales = []int{lanesActive, 10_000}

// lanesResult is one configured-endpoint count under the same load.
type lanesResult struct {
	configured     int
	idleConsumers  int // before any event, after two scans
	maxConsumers   int // during the load
	afterConsumers int // once the lanes retired
	delivered      int
	dups           int
	wall           time.Duration
	cpu            cpuUse
	rssIdle        int64
	rssMax         int64
	goroutines     int
	p99            time.Duration
	// From a CPU profile of the load (profile): the consumer's (sink) and
	// the progress sampler's share of this process's CPU, the rest being
	// the receiver's.
	profile           string
	sinkCPU, benchCPU time.Duration
	profileTotal      time.Duration
}

// runLanesSuite runs the same load (100 active endpoints, 1,000 events/s)
// with 100 and with 10,000 endpoints configured and compares what the idle
// ones cost: CPU, RSS and JetStream consumers.
func runLanesSuite(ctx context.Context) (Section, error) {
	sk, err := startSink()
	if err != nil {
		return Section{}, err
	}
	defer sk.close()
	var results []lanesResult
	for _, n := range lanesScales {
		fmt.Fprintf(os.Stderr, "    lanes: %d endpoints configured\n", n)
		r, err := runLanes(ctx, sk, n)
		if err != nil {
			return Section{}, fmt.Errorf("%d endpoints: %w", n, err)
		}
		fmt.Fprintf(os.Stderr, "    lanes: %d delivered in %s, CPU %.2f cores, RSS max %s MiB, consumers idle/max/after %d/%d/%d\n",
			r.delivered, r.wall.Round(time.Millisecond), cores(r.cpu), mib(r.rssMax), r.idleConsumers, r.maxConsumers, r.afterConsumers)
		results = append(results, r)
	}
	return lanesSection(results), nil
}

// receiverCores is the bench process's CPU less the consumer's and the
// sampler's shares of the profile (without a profile: the whole process).
func (r lanesResult) receiverCores() float64 {
	if r.profileTotal <= 0 {
		return cores(r.cpu)
	}
	return cores(r.cpu) * (1 - float64(r.sinkCPU+r.benchCPU)/float64(r.profileTotal))
}

func cores(u cpuUse) float64 {
	if u.wall <= 0 {
		return 0
	}
	return u.self.Seconds() / u.wall.Seconds()
}

// lanesEnv is a data plane without an API server: embedded JetStream, a
// registry filled directly, fan-out, dispatcher and status writer.
type lanesEnv struct {
	js    jetstream.JetStream
	reg   *endpoints.Registry
	disp  *dispatch.Dispatcher
	fan   *fanout.Fanout
	stats *endpointstatus.Writer
	pub   *events.Stream
	uids  []types.UID // the active endpoints
	nss   []string    // their namespaces
}

func runLanes(ctx context.Context, sk *sink, configured int) (lanesResult, error) {
	res := lanesResult{configured: configured}
	dir, err := os.MkdirTemp("", "bench-lanes-")
	if err != nil {
		return res, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	// Connected in-process, as the receiver connects to its embedded server.
	nc, stopNATS, err := startEmbeddedConn(dir, 0)
	if err != nil {
		return res, err
	}
	defer stopNATS()
	env, err := newLanesEnv(ctx, nc, sk.url, configured)
	if err != nil {
		return res, err
	}
	// What an earlier run left in the heap goes back to the OS first, so the
	// RSS figures are this run's.
	debug.FreeOSMemory()
	self := strconv.Itoa(os.Getpid())

	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{env.disp.Run, env.fan.Run, env.stats.Run} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = run(rctx) }()
	}
	defer func() { cancel(); wg.Wait() }()

	stream, err := env.js.Stream(ctx, queue.DeliveriesStream)
	if err != nil {
		return res, err
	}
	consumers := func() int {
		info, err := stream.Info(ctx)
		if err != nil {
			return -1
		}
		return info.State.Consumers
	}
	// Idle: every endpoint configured, nothing published, a few scans.
	if err := sleep(ctx, 3*time.Second); err != nil {
		return res, err
	}
	res.idleConsumers = consumers()
	res.rssIdle = vmRSS(self, "VmRSS")

	total := int(lanesDuration.Seconds()) * lanesRate
	sk.reset("/lanes/", total)
	var maxCons, maxRSS atomic.Int64
	res.profile = filepath.Join(testenv.RepoRoot(), "bin", fmt.Sprintf("bench-lanes-%d.pprof", configured))
	pf, err := os.Create(res.profile)
	if err != nil {
		return res, err
	}
	defer func() { _ = pf.Close() }()
	if err := pprof.StartCPUProfile(pf); err != nil {
		return res, err
	}
	stopProfile := sync.OnceFunc(pprof.StopCPUProfile)
	defer stopProfile()
	sampleDone := make(chan struct{})
	stopSampling := make(chan struct{})
	go pprof.Do(ctx, pprof.Labels(profilePart, partBench), func(ctx context.Context) {
		defer close(sampleDone)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		fanCons, _ := env.js.Consumer(ctx, queue.EventsStream, queue.FanoutConsumer)
		for i := 0; ; i++ {
			if i%20 == 0 && fanCons != nil {
				// Progress, so a lagging stage shows where it is.
				if fi, err := fanCons.Info(ctx); err == nil {
					si, _ := stream.Info(ctx)
					var queued uint64
					if si != nil {
						queued = si.State.Msgs
					}
					fmt.Fprintf(os.Stderr, "    lanes: events not fanned out %d, deliveries queued %d, delivered %d\n",
						fi.NumPending+uint64(fi.NumAckPending), queued, sk.snapshot().count)
				}
			}
			if c := int64(consumers()); c > maxCons.Load() {
				maxCons.Store(c)
			}
			if r := vmRSS(self, "VmRSS"); r > maxRSS.Load() {
				maxRSS.Store(r)
			}
			select {
			case <-stopSampling:
				return
			case <-t.C:
			}
		}
	})
	cpu0 := sampleCPU()
	t0 := time.Now()
	sent, err := env.publishPaced(ctx, total)
	if err != nil {
		close(stopSampling)
		return res, err
	}
	werr := sk.wait(ctx, time.Minute)
	res.cpu = sampleCPU().since(cpu0)
	res.wall = time.Since(t0)
	stopProfile()
	if total, parts, err := profileParts(res.profile); err == nil {
		res.profileTotal, res.sinkCPU, res.benchCPU = total, parts[partSink], parts[partBench]
	}
	close(stopSampling)
	<-sampleDone
	snap := sk.snapshot()
	res.delivered, res.dups = snap.count, snap.dups
	res.maxConsumers, res.rssMax = int(maxCons.Load()), maxRSS.Load()
	res.goroutines = runtime.NumGoroutine()
	res.p99 = addedP99(sent, snap.seen)
	if werr != nil {
		return res, werr
	}
	// Retired: the lanes end after LaneIdle, the server removes their
	// consumers after ConsumerInactive.
	deadline := time.Now().Add(lanesLaneIdle + lanesInactive + 20*time.Second)
	for res.afterConsumers = consumers(); res.afterConsumers != 0 && time.Now().Before(deadline); res.afterConsumers = consumers() {
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return res, err
		}
	}
	return res, nil
}

// addedP99 is the 99th percentile of consumer receive time − publish time.
func addedP99(sent *sync.Map, seen map[string]time.Time) time.Duration {
	var lat []time.Duration
	sent.Range(func(k, v any) bool {
		if at, ok := seen[k.(string)]; ok {
			lat = append(lat, at.Sub(v.(time.Time)))
		}
		return true
	})
	if len(lat) == 0 {
		return 0
	}
	sortDurations(lat)
	return percentile(lat, 99)
}

func newLanesEnv(ctx context.Context, nc *nats.Conn, sinkURL string, configured int) (*lanesEnv, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if err := queue.Ensure(ctx, js, queue.Config{}); err != nil {
		return nil, err
	}
	logKV, err := js.KeyValue(ctx, queue.DeliveryLogBucket)
	if err != nil {
		return nil, err
	}
	log, err := deliverylog.New(logKV)
	if err != nil {
		return nil, err
	}
	statsKV, err := js.KeyValue(ctx, queue.EndpointStatsBucket)
	if err != nil {
		return nil, err
	}
	var secrets []client.Object
	var eps []*miraapi.WebhookEndpoint
	var uids []types.UID
	var nss []string
	for i := range configured {
		name := fmt.Sprintf("ep-%05d", i)
		// The idle ones subscribe to a type never published; the active
		// one of each workspace to the type published into it.
		evs := []string{miraapi.EventMeetingFailed}
		if i < lanesActive {
			evs = []string{miraapi.EventReportCompleted}
		}
		w := &miraapi.WebhookEndpoint{
			ObjectMeta: metav1.ObjectMeta{Namespace: lanesNamespace(i), Name: name, UID: types.UID("uid-" + name), Generation: 1, ResourceVersion: "1"},
			Spec:       miraapi.WebhookEndpointSpec{URL: sinkURL + "/lanes/" + name, Events: evs},
		}
		w.Status.TargetURL = w.Spec.URL
		w.Status.Conditions = []metav1.Condition{{Type: miraapi.ReadyCondition, Status: metav1.ConditionTrue, ObservedGeneration: 1}}
		eps = append(eps, w)
		if i < lanesActive {
			uids, nss = append(uids, w.UID), append(nss, w.Namespace)
			secrets = append(secrets, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: w.Namespace, Name: w.SigningSecretName(), ResourceVersion: "1"},
				Data:       map[string][]byte{w.SigningSecretKey(): []byte("whsec_" + strings.Repeat("k", 32))},
			})
		}
	}
	reader := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(secrets...).Build()
	reg, err := endpoints.NewRegistry(endpoints.RegistryOptions{Reader: reader, Guard: &delivery.Guard{AllowLoopback: true}})
	if err != nil {
		return nil, err
	}
	for _, w := range eps {
		reg.Observe(w)
	}
	stats := endpointstatus.NewWriter(reader, statsKV, nil, reg, 2*time.Second, logr.Discard())
	stats.SetElected(make(chan struct{})) // never elected: stats merge into the bucket, no status writes
	cons, err := js.Consumer(ctx, queue.EventsStream, queue.FanoutConsumer)
	if err != nil {
		return nil, err
	}
	disp := &dispatch.Dispatcher{JS: js, Log: log, Registry: reg, Status: stats, Logger: logr.Discard(), MaxPending: 10000,
		ShutdownGrace: time.Second, LaneIdle: lanesLaneIdle, ConsumerInactive: lanesInactive}
	fan := &fanout.Fanout{JS: js, Consumer: cons, Registry: reg, Log: log, Logger: logr.Discard(), Workers: 32, Queued: disp.Wake}
	return &lanesEnv{js: js, reg: reg, disp: disp, fan: fan, stats: stats, pub: &events.Stream{JS: js}, uids: uids, nss: nss}, nil
}

// publishPaced publishes total events at lanesRate, event i into workspace
// i mod 100 (whose one active endpoint subscribes to its type), from 32
// publishers; it returns each delivery id's
// publish time.
func (e *lanesEnv) publishPaced(ctx context.Context, total int) (*sync.Map, error) {
	sent := &sync.Map{}
	work := make(chan int, 1024)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				now := time.Now()
				uid := string(e.uids[i%len(e.uids)])
				ev := events.Event{ID: events.NewEventID(now), Type: miraapi.EventReportCompleted, Namespace: e.nss[i%len(e.nss)],
					Data: benchData(i), Time: now.UTC()}
				sent.Store(fanout.DeliveryID(ev.ID, uid), now)
				if err := e.pub.Publish(ctx, ev); err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	start := time.Now()
	interval := time.Second / lanesRate
	for i := range total {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return sent, err
	}
	return sent, ctx.Err()
}

func lanesSection(rs []lanesResult) Section {
	var b strings.Builder
	fmt.Fprintf(&b, "The same load with %d and with %d WebhookEndpoints configured: %d of them active, %d events/s in all for %s (each event to one active "+
		"endpoint, round robin: %d deliveries/s per active endpoint), the rest subscribed to an event type never published. The endpoints are spread over %d workspaces "+
		"(namespaces), one active endpoint in each with the idle ones beside it (%d per workspace in the larger row). GOMAXPROCS %d on %d CPUs.\n\n",
		rs[0].configured, rs[len(rs)-1].configured, lanesActive, lanesRate, lanesDuration, lanesRate/lanesActive, lanesActive, rs[len(rs)-1].configured/lanesActive, runtime.GOMAXPROCS(0), runtime.NumCPU())
	b.WriteString("Settings:\n\n" +
		"- No API server: 10,000 CRDs through envtest took longer than the suite can afford, so the endpoints (Ready, `maxConcurrency` default) go straight into an " +
		"`endpoints.Registry`, as its informer would put them; the active ones' signing Secrets are in a fake client.\n" +
		"- In this process: an embedded JetStream (file store in a temp dir), `events.Stream` publishing (what `POST /v1/events` does after authentication), " +
		"the fan-out (32 workers, `Queued` → `Dispatcher.Wake`), the dispatcher (`MaxPending` 10000), the status writer (stats merged into the bucket every 2 s; " +
		"never elected, so no status writes: those go to the API server) and the consumer (loopback `net/http`, 204).\n" +
		fmt.Sprintf("- Events go by type into their workspace (no `only`): the fan-out reads the registry's per-namespace, per-type index (`Registry.Subscribed`), "+
			"so the idle endpoints, of other workspaces or subscribed to other types, are not looked at per event. "+
			"Lanes retire after %s idle (`LaneIdle`; default 30 s) and the server removes their consumers %s after the last pull (`ConsumerInactive`; default 2 min), "+
			"shortened so the run shows them go.\n", lanesLaneIdle, lanesInactive) +
		"- CPU and RSS are the whole bench process (receiver parts, load generator and consumer). CPU is from the first publish to the last delivery. " +
		"A CPU profile of that window (`bin/bench-lanes-N.pprof`) splits it: the consumer's goroutines carry the profiler label `part=sink` " +
		"(its listener is served under it and every connection inherits it), the progress sampler `part=bench`; the rest is the receiver's, the publishing " +
		"included (in production the receiver's HTTP handler publishes). **Receiver CPU** = bench process CPU × the unlabelled share of the samples. " +
		"Profiling itself costs a few percent, charged to the receiver.\n\n")
	rows := [][]string{}
	for _, r := range rs {
		rows = append(rows, []string{strconv.Itoa(r.configured), fmt.Sprintf("%d / %d", r.delivered, int(lanesDuration.Seconds())*lanesRate), strconv.Itoa(r.dups),
			secs(r.wall), fmt.Sprintf("%.2f", cores(r.cpu)), pct(r.sinkCPU, r.profileTotal), fmt.Sprintf("**%.2f**", r.receiverCores()), mib(r.rssIdle), fmt.Sprintf("**%s**", mib(r.rssMax)), msf(r.p99),
			strconv.Itoa(r.idleConsumers), fmt.Sprintf("**%d**", r.maxConsumers), strconv.Itoa(r.afterConsumers), strconv.Itoa(r.goroutines)})
	}
	b.WriteString(Table([]string{"endpoints configured", "delivered", "duplicates", "first publish → last delivery (s)", "bench process CPU (cores)", "consumer share of the samples", "receiver CPU (cores)",
		"RSS idle (MiB)", "RSS max under load (MiB)", "added latency p99 (ms)", "consumers before any event", "consumers max under load", "consumers once retired", "goroutines"}, rows))
	big := rs[len(rs)-1]
	b.WriteString("\nInterpretation:\n\n" +
		"- An endpoint has a JetStream consumer only while its subject in the work-queue stream `MIRA_OUTBOX` holds messages, so the consumer count follows the " +
		"active endpoints (at most one per active endpoint) whether 100 or 10,000 are configured, and drops to zero once they are idle. On a NATS cluster each is " +
		"an R3 Raft group; before, every configured endpoint had one and re-issued a pull request every 5 s.\n" +
		"- What the idle endpoints still cost is the registry (memory per endpoint) and the dispatcher's periodic scans (`forgetDeleted` every 1 s scan, the backlog-age metric); " +
		"the fan-out no longer walks them per event (it did before the per-namespace index: 14% of the CPU samples). Both rows' difference shows what is left.\n" +
		"- Lane consumers keep their state in memory (`dispatch.LaneConsumerConfig`, `MemoryStorage`). With file-backed state nats-server rewrote each busy " +
		"consumer's state file (open, write, rename) up to 10 times a second: with 100 active lanes that was 30% of this process's CPU samples " +
		"(`consumerFileStore.flushLoop`), receiver CPU 1.47 cores and an added p99 of 399 ms, against 0.78 cores and 8 ms once in memory (same run otherwise, 2026-12-01). " +
		"In a work-queue stream an acked message is gone from the stream, so the state only ever remembered which messages were in flight.\n" +
		"- The machine was shared with other engineers' builds; see the load average in the header.\n")
	if top, cum := profileSummary(big.profile); top != "" {
		fmt.Fprintf(&b, "\nCPU profile of the %d-endpoint run (`%s`):\n\n```\n%s\n```\n", big.configured, filepath.Join("bin", filepath.Base(big.profile)), top)
		if len(cum) > 0 {
			fmt.Fprintf(&b, "\nCumulative share of selected functions (`-top -cum`):\n\n```\n%s\n```\n", strings.Join(cum, "\n"))
		}
	}
	goals := []Goal{
		{Text: "JetStream consumer count independent of the number of idle endpoints",
			Measured: fmt.Sprintf("max %d consumers under load with %d configured, %d with %d configured; %d before any event",
				big.maxConsumers, big.configured, rs[0].maxConsumers, rs[0].configured, big.idleConsumers),
			Pass: big.maxConsumers <= lanesActive && big.idleConsumers == 0},
		{Text: "receiver CPU ≤ 1 core with 10,000 configured, 100 active at 1,000 events/s",
			Measured: fmt.Sprintf("%.2f cores (bench process %.2f, of which the consumer %s of the samples)", big.receiverCores(), cores(big.cpu), pct(big.sinkCPU, big.profileTotal)),
			Pass:     big.profileTotal > 0 && big.receiverCores() <= 1},
		{Text: "RSS ≤ 250 MiB with 10,000 configured, 100 active at 1,000 events/s",
			Measured: mib(big.rssMax) + " MiB (whole bench process)", Pass: big.rssMax <= 250<<20},
	}
	return Section{Body: b.String(), Goals: goals}
}
