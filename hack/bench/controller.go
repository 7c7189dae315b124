package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/manager"
	"github.com/mira/mira-operator/internal/testenv"
)

func init() {
	Register(Suite{Name: "controller", Title: "Controller: WebhookEndpoint convergence", Run: runControllerSuite})
}

// Settings of the controller suite; the section reports them.
const (
	ctrlConcurrency  = 8    // manager.Options.MaxConcurrentRecon (--concurrent)
	ctrlQPS          = 1000 // manager client QPS
	ctrlBurst        = 2000 // manager client burst
	loadQPS          = 1000 // load generator client QPS
	loadBurst        = 2000
	createWorkers    = 8 // goroutines creating endpoints
	settledWindow    = 10 * time.Second
	readyGoal        = 10 * time.Second // for 1,000 endpoints on 2 cores
	goalEndpoints    = 1000
	convergeTimeout  = 5 * time.Minute
	passTimeout      = 2 * time.Minute
	passQuietPeriod  = 2 * time.Second // after the pass drains, for late Events
	settleQuiet      = time.Second     // no write and an idle queue for this long = settled
	endpointCtrlName = "webhookendpoint"
)

var ctrlScales = []int{100, goalEndpoints}

// Write kinds, by resource path.
const (
	kindSecrets = "secrets"
	kindStatus  = "webhookendpoints/status"
	kindEvents  = "events"
	kindOther   = "other"
)

var writeKinds = []string{kindSecrets, kindStatus, kindEvents, kindOther}

// apiCounter counts the manager's API requests; it wraps the transport of
// the manager's rest.Config.
type apiCounter struct {
	mu     sync.Mutex
	writes map[string]int // by kind
	other  map[string]int // writes of kind "other", by "VERB resource"
	reads  map[string]int // GET (get and list, not watch), by resource
	// Failed writes (status >= 400, e.g. 409 conflicts) and failed reads
	// other than 404 (a 404 GET of a not yet generated Secret is expected).
	errs int
}

type apiCounts struct {
	writes map[string]int
	other  map[string]int
	reads  map[string]int
	errs   int
}

func newAPICounter() *apiCounter {
	return &apiCounter{writes: map[string]int{}, other: map[string]int{}, reads: map[string]int{}}
}

func (c *apiCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resource, sub := resourceOf(req.URL.Path)
		write := false
		c.mu.Lock()
		switch req.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			write = true
			kind := writeKind(resource, sub)
			c.writes[kind]++
			if kind == kindOther {
				c.other[req.Method+" "+strings.TrimSuffix(resource+"/"+sub, "/")]++
			}
		case http.MethodGet:
			if req.URL.Query().Get("watch") != "true" {
				c.reads[resource]++
			}
		}
		c.mu.Unlock()
		resp, err := rt.RoundTrip(req)
		if err != nil || resp.StatusCode >= 400 && (write || resp.StatusCode != http.StatusNotFound) {
			c.mu.Lock()
			c.errs++
			c.mu.Unlock()
		}
		return resp, err
	})
}

func (c *apiCounter) snapshot() apiCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return apiCounts{writes: clone(c.writes), other: clone(c.other), reads: clone(c.reads), errs: c.errs}
}

