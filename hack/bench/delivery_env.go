package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/delivery"
	"github.com/mira/mira-operator/internal/endpoints"
	"github.com/mira/mira-operator/internal/events"
	"github.com/mira/mira-operator/internal/manager"
	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/receiver"
	"github.com/mira/mira-operator/internal/testenv"
)

// sink is the loopback consumer every measurement of the delivery suite
// posts to: a plain net/http server on 127.0.0.1 answering 204 with
// keep-alive. Paths under /hang/ hold the request until the client gives up
// (its attempt timeout) or the sink is closed.
type sink struct {
	srv   *http.Server
	url   string
	conns atomic.Int64 // TCP connections accepted
	// connsBy counts accepted connections per listener address; endpoints
	// given a listener of their own (listen) are counted separately.
	connsBy sync.Map     // local address → *atomic.Int64
	hangs   atomic.Int64 // requests to /hang/ paths
	release chan struct{}

	mu     sync.Mutex
	prefix string               // paths counted towards want
	seen   map[string]time.Time // webhook-id → first receive time
	byPath map[string]int       // distinct ids per path
	lastBy map[string]time.Time // last first-receive per path
	dups   int                  // repeated webhook-ids
	count  int                  // distinct ids under prefix
	last   time.Time            // last first-receive under prefix
	want   int
	done   chan struct{}
}

func startSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{url: "http://" + ln.Addr().String(), release: make(chan struct{})}
	s.reset("", 0)
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.conns.Add(1)
				if n, ok := s.connsBy.Load(c.LocalAddr().String()); ok {
					n.(*atomic.Int64).Add(1)
				}
			}
		},
	}
	go s.serve(ln)
	return s, nil
}

// listen serves the sink on one more loopback port and returns its base
// URL; connsAt counts the connections accepted on it, so an endpoint
// pointed there has its connections counted on their own (a transport pools
// connections per host:port).
func (s *sink) listen() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	s.connsBy.Store(ln.Addr().String(), new(atomic.Int64))
	go s.serve(ln)
	return "http://" + ln.Addr().String(), nil
}

// serve serves ln under the profiler label part=sink, which every
// connection's goroutine inherits: a CPU profile tells the consumer's share
// apart from the receiver's (see sinkShare).
func (s *sink) serve(ln net.Listener) {
	pprof.Do(context.Background(), pprof.Labels(profilePart, partSink), func(context.Context) { _ = s.srv.Serve(ln) })
}

