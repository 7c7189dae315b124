package dispatch

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/mira/mira-operator/internal/endpoints"
	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/queue/queuetest"
)

// A lane with free workers must end when it is stopped (an endpoint was
// deleted, its concurrency changed, or the receiver shuts down). It used to
// spin on failing fetches with the cancelled context, so stop never
// returned: the dispatcher stopped syncing lanes and the receiver's
// shutdown ran into its grace period.
func TestLaneStopsWithFreeWorkers(t *testing.T) {
	ctx := context.Background()
	d := newTestDispatcher(t)
	var wg sync.WaitGroup
	l := d.startLane(ctx, ctx, "uid-stopped", 4, &wg)
	if l == nil {
		t.Fatal("lane not started")
	}
	stopped := make(chan struct{})
	go func() { l.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("lane.stop did not return: the fetch loop ignores its cancelled context")
	}
	wg.Wait()
}

// newTestDispatcher is a dispatcher on a real, embedded JetStream with the
// streams in place, an empty registry and unregistered metrics.
func newTestDispatcher(t *testing.T) *Dispatcher {
	t.Helper()
	_, js := queuetest.Start(t)
	if err := queue.Ensure(context.Background(), js, queue.Config{}); err != nil {
		t.Fatal(err)
	}
	reg, err := endpoints.NewRegistry(endpoints.RegistryOptions{Reader: fake.NewClientBuilder().Build()})
	if err != nil {
		t.Fatal(err)
	}
	return &Dispatcher{JS: js, Registry: reg, Metrics: NewMetrics(prometheus.NewRegistry()), Now: time.Now, Rand: func() float64 { return 0 }}
}
