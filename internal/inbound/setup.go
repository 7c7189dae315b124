package inbound

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go/jetstream"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/mira/mira-operator/controllers"
	"github.com/mira/mira-operator/internal/billing"
	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/receiver"
)

// Inbound is the inbound side of one receiver: its routes and its pipeline.
type Inbound struct {
	o            Options
	js           jetstream.JetStream
	api          *receiver.API
	integrations *receiver.Integrations
	publisher    *receiver.Publisher
	reports      jetstream.KeyValue
	state        jetstream.KeyValue
	billing      *billing.Processor
	verifier     *billing.Verifier
	stripeSecret atomic.Pointer[string]
	templates    client.Reader
	metrics      *metrics
	log          logr.Logger
	locks        [64]sync.Mutex
	// RecallHTTP, when set, sends the Recall API requests (tests).
	RecallHTTP *http.Client
}

// Setup plugs the inbound routes and pipeline workers into r; call it after
// receiver.New and before Start. It ensures the billing bucket and registers
// the ScoringTemplate default index on the receiver's cache.
func Setup(r *receiver.Receiver, o Options) error {
	_, err := New(r, o)
	return err
}

// New is Setup that also returns the Inbound, for tests.
func New(r *receiver.Receiver, o Options) (*Inbound, error) {
	o, err := o.withDefaults(r)
	if err != nil {
		return nil, err
	}
	if o.Registerer == nil {
		o.Registerer = crmetrics.Registry
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in := &Inbound{
		o: o, js: r.JetStream, api: r.API, integrations: r.API.Integrations, publisher: r.Publisher,
		templates: r.Manager.GetCache(), log: r.Logger.WithName("inbound"),
	}
	kvBilling, err := billing.EnsureBucket(ctx, r.JetStream, max(1, r.Options.Replicas))
	if err != nil {
		return nil, err
	}
	if in.billing, err = billing.NewProcessor(kvBilling, o.Registerer); err != nil {
		return nil, err
	}
	in.billing.SetSubscriptionSource(&billing.StripeSubscriptions{URL: o.StripeAPIURL, Key: in.stripeAPIKey})
	if in.verifier, err = billing.NewVerifier(billing.VerifierOptions{
		Tolerance: o.Tolerance, APIVersionPolicy: o.StripeAPIVersionPolicy,
	}); err != nil {
		return nil, err
	}
	empty := ""
	in.stripeSecret.Store(&empty)
	if in.reports, err = r.JetStream.KeyValue(ctx, queue.ReportsBucket); err != nil {
		return nil, fmt.Errorf("open reports bucket: %w", err)
	}
	if in.state, err = r.JetStream.KeyValue(ctx, queue.StateBucket); err != nil {
		return nil, fmt.Errorf("open pipeline state bucket: %w", err)
	}
	if in.metrics, err = newMetrics(o.Registerer); err != nil {
		return nil, err
	}
	if err := controllers.IndexDefaultTemplates(ctx, r.Manager); err != nil {
		return nil, err
	}
	r.Routes = append(r.Routes, in.Routes)
	r.Runnables = append(r.Runnables, manager.RunnableFunc(in.Run))
	in.log.Info("inbound routes and pipeline configured", "recallAPI", o.RecallAPIURL,
		"stripeAPIVersionPolicy", o.StripeAPIVersionPolicy, "templatesNamespace", o.TemplatesNamespace)
	return in, nil
}
