package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/fanout"
	"github.com/mira/mira-operator/internal/testenv"
)

func init() {
	Register(Suite{Name: "delivery", Title: "Delivery: throughput, latency, status writes, memory, isolation", Run: runDeliverySuite})
}

// Settings of the delivery suite; the section reports them.
const (
	dlvEndpoints    = 4  // throughput endpoints, one event type each
	dlvEndpointConc = 64 // their spec.delivery.maxConcurrency (the CRD's maximum)
	dlvBaselineConc = dlvEndpoints * dlvEndpointConc
	dlvBaselineN    = 30000 // baseline requests (after a warm-up)
	dlvEvents       = 20000 // throughput events = deliveries
	dlvPublishers   = 64    // goroutines calling Publisher.Publish
	dlvRate         = 1000  // paced events (and baseline requests) per second
	dlvPaceDur      = 10 * time.Second
	dlvRSSEvents    = 100000
	dlvRSSSample    = 5 * time.Second
	dlvRSSSettle    = 300 * time.Second // see rssChildConfig.Settle
	// dlvRSSMemLimit is the soft memory limit of the second RSS run.
	dlvRSSMemLimit = "140MiB"
	dlvIsoHealthy  = 9
	dlvIsoConc     = 16
	dlvIsoEvents   = 2000 // per run; each goes to the 9 healthy endpoints
	dlvHangTimeout = 2 * time.Second
	dlvIsoRounds   = 2 // alternating without/with runs
	dlvWait        = 3 * time.Minute

	dlvThroughputGoal = 0.5
	dlvLatencyGoal    = 10 * time.Millisecond
	dlvRSSGoal        = 150 << 20
	dlvIsolationGoal  = 0.9
)

type throughput struct {
	n        int
	dur      time.Duration // first request/publish → last delivery at the consumer
	publish  time.Duration // all publishes returned
	conns    int64         // TCP connections the consumer accepted
	cpu      cpuUse
	dups     int
	fetches  uint64        // dispatch consumer hand-outs (receiver only)
	patches  [][]time.Time // status writes per endpoint in the window, as observed (10 ms polling)
	window   time.Duration
	perEndpt []float64 // deliveries/s per endpoint
	connsBy  []int64   // TCP connections opened per endpoint (own listener each)
}

func (t throughput) rate() float64 { return float64(t.n) / t.dur.Seconds() }

type latencyRun struct {
	sorted   []time.Duration
	missing  int
	errs     int
	pubP50   time.Duration // publish call duration (receiver) or round trip (baseline)
	pubP99   time.Duration
	patches  []time.Time
	window   time.Duration
	achieved float64 // requests or events per second actually sent
}