func clone(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func diff(a, b map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range a {
		if d := v - b[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// sub returns a − b.
func (a apiCounts) sub(b apiCounts) apiCounts {
	return apiCounts{writes: diff(a.writes, b.writes), other: diff(a.other, b.other), reads: diff(a.reads, b.reads), errs: a.errs - b.errs}
}

func (a apiCounts) totalWrites() int {
	n := 0
	for _, v := range a.writes {
		n += v
	}
	return n
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// resourceOf returns the resource and subresource of an API path such as
// /apis/platform.mira.io/v1alpha1/namespaces/ns/webhookendpoints/x/status.
func resourceOf(path string) (resource, sub string) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	// /api/v1/... or /apis/group/version/...
	i := 2
	if len(segs) > 0 && segs[0] == "apis" {
		i = 3
	}
	if len(segs) > i+1 && segs[i] == "namespaces" && len(segs) > i+2 {
		i += 2
	}
	if len(segs) <= i {
		return strings.Join(segs, "/"), ""
	}
	resource = segs[i]
	if len(segs) > i+2 {
		sub = segs[i+2]
	}
	return resource, sub
}

func writeKind(resource, sub string) string {
	switch {
	case resource == "secrets":
		return kindSecrets
	case resource == "webhookendpoints" && sub == "status":
		return kindStatus
	case resource == "events":
		return kindEvents
	}
	return kindOther
}

// scaleResult holds the figures of one run of N endpoints.
type scaleResult struct {
	n              int
	create, ready  time.Duration
	p50, p95, pmax time.Duration // per endpoint, create call start → Ready seen
	cpu            cpuUse        // first create → all Ready
	// Convergence: first create → all Ready, and all Ready → settled (queue
	// drained, no manager write for settleQuiet).
	conv, tail       apiCounts
	convRec, tailRec float64
	settleAfter      time.Duration // all Ready → settled
	settled          apiCounts     // settledWindow after settled
	settledRec       float64
	touched          int
	pass             apiCounts
	passRec          float64
	passDur          time.Duration
	readyAfterPass   int
}

func runControllerSuite(ctx context.Context) (Section, error) {
	env, cfg, err := testenv.Start()
	if err != nil {
		return Section{}, err
	}
	defer func() { _ = env.Stop() }()

	// The manager: in-process, on a config whose requests are counted.
	counter := newAPICounter()
	mcfg := rest.CopyConfig(cfg)
	mcfg.QPS, mcfg.Burst = ctrlQPS, ctrlBurst
	mcfg.Wrap(counter.wrap)
	opts := manager.Options{MetricsAddr: "0", ProbeAddr: "0", MaxConcurrentRecon: ctrlConcurrency, SyncPeriod: 10 * time.Hour}
	mgr, err := manager.New(mcfg, opts)
	if err != nil {
		return Section{}, err
	}
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := manager.Setup(mctx, mgr, opts); err != nil {
		return Section{}, err
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "bench: manager stopped:", err)
		}
	}()
	syncCtx, syncCancel := context.WithTimeout(ctx, time.Minute)
	synced := mgr.GetCache().WaitForCacheSync(syncCtx)
	syncCancel()
	if !synced {
		return Section{}, errors.New("manager cache did not sync")
	}

	// The load generator: its own config, not counted.
	lcfg := rest.CopyConfig(cfg)
	lcfg.QPS, lcfg.Burst = loadQPS, loadBurst
	load, err := client.New(lcfg, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		return Section{}, err
	}

	var results []scaleResult
	for _, n := range ctrlScales {
		fmt.Fprintf(os.Stderr, "    controller: %d endpoints\n", n)
		r, err := runScale(ctx, lcfg, load, counter, n)
		if err != nil {
			return Section{}, fmt.Errorf("%d endpoints: %w", n, err)
		}
		fmt.Fprintf(os.Stderr, "    created in %.2fs, all Ready in %.2fs, %d+%d writes (%.2f/endpoint), %d writes settled, %d status writes in the resync pass\n",
			r.create.Seconds(), r.ready.Seconds(), r.conv.totalWrites(), r.tail.totalWrites(),
			float64(r.conv.totalWrites()+r.tail.totalWrites())/float64(n), r.settled.totalWrites(), r.pass.writes[kindStatus])
		results = append(results, r)
	}
	return controllerSection(results), nil
}

func runScale(ctx context.Context, lcfg *rest.Config, load client.Client, counter *apiCounter, n int) (scaleResult, error) {
	r := scaleResult{n: n}
	ns := fmt.Sprintf("bench-controller-%d", n)
	if err := load.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return r, err
	}

	tr, err := startReadyTracker(ctx, lcfg, ns, n)
	if err != nil {
		return r, err
	}
	defer tr.stop()

	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("ep-%04d", i)
	}
	before, recBefore, cpuBefore := counter.snapshot(), reconcileTotal(), sampleCPU()

	t0 := time.Now()
	var next atomic.Int64
	errc := make(chan error, createWorkers)
	var wg sync.WaitGroup
	for range createWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				ep := &miraapi.WebhookEndpoint{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names[i]},
					Spec: miraapi.WebhookEndpointSpec{
						URL:    "https://hooks.example.invalid/mira/" + names[i],
						Events: []string{miraapi.EventAll},
					},
				}
				tr.created(names[i], time.Now())
				if err := load.Create(ctx, ep); err != nil {
					errc <- fmt.Errorf("create %s: %w", names[i], err)
					return
				}
			}
		}()
	}
	wg.Wait()
	r.create = time.Since(t0)
	select {
	case err := <-errc:
		return r, err
	default:
	}

	select {
	case <-tr.allReady:
	case <-time.After(convergeTimeout):
		return r, fmt.Errorf("only %d of %d endpoints Ready after %s", tr.readyCount(), n, convergeTimeout)
	case <-ctx.Done():
		return r, ctx.Err()
	}
	atReady, recAtReady := counter.snapshot(), reconcileTotal()
	r.cpu = sampleCPU().since(cpuBefore)
	readyAt := tr.allReadyAt()
	r.ready = readyAt.Sub(t0)
	r.conv, r.convRec = atReady.sub(before), recAtReady-recBefore
	lat := tr.latencies()
	r.p50, r.p95, r.pmax = percentile(lat, 50), percentile(lat, 95), percentile(lat, 100)

	// Settling: the reconciles still queued at all Ready (each endpoint's own
	// new Secret enqueues it once more) and Events still being sent.
	settledAt, err := waitSettled(ctx, counter)
	if err != nil {
		return r, err
	}
	atSettled, recAtSettled := counter.snapshot(), reconcileTotal()
	r.settleAfter = settledAt.Sub(readyAt)
	r.tail, r.tailRec = atSettled.sub(atReady), recAtSettled-recAtReady

	// Settled: nothing changes; the manager should write nothing.
	if err := sleep(ctx, settledWindow); err != nil {
		return r, err
	}
	r.settled, r.settledRec = counter.snapshot().sub(atSettled), reconcileTotal()-recAtSettled

	// Resync-like pass: touch every generated Secret's labels (no change the
	// controller cares about), so every endpoint reconciles once more.
	var secrets corev1.SecretList
	if err := load.List(ctx, &secrets, client.InNamespace(ns), client.HasLabels{"platform.mira.io/endpoint"}); err != nil {
		return r, err
	}
	r.touched = len(secrets.Items)
	pBefore, pRec := counter.snapshot(), reconcileTotal()
	tp := time.Now()
	stamp := strconv.FormatInt(tp.UnixNano(), 10)
	if err := forEach(ctx, len(secrets.Items), createWorkers, func(i int) error {
		s := &secrets.Items[i]
		patch := []byte(`{"metadata":{"labels":{"bench.mira.io/touched":"` + stamp + `"}}}`)
		return load.Patch(ctx, s, client.RawPatch(types.MergePatchType, patch))
	}); err != nil {
		return r, err
	}
	deadline := time.Now().Add(passTimeout)
	for reconcileTotal()-pRec < float64(len(secrets.Items)) || !queueIdle() {
		if time.Now().After(deadline) {
			return r, fmt.Errorf("resync pass: %v of %d reconciles after %s", reconcileTotal()-pRec, len(secrets.Items), passTimeout)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return r, err
		}
	}
	r.passDur = time.Since(tp)
	if err := sleep(ctx, passQuietPeriod); err != nil {
		return r, err
	}
	r.pass, r.passRec = counter.snapshot().sub(pBefore), reconcileTotal()-pRec

	// Still Ready for the current generation after the pass?
	var list miraapi.WebhookEndpointList
	if err := load.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return r, err
	}
	for i := range list.Items {
		if isReady(&list.Items[i]) {
			r.readyAfterPass++
		}
	}
	return r, nil
}

