package inbound

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go/jetstream"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/mira/mira-operator/internal/billing"
	"github.com/mira/mira-operator/internal/events"
	"github.com/mira/mira-operator/internal/integrations"
	"github.com/mira/mira-operator/internal/queue"
)

// Inbound is the inbound side of one receiver: its routes and its pipeline.
type Inbound struct {
	o            Options
	js           jetstream.JetStream
	integrations *integrations.Secret
	workspaces   *integrations.Workspaces
	// defaultNS is the default workspace, that of the unscoped routes.
	defaultNS string
	// watchNS, when set, is the one other workspace served (--watch-namespace).
	watchNS       string
	known         func(ctx context.Context, ns string) bool
	namespaceAuth func(resource string, next http.Handler) http.Handler
	publisher     events.Publisher
	reports       jetstream.KeyValue
	state         jetstream.KeyValue
	billing       *billing.Processor
	verifiersMu   sync.Mutex
	verifiers     map[string]stripeVerifier
	templates     client.Reader
	metrics       *metrics
	log           logr.Logger
	locks         [64]sync.Mutex
	// RecallHTTP, when set, sends the Recall API requests (tests).
	RecallHTTP *http.Client
}

// Deps are what the inbound side uses of the process that runs it. It
// publishes events through Publisher and knows nothing else of the stages
// after it.
type Deps struct {
	// JetStream holds the inbound stream and the reports, state and billing buckets.
	JetStream jetstream.JetStream
	// Publisher stores the events the pipeline emits.
	Publisher events.Publisher
	// Integrations is the integrations Secret (webhook secrets, API keys,
	// the API token of the token-protected routes).
	Integrations *integrations.Secret
	// Workspaces finds each workspace's integrations Secret; nil: every
	// workspace's Secret is mira-integrations in its namespace and the
	// default workspace (Integrations' namespace) reads Integrations.
	Workspaces *integrations.Workspaces
	// NamespaceAuth, when set, guards POST
	// /v1/namespaces/{namespace}/roleplays: it must let through only
	// callers allowed to "create" resource in that namespace. Nil leaves
	// the route out.
	NamespaceAuth func(resource string, next http.Handler) http.Handler
	// KnownWorkspace, when set, says whether a namespace is a workspace at
	// all (without an API call); webhooks for others are refused with 401
	// before their integrations Secret is read. Nil: every namespace is.
	KnownWorkspace func(ctx context.Context, ns string) bool
	// Templates reads ScoringTemplates; it must have the
	// miraapi.DefaultTemplateIndexKey index.
	Templates client.Reader
	// Replicas of the billing bucket (3 on a NATS cluster).
	Replicas int
	// WatchNamespace, when set, is the only namespace (besides the
	// integrations Secret's) Templates can read.
	WatchNamespace string
	Logger         logr.Logger
}

// New builds the inbound routes and pipeline; mount Routes on the HTTP
// server and run Run. It ensures the billing bucket.
func New(d Deps, o Options) (*Inbound, error) {
	o, err := o.withDefaults(d)
	if err != nil {
		return nil, err
	}
	if o.Registerer == nil {
		o.Registerer = crmetrics.Registry
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in := &Inbound{
		o: o, js: d.JetStream, integrations: d.Integrations, workspaces: d.Workspaces, publisher: d.Publisher,
		templates: d.Templates, log: d.Logger, namespaceAuth: d.NamespaceAuth, verifiers: map[string]stripeVerifier{},
		watchNS: d.WatchNamespace, known: d.KnownWorkspace,
	}
	if in.integrations == nil {
		in.integrations = &integrations.Secret{}
	}
	if in.workspaces == nil {
		in.workspaces = &integrations.Workspaces{Reader: in.integrations.Reader, DefaultNamespace: in.integrations.Key.Namespace, Default: in.integrations}
	}
	in.defaultNS = in.workspaces.DefaultNamespace
	kvBilling, err := billing.EnsureBucket(ctx, d.JetStream, max(1, d.Replicas))
	if err != nil {
		return nil, err
	}
	if in.billing, err = billing.NewProcessor(kvBilling, o.Registerer); err != nil {
		return nil, err
	}
	in.billing.SetSubscriptionSource(&billing.StripeSubscriptions{URL: o.StripeAPIURL, Key: in.stripeAPIKey})
	if _, err := billing.NewVerifier(billing.VerifierOptions{
		Tolerance: o.Tolerance, APIVersionPolicy: o.StripeAPIVersionPolicy,
	}); err != nil {
		return nil, err
	}
	if in.reports, err = d.JetStream.KeyValue(ctx, queue.ReportsBucket); err != nil {
		return nil, fmt.Errorf("open reports bucket: %w", err)
	}
	if in.state, err = d.JetStream.KeyValue(ctx, queue.StateBucket); err != nil {
		return nil, fmt.Errorf("open pipeline state bucket: %w", err)
	}
	if in.metrics, err = newMetrics(o.Registerer); err != nil {
		return nil, err
	}
	in.log.Info("inbound routes and pipeline configured", "recallAPI", o.RecallAPIURL,
		"stripeAPIVersionPolicy", o.StripeAPIVersionPolicy, "defaultWorkspace", in.defaultNS)
	return in, nil
}
