package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mira/mira-operator/internal/events"
	"github.com/mira/mira-operator/internal/queue"
)

// The durability floor: the JetStream steps the delivery contract requires
// for one delivery, written the shortest way with nats.go and net/http and
// none of Mira's code (no Kubernetes, registry, filters, stats, status or
// delivery log encoding), on the same embedded server, with the same
// storage settings as the product's streams and the same in-flight bound.
//
// Per event, as in the product:
//  1. a synchronous publish into a file-backed events stream, with a
//     message id (24 h dedupe window): "202 only once stored";
//  2. a pull consumer fans it out: an async publish of the delivery into a
//     file-backed work-queue stream (message id, 2 min window), awaited,
//     then the event is acked;
//  3. the endpoint's consumer (in memory) hands the delivery to one of 64
//     workers, which POSTs the signed body to the consumer and stores the
//     outcome (a ~300-byte JSON record created in a file-backed key-value
//     bucket) before acking: "no ack before the outcome is recorded".
//
// Whatever the receiver costs above this floor is Mira's own work; this
// floor is what any implementation keeping those rules pays here.
const (
	floorEventsStream = "BENCH_FLOOR_EVENTS"
	floorDlvStream    = "BENCH_FLOOR_DELIVERIES"
	floorBucket       = "bench_floor_log"
	floorToken        = "floor-bench-token"
)

type floorRecord struct {
	ID         string    `json:"id"`
	Endpoint   string    `json:"endpoint"`
	EventType  string    `json:"eventType"`
	State      string    `json:"state"`
	StatusCode int       `json:"statusCode"`
	Attempts   int       `json:"attempts"`
	Created    time.Time `json:"created"`
	Attempted  time.Time `json:"attempted"`
	DurationMS float64   `json:"durationMs"`
	Response   string    `json:"response"`
}

// floorThroughput runs n events through the floor to endpoints endpoints
// (one event type each, conc workers each), publishing from publishers
// goroutines, and waits until the consumer has every delivery.
func floorThroughput(ctx context.Context, d *deliveryEnv, n, endpoints, conc, publishers int, profile string) (throughput, error) {
	f, err := startFloor(ctx, d, endpoints, conc)
	if err != nil {
		return throughput{}, err
	}
	defer f.close()
	if _, err := f.run(ctx, d, 400, publishers, "/floor-warm/", ""); err != nil {
		return throughput{}, fmt.Errorf("warm-up: %w", err)
	}
	return f.run(ctx, d, n, publishers, "/floor/", profile)
}

// startFloor creates the floor's streams, bucket and consumers on the
// receiver's JetStream server and starts consuming.
func startFloor(ctx context.Context, d *deliveryEnv, endpoints, conc int) (*floor, error) {
	js, err := jetstream.New(d.recv.NATS)
	if err != nil {
		return nil, err
	}
	f := &floor{js: js, url: d.sink.url, conc: conc, endpoints: endpoints, client: rawClient(conc * endpoints),
		secret: []byte("floor-signing-secret-32-bytes-ok")}
	if err := f.setup(ctx, endpoints); err != nil {
		f.teardown()
		return nil, err
	}
	if err := f.start(ctx, endpoints); err != nil {
		f.close()
		return nil, err
	}
	return f, nil
}

func (f *floor) close() {
	f.stop()
	f.client.CloseIdleConnections()
	f.teardown()
}