// waitSettled waits until the WebhookEndpoint controller's queue is empty,
// no reconcile runs and the manager has made no write for settleQuiet, and
// returns when the last write (or the drain) happened.
func waitSettled(ctx context.Context, counter *apiCounter) (time.Time, error) {
	deadline := time.Now().Add(passTimeout)
	last, lastAt := counter.snapshot().totalWrites(), time.Now()
	for {
		if w := counter.snapshot().totalWrites(); w != last {
			last, lastAt = w, time.Now()
		}
		if !queueIdle() {
			lastAt = time.Now()
		}
		if time.Since(lastAt) >= settleQuiet {
			return lastAt, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("not settled after %s", passTimeout)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return time.Time{}, err
		}
	}
}

// readyTracker watches a namespace's endpoints (through its own uncounted
// informer) and notes when each first reports Ready=True for its generation.
type readyTracker struct {
	mu        sync.Mutex
	want      int
	createdAt map[string]time.Time
	readyAt   map[string]time.Time
	last      time.Time
	allReady  chan struct{}
	stop      context.CancelFunc
}

func startReadyTracker(ctx context.Context, cfg *rest.Config, ns string, want int) (*readyTracker, error) {
	c, err := cache.New(cfg, cache.Options{Scheme: manager.Scheme(), DefaultNamespaces: map[string]cache.Config{ns: {}}})
	if err != nil {
		return nil, err
	}
	inf, err := c.GetInformer(ctx, &miraapi.WebhookEndpoint{})
	if err != nil {
		return nil, err
	}
	tctx, cancel := context.WithCancel(ctx)
	t := &readyTracker{want: want, createdAt: map[string]time.Time{}, readyAt: map[string]time.Time{}, allReady: make(chan struct{}), stop: cancel}
	see := func(o any) {
		if ep, ok := o.(*miraapi.WebhookEndpoint); ok && isReady(ep) {
			t.ready(ep.Name, time.Now())
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    see,
		UpdateFunc: func(_, o any) { see(o) },
	}); err != nil {
		cancel()
		return nil, err
	}
	go func() { _ = c.Start(tctx) }()
	if !c.WaitForCacheSync(tctx) {
		cancel()
		return nil, errors.New("ready tracker cache did not sync")
	}
	return t, nil
}