func runDeliverySuite(ctx context.Context) (Section, error) {
	d, err := startDeliveryEnv(ctx)
	if err != nil {
		return Section{}, err
	}
	defer d.close()
	body := deliveryBody()
	interval := d.recv.Options.StatusInterval
	var res deliveryResults
	res.bodyBytes = len(body)
	res.interval = interval
	res.fanoutWorkers = d.recv.Options.FanoutWorkers
	res.maxPending = d.recv.Options.MaxAckPending

	// 1. Baseline throughput.
	fmt.Fprintf(os.Stderr, "    delivery: baseline, %d POSTs from %d goroutines\n", dlvBaselineN, dlvBaselineConc)
	res.base, err = baselineThroughput(ctx, d, body)
	if err != nil {
		return Section{}, fmt.Errorf("baseline: %w", err)
	}
	fmt.Fprintf(os.Stderr, "    baseline: %.0f requests/s, %d connections\n", res.base.rate(), res.base.conns)

	// 2. End to end through the receiver.
	if err := d.namespace(ctx, "bench-throughput"); err != nil {
		return Section{}, err
	}
	var tputSpecs []endpointSpec
	for k := range dlvEndpoints {
		// Each endpoint gets a port of its own, so that its connections
		// are counted on their own.
		base, err := d.sink.listen()
		if err != nil {
			return Section{}, err
		}
		tputSpecs = append(tputSpecs, endpointSpec{ns: "bench-throughput", name: fmt.Sprintf("tput-%d", k), path: fmt.Sprintf("/tput/%d", k),
			base: base, events: []string{miraapi.EventTypes[k%len(miraapi.EventTypes)]}, concurrency: dlvEndpointConc})
		res.tputBases = append(res.tputBases, base)
	}
	uids, err := d.createEndpoints(ctx, tputSpecs)
	if err != nil {
		return Section{}, err
	}
	// A short warm-up: the first delivery of each endpoint reads its stats
	// and opens connections.
	if _, err := receiverThroughput(ctx, d, uids, 400, "", interval, false); err != nil {
		return Section{}, fmt.Errorf("warm-up: %w", err)
	}
	fmt.Fprintf(os.Stderr, "    delivery: receiver, %d events to %d endpoints\n", dlvEvents, dlvEndpoints)
	res.profile = filepath.Join(testenv.RepoRoot(), "bin", "bench-delivery.pprof")
	res.recv, err = receiverThroughput(ctx, d, uids, dlvEvents, res.profile, interval, true)
	if err != nil {
		return Section{}, fmt.Errorf("receiver throughput: %w", err)
	}
	for _, b := range res.tputBases {
		res.recv.connsBy = append(res.recv.connsBy, d.sink.connsAt(b))
	}
	fmt.Fprintf(os.Stderr, "    receiver: %.0f deliveries/s (%.2f× baseline), %d connections (per endpoint, warm-up included: %v), %d fetches\n",
		res.recv.rate(), res.recv.rate()/res.base.rate(), res.recv.conns, res.recv.connsBy, res.recv.fetches)

	// 3. Latency at a paced rate, baseline then receiver.
	fmt.Fprintf(os.Stderr, "    delivery: latency at %d/s for %s\n", dlvRate, dlvPaceDur)
	res.baseLat, err = baselineLatency(ctx, d, body)
	if err != nil {
		return Section{}, fmt.Errorf("baseline latency: %w", err)
	}
	res.recvLat, err = receiverLatency(ctx, d, uids[0], interval)
	if err != nil {
		return Section{}, fmt.Errorf("receiver latency: %w", err)
	}
	fmt.Fprintf(os.Stderr, "    latency p99: baseline %s ms, receiver %s ms\n", msf(percentile(res.baseLat.sorted, 99)), msf(percentile(res.recvLat.sorted, 99)))
	if err := d.deleteEndpoints(ctx, tputSpecs); err != nil {
		return Section{}, err
	}

	// The durability floor: the same JetStream steps without Mira's code.
	// After the latency runs, so that its streams' deletion (file removal
	// in nats-server) cannot land in them.
	fmt.Fprintf(os.Stderr, "    delivery: durability floor, %d events to %d endpoints\n", dlvEvents, dlvEndpoints)
	res.floorProfile = filepath.Join(testenv.RepoRoot(), "bin", "bench-delivery-floor.pprof")
	res.floor, err = floorThroughput(ctx, d, dlvEvents, dlvEndpoints, dlvEndpointConc, dlvPublishers, res.floorProfile)
	if err != nil {
		return Section{}, fmt.Errorf("durability floor: %w", err)
	}
	fmt.Fprintf(os.Stderr, "    floor: %.0f deliveries/s (%.2f× baseline; receiver = %.2f× floor)\n",
		res.floor.rate(), res.floor.rate()/res.base.rate(), res.recv.rate()/res.floor.rate())

	// 4. A separate-process publisher over HTTP.
	fmt.Fprintf(os.Stderr, "    delivery: separate-process publisher, %d events over HTTP from %d connections\n", httpEvents, httpConns)
	res.http, err = separateProcess(ctx, d, body)
	if err != nil {
		return Section{}, fmt.Errorf("separate-process publisher: %w", err)
	}
	fmt.Fprintf(os.Stderr, "    http: baseline %.0f/s, receiver %.0f/s (%.2f×), publish p99 %s ms; floor %.0f/s (%.2f×)\n",
		res.http.base.rate(), res.http.recv.rate(), res.http.recv.rate()/res.http.base.rate(), msf(res.http.recv.gen.P99),
		res.http.floor.rate(), res.http.floor.rate()/res.http.base.rate())

	// 6. Isolation.
	fmt.Fprintf(os.Stderr, "    delivery: isolation, %d healthy endpoints with and without a hanging one\n", dlvIsoHealthy)
	res.isoWithout, res.isoWith, res.hangAttempts, err = isolation(ctx, d)
	if err != nil {
		return Section{}, fmt.Errorf("isolation: %w", err)
	}
	fmt.Fprintf(os.Stderr, "    isolation: %.0f/s without, %.0f/s with the hanging endpoint\n", combined(res.isoWithout).rate(), combined(res.isoWith).rate())

	// 5. Memory with 100,000 deliveries queued, in a child process.
	fmt.Fprintf(os.Stderr, "    delivery: RSS with %d deliveries queued (child process)\n", dlvRSSEvents)
	rssSpec := []endpointSpec{{ns: "bench-rss", name: "blocked", path: "/hang/rss", events: []string{miraapi.EventReportCompleted},
		concurrency: 1, timeout: 60 * time.Second}}
	if err := d.namespace(ctx, "bench-rss"); err != nil {
		return Section{}, err
	}
	if _, err := d.createEndpoints(ctx, rssSpec); err != nil {
		return Section{}, err
	}
	hangsBefore := d.sink.hangs.Load()
	res.rss, err = runRSSChild(ctx, d.cfg, rssChildConfig{Namespace: "bench-rss", Endpoint: "blocked", Events: dlvRSSEvents,
		Publish: dlvPublishers, DataDir: filepath.Join(d.dataDir, "rss"), Sample: dlvRSSSample, Settle: dlvRSSSettle,
		HeapProf: filepath.Join(testenv.RepoRoot(), "bin", "bench-delivery-rss.heap.pprof")})
	if err != nil {
		return Section{}, err
	}
	res.rssHangs = d.sink.hangs.Load() - hangsBefore
	fmt.Fprintf(os.Stderr, "    rss: idle %s MiB, queued %s MiB (max %s, HWM %s; anon %s, file %s); settled %s MiB (anon %s, file %s, %d GCs)\n",
		mib(res.rss.IdleRSS), mib(res.rss.QueuedRSS), mib(res.rss.MaxRSS), mib(res.rss.HWM), mib(res.rss.QueuedAnon), mib(res.rss.QueuedFile),
		mib(res.rss.SettledRSS), mib(res.rss.SettledAnon), mib(res.rss.SettledFile), res.rss.SettledGCs)
	// The same with a soft memory limit, as a Deployment sets GOMEMLIMIT from
	// its container limit: the Go heap is then collected before it doubles.
	res.rssLimited, err = runRSSChild(ctx, d.cfg, rssChildConfig{Namespace: "bench-rss", Endpoint: "blocked", Events: dlvRSSEvents,
		Publish: dlvPublishers, DataDir: filepath.Join(d.dataDir, "rss-limited"), Sample: dlvRSSSample, MemLimit: dlvRSSMemLimit})
	if err != nil {
		return Section{}, err
	}
	fmt.Fprintf(os.Stderr, "    rss with GOMEMLIMIT=%s: queued %s MiB (max %s)\n", dlvRSSMemLimit, mib(res.rssLimited.QueuedRSS), mib(res.rssLimited.MaxRSS))
	_ = d.deleteEndpoints(ctx, rssSpec)
	// The floor: the embedded JetStream server alone holding the same backlog.
	res.rssFloor, err = runRSSFloorChild(ctx, rssChildConfig{Namespace: "bench-rss", Endpoint: "blocked", Events: dlvRSSEvents,
		Publish: dlvPublishers, DataDir: filepath.Join(d.dataDir, "rss-floor"), Sample: dlvRSSSample})
	if err != nil {
		return Section{}, err
	}
	fmt.Fprintf(os.Stderr, "    rss floor (embedded JetStream alone): idle %s MiB, queued %s MiB (anon %s, file %s)\n",
		mib(res.rssFloor.IdleRSS), mib(res.rssFloor.QueuedRSS), mib(res.rssFloor.QueuedAnon), mib(res.rssFloor.QueuedFile))

	res.top, res.cum = profileSummary(res.profile)
	res.heapTop = heapSummary(filepath.Join(testenv.RepoRoot(), "bin", "bench-delivery-rss.heap.pprof"))
	res.version = codeVersion()
	return deliverySection(res), nil
}