// run publishes n events in process and waits for their deliveries.
func (f *floor) run(ctx context.Context, d *deliveryEnv, n, publishers int, prefix string, profile string) (throughput, error) {
	events, ids := make([][]byte, n), make([]string, n)
	for i, ev := range benchEvents("bench-floor", n, "report.completed") {
		ev.Type = strconv.Itoa(i % f.endpoints) // the floor routes by type alone
		b, err := json.Marshal(ev)
		if err != nil {
			return throughput{}, err
		}
		events[i], ids[i] = b, ev.ID
	}
	d.sink.reset(prefix, n)
	f.setPrefix(prefix)
	conns := d.sink.conns.Load()
	stopProfile, err := startCPUProfile(profile)
	if err != nil {
		return throughput{}, err
	}
	defer stopProfile()
	cpu0 := sampleCPU()
	t0 := time.Now()
	err = forEach(ctx, n, publishers, func(i int) error {
		return f.publish(ctx, i%f.endpoints, ids[i], events[i])
	})
	pub := time.Since(t0)
	if err == nil {
		err = d.sink.wait(ctx, dlvWait)
	}
	cpu := sampleCPU().since(cpu0)
	stopProfile()
	if err == nil {
		err = f.failure()
	}
	if err != nil {
		return throughput{}, err
	}
	snap := d.sink.snapshot()
	return throughput{n: n, dur: snap.last.Sub(t0), publish: pub, conns: d.sink.conns.Load() - conns, cpu: cpu, dups: snap.dups}, nil
}

// publish stores one event: a synchronous publish with its id.
func (f *floor) publish(ctx context.Context, endpoint int, id string, event []byte) error {
	m := &nats.Msg{Subject: "bench.floor.events." + strconv.Itoa(endpoint), Data: event, Header: nats.Header{}}
	_, err := f.js.PublishMsg(ctx, m, jetstream.WithMsgID(id))
	return err
}

// ServeHTTP is the floor's ingest for the separate-process scenario: a
// bearer token compared in constant time, the body read with a bound,
// wrapped as an event with a fresh id, stored, then 202.
func (f *floor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+floorToken)) != 1 {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	now := time.Now()
	id := events.NewEventID(now)
	ev, err := json.Marshal(floorEvent{ID: id, Type: "0", Data: data, Time: now})
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := f.publish(r.Context(), 0, id, ev); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

type floor struct {
	endpoints int
	js        jetstream.JetStream
	kv        jetstream.KeyValue
	url       string
	prefix    atomic.Pointer[string] // sink path prefix of the current run; workers read it
	conc      int
	client    *http.Client
	secret    []byte

	mu  sync.Mutex
	err error
	ccs []jetstream.ConsumeContext
	wg  sync.WaitGroup
}

// setPrefix points the deliveries at the sink paths of the next run.
func (f *floor) setPrefix(p string) { f.prefix.Store(&p) }

func (f *floor) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *floor) failure() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *floor) setup(ctx context.Context, endpoints int) error {
	f.teardown()
	for _, s := range []jetstream.StreamConfig{
		{Name: floorEventsStream, Subjects: []string{"bench.floor.events.>"}, Duplicates: queue.DuplicateWindow},
		{Name: floorDlvStream, Subjects: []string{"bench.floor.deliveries.>"}, Duplicates: queue.DeliveriesDuplicateWindow,
			Retention: jetstream.WorkQueuePolicy},
	} {
		s.Storage = jetstream.FileStorage
		s.Discard = jetstream.DiscardNew
		if _, err := f.js.CreateStream(ctx, s); err != nil {
			return fmt.Errorf("floor stream %s: %w", s.Name, err)
		}
	}
	kv, err := f.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: floorBucket, Storage: jetstream.FileStorage, History: 1, TTL: 24 * time.Hour})
	if err != nil {
		return fmt.Errorf("floor bucket: %w", err)
	}
	f.kv = kv
	if _, err := f.js.CreateConsumer(ctx, floorEventsStream, jetstream.ConsumerConfig{Durable: "fanout", AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: queue.DefaultAckWait, MaxAckPending: 10_000}); err != nil {
		return fmt.Errorf("floor fan-out consumer: %w", err)
	}
	for k := range endpoints {
		if _, err := f.js.CreateConsumer(ctx, floorDlvStream, jetstream.ConsumerConfig{Durable: "endpoint-" + strconv.Itoa(k),
			FilterSubject: "bench.floor.deliveries." + strconv.Itoa(k), AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: queue.DefaultAckWait, MaxAckPending: f.conc, MemoryStorage: true}); err != nil {
			return fmt.Errorf("floor endpoint consumer: %w", err)
		}
	}
	return nil
}