func isReady(ep *miraapi.WebhookEndpoint) bool {
	c := apimeta.FindStatusCondition(ep.Status.Conditions, miraapi.ReadyCondition)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == ep.Generation
}

func (t *readyTracker) created(name string, at time.Time) {
	t.mu.Lock()
	t.createdAt[name] = at
	t.mu.Unlock()
}

func (t *readyTracker) ready(name string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, seen := t.readyAt[name]; seen {
		return
	}
	t.readyAt[name] = at
	if len(t.readyAt) == t.want {
		t.last = at
		close(t.allReady)
	}
}

func (t *readyTracker) readyCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.readyAt)
}

func (t *readyTracker) allReadyAt() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

func (t *readyTracker) latencies() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []time.Duration
	for name, r := range t.readyAt {
		if c, ok := t.createdAt[name]; ok {
			out = append(out, r.Sub(c))
		}
	}
	slices.Sort(out)
	return out
}

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p+99)/100 - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// reconcileTotal reads controller-runtime's reconcile counter of the
// WebhookEndpoint controller (the manager runs in this process).
func reconcileTotal() float64 {
	return gatherSum("controller_runtime_reconcile_total", "controller", endpointCtrlName)
}

// queueIdle is true when the WebhookEndpoint controller has nothing queued
// and nothing running.
func queueIdle() bool {
	return gatherSum("workqueue_depth", "name", endpointCtrlName) == 0 &&
		gatherSum("controller_runtime_active_workers", "controller", endpointCtrlName) == 0
}

func gatherSum(family, label, value string) float64 {
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		return -1
	}
	var total float64
	for _, f := range families {
		if f.GetName() != family {
			continue
		}
		for _, m := range f.GetMetric() {
			match := false
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					match = true
				}
			}
			if !match {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				total += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				total += m.GetGauge().GetValue()
			}
		}
	}
	return total
}

func forEach(ctx context.Context, n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()) }
func ms(d time.Duration) string   { return strconv.FormatInt(d.Milliseconds(), 10) }

func perEndpoint(n int, total float64) string { return fmt.Sprintf("%.2f", total/float64(n)) }

func kindsCell(c apiCounts) string {
	var parts []string
	for _, k := range writeKinds {
		parts = append(parts, fmt.Sprintf("%s %d", k, c.writes[k]))
	}
	return strings.Join(parts, ", ")
}

func cpuCell(u cpuUse) string {
	if !u.ok || u.wall <= 0 {
		return "n/a"
	}
	share := func(d time.Duration) string { return fmt.Sprintf("%.1f", d.Seconds()) }
	avail := u.wall.Seconds() * float64(runtime.NumCPU())
	return fmt.Sprintf("%.0f%% of %s CPU-s: apiserver %s, etcd %s, manager+load %s, rest of machine %s",
		100*u.machine.Seconds()/avail, share(time.Duration(avail*float64(time.Second))),
		share(u.children["kube-apiserver"]), share(u.children["etcd"]), share(u.self), share(u.rest()))
}