func baselineThroughput(ctx context.Context, d *deliveryEnv, body []byte) (throughput, error) {
	c := rawClient(dlvBaselineConc)
	defer c.CloseIdleConnections()
	// Warm-up: open the connections.
	d.sink.reset("/base-warm", 2000)
	if err := forEach(ctx, 2000, dlvBaselineConc, func(i int) error {
		return rawPost(c, d.sink.url+"/base-warm", body, "w"+strconv.Itoa(i))
	}); err != nil {
		return throughput{}, err
	}
	d.sink.reset("/base", dlvBaselineN)
	conns := d.sink.conns.Load()
	cpu0 := sampleCPU()
	t0 := time.Now()
	if err := forEach(ctx, dlvBaselineN, dlvBaselineConc, func(i int) error {
		return rawPost(c, d.sink.url+"/base", body, "b"+strconv.Itoa(i))
	}); err != nil {
		return throughput{}, err
	}
	if err := d.sink.wait(ctx, time.Minute); err != nil {
		return throughput{}, err
	}
	snap := d.sink.snapshot()
	return throughput{n: dlvBaselineN, dur: snap.last.Sub(t0), publish: time.Since(t0), conns: d.sink.conns.Load() - conns,
		cpu: sampleCPU().since(cpu0), dups: snap.dups}, nil
}

// receiverThroughput publishes n events round robin over the endpoints'
// event types and waits until the consumer has every delivery.
func receiverThroughput(ctx context.Context, d *deliveryEnv, uids []types.UID, n int, profile string, interval time.Duration, settle bool) (throughput, error) {
	evTypes := make([]string, len(uids))
	for k := range uids {
		evTypes[k] = miraapi.EventTypes[k%len(miraapi.EventTypes)]
	}
	events := benchEvents("bench-throughput", n, evTypes...)
	d.sink.reset("/tput/", n)
	conns := d.sink.conns.Load()
	fetches := d.dispatchFetches(ctx)
	var pw *patchWatch
	if settle {
		pw = watchPatches(d.recv, uids)
	}
	stopProfile, err := startCPUProfile(profile)
	if err != nil {
		return throughput{}, err
	}
	defer stopProfile()
	cpu0 := sampleCPU()
	t0 := time.Now()
	err = forEach(ctx, n, dlvPublishers, func(i int) error { return d.recv.Publisher.Publish(ctx, events[i]) })
	pub := time.Since(t0)
	if err == nil {
		err = d.sink.wait(ctx, dlvWait)
	}
	cpu := sampleCPU().since(cpu0)
	stopProfile()
	if err != nil {
		if pw != nil {
			pw.finish()
		}
		return throughput{}, err
	}
	snap := d.sink.snapshot()
	t := throughput{n: n, dur: snap.last.Sub(t0), publish: pub, conns: d.sink.conns.Load() - conns, cpu: cpu, dups: snap.dups,
		fetches: d.dispatchFetches(ctx) - fetches}
	for k := range uids {
		p := fmt.Sprintf("/tput/%d", k)
		t.perEndpt = append(t.perEndpt, float64(snap.byPath[p])/snap.lastBy[p].Sub(t0).Seconds())
	}
	if settle {
		// Let the status writer flush what the last deliveries changed.
		if err := sleep(ctx, interval+interval/2); err != nil {
			return throughput{}, err
		}
		t.patches, t.window = pw.finish(), time.Since(t0)
	}
	return t, nil
}

func baselineLatency(ctx context.Context, d *deliveryEnv, body []byte) (latencyRun, error) {
	c := rawClient(64)
	defer c.CloseIdleConnections()
	total := int(dlvRate * dlvPaceDur.Seconds())
	sent := make([]time.Time, total)
	rtt := make([]time.Duration, total)
	ids := make([]string, total)
	for i := range ids {
		ids[i] = "lat" + strconv.Itoa(i)
	}
	d.sink.reset("/base-lat", total)
	var errs atomic.Int64
	t0 := time.Now()
	paced(ctx, dlvRate, dlvPaceDur, 64, func(i int) {
		sent[i] = time.Now()
		if err := rawPost(c, d.sink.url+"/base-lat", body, ids[i]); err != nil {
			errs.Add(1)
		}
		rtt[i] = time.Since(sent[i])
	})
	achieved := float64(total) / time.Since(t0).Seconds()
	if err := d.sink.wait(ctx, time.Minute); err != nil {
		return latencyRun{}, err
	}
	snap := d.sink.snapshot()
	l := latencyRun{errs: int(errs.Load()), achieved: achieved}
	l.sorted, l.missing = latencies(sent, ids, snap.seen)
	sortDurations(rtt)
	l.pubP50, l.pubP99 = percentile(rtt, 50), percentile(rtt, 99)
	return l, nil
}

func receiverLatency(ctx context.Context, d *deliveryEnv, uid types.UID, interval time.Duration) (latencyRun, error) {
	total := int(dlvRate * dlvPaceDur.Seconds())
	events := benchEvents("bench-throughput", total, miraapi.EventReportCompleted) // only endpoint tput-0 subscribes
	ids := make([]string, total)
	for i, ev := range events {
		ids[i] = fanout.DeliveryID(ev.ID, string(uid))
	}
	pubAt := make([]time.Time, total)
	pubDur := make([]time.Duration, total)
	d.sink.reset("/tput/0", total)
	pw := watchPatches(d.recv, []types.UID{uid})
	var errs atomic.Int64
	t0 := time.Now()
	paced(ctx, dlvRate, dlvPaceDur, 64, func(i int) {
		pubAt[i] = time.Now()
		if err := d.recv.Publisher.Publish(ctx, events[i]); err != nil {
			errs.Add(1)
		}
		pubDur[i] = time.Since(pubAt[i])
	})
	achieved := float64(total) / time.Since(t0).Seconds()
	err := d.sink.wait(ctx, time.Minute)
	if err == nil {
		err = sleep(ctx, interval+interval/2)
	}
	patches := pw.finish()
	if err != nil {
		return latencyRun{}, err
	}
	snap := d.sink.snapshot()
	l := latencyRun{errs: int(errs.Load()), achieved: achieved, patches: patches[0], window: time.Since(t0)}
	l.sorted, l.missing = latencies(pubAt, ids, snap.seen)
	sortDurations(pubDur)
	l.pubP50, l.pubP99 = percentile(pubDur, 50), percentile(pubDur, 99)
	return l, nil
}