func (f *floor) teardown() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = f.js.DeleteStream(ctx, floorEventsStream)
	_ = f.js.DeleteStream(ctx, floorDlvStream)
	_ = f.js.DeleteKeyValue(ctx, floorBucket)
}

// start runs the fan-out consumer (32 workers, the receiver's
// --fanout-workers default) and one consumer per endpoint (conc workers).
// Each consumer's callback blocks while its workers are busy, so no more
// than the workers' count is in flight per consumer.
func (f *floor) start(ctx context.Context, endpoints int) error {
	consume := func(stream, name string, workers, batch int, handle func(jetstream.Msg)) error {
		cons, err := f.js.Consumer(ctx, stream, name)
		if err != nil {
			return err
		}
		sem := make(chan struct{}, workers)
		cc, err := cons.Consume(func(m jetstream.Msg) {
			sem <- struct{}{}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer func() { <-sem }()
				handle(m)
			}()
		}, jetstream.PullMaxMessages(batch))
		if err != nil {
			return err
		}
		f.ccs = append(f.ccs, cc)
		return nil
	}
	if err := consume(floorEventsStream, "fanout", 32, 64, func(m jetstream.Msg) { f.fanOut(ctx, m) }); err != nil {
		return err
	}
	for k := range endpoints {
		if err := consume(floorDlvStream, "endpoint-"+strconv.Itoa(k), f.conc, f.conc, func(m jetstream.Msg) { f.deliver(ctx, m) }); err != nil {
			return err
		}
	}
	return nil
}

func (f *floor) stop() {
	for _, cc := range f.ccs {
		cc.Stop()
	}
	f.wg.Wait()
}

type floorEvent struct {
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
	Time time.Time       `json:"time"`
}

func (f *floor) fanOut(ctx context.Context, m jetstream.Msg) {
	var ev floorEvent
	if err := json.Unmarshal(m.Data(), &ev); err != nil {
		f.fail(fmt.Errorf("floor: decode event: %w", err))
		_ = m.Term()
		return
	}
	body, err := json.Marshal(map[string]any{"type": "report.completed", "timestamp": ev.Time, "data": ev.Data})
	if err != nil {
		f.fail(err)
		return
	}
	dm := &nats.Msg{Subject: "bench.floor.deliveries." + ev.Type, Data: body, Header: nats.Header{}}
	dm.Header.Set("Floor-Event", ev.ID)
	fut, err := f.js.PublishMsgAsync(dm, jetstream.WithMsgID(ev.ID+"-"+ev.Type))
	if err != nil {
		f.fail(err)
		_ = m.Nak()
		return
	}
	select {
	case <-fut.Ok():
		_ = m.Ack()
	case err := <-fut.Err():
		f.fail(err)
		_ = m.Nak()
	case <-ctx.Done():
	}
}

func (f *floor) deliver(ctx context.Context, m jetstream.Msg) {
	id := m.Headers().Get("Floor-Event")
	endpoint := m.Subject()[len("bench.floor.deliveries."):]
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, f.secret)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(m.Data())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url+*f.prefix.Load()+endpoint, bytes.NewReader(m.Data()))
	if err != nil {
		f.fail(err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	start := time.Now()
	resp, err := f.client.Do(req)
	if err != nil {
		f.fail(err)
		_ = m.Nak()
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	rec, err := json.Marshal(floorRecord{ID: id, Endpoint: endpoint, EventType: "report.completed", State: "Succeeded",
		StatusCode: resp.StatusCode, Attempts: 1, Created: start, Attempted: start,
		DurationMS: float64(time.Since(start).Microseconds()) / 1000, Response: resp.Status})
	if err != nil {
		f.fail(err)
		return
	}
	if _, err := f.kv.Create(ctx, "e"+endpoint+"."+id, rec); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		f.fail(fmt.Errorf("floor: store outcome: %w", err))
		_ = m.Nak()
		return
	}
	_ = m.Ack()
}
