package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/mira/mira-operator/test/harness"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/mira/mira-operator/internal/queue"
)

// natsCluster is three nats-server processes clustered on loopback, with
// JetStream on file storage in temporary directories.
type natsCluster struct {
	t       *testing.T
	nodes   []*harness.Process
	client  []int
	cluster []int
	dirs    []string
}

func startNATSCluster(t *testing.T) *natsCluster {
	c := &natsCluster{t: t}
	for i := 0; i < 3; i++ {
		c.client = append(c.client, harness.FreePort(t))
		c.cluster = append(c.cluster, harness.FreePort(t))
		c.dirs = append(c.dirs, filepath.Join(t.TempDir(), "js"))
		c.nodes = append(c.nodes, nil)
	}
	for i := range c.nodes {
		c.startNode(i)
	}
	c.waitJetStream()
	return c
}

func (c *natsCluster) startNode(i int) {
	var routes []string
	for _, p := range c.cluster {
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(p))
	}
	c.nodes[i] = startProcess(c.t, fmt.Sprintf("nats-%d", i), natsServer,
		"-n", fmt.Sprintf("mira-nats-%d", i), "-a", "127.0.0.1", "-p", strconv.Itoa(c.client[i]),
		"-js", "-sd", c.dirs[i], "--cluster_name", "mira",
		"--cluster", "nats://127.0.0.1:"+strconv.Itoa(c.cluster[i]), "--routes", strings.Join(routes, ","))
}

func (c *natsCluster) url() string {
	var us []string
	for _, p := range c.client {
		us = append(us, "nats://127.0.0.1:"+strconv.Itoa(p))
	}
	return strings.Join(us, ",")
}

// waitJetStream waits until the cluster has a JetStream meta leader.
func (c *natsCluster) waitJetStream() {
	eventually(c.t, "NATS cluster with JetStream", 2*time.Minute, func() error {
		nc, err := nats.Connect(c.url(), nats.Timeout(2*time.Second))
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err = js.AccountInfo(ctx)
		return err
	})
}

// statsEntry reads an endpoint's merged stats from the shared bucket.
func statsEntry(ctx context.Context, url string, uid types.UID) (int64, error) {
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	kv, err := js.KeyValue(ctx, queue.EndpointStatsBucket)
	if err != nil {
		return 0, err
	}
	e, err := kv.Get(ctx, string(uid))
	if err != nil {
		return 0, err
	}
	var s struct {
		Counts struct {
			Delivered int64 `json:"delivered"`
		} `json:"counts"`
	}
	err = json.Unmarshal(e.Value(), &s)
	return s.Counts.Delivered, err
}