// isolation measures the healthy endpoints' deliveries/s without, then
// with, a hanging endpoint subscribed to the same events.
func isolation(ctx context.Context, d *deliveryEnv) (without, with []throughput, hangs int64, err error) {
	const ns = "bench-isolation"
	if err := d.namespace(ctx, ns); err != nil {
		return without, with, 0, err
	}
	var specs []endpointSpec
	for k := range dlvIsoHealthy {
		specs = append(specs, endpointSpec{ns: ns, name: fmt.Sprintf("ok-%d", k), path: fmt.Sprintf("/iso/ok/%d", k),
			events: []string{miraapi.EventReportCompleted, miraapi.EventMeetingFailed}, concurrency: dlvIsoConc, timeout: dlvHangTimeout})
	}
	specs = append(specs, endpointSpec{ns: ns, name: "hang", path: "/hang/iso",
		events: []string{miraapi.EventMeetingFailed}, concurrency: dlvIsoConc, timeout: dlvHangTimeout})
	if _, err := d.createEndpoints(ctx, specs); err != nil {
		return without, with, 0, err
	}
	defer func() {
		if derr := d.deleteEndpoints(ctx, specs); err == nil {
			err = derr
		}
	}()
	run := func(eventType string) (throughput, error) {
		n := dlvIsoEvents * dlvIsoHealthy
		events := benchEvents(ns, dlvIsoEvents, eventType)
		d.sink.reset("/iso/ok/", n)
		t0 := time.Now()
		if err := forEach(ctx, len(events), dlvPublishers, func(i int) error { return d.recv.Publisher.Publish(ctx, events[i]) }); err != nil {
			return throughput{}, err
		}
		if err := d.sink.wait(ctx, dlvWait); err != nil {
			return throughput{}, err
		}
		snap := d.sink.snapshot()
		t := throughput{n: n, dur: snap.last.Sub(t0), dups: snap.dups}
		for k := range dlvIsoHealthy {
			p := fmt.Sprintf("/iso/ok/%d", k)
			t.perEndpt = append(t.perEndpt, float64(snap.byPath[p])/snap.lastBy[p].Sub(t0).Seconds())
		}
		return t, nil
	}
	// Warm-up (connections, stats reads), then alternate runs, so that a
	// drift of the machine's load does not favour one side.
	if _, err := run(miraapi.EventReportCompleted); err != nil {
		return without, with, 0, err
	}
	h0 := d.sink.hangs.Load()
	for range dlvIsoRounds {
		t, err := run(miraapi.EventReportCompleted)
		if err != nil {
			return without, with, 0, err
		}
		without = append(without, t)
		if t, err = run(miraapi.EventMeetingFailed); err != nil {
			return without, with, 0, err
		}
		with = append(with, t)
	}
	return without, with, d.sink.hangs.Load() - h0, nil
}

func sortDurations(s []time.Duration) {
	for i := range s {
		if s[i] < 0 {
			s[i] = 0
		}
	}
	slices.Sort(s)
}

// profileSummary runs `go tool pprof -top` on the profile: the flat top and
// the cumulative share of the receiver's own functions.
func profileSummary(path string) (top string, cum []string) {
	goBin, err := exec.LookPath("go")
	if err != nil || path == "" {
		return "", nil
	}
	out, err := exec.Command(goBin, "tool", "pprof", "-top", "-nodecount=22", path).Output()
	if err == nil {
		var keep []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if !strings.HasPrefix(l, "File:") && !strings.HasPrefix(l, "Build ID:") {
				keep = append(keep, l)
			}
		}
		top = strings.Join(keep, "\n")
	}
	out, err = exec.Command(goBin, "tool", "pprof", "-top", "-cum", "-nodecount=400", path).Output()
	if err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "mira-operator/internal/") || strings.Contains(line, "jetstream.(*pullConsumer)") ||
				strings.Contains(line, "net/http.(*Transport).dialConn") || strings.Contains(line, "net/http.(*persistConn).writeLoop") {
				cum = append(cum, strings.TrimSpace(line))
			}
		}
	}
	return top, cum
}

type deliveryResults struct {
	bodyBytes           int
	interval            time.Duration
	maxPending          int
	fanoutWorkers       int
	base, recv, floor   throughput
	floorProfile        string
	baseLat, recvLat    latencyRun
	isoWithout, isoWith []throughput
	hangAttempts        int64
	rss                 rssChildResult
	rssFloor            rssChildResult
	rssLimited          rssChildResult
	rssHangs            int64
	profile, top        string
	heapTop, version    string
	cum                 []string
	tputBases           []string // each throughput endpoint's own sink listener
	http                httpResults
}

func latRow(name string, l latencyRun, extra string) []string {
	return []string{name, fmt.Sprintf("%d (%.0f/s)", len(l.sorted), l.achieved),
		msf(percentile(l.sorted, 50)), msf(percentile(l.sorted, 95)), "**" + msf(percentile(l.sorted, 99)) + "**",
		msf(percentile(l.sorted, 100)), strconv.Itoa(l.missing + l.errs), extra}
}

func minOf(v []float64) float64 {
	m := math.Inf(1)
	for _, x := range v {
		m = min(m, x)
	}
	return m
}