func controllerSection(results []scaleResult) Section {
	var b strings.Builder
	small, big := results[0], results[len(results)-1]
	fmt.Fprintf(&b, "Creates WebhookEndpoints (https `url`, `events: [\"*\"]`, no `secretRef`, so each gets a generated signing Secret) "+
		"in one namespace against a local kube-apiserver + etcd (envtest, binaries from `bin/`, loopback), first %d as a warm-up/baseline, then %d "+
		"in another namespace, and counts the API requests of the manager.\n\n", small.n, big.n)
	b.WriteString("Settings:\n\n")
	fmt.Fprintf(&b, "- Manager: in-process `manager.New` + `manager.Setup`, `MaxConcurrentRecon` (`--concurrent`) **%d**, client QPS **%d** / burst **%d** "+
		"(client-go's default 20/30 would dominate every figure), metrics and probes off, sync period 10 h. "+
		"Its transport is wrapped to count requests: POST/PUT/PATCH/DELETE are writes, split by resource path.\n", ctrlConcurrency, ctrlQPS, ctrlBurst)
	fmt.Fprintf(&b, "- Load: a separate, uncounted client (QPS %d / burst %d) creates the endpoints from %d goroutines as fast as it can; "+
		"an uncounted informer (watch) notes when each endpoint first reports `Ready=True` with the condition's `observedGeneration` = `generation`. "+
		"**All Ready** is the time from the first create to the last such observation.\n", loadQPS, loadBurst, createWorkers)
	fmt.Fprintf(&b, "- **Settled** = the controller's queue is empty, no reconcile runs and the manager has written nothing for %s. "+
		"At all Ready the queue still holds the second reconcile of many endpoints (their own new Secret enqueues them), so settling takes a moment; "+
		"its writes (Events emitted just before all Ready and sent asynchronously) are shown as the tail. The settled window is the %s after that.\n",
		settleQuiet, settledWindow)
	fmt.Fprintf(&b, "- **Resync pass**: the uncounted client adds a label to every generated Secret, which makes every endpoint reconcile once more "+
		"without any change; counted until the queue drains plus %s for late Events.\n", passQuietPeriod)
	b.WriteString("- The machine is shared: other engineers compile on the same 2 cores during runs, and kube-apiserver, etcd, the manager and the load " +
		"generator share them too. The CPU column splits the machine's busy time during convergence by process (from /proc); " +
		"\"rest of machine\" is other people's work. Expect run-to-run noise of tens of percent in the times; the counts are stable.\n\n")

	b.WriteString("Convergence (first create → all Ready):\n\n")
	var rows [][]string
	for _, r := range results {
		rows = append(rows, []string{
			strconv.Itoa(r.n), secs(r.create), "**" + secs(r.ready) + "**",
			fmt.Sprintf("%s / %s / %s", ms(r.p50), ms(r.p95), ms(r.pmax)),
			kindsCell(r.conv), strconv.Itoa(r.conv.totalWrites()),
			fmt.Sprintf("%.0f", r.convRec), strconv.Itoa(r.conv.reads["secrets"]), cpuCell(r.cpu),
		})
	}
	b.WriteString(Table([]string{"endpoints", "create (s)", "all Ready (s)", "create→Ready p50 / p95 / max (ms)",
		"writes by kind", "writes", "reconciles", "Secret GETs", "CPU, first create → all Ready"}, rows))

	b.WriteString("\nSettling and settled:\n\n")
	rows = nil
	for _, r := range results {
		all := r.conv.totalWrites() + r.tail.totalWrites()
		rec := r.convRec + r.tailRec
		rows = append(rows, []string{
			strconv.Itoa(r.n), secs(r.settleAfter),
			fmt.Sprintf("%d (%s)", r.tail.totalWrites(), kindsCell(r.tail)), fmt.Sprintf("%.0f", r.tailRec),
			fmt.Sprintf("%d = **%s**/endpoint", all, perEndpoint(r.n, float64(all))), fmt.Sprintf("%.0f = %s/endpoint", rec, perEndpoint(r.n, rec)),
			strconv.Itoa(r.conv.errs + r.tail.errs),
			fmt.Sprintf("**%d** (%s)", r.settled.totalWrites(), kindsCell(r.settled)), fmt.Sprintf("%.0f", r.settledRec),
		})
	}
	b.WriteString(Table([]string{"endpoints", "all Ready → settled (s)", "tail writes", "tail reconciles",
		"writes, create → settled", "reconciles, create → settled", "failed requests", fmt.Sprintf("writes in %s settled", settledWindow), "reconciles settled"}, rows))

	b.WriteString("\nResync pass (every endpoint reconciles once more, nothing changed):\n\n")
	rows = nil
	for _, r := range results {
		rows = append(rows, []string{
			strconv.Itoa(r.n), strconv.Itoa(r.touched), fmt.Sprintf("%.0f", r.passRec), secs(r.passDur),
			fmt.Sprintf("**%d** (%s)", r.pass.totalWrites(), kindsCell(r.pass)), strconv.Itoa(r.pass.reads["secrets"]),
			fmt.Sprintf("%d / %d", r.readyAfterPass, r.n),
		})
	}
	b.WriteString(Table([]string{"endpoints", "Secrets touched", "reconciles", "drained (s)", "writes", "Secret GETs", "Ready after"}, rows))

	allWrites := func(r scaleResult) int { return r.conv.totalWrites() + r.tail.totalWrites() }
	fmt.Fprintf(&b, "\nScaling: %d× the endpoints took %.1f× the time to all Ready (%.1f ms per endpoint at %d, %.1f ms at %d) and made %.2f× the writes. "+
		"The %d run goes first, against a fresh API server, and pays its warm-up: its creates ran at %.0f/s against %.0f/s at %d, "+
		"with the CPU far from saturated (the cause is not broken down here). Its per-endpoint time is an upper bound rather than a clean baseline; "+
		"the %d row is the one to track.\n",
		big.n/small.n, big.ready.Seconds()/small.ready.Seconds(),
		1000*small.ready.Seconds()/float64(small.n), small.n, 1000*big.ready.Seconds()/float64(big.n), big.n,
		float64(allWrites(big))/float64(max(1, allWrites(small))), small.n,
		float64(small.n)/small.create.Seconds(), float64(big.n)/big.create.Seconds(), big.n, big.n)
	for _, r := range results {
		for _, c := range []apiCounts{r.conv, r.tail, r.settled, r.pass} {
			for k, v := range c.other {
				fmt.Fprintf(&b, "\nOther writes at %d endpoints: %s × %d.\n", r.n, k, v)
			}
		}
	}

	b.WriteString("\nInterpretation:\n\n")
	fmt.Fprintf(&b, "- The floor is 4 writes per endpoint: create its Secret, apply its status once, and two Events (`SecretGenerated`, then `Valid`). "+
		"This run made %s per endpoint at %d and %s at %d; more than 4 would mean repeated status applies (a reconcile on a stale cached endpoint) "+
		"or retried conflicts.\n", perEndpoint(big.n, float64(allWrites(big))), big.n, perEndpoint(small.n, float64(allWrites(small))), small.n)
	b.WriteString("- Every endpoint reconciles twice: once for its creation and once because its own new Secret (watched by metadata) enqueues it; " +
		"the second finds nothing to change and writes nothing, but GETs the Secret from the API server (Secrets are never cached by design). " +
		"The resync pass shows the same steady-state cost: one GET and no write per endpoint.\n")
	fmt.Fprintf(&b, "- Time to all Ready is bounded by CPU: kube-apiserver and etcd take most of it, on cores shared with the rest of the machine, "+
		"not by the reconcile concurrency of %d or by client-side throttling (raised above). With less foreign load the same run is faster; "+
		"compare the \"rest of machine\" share before reading a trend into the times.\n", ctrlConcurrency)

	var goals []Goal
	goals = append(goals, Goal{
		Text:     fmt.Sprintf("%d endpoints all Ready in ≤ %s on 2 cores", goalEndpoints, readyGoal),
		Measured: fmt.Sprintf("%s s on %d CPUs", secs(big.ready), runtime.NumCPU()),
		Pass:     big.n == goalEndpoints && big.ready <= readyGoal,
	})
	settledWrites, passStatus, passWrites := 0, 0, 0
	for _, r := range results {
		settledWrites += r.settled.totalWrites()
		passStatus += r.pass.writes[kindStatus]
		passWrites += r.pass.totalWrites()
	}
	goals = append(goals, Goal{
		Text:     fmt.Sprintf("zero manager writes once settled (%s window, both runs)", settledWindow),
		Measured: fmt.Sprintf("%d writes", settledWrites),
		Pass:     settledWrites == 0,
	})
	goals = append(goals, Goal{
		Text:     "zero endpoint status writes when every endpoint reconciles again without changes (resync pass, both runs)",
		Measured: fmt.Sprintf("%d status writes, %d writes in all", passStatus, passWrites),
		Pass:     passStatus == 0,
	})
	return Section{Body: b.String(), Goals: goals}
}