// connsAt is the number of connections accepted on a listen URL.
func (s *sink) connsAt(base string) int64 {
	if n, ok := s.connsBy.Load(strings.TrimPrefix(base, "http://")); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

func (s *sink) close() {
	close(s.release)
	_ = s.srv.Close()
}

// reset starts counting distinct webhook-ids under prefix; done closes when
// want of them arrived.
func (s *sink) reset(prefix string, want int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prefix, s.want, s.count, s.dups = prefix, want, 0, 0
	s.seen = make(map[string]time.Time, want)
	s.byPath, s.lastBy = map[string]int{}, map[string]time.Time{}
	s.last = time.Time{}
	s.done = make(chan struct{})
	if want == 0 {
		close(s.done)
	}
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	now := time.Now()
	if strings.HasPrefix(r.URL.Path, "/hang/") {
		s.hangs.Add(1)
		select {
		case <-r.Context().Done():
		case <-s.release:
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	id := r.Header.Get("webhook-id")
	s.mu.Lock()
	if _, dup := s.seen[id]; dup {
		s.dups++
	} else {
		s.seen[id] = now
		s.byPath[r.URL.Path]++
		s.lastBy[r.URL.Path] = now
		if strings.HasPrefix(r.URL.Path, s.prefix) {
			s.count++
			s.last = now
			if s.count == s.want {
				close(s.done)
			}
		}
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// wait blocks until the wanted ids arrived, ctx ends or timeout passes.
func (s *sink) wait(ctx context.Context, timeout time.Duration) error {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(timeout):
		s.mu.Lock()
		defer s.mu.Unlock()
		return fmt.Errorf("consumer got %d of %d deliveries within %s", s.count, s.want, timeout)
	}
}

type sinkSnapshot struct {
	seen   map[string]time.Time
	byPath map[string]int
	lastBy map[string]time.Time
	count  int
	dups   int
	last   time.Time
}

func (s *sink) snapshot() sinkSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sinkSnapshot{seen: s.seen, byPath: clone(s.byPath), lastBy: maps2(s.lastBy), count: s.count, dups: s.dups, last: s.last}
}

func maps2(m map[string]time.Time) map[string]time.Time {
	out := make(map[string]time.Time, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// deliveryEnv is the control plane, the controllers, one in-process
// receiver and the consumer.
type deliveryEnv struct {
	env     *envtest.Environment
	cfg     *rest.Config
	k8s     client.Client
	recv    *receiver.Receiver
	sink    *sink
	dataDir string
	stop    []func()
}

func (d *deliveryEnv) close() {
	for i := len(d.stop) - 1; i >= 0; i-- {
		d.stop[i]()
	}
}

// receiverOptions are the receiver's flag defaults (BindFlags) with the few
// changes a loopback benchmark needs.
func receiverOptions(dataDir string) receiver.Options {
	var o receiver.Options
	o.BindFlags(flagSetForDefaults())
	o.Listen = "127.0.0.1:0"
	o.MetricsAddr = "0"
	o.DataDir = dataDir
	o.AllowedCIDRs = "127.0.0.0/8" // the consumer is on loopback
	o.ShutdownGrace = 2 * time.Second
	return o
}

func startDeliveryEnv(ctx context.Context) (d *deliveryEnv, err error) {
	d = &deliveryEnv{}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	env, cfg, err := testenv.Start()
	if err != nil {
		return nil, err
	}
	d.env, d.cfg = env, cfg
	d.stop = append(d.stop, func() { _ = env.Stop() })

	// The controllers, so endpoints become Ready. The manager is built here
	// rather than with manager.New so that its controller names may repeat
	// those of the controller suite in the same process.
	sync := 10 * time.Hour
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 manager.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{SyncPeriod: &sync},
		Client:                 client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, err
	}
	mctx, mcancel := context.WithCancel(ctx)
	mdone := make(chan struct{})
	d.stop = append(d.stop, func() { mcancel(); <-mdone })
	if err := manager.Setup(mctx, mgr, manager.Options{AllowInsecureURLs: true, MaxConcurrentRecon: 4, SyncPeriod: sync}); err != nil {
		close(mdone)
		return nil, err
	}
	go func() { defer close(mdone); _ = mgr.Start(mctx) }()

	d.k8s, err = client.New(cfg, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		return nil, err
	}
	d.sink, err = startSink()
	if err != nil {
		return nil, err
	}
	d.stop = append(d.stop, d.sink.close)

	d.dataDir, err = os.MkdirTemp("", "mira-bench-delivery-")
	if err != nil {
		return nil, err
	}
	d.stop = append(d.stop, func() { _ = os.RemoveAll(d.dataDir) })
	rctx, rcancel := context.WithCancel(ctx)
	d.recv, err = receiver.New(rctx, cfg, receiverOptions(filepath.Join(d.dataDir, "parent")), logr.Discard())
	if err != nil {
		rcancel()
		return nil, err
	}
	rdone := make(chan error, 1)
	go func() { rdone <- d.recv.Start(rctx) }()
	d.stop = append(d.stop, func() {
		rcancel()
		if err := <-rdone; err != nil {
			fmt.Fprintln(os.Stderr, "bench: receiver stopped:", err)
		}
		d.recv.Close()
	})
	deadline := time.Now().Add(time.Minute)
	for !d.recv.Ready() {
		if time.Now().After(deadline) {
			return nil, errors.New("receiver did not become ready within a minute")
		}
		select {
		case err := <-rdone:
			return nil, fmt.Errorf("receiver stopped: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return d, nil
}

func (d *deliveryEnv) namespace(ctx context.Context, name string) error {
	return d.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
}

type endpointSpec struct {
	ns, name, path string
	base           string // URL base; empty: the sink's main listener
	events         []string
	concurrency    int32
	timeout        time.Duration
}

// createEndpoints creates the endpoints and waits until the receiver sees
// each of them configured (Ready for its generation).
func (d *deliveryEnv) createEndpoints(ctx context.Context, specs []endpointSpec) ([]types.UID, error) {
	for _, s := range specs {
		pol := &miraapi.DeliveryPolicy{MaxConcurrency: ptr.To(s.concurrency)}
		if s.timeout > 0 {
			pol.Timeout = &metav1.Duration{Duration: s.timeout}
		}
		base := s.base
		if base == "" {
			base = d.sink.url
		}
		w := &miraapi.WebhookEndpoint{
			ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: s.name},
			Spec:       miraapi.WebhookEndpointSpec{URL: base + s.path, Events: s.events, Delivery: pol},
		}
		if err := d.k8s.Create(ctx, w); err != nil {
			return nil, fmt.Errorf("create endpoint %s/%s: %w", s.ns, s.name, err)
		}
	}
	uids := make([]types.UID, len(specs))
	deadline := time.Now().Add(2 * time.Minute)
	for i, s := range specs {
		for {
			if e := d.recv.Registry.Lookup(s.ns, s.name); e != nil && endpoints.Configured(e.Object()) {
				uids[i] = e.UID
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("endpoint %s/%s not configured in the receiver within 2 minutes", s.ns, s.name)
			}
			if err := sleep(ctx, 20*time.Millisecond); err != nil {
				return nil, err
			}
		}
	}
	return uids, nil
}

// deleteEndpoints deletes the endpoints and waits until the receiver
// forgot them, so later events do not fan out to them.
func (d *deliveryEnv) deleteEndpoints(ctx context.Context, specs []endpointSpec) error {
	for _, s := range specs {
		w := &miraapi.WebhookEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: s.name}}
		if err := d.k8s.Delete(ctx, w); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	deadline := time.Now().Add(time.Minute)
	for _, s := range specs {
		for d.recv.Registry.Lookup(s.ns, s.name) != nil {
			if time.Now().After(deadline) {
				return fmt.Errorf("endpoint %s/%s still in the receiver a minute after its deletion", s.ns, s.name)
			}
			if err := sleep(ctx, 20*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

// dispatchFetches is how many times the per-endpoint dispatch consumers
// have handed out a message (first deliveries and redeliveries after a Nak).
func (d *deliveryEnv) dispatchFetches(ctx context.Context) uint64 {
	stream, err := d.recv.JetStream.Stream(ctx, queue.DeliveriesStream)
	if err != nil {
		return 0
	}
	var n uint64
	infos := stream.ListConsumers(ctx)
	for info := range infos.Info() {
		if strings.HasPrefix(info.Name, "dispatch-") {
			n += info.Delivered.Consumer
		}
	}
	return n
}

// benchData is the data of every benchmark event: a report.completed-like
// object with realistic ids.
func benchData(i int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"report_id":"rep_%012d","meeting_id":"mtg_%012d","user_id":"usr_%08d","score":78}`, i, i, i%1000))
}

// benchEvents returns n events of workspace ns, of the given types (round
// robin), with fresh ids.
func benchEvents(ns string, n int, eventTypes ...string) []events.Event {
	now := time.Now()
	evs := make([]events.Event, n)
	for i := range evs {
		evs[i] = events.Event{ID: events.NewEventID(now), Namespace: ns, Type: eventTypes[i%len(eventTypes)], Data: benchData(i), Time: now}
	}
	return evs
}

// deliveryBody is the body a consumer receives for a benchmark event.
func deliveryBody() []byte {
	b, err := delivery.BuildBody(miraapi.EventReportCompleted, benchData(0), time.Now())
	if err != nil {
		panic(err)
	}
	return b
}

// rawClient is the baseline's HTTP client: a plain keep-alive transport
// with an idle pool as large as the concurrency.
func rawClient(concurrency int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy: nil, MaxIdleConns: concurrency, MaxIdleConnsPerHost: concurrency,
		IdleConnTimeout: 90 * time.Second, DisableCompression: true,
	}}
}

func rawPost(c *http.Client, url string, body []byte, id string) error {
	return loadgenPost(c, loadgenConfig{URL: url, Body: body, Want: http.StatusNoContent}, id)
}

// paced calls f(i) for i in [0, rate×dur) at rate calls per second from a
// pool of workers; a slow call delays neither the pace nor other calls
// (up to the pool size).
func paced(ctx context.Context, rate int, dur time.Duration, workers int, f func(i int)) {
	total := int(float64(rate) * dur.Seconds())
	ch := make(chan int, total)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				f(i)
			}
		}()
	}
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	next := 0
	for next < total && ctx.Err() == nil {
		due := min(total, int(time.Since(start)/interval)+1)
		for ; next < due; next++ {
			ch <- next
		}
		time.Sleep(200 * time.Microsecond)
	}
	close(ch)
	wg.Wait()
}

// latencies returns the sorted differences recv[id] − sent[i] for the ids
// that arrived, and how many did not.
func latencies(sent []time.Time, ids []string, recv map[string]time.Time) ([]time.Duration, int) {
	out := make([]time.Duration, 0, len(sent))
	missing := 0
	for i, at := range sent {
		r, ok := recv[ids[i]]
		if !ok || at.IsZero() {
			missing++
			continue
		}
		out = append(out, r.Sub(at))
	}
	slices.Sort(out)
	return out, missing
}

// vmRSS reads a field (VmRSS, VmHWM) of /proc/<pid>/status in bytes.
func vmRSS(pid, field string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	return -1
}

func mib(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

func msf(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

// flagSetForDefaults is a throwaway flag set, for Options.BindFlags to fill
// in the receiver's defaults.
func flagSetForDefaults() *pflag.FlagSet { return pflag.NewFlagSet("receiver", pflag.ContinueOnError) }

// patchWatch notes when StatusWriter.Patches(uid) grows, polling every
// 10 ms, so the gaps between an endpoint's status writes can be checked.
type patchWatch struct {
	stop, done chan struct{}
	times      [][]time.Time
}

func watchPatches(r *receiver.Receiver, uids []types.UID) *patchWatch {
	w := &patchWatch{stop: make(chan struct{}), done: make(chan struct{}), times: make([][]time.Time, len(uids))}
	count := func() []int {
		out := make([]int, len(uids))
		for i, u := range uids {
			out[i] = r.Status.Patches(u)
		}
		return out
	}
	last := count()
	go func() {
		defer close(w.done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case now := <-t.C:
				cur := count()
				for i := range cur {
					for k := last[i]; k < cur[i]; k++ {
						w.times[i] = append(w.times[i], now)
					}
				}
				last = cur
			}
		}
	}()
	return w
}

func (w *patchWatch) finish() [][]time.Time {
	close(w.stop)
	<-w.done
	return w.times
}

// minGap is the shortest time between consecutive writes; -1 with fewer than two.
func minGap(times []time.Time) time.Duration {
	g := time.Duration(-1)
	for i := 1; i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); g < 0 || d < g {
			g = d
		}
	}
	return g
}