func deliverySection(r deliveryResults) Section {
	var b strings.Builder
	ratio := r.recv.rate() / r.base.rate()
	fmt.Fprintf(&b, "One run, one consumer: a plain `net/http` server on 127.0.0.1 answering `204 No Content` with keep-alive, which counts distinct `webhook-id`s "+
		"and notes when each first arrived. The receiver runs in-process (`receiver.New` + `Start`) on its embedded JetStream (file store in a temp dir, "+
		"default sync policy: no fsync per write) against a local kube-apiserver + etcd (envtest), with the controllers in-process so endpoints become Ready. "+
		"Loopback only.\n\n")
	b.WriteString("Settings:\n\n")
	fmt.Fprintf(&b, "- GOMAXPROCS **%d** on %d CPUs (the bench process: receiver, consumer and load generator share them with kube-apiserver and etcd).\n",
		runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Fprintf(&b, "- Receiver: the `BindFlags` defaults — `--fanout-workers` %d, `--status-interval` **%s**, `--max-ack-pending` %d (per endpoint), `maxConcurrency` from each endpoint's spec — "+
		"except `--listen 127.0.0.1:0`, metrics off and `--allowed-cidrs 127.0.0.0/8` (the consumer is on loopback).\n", r.fanoutWorkers, r.interval, r.maxPending)
	fmt.Fprintf(&b, "- Body: **%d bytes** (`{\"event\",\"data\",\"timestamp\"}` of a report.completed-like event); the baseline posts the same bytes.\n", r.bodyBytes)
	fmt.Fprintf(&b, "- Events are published with `Receiver.Publisher.Publish` (a synchronous JetStream publish that returns once the event is stored — "+
		"what `POST /v1/events` does after authentication) from %d goroutines, or paced.\n", dlvPublishers)
	fmt.Fprintf(&b, "- Throughput: %d endpoints (`maxConcurrency` %d, the CRD maximum; each subscribed to one event type), %d events round robin over "+
		"the four types = **N = %d deliveries**, so at most %d attempts are in flight. Baseline: %d POSTs from **%d goroutines** (the same in-flight bound) "+
		"through one `http.Transport` whose idle pool holds %d connections, after a 2,000-request warm-up. Deliveries/s = N / (first publish → last delivery at the consumer).\n",
		dlvEndpoints, dlvEndpointConc, dlvEvents, dlvEvents, dlvBaselineConc, dlvBaselineN, dlvBaselineConc, dlvBaselineConc)
	fmt.Fprintf(&b, "- Latency: %d events/s for %s to one endpoint, paced (a pacer hands event i to a pool of 64 publishers at start + i ms); "+
		"added latency = consumer receive time − time just before `Publish`. Baseline: raw POSTs paced the same way; latency = consumer receive time − time before `Do`.\n",
		dlvRate, dlvPaceDur)
	b.WriteString("- CPU columns: the machine's busy time during the measurement split by process from /proc (\"bench\" = this process: receiver, consumer and load generator).\n\n")

	b.WriteString("Throughput:\n\n")
	b.WriteString(Table([]string{"run", "N", "in flight", "time (s)", "per second", "× baseline", "TCP connections opened", "duplicates", "bench process CPU per item (µs)", "CPU"}, [][]string{
		{"baseline: raw POST loop", strconv.Itoa(r.base.n), strconv.Itoa(dlvBaselineConc), secs(r.base.dur), fmt.Sprintf("**%.0f**", r.base.rate()), "1.00",
			strconv.FormatInt(r.base.conns, 10), strconv.Itoa(r.base.dups), cpuPerItem(r.base), cpuCell(r.base.cpu)},
		{"receiver: publish → … → ack → status", strconv.Itoa(r.recv.n), fmt.Sprintf("≤ %d", dlvBaselineConc), secs(r.recv.dur), fmt.Sprintf("**%.0f**", r.recv.rate()),
			fmt.Sprintf("**%.2f**", ratio), strconv.FormatInt(r.recv.conns, 10), strconv.Itoa(r.recv.dups), cpuPerItem(r.recv), cpuCell(r.recv.cpu)},
		{"durability floor: the same JetStream steps, no Mira code", strconv.Itoa(r.floor.n), fmt.Sprintf("≤ %d", dlvBaselineConc), secs(r.floor.dur),
			fmt.Sprintf("**%.0f**", r.floor.rate()), fmt.Sprintf("**%.2f**", r.floor.rate()/r.base.rate()), strconv.FormatInt(r.floor.conns, 10),
			strconv.Itoa(r.floor.dups), cpuPerItem(r.floor), cpuCell(r.floor.cpu)},
	}))
	fmt.Fprintf(&b, "\nThe receiver ran at **%.2f× the durability floor** and used %.2f× its CPU per delivery. "+
		"The floor (`hack/bench/delivery_floor.go`) is what the delivery contract costs on this JetStream server when written the shortest way with nats.go and net/http, "+
		"with none of Mira's code: per event a synchronous publish into a file-backed events stream with a message id (\"202 only once stored\"); "+
		"a pull consumer (32 workers) that publishes the delivery into a file-backed work-queue stream, awaits the stored ack and acks the event; "+
		"per endpoint a consumer in memory with %d workers that POSTs the signed body, creates a ~300-byte JSON outcome record in a file-backed key-value bucket "+
		"and only then acks (\"no ack before the outcome is recorded\"). It leaves out what the product adds on top: Kubernetes endpoints and Secrets, "+
		"the registry, CEL filters, the breaker and rate limits, retries, stats and status, metrics and the delivery log's record format. "+
		"Profile: `bin/%s`.\n", r.recv.rate()/r.floor.rate(), cpuRatio(r.recv, r.floor), dlvEndpointConc, filepath.Base(r.floorProfile))
	fmt.Fprintf(&b, "\nPublishing the %d events took %s s (%.0f events/s, concurrent with delivery). Per endpoint: %s deliveries/s. "+
		"The dispatch consumer handed out %d messages for %d deliveries (%.2f per delivery; the rest were Nak'd with a delay and fetched again).\n",
		r.recv.n, secs(r.recv.publish), float64(r.recv.n)/r.recv.publish.Seconds(), joinRates(r.recv.perEndpt),
		r.recv.fetches, r.recv.n, float64(r.recv.fetches)/float64(r.recv.n))

	b.WriteString("\nLatency at a paced rate (ms):\n\n")
	b.WriteString(Table([]string{"run", "samples (rate sent)", "p50", "p95", "p99", "max", "lost or failed", "call duration p50 / p99"}, [][]string{
		latRow("baseline: send → consumer", r.baseLat, "round trip "+msf(r.baseLat.pubP50)+" / "+msf(r.baseLat.pubP99)),
		latRow("receiver: publish → consumer (added latency)", r.recvLat, "`Publish` "+msf(r.recvLat.pubP50)+" / "+msf(r.recvLat.pubP99)),
	}))

	b.WriteString("\nStatus writes (`StatusWriter.Patches(uid)`, counted from the first publish until one and a half intervals after the last delivery):\n\n")
	var rows [][]string
	worst := 0.0
	patchPass := true
	shortest := time.Duration(-1)
	addPatch := func(run string, i int, times []time.Time, window time.Duration) {
		intervals := window.Seconds() / r.interval.Seconds()
		allowed := int(math.Ceil(intervals))
		p := len(times)
		worst = max(worst, float64(p)/float64(allowed))
		g := minGap(times)
		gap := "n/a"
		if g >= 0 {
			gap = secs(g)
			if shortest < 0 || g < shortest {
				shortest = g
			}
		}
		if p > allowed || (g >= 0 && g < r.interval/2) {
			patchPass = false
		}
		rows = append(rows, []string{run, fmt.Sprintf("tput-%d", i), strconv.Itoa(p), fmt.Sprintf("%.1f s = %.1f intervals → at most %d ticks", window.Seconds(), intervals, allowed),
			fmt.Sprintf("%.2f", float64(p)/float64(allowed)), gap})
	}
	for i, p := range r.recv.patches {
		addPatch(fmt.Sprintf("throughput (%.0f/s)", r.recv.rate()), i, p, r.recv.window)
	}
	addPatch(fmt.Sprintf("latency (%d/s)", dlvRate), 0, r.recvLat.patches, r.recvLat.window)
	b.WriteString(Table([]string{"run", "endpoint", "status writes", "window", "writes per tick", "shortest gap between writes (s)"}, rows))
	b.WriteString("\nA write is noted when `Patches(uid)` grows (polled every 10 ms), i.e. when the apply returned, so a gap can be shorter than the interval by the " +
		"difference of two apply durations.\n")

	b.WriteString("\nMemory with deliveries queued (a child process running only the receiver, `--watch-namespace` = the endpoint's namespace):\n\n")
	rss := r.rss
	fmt.Fprintf(&b, "The child publishes %d report.completed events (%d goroutines, %.1f s); its one subscribed endpoint has `maxConcurrency` 1 and a 60 s timeout "+
		"and its consumer never answers (%d request(s) held), so every delivery stays queued: the endpoint's own consumer has one attempt in flight and "+
		"fetches nothing more, so the rest wait in the stream. Once the deliveries stream held %d messages and the fan-out had nothing pending (%.1f s after the first publish), "+
		"VmRSS (/proc/self/status) was sampled every 100 ms for %s.\n\n",
		dlvRSSEvents, dlvPublishers, rss.PublishSecs, r.rssHangs, rss.StreamMsgs, rss.QueuedSecs, time.Duration(rss.SampleMillis)*time.Millisecond)
	b.WriteString(Table([]string{"idle (endpoint configured)", "queued, last sample", "of which anonymous / file-backed", "queued, max sample",
		"VmHWM (peak, publishing included)", "Go heap in use", "Go runtime from OS", "dispatch consumer: pending / ack-pending / hand-outs"}, [][]string{{
		mib(rss.IdleRSS) + " MiB", "**" + mib(rss.QueuedRSS) + " MiB**", mib(rss.QueuedAnon) + " / " + mib(rss.QueuedFile) + " MiB",
		mib(rss.MaxRSS) + " MiB", mib(rss.HWM) + " MiB",
		mib(int64(rss.HeapInuse)) + " MiB", mib(int64(rss.GoSys)) + " MiB",
		fmt.Sprintf("%d / %d / %d", rss.Pending, rss.AckPending, rss.Fetches),
	}}))
	if rss.SettledRSS > 0 {
		fmt.Fprintf(&b, "\nSettled: the child kept running with everything queued until %s after the deliveries were queued (%d GC cycle(s) after the sampling window, "+
			"the runtime forcing one every 2 minutes when nothing else does): VmRSS **%s MiB**, of which %s MiB anonymous (`RssAnon`: Go heap, stacks, runtime) and "+
			"%s MiB file-backed (`RssFile`: the pages of the executable that were touched; this bench binary is %s MB, the `mira-operator` image's binary is of the same kind). "+
			"The Go heap in use above is from the end of this wait, after those GCs.\n",
			time.Duration(rss.SettleMillis)*time.Millisecond, rss.SettledGCs, mib(rss.SettledRSS), mib(rss.SettledAnon), mib(rss.SettledFile), exeSizeMB())
	}

	if fl := r.rssFloor; fl.QueuedRSS > 0 {
		fmt.Fprintf(&b, "\nDurability floor (`hack/bench/delivery_rss_floor.go`): a child process of the same executable running only the embedded JetStream server, "+
			"started as the receiver starts it, with the same streams and buckets, stores what the receiver stores for this backlog: each of the %d events in the events "+
			"stream and its delivery in the outbox (the fan-out's message encoding), from %d goroutines; no Kubernetes clients, registry, fan-out, dispatcher or HTTP server. "+
			"Idle %s MiB; %s s after publishing, queued, last sample **%s MiB** (%s MiB anonymous, %s MiB file-backed), max sample %s MiB, Go heap in use %s MiB; "+
			"%d messages in the outbox.\n",
			dlvRSSEvents, dlvPublishers, mib(fl.IdleRSS), fmt.Sprintf("%.0f", time.Duration(fl.SampleMillis*int64(time.Millisecond)).Seconds()),
			mib(fl.QueuedRSS), mib(fl.QueuedAnon), mib(fl.QueuedFile), mib(fl.MaxRSS), mib(int64(fl.HeapInuse)), fl.StreamMsgs)
	}
	fmt.Fprintf(&b, "\nThe same run with `GOMEMLIMIT=%s` (a soft limit; a Deployment sets it from its container memory limit): queued, last sample **%s MiB**, max sample %s MiB, Go heap in use %s MiB.\n",
		dlvRSSMemLimit, mib(r.rssLimited.QueuedRSS), mib(r.rssLimited.MaxRSS), mib(int64(r.rssLimited.HeapInuse)))

	if r.heapTop != "" {
		b.WriteString("\nWhere the child's Go heap was at the end (`bin/bench-delivery-rss.heap.pprof`, in-use space as of the last GC, " +
			"`go tool pprof -top -sample_index=inuse_space`):\n\n```\n" + r.heapTop + "\n```\n")
	}
	httpText, httpGoal := httpSection(r.http)
	b.WriteString("\n" + httpText)
	isoW, isoH := combined(r.isoWithout), combined(r.isoWith)
	isoRatio := isoH.rate() / isoW.rate()
	isoMinRatio := minOf(isoH.perEndpt) / minOf(isoW.perEndpt)
	fmt.Fprintf(&b, "\nIsolation: %d healthy endpoints + 1 whose consumer hangs until the attempt timeout (%s), all with `maxConcurrency` %d. "+
		"Each run publishes %d events that fan out to the %d healthy endpoints (%d deliveries); in the runs \"with\", the hanging endpoint is subscribed too "+
		"(one more delivery per event). After a warm-up run, runs alternate without/with, %d each; the totals are summed.\n\n",
		dlvIsoHealthy, dlvHangTimeout, dlvIsoConc, dlvIsoEvents, dlvIsoHealthy, dlvIsoEvents*dlvIsoHealthy, dlvIsoRounds)
	rows = nil
	for i := range r.isoWithout {
		for _, x := range []struct {
			name string
			t    throughput
		}{{"without", r.isoWithout[i]}, {"with the hanging endpoint", r.isoWith[i]}} {
			rows = append(rows, []string{fmt.Sprintf("%d: %s", i+1, x.name), strconv.Itoa(x.t.n), secs(x.t.dur), fmt.Sprintf("%.0f", x.t.rate()), fmt.Sprintf("%.0f", minOf(x.t.perEndpt))})
		}
	}
	rows = append(rows, []string{"**all without**", strconv.Itoa(isoW.n), secs(isoW.dur), fmt.Sprintf("**%.0f**", isoW.rate()), fmt.Sprintf("%.0f", minOf(isoW.perEndpt))})
	rows = append(rows, []string{"**all with**", strconv.Itoa(isoH.n), secs(isoH.dur), fmt.Sprintf("**%.0f** (%.2f×)", isoH.rate(), isoRatio),
		fmt.Sprintf("%.0f (%.2f×)", minOf(isoH.perEndpt), isoMinRatio)})
	b.WriteString(Table([]string{"run", "healthy deliveries", "time (s)", "healthy deliveries/s", "slowest healthy endpoint (/s)"}, rows))
	fmt.Fprintf(&b, "\nThe hanging consumer received %d attempts during the runs \"with\" (each held until the %s timeout).\n", r.hangAttempts, dlvHangTimeout)

	if r.top != "" {
		fmt.Fprintf(&b, "\nCPU profile of the bench process during the receiver throughput run (`%s`; `go tool pprof -top` it). "+
			"It holds the receiver, the embedded JetStream server, the consumer and the publishers, not kube-apiserver or etcd.\n\n",
			"bin/"+filepath.Base(r.profile))
		b.WriteString("```\n" + r.top + "\n```\n")
		if len(r.cum) > 0 {
			b.WriteString("\nCumulative share of selected functions (`-top -cum`):\n\n```\n" + strings.Join(r.cum, "\n") + "\n```\n")
		}
	}

	b.WriteString("\nInterpretation:\n\n")
	fmt.Fprintf(&b, "- Code measured: %s.\n", r.version)
	fmt.Fprintf(&b, "- Throughput: %.2f× the baseline. Each delivery costs the receiver, besides the POST: a JetStream publish into the deliveries stream at fan-out, "+
		"no delivery-log write at fan-out and no KV read before a first attempt (the queued message is the pending delivery; retries read the record), "+
		"one KV write of the record at each outcome (created at the first), the ack, and a signing-Secret read from the informer cache. In CPU of the bench process that is %s µs per delivery "+
		"against %s µs per baseline request. During the receiver run the machine was %s busy, %s of it other people's work (\"rest of machine\"), "+
		"so the receiver had well under the 2 cores.\n",
		ratio, cpuPerItem(r.recv), cpuPerItem(r.base), pct(r.recv.cpu.machine, r.recv.cpu.wall*time.Duration(runtime.NumCPU())),
		pct(r.recv.cpu.rest(), r.recv.cpu.machine))
	fmt.Fprintf(&b, "- In the CPU profile: the dispatcher's `handle` %s, of which new TCP connections (`Transport.dialConn`) %s, the record write `LogStore.Put` %s "+
		"and the record read `loadRecord` %s; fan-out %s; `Publish` %s.\n",
		cumPct(r.cum, "dispatch.(*Dispatcher).handle"), cumPct(r.cum, "net/http.(*Transport).dialConn"), cumPct(r.cum, "deliverylog.(*Store).Update"),
		cumPct(r.cum, "dispatch.(*Dispatcher).loadRecord"), cumPct(r.cum, "fanout.(*Fanout).handle"), cumPct(r.cum, "events.(*Stream).Publish"))
	fmt.Fprintf(&b, "- Connections: the receiver opened %d TCP connections during the %d deliveries, the baseline %d for %d requests (after its warm-up). "+
		"Each throughput endpoint posts to a sink port of its own, so its connections are counted apart (`ConnState` on that listener): %s "+
		"since the endpoint was created (warm-up included), against a `maxConcurrency` of %d. Each endpoint has a sender of its own "+
		"(`endpoints.Registry.Sender`) whose transport keeps up to `maxConcurrency` idle connections and opens at most `maxConcurrency` per host "+
		"(`MaxConnsPerHost`, dialling and idle included), so an attempt reuses a connection an earlier one left idle.\n",
		r.recv.conns, r.recv.n, r.base.conns, r.base.n, joinInts(r.recv.connsBy), dlvEndpointConc)
	if f := float64(r.recv.fetches) / float64(r.recv.n); f > 1.05 {
		fmt.Fprintf(&b, "- Flow control: the dispatch consumer handed out %.2f messages per delivery: the excess was Nak'd with a delay (endpoint saturated) and fetched again.\n", f)
	} else {
		fmt.Fprintf(&b, "- Flow control: the dispatch consumer handed out %.2f messages per delivery, so there was no Nak/redelivery churn in the throughput run.\n", f)
	}
	fmt.Fprintf(&b, "- Latency at %d/s: p99 %s ms added, against %s ms for a raw POST; `Publish` itself (the stored ack) is %s ms at p99.\n",
		dlvRate, msf(percentile(r.recvLat.sorted, 99)), msf(percentile(r.baseLat.sorted, 99)), msf(r.recvLat.pubP99))
	fmt.Fprintf(&b, "- Status writes are coalesced per endpoint by a ticker of `--status-interval`; the counts and gaps above show at most one write per endpoint per tick "+
		"(worst %.2f writes per tick).\n", worst)
	fmt.Fprintf(&b, "- Memory: %s MiB with %d deliveries queued; the Go heap in use was %s MiB and the Go runtime held %s MiB from the OS. "+
		"The dispatcher kept cycling the queued deliveries (%d hand-outs; %d ack-pending at the end), as it does while an endpoint is down.\n",
		mib(rss.QueuedRSS), dlvRSSEvents, mib(int64(rss.HeapInuse)), mib(int64(rss.GoSys)), rss.Fetches, rss.AckPending)
	b.WriteString("- Numbers vary run to run by tens of percent on this shared 2-core machine; the CPU column shows how much of it other work took.\n\n")

	goals := []Goal{
		{Text: fmt.Sprintf("end-to-end throughput ≥ %.1f × the raw POST baseline (about 10,000 deliveries/s)", dlvThroughputGoal),
			Measured: fmt.Sprintf("%.2f× (%.0f deliveries/s vs %.0f requests/s); the durability floor reached %.2f×, the receiver %.2f× of it",
				ratio, r.recv.rate(), r.base.rate(), r.floor.rate()/r.base.rate(), r.recv.rate()/r.floor.rate()), Pass: ratio >= dlvThroughputGoal},
		{Text: fmt.Sprintf("TCP connections opened per endpoint during a burst ≤ its maxConcurrency (%d)", dlvEndpointConc),
			Measured: fmt.Sprintf("%s per endpoint (warm-up and the %d-delivery burst)", joinInts(r.recv.connsBy), r.recv.n),
			Pass:     len(r.recv.connsBy) > 0 && slices.Max(r.recv.connsBy) <= dlvEndpointConc},
		{Text: fmt.Sprintf("p99 added latency ≤ %s at %d deliveries/s", dlvLatencyGoal, dlvRate),
			Measured: fmt.Sprintf("p99 %s ms (baseline p99 %s ms)", msf(percentile(r.recvLat.sorted, 99)), msf(percentile(r.baseLat.sorted, 99))),
			Pass:     percentile(r.recvLat.sorted, 99) <= dlvLatencyGoal && r.recvLat.missing == 0},
		{Text: "status writes ≤ 1 per endpoint per interval", Measured: fmt.Sprintf("worst %.2f writes per tick of the %s interval, shortest gap %s s", worst, r.interval, secs(shortest)), Pass: patchPass},
		{Text: fmt.Sprintf("RSS ≤ %d MiB with %d deliveries queued", dlvRSSGoal>>20, dlvRSSEvents),
			Measured: fmt.Sprintf("%s MiB (max sample %s MiB, peak while publishing %s MiB; settled %s MiB, of which %s MiB file-backed); "+
				"the embedded JetStream server alone holding the same backlog: %s MiB",
				mib(rss.QueuedRSS), mib(rss.MaxRSS), mib(rss.HWM), mib(rss.SettledRSS), mib(rss.SettledFile), mib(r.rssFloor.QueuedRSS)),
			Pass: rss.MaxRSS <= dlvRSSGoal && rss.StreamMsgs >= dlvRSSEvents},
		{Text: fmt.Sprintf("healthy endpoints keep ≥ %.1f × their throughput while 10%% of endpoints hang until timeout", dlvIsolationGoal),
			Measured: fmt.Sprintf("%.2f× (%.0f vs %.0f deliveries/s; slowest endpoint %.2f×)", isoRatio, isoH.rate(), isoW.rate(), isoMinRatio),
			Pass:     isoRatio >= dlvIsolationGoal},
		httpGoal,
	}
	return Section{Body: b.String(), Goals: goals}
}

func joinRates(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(parts, ", ")
}

// combined sums runs: total deliveries over total time; per endpoint, the
// mean of the runs' rates.
func combined(runs []throughput) throughput {
	var c throughput
	for _, t := range runs {
		c.n += t.n
		c.dur += t.dur
		for i, x := range t.perEndpt {
			if i >= len(c.perEndpt) {
				c.perEndpt = append(c.perEndpt, 0)
			}
			c.perEndpt[i] += x / float64(len(runs))
		}
	}
	return c
}

func cpuPerItem(t throughput) string {
	if !t.cpu.ok || t.n == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", float64(t.cpu.self.Microseconds())/float64(t.n))
}

func pct(a, b time.Duration) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(a)/float64(b))
}

