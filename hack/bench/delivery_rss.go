package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/endpoints"
	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/receiver"
)

// The RSS measurement runs the receiver in a child process of its own (this
// binary re-executed with rssChildEnv set), so that its resident set holds
// the receiver alone: not the control-plane clients, the controllers, the
// consumer and the garbage of the earlier measurements of this process.

const rssChildEnv = "MIRA_BENCH_DELIVERY_RSS_CHILD"

func init() {
	if os.Getenv(rssChildEnv) == "" {
		return
	}
	os.Exit(rssChildMain())
}

type rssChildConfig struct {
	Host      string
	TLS       rest.TLSClientConfig
	Bearer    string
	Namespace string
	Endpoint  string
	Events    int
	Publish   int // publishing goroutines
	DataDir   string
	Sample    time.Duration
	// Settle, when longer than Sample, keeps the child running until that
	// long after everything was queued and samples again at its end: past
	// two of the Go runtime's periodic forced GCs (every 2 minutes when
	// nothing else triggers one; a buffer returned to a sync.Pool, as
	// nats-server does with an expired block cache, is freed by the second
	// GC after its return) and the scavenger returning freed pages.
	Settle   time.Duration
	HeapProf string // where to write a heap profile at the end; empty: none
	MemLimit string // GOMEMLIMIT of the child; empty: none
}

type rssChildResult struct {
	IdleRSS      int64 // receiver started, endpoint configured, nothing queued
	QueuedRSS    int64 // last sample with everything queued
	MaxRSS       int64 // largest sample while queued
	HWM          int64 // VmHWM at the end: the peak, publishing included
	QueuedAnon   int64 // RssAnon at the last sample of the window
	QueuedFile   int64 // RssFile (program text and other mapped files) at the last sample
	SettledRSS   int64 // VmRSS Settle after queued (0: not measured)
	SettledAnon  int64
	SettledFile  int64
	SettledGCs   uint32 // GC cycles between the end of the window and the settled sample
	SettleMillis int64
	HeapInuse    uint64  // Go heap in use at the end
	GoSys        uint64  // memory the Go runtime holds from the OS
	PublishSecs  float64 // publishing the events
	QueuedSecs   float64 // first publish → every delivery in the stream
	StreamMsgs   uint64  // messages in the deliveries stream
	Pending      uint64  // dispatch consumer: not yet handed out
	AckPending   uint64  // dispatch consumer: handed out, not acked (in flight or Nak'd with a delay)
	Fetches      uint64  // dispatch consumer: deliveries including redeliveries
	GOMAXPROCS   int
	Error        string `json:",omitempty"`
	SampleMillis int64
}

func rssChildMain() int {
	ctrl.SetLogger(zap.New(zap.Level(zapcore.ErrorLevel), zap.WriteTo(os.Stderr)))
	return rssChildEntry("rss child", rssChild)
}

// rssChildEntry is a memory child's main: its config as JSON on stdin, its
// result (with the error, if any) as JSON on stdout.
func rssChildEntry(what string, run func(rssChildConfig) (rssChildResult, error)) int {
	var c rssChildConfig
	if err := json.NewDecoder(os.Stdin).Decode(&c); err != nil {
		fmt.Fprintln(os.Stderr, what+": read config:", err)
		return 2
	}
	res, err := run(c)
	if err != nil {
		res.Error = err.Error()
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return 2
	}
	return 0
}

// sampleQueued samples this process's VmRSS every 100 ms until end, then
// notes the anonymous and file-backed parts of the last sample.
func sampleQueued(res *rssChildResult, self string, end time.Time) {
	for time.Now().Before(end) {
		v := vmRSS(self, "VmRSS")
		res.MaxRSS = max(res.MaxRSS, v)
		res.QueuedRSS = v
		time.Sleep(100 * time.Millisecond)
	}
	res.QueuedAnon, res.QueuedFile = vmRSS(self, "RssAnon"), vmRSS(self, "RssFile")
}