// Cluster mode: three NATS nodes, streams replicated x3, two receivers with
// --leader-elect sharing the work. During a burst one receiver is SIGKILLed
// (and restarted, as its Deployment would) and one NATS node is killed and
// restarted. Nothing accepted may be lost, and the endpoint's status, written
// by the elected receiver from the merged stats, must converge.
func TestClusterMode(t *testing.T) {
	ctx := context.Background()
	total := scale(2000, 20000)
	setupIntegrations(t, nil)
	startManager(t)
	consumer, w := sink(t, "cluster", "sink")
	cluster := startNATSCluster(t)

	ports := []int{harness.FreePort(t), harness.FreePort(t)}
	urls := []string{"http://127.0.0.1:" + strconv.Itoa(ports[0]), "http://127.0.0.1:" + strconv.Itoa(ports[1])}
	var mu sync.Mutex
	up := []bool{true, true}
	procs := make([]*harness.Process, 2)
	startRecv := func(i int) {
		procs[i] = start(t, fmt.Sprintf("receiver-%d", i), receiverArgs(ports[i],
			"--default-workspace=cluster", "--nats-url="+cluster.url(), "--stream-replicas=3", "--leader-elect", "--leader-election-namespace=mira-system",
			"--leader-elect-lease-duration=15s", "--leader-elect-renew-deadline=10s", "--leader-elect-retry-period=2s")...)
	}
	// One after the other: the first creates the replicated streams.
	for i := range procs {
		startRecv(i)
		waitReady(t, urls[i], procs[i])
	}
	live := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for i, u := range urls {
			if up[i] {
				out = append(out, u)
			}
		}
		return out
	}

	began := time.Now()
	third := total / 3
	retries := burst(t, live, 0, third, 32, 5*time.Minute)

	// SIGKILL receiver 1 mid-burst; receiver 0 keeps taking traffic, and
	// receiver 1's unacknowledged deliveries come back to receiver 0 after the
	// ack wait.
	mu.Lock()
	up[1] = false
	mu.Unlock()
	procs[1].Kill()
	t.Logf("SIGKILL receiver-1 after %d events, %d distinct delivered", third, consumer.Distinct())
	retries += burst(t, live, third, 2*third, 32, 5*time.Minute)
	startRecv(1)
	waitReady(t, urls[1], procs[1])
	mu.Lock()
	up[1] = true
	mu.Unlock()

	// Kill one NATS node (not the one in the middle of a write on purpose:
	// any node may lead a stream) and restart it while the burst goes on.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		retries += burst(t, live, 2*third, total, 32, 5*time.Minute)
	}()
	eventually(t, "burst under way", time.Minute, func() error {
		if consumer.Distinct() < 2*third+third/10 {
			return fmt.Errorf("%d delivered", consumer.Distinct())
		}
		return nil
	})
	cluster.nodes[2].Kill()
	t.Logf("SIGKILL nats-2 at %d distinct delivered", consumer.Distinct())
	cluster.startNode(2)
	wg.Wait()
	sent := time.Since(began)

	eventually(t, "every accepted event delivered", scale(4*time.Minute, 10*time.Minute), func() error {
		if d := consumer.Distinct(); d < total {
			return fmt.Errorf("%d of %d distinct deliveries so far", d, total)
		}
		return nil
	})
	elapsed := time.Since(began)
	for i, p := range procs {
		if p.Exited() {
			t.Errorf("receiver-%d exited: see %s", i, p.Log)
		}
	}
	lease := &coordinationv1.Lease{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: "mira-system", Name: "mira-receiver.platform.mira.io"}, lease); err != nil {
		t.Errorf("receiver Lease: %v", err)
	}
	holder := ""
	if lease.Spec.HolderIdentity != nil {
		holder = *lease.Spec.HolderIdentity
	}

	// Convergence: the status shows the merged stats; once deliveries are
	// done the merged count stops moving and the status equals it.
	var merged, status int64
	eventually(t, "status converges to the merged stats", 2*time.Minute, func() error {
		var err error
		if merged, err = statsEntry(ctx, cluster.url(), w.UID); err != nil {
			return err
		}
		if status, err = delivered(t, w); err != nil {
			return err
		}
		if status != merged {
			return fmt.Errorf("status delivered %d, merged stats %d", status, merged)
		}
		return nil
	})
	distinct := consumer.Distinct()
	report(t, "cluster", map[string]any{
		"events": total, "delivered": distinct, "duplicates": consumer.Duplicates(), "lost": total - distinct,
		"sender_retries": retries, "status_delivered": status, "merged_delivered": merged,
		"send_seconds": int(sent.Seconds()), "seconds": int(elapsed.Seconds()), "leader": holder,
		"bad_signatures": consumer.BadSignatures(),
	})
	if distinct != total {
		t.Errorf("lost %d deliveries", total-distinct)
	}
	if consumer.BadSignatures() != 0 {
		t.Errorf("%d deliveries had an invalid signature", consumer.BadSignatures())
	}
	// The SIGKILLed receiver loses the stats it had not merged yet (at most
	// one status interval's worth); every delivery is still in the delivery
	// log. docs/reliability.md reports the gap.
	if status > int64(distinct) {
		t.Errorf("status counts %d delivered, more than the %d distinct deliveries", status, distinct)
	}
	t.Logf("status counts %d of %d distinct deliveries: %d were recorded by the SIGKILLed receiver but not merged yet", status, distinct, int64(distinct)-status)
}