// cumPct finds the cumulative percentage of a function in `pprof -top -cum` lines.
func cumPct(lines []string, fn string) string {
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) >= 6 && strings.HasSuffix(f[5], fn) {
			return f[4] + " cum"
		}
	}
	return "n/a"
}

func heapSummary(path string) string {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return ""
	}
	out, err := exec.Command(goBin, "tool", "pprof", "-top", "-sample_index=inuse_space", "-nodecount=15", path).Output()
	if err != nil {
		return ""
	}
	// Drop the header lines that name the temporary binary and the time.
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// codeVersion names the commit measured and whether the working tree had
// uncommitted changes in the packages the suite exercises.
func codeVersion() string {
	root := testenv.RepoRoot()
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown (no git)"
	}
	v := "commit `" + strings.TrimSpace(string(out)) + "`"
	st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--", "internal", "api", "cmd").Output()
	if err == nil {
		var files []string
		for _, l := range strings.Split(strings.TrimSpace(string(st)), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				f := strings.Fields(l)
				files = append(files, "`"+f[len(f)-1]+"`")
			}
		}
		if len(files) > 0 {
			v += " plus uncommitted changes in " + strings.Join(files, ", ")
		} else {
			v += ", clean"
		}
	}
	return v
}

func joinInts(v []int64) string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = strconv.FormatInt(x, 10)
	}
	return strings.Join(out, ", ")
}

// cpuRatio is a's CPU per item over b's (0 when either was not sampled).
func cpuRatio(a, b throughput) float64 {
	if !a.cpu.ok || !b.cpu.ok || a.n == 0 || b.n == 0 || b.cpu.self == 0 {
		return 0
	}
	return (float64(a.cpu.self) / float64(a.n)) / (float64(b.cpu.self) / float64(b.n))
}

// exeSizeMB is the size of this executable in MB, or "?".
func exeSizeMB() string {
	p, err := os.Executable()
	if err != nil {
		return "?"
	}
	fi, err := os.Stat(p)
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.0f", float64(fi.Size())/1e6)
}