func rssChild(c rssChildConfig) (rssChildResult, error) {
	res := rssChildResult{GOMAXPROCS: runtime.GOMAXPROCS(0), SampleMillis: c.Sample.Milliseconds()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := &rest.Config{Host: c.Host, TLSClientConfig: c.TLS, BearerToken: c.Bearer, QPS: 500, Burst: 1000}
	o := receiverOptions(c.DataDir)
	o.WatchNamespace = c.Namespace
	r, err := receiver.New(ctx, cfg, o, logr.Discard())
	if err != nil {
		return res, err
	}
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				fmt.Fprintln(os.Stderr, "bench: receiver stopped:", err)
			}
		case <-time.After(15 * time.Second):
		}
		r.Close()
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		if e := r.Registry.Lookup(c.Namespace, c.Endpoint); r.Ready() && e != nil && endpoints.Configured(e.Object()) {
			break
		}
		if time.Now().After(deadline) {
			return res, errors.New("receiver not ready with the endpoint configured within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second)
	self := strconv.Itoa(os.Getpid())
	res.IdleRSS = vmRSS(self, "VmRSS")

	events := benchEvents(c.Namespace, c.Events, miraapi.EventReportCompleted)
	start := time.Now()
	if err := forEach(ctx, len(events), c.Publish, func(i int) error { return r.Publisher.Publish(ctx, events[i]) }); err != nil {
		return res, err
	}
	res.PublishSecs = time.Since(start).Seconds()

	stream, err := r.JetStream.Stream(ctx, queue.DeliveriesStream)
	if err != nil {
		return res, err
	}
	fan, err := r.JetStream.Consumer(ctx, queue.EventsStream, queue.FanoutConsumer)
	if err != nil {
		return res, err
	}
	deadline = time.Now().Add(3 * time.Minute)
	for {
		si, err1 := stream.Info(ctx)
		fi, err2 := fan.Info(ctx)
		if err1 == nil && err2 == nil && si.State.Msgs >= uint64(c.Events) && fi.NumPending == 0 && fi.NumAckPending == 0 {
			res.StreamMsgs = si.State.Msgs
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("deliveries not all queued within 3 minutes (err %v %v)", err1, err2)
		}
		time.Sleep(100 * time.Millisecond)
	}
	res.QueuedSecs = time.Since(start).Seconds()

	end := time.Now().Add(c.Sample)
	sampleQueued(&res, self, end)
	if c.Settle > c.Sample {
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		time.Sleep(time.Until(end.Add(c.Settle - c.Sample)))
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		res.SettledRSS, res.SettledAnon, res.SettledFile = vmRSS(self, "VmRSS"), vmRSS(self, "RssAnon"), vmRSS(self, "RssFile")
		res.SettledGCs, res.SettleMillis = after.NumGC-before.NumGC, c.Settle.Milliseconds()
	}
	res.HWM = vmRSS(self, "VmHWM")
	if c.HeapProf != "" {
		if f, err := os.Create(c.HeapProf); err == nil {
			_ = pprof.WriteHeapProfile(f)
			_ = f.Close()
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapInuse, res.GoSys = ms.HeapInuse, ms.Sys
	// One dispatch consumer per endpoint: add them up.
	infos := stream.ListConsumers(ctx)
	for info := range infos.Info() {
		if strings.HasPrefix(info.Name, "dispatch-") {
			res.Pending += info.NumPending
			res.AckPending += uint64(info.NumAckPending)
			res.Fetches += info.Delivered.Consumer
		}
	}
	if si, err := stream.Info(ctx); err == nil {
		res.StreamMsgs = si.State.Msgs
	}
	return res, nil
}

// runRSSChild runs the child receiver against the same control plane and
// returns what it measured.
func runRSSChild(ctx context.Context, cfg *rest.Config, c rssChildConfig) (rssChildResult, error) {
	c.Host, c.TLS, c.Bearer = cfg.Host, cfg.TLSClientConfig, cfg.BearerToken
	env := []string{rssChildEnv + "=1"}
	if c.MemLimit != "" {
		env = append(env, "GOMEMLIMIT="+c.MemLimit)
	}
	var res rssChildResult
	err := runChild(ctx, "rss child", env, c, &res, func() string { return res.Error })
	return res, err
}
