package main

import (
	"context"
	"encoding/json"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/delivery"
	"github.com/mira/mira-operator/internal/fanout"
	"github.com/mira/mira-operator/internal/queue"
)

// The RSS floor: the memory an embedded JetStream server needs to hold the
// same backlog, without the receiver. A child process (this binary, so the
// same executable pages) starts the embedded server as the receiver does
// (queue.StartEmbedded, its store bound from queue.EmbeddedStore), creates
// the same streams and buckets (queue.Ensure with the receiver's default
// bounds), then stores what the receiver stores for the backlog: each event
// in the events stream (synchronous publish, message id) and its delivery
// in the work-queue outbox (the fan-out's message encoding and id), from
// the same number of goroutines. No Kubernetes clients, informers, registry, fan-out,
// dispatcher or HTTP server.

const rssFloorChildEnv = "MIRA_BENCH_DELIVERY_RSS_FLOOR_CHILD"

func init() {
	if os.Getenv(rssFloorChildEnv) == "" {
		return
	}
	os.Exit(rssFloorChildMain())
}

func rssFloorChildMain() int { return rssChildEntry("rss floor child", rssFloorChild) }

func rssFloorChild(c rssChildConfig) (rssChildResult, error) {
	res := rssChildResult{GOMAXPROCS: runtime.GOMAXPROCS(0), SampleMillis: c.Sample.Milliseconds()}
	ctx := context.Background()
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return res, err
	}
	store, err := queue.EmbeddedStore(c.DataDir, 0)
	if err != nil {
		return res, err
	}
	nc, stop, err := startEmbeddedConn(c.DataDir, store)
	if err != nil {
		return res, err
	}
	defer stop()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return res, err
	}
	if err := queue.Ensure(ctx, js, queue.Config{MaxBytes: queue.StreamBytes(store)}); err != nil {
		return res, err
	}
	time.Sleep(time.Second)
	self := strconv.Itoa(os.Getpid())
	res.IdleRSS = vmRSS(self, "VmRSS")

	const uid = "00000000-0000-0000-0000-00000000f100"
	evs := benchEvents(c.Namespace, c.Events, miraapi.EventReportCompleted)
	start := time.Now()
	err = forEach(ctx, len(evs), c.Publish, func(i int) error {
		ev := evs[i]
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		if _, err := js.Publish(ctx, queue.EventSubject(ev.Namespace, ev.Type), b, jetstream.WithMsgID(ev.ID)); err != nil {
			return err
		}
		body, err := delivery.BuildBody(ev.Type, ev.Data, ev.Time)
		if err != nil {
			return err
		}
		// The outbox message as the fan-out writes it (same headers, so
		// the same bytes per message).
		m := fanout.Message{ID: fanout.DeliveryID(ev.ID, uid), EventID: ev.ID, EventType: ev.Type, EndpointUID: uid,
			Namespace: ev.Namespace, Name: c.Endpoint, Body: body, Created: ev.Time}
		_, err = js.PublishMsg(ctx, m.NewMsg(), jetstream.WithMsgID(m.ID))
		return err
	})
	if err != nil {
		return res, err
	}
	res.PublishSecs = time.Since(start).Seconds()
	res.QueuedSecs = res.PublishSecs
	sampleQueued(&res, self, time.Now().Add(c.Sample))
	res.HWM = vmRSS(self, "VmHWM")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapInuse, res.GoSys = ms.HeapInuse, ms.Sys
	if st, err := js.Stream(ctx, queue.DeliveriesStream); err == nil {
		if si, err := st.Info(ctx); err == nil {
			res.StreamMsgs = si.State.Msgs
		}
	}
	return res, nil
}

// runRSSFloorChild runs the RSS floor in a child process.
func runRSSFloorChild(ctx context.Context, c rssChildConfig) (rssChildResult, error) {
	var res rssChildResult
	err := runChild(ctx, "rss floor child", []string{rssFloorChildEnv + "=1"}, c, &res, func() string { return res.Error })
	return res, err
}

// startEmbeddedConn starts an embedded JetStream server in dir (maxStore:
// its store bound, 0 the server's default) and connects to it in-process,
// as the receiver does; stop closes both.
func startEmbeddedConn(dir string, maxStore int64) (nc *nats.Conn, stop func(), err error) {
	ns, err := queue.StartEmbedded(queue.EmbeddedOptions{DataDir: dir, Port: -1, MaxStore: maxStore})
	if err != nil {
		return nil, nil, err
	}
	nc, err = nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		ns.Shutdown()
		return nil, nil, err
	}
	return nc, func() { nc.Close(); ns.Shutdown() }, nil
}
