// Package receiver wires the data plane of `mira-operator receiver`, the
// way a main function wires a program: JetStream (embedded or external),
// the Kubernetes cache, and one package per stage of an event's way:
//
//	events (publish, the events stream) → fanout → dispatch → deliverylog
//	                                                        → endpointstatus
//
// with the endpoint registry (endpoints) beside them and the annotation
// actions (actions) on the elected replica. Other parts (the inbound
// pipeline) are constructed by the caller and mounted (Mount) before Start;
// they publish through Publisher and know nothing of the receiver.
package receiver

import (
	"context"
	"errors"
	"fmt"
	"github.com/mira/mira-operator/internal/metricsendpoint"
	"github.com/mira/mira-operator/internal/secretcache"
	"github.com/mira/mira-operator/internal/workspace"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/actions"
	"github.com/mira/mira-operator/internal/delivery"
	"github.com/mira/mira-operator/internal/deliverylog"
	"github.com/mira/mira-operator/internal/dispatch"
	"github.com/mira/mira-operator/internal/endpoints"
	"github.com/mira/mira-operator/internal/endpointstatus"
	"github.com/mira/mira-operator/internal/events"
	"github.com/mira/mira-operator/internal/fanout"
	"github.com/mira/mira-operator/internal/integrations"
	"github.com/mira/mira-operator/internal/k8sauth"
	"github.com/mira/mira-operator/internal/queue"
)

// Options are the receiver's flags.
type Options struct {
	Listen      string
	MetricsAddr string
	Metrics     metricsendpoint.Flags
	DataDir     string
	NATSURL     string
	// NATS secures the connection to --nats-url.
	NATS               queue.ConnectOptions
	IntegrationsSecret string
	// DefaultWorkspace is the workspace of the unscoped routes; default:
	// the --integrations-secret namespace.
	DefaultWorkspace string
	// WorkspaceSecretName names the integrations Secret in every workspace.
	WorkspaceSecretName string
	// ReviewCacheTTL is how long TokenReview/SubjectAccessReview answers are reused.
	ReviewCacheTTL  time.Duration
	WatchNamespace  string
	SyncAlways      bool
	SyncInterval    time.Duration
	StatusInterval  time.Duration
	RotationGrace   time.Duration
	Retention       time.Duration
	FanoutWorkers   int
	ShutdownGrace   time.Duration
	AllowPrivate    bool
	AllowLoopback   bool
	AllowCrossNS    bool
	AllowedCIDRs    string
	Replicas        int
	MaxAckPending   int
	MaxStoreBytes   int64
	StorageMaxBytes int64
	// MaxInboundConcurrency caps requests served at once.
	MaxInboundConcurrency int
	MaxResponseBytes      int64
	// Leader election: with several replicas only the elected one writes
	// status and acts on annotations; every replica delivers.
	LeaderElect        bool
	LeaderElectionID   string
	LeaderElectionNS   string
	LeaseDuration      time.Duration
	LeaseRenewDeadline time.Duration
	LeaseRetryPeriod   time.Duration
}

// BindFlags registers the options on fs with their defaults.
func (o *Options) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Listen, "listen", ":8080", "address of the webhook and API routes, /healthz and /readyz")
	fs.IntVar(&o.MaxInboundConcurrency, "max-concurrent-requests", 256, "requests served at once on --listen; past it the receiver answers 503 with Retry-After (0: no limit)")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":9090", "address of the Prometheus metrics endpoint; \"0\" disables it")
	o.Metrics.Bind(fs)
	fs.StringVar(&o.NATS.CAFile, "nats-ca-file", "", "PEM CA bundle that signs the NATS servers' certificates (enables TLS verification against it)")
	fs.StringVar(&o.NATS.CertFile, "nats-cert-file", "", "PEM client certificate for mutual TLS with NATS (with --nats-key-file)")
	fs.StringVar(&o.NATS.KeyFile, "nats-key-file", "", "PEM private key of --nats-cert-file")
	fs.StringVar(&o.NATS.CredsFile, "nats-creds-file", "", "NATS .creds file (user JWT and NKey seed) to authenticate with")
	fs.StringVar(&o.NATS.NKeySeedFile, "nats-nkey-seed-file", "", "file holding an NKey user seed to authenticate with")
	fs.StringVar(&o.NATS.User, "nats-user", "", "NATS user name (with --nats-password-file)")
	fs.StringVar(&o.NATS.PasswordFile, "nats-password-file", "", "file holding the password of --nats-user (mount it from a Secret)")
	fs.StringVar(&o.DataDir, "data-dir", "/var/lib/mira", "directory of the embedded JetStream file store (ignored with --nats-url)")
	fs.StringVar(&o.NATSURL, "nats-url", "", "use this NATS cluster (JetStream enabled) instead of the embedded server, e.g. nats://nats.nats:4222")
	fs.StringVar(&o.IntegrationsSecret, "integrations-secret", "", "namespace/name of the Secret with api-token, recall-webhook-secret, recall-api-key, stripe-webhook-secret")
	fs.StringVar(&o.DefaultWorkspace, "default-workspace", "", "namespace of the workspace the unscoped routes (/webhooks/recall, /webhooks/stripe, /v1/events, /v1/roleplays) belong to (default: the --integrations-secret namespace)")
	fs.StringVar(&o.WorkspaceSecretName, "workspace-integrations-secret-name", integrations.DefaultWorkspaceSecretName, "name of the integrations Secret in each workspace namespace (recall-webhook-secret, recall-api-key, stripe-webhook-secret, optional recall-region, stripe-api-key); read by name, never listed")
	fs.DurationVar(&o.ReviewCacheTTL, "auth-cache-ttl", k8sauth.DefaultTTL, "how long a TokenReview or SubjectAccessReview answer for the /v1/namespaces/{namespace}/... routes is reused (allowed and refused alike)")
	fs.StringVar(&o.WatchNamespace, "watch-namespace", "", "only deliver for WebhookEndpoints in this namespace (default: all)")
	fs.BoolVar(&o.SyncAlways, "jetstream-sync-always", false, "fsync every JetStream write before acknowledging it (slower; survives power loss)")
	fs.DurationVar(&o.SyncInterval, "jetstream-sync-interval", 0, "how often the embedded JetStream fsyncs (0: NATS default, 2m); acknowledged writes survive a killed process either way")
	fs.DurationVar(&o.StatusInterval, "status-interval", 2*time.Second, "at most one status write per endpoint per interval")
	fs.DurationVar(&o.RotationGrace, "rotation-grace", 24*time.Hour, "how long a replaced signing secret keeps signing webhook-signature")
	fs.DurationVar(&o.Retention, "retention", 7*24*time.Hour, "how long events and the delivery log are kept")
	fs.IntVar(&o.FanoutWorkers, "fanout-workers", 32, "events fanned out in parallel")
	fs.DurationVar(&o.ShutdownGrace, "shutdown-grace", 20*time.Second, "time in-flight deliveries get to finish on shutdown")
	fs.BoolVar(&o.AllowPrivate, "allow-private-targets", false, "let url targets resolve to private and CGNAT addresses (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7); loopback, link-local and cloud metadata stay refused")
	fs.BoolVar(&o.AllowLoopback, "allow-loopback-targets", false, "let url targets resolve to loopback addresses (127/8, ::1), for consumers on the receiver's own host (local development); cloud metadata stays refused")
	fs.BoolVar(&o.AllowCrossNS, "allow-cross-namespace-targets", false, "deliver to spec.service targets in another namespace than their endpoint's (the manager needs the same flag)")
	fs.StringVar(&o.AllowedCIDRs, "allowed-cidrs", "", "comma-separated CIDRs url targets may resolve to despite the outbound guard, e.g. 10.20.0.0/16")
	fs.IntVar(&o.Replicas, "stream-replicas", 1, "replicas of streams and buckets (3 on a NATS cluster)")
	fs.IntVar(&o.MaxAckPending, "max-ack-pending", 10000, "per endpoint: deliveries in flight or waiting for a retry; newer ones wait in the stream")
	fs.Int64Var(&o.MaxStoreBytes, "max-store-bytes", 0, "bound of the embedded JetStream store in bytes (0: 75% of the data volume's size)")
	fs.Int64Var(&o.StorageMaxBytes, "storage-max-bytes", 0, "bytes the streams and buckets may use together, split in fixed shares (0: 95% of the embedded store, or 10 GiB per replica on --nats-url); when full, ingest answers 503, the oldest delivery-log entries age out and queued deliveries wait")
	fs.Int64Var(&o.MaxResponseBytes, "max-response-bytes", 64<<10, "bytes of a consumer's response body kept in the delivery log")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "run several replicas on one NATS cluster: all deliver, the elected one writes status and handles annotations")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", "mira-receiver.platform.mira.io", "name of the receiver's leader-election Lease")
	fs.StringVar(&o.LeaderElectionNS, "leader-election-namespace", "", "namespace of the leader-election Lease (default: the pod's namespace)")
	fs.DurationVar(&o.LeaseDuration, "leader-elect-lease-duration", 15*time.Second, "how long a Lease is valid; a standby takes over this long after the leader died")
	fs.DurationVar(&o.LeaseRenewDeadline, "leader-elect-renew-deadline", 10*time.Second, "how long the leader keeps trying to renew before it gives up (and the process exits to be restarted)")
	fs.DurationVar(&o.LeaseRetryPeriod, "leader-elect-retry-period", 2*time.Second, "how often candidates try to acquire or renew the Lease")
	for group, names := range map[string][]string{
		"Server": {"listen", "max-concurrent-requests", "metrics-bind-address", "metrics-secure", "metrics-cert-dir", "shutdown-grace"},
		"NATS": {"nats-url", "nats-ca-file", "nats-cert-file", "nats-key-file", "nats-creds-file", "nats-nkey-seed-file",
			"nats-user", "nats-password-file", "data-dir", "jetstream-sync-always", "jetstream-sync-interval", "stream-replicas",
			"max-store-bytes", "storage-max-bytes", "retention"},
		"Delivery": {"fanout-workers", "max-ack-pending", "max-response-bytes", "allow-private-targets", "allow-loopback-targets", "allowed-cidrs", "allow-cross-namespace-targets",
			"rotation-grace", "status-interval"},
		"Kubernetes": {"watch-namespace", "integrations-secret", "default-workspace", "workspace-integrations-secret-name", "auth-cache-ttl", "leader-elect", "leader-election-id",
			"leader-election-namespace", "leader-elect-lease-duration", "leader-elect-renew-deadline", "leader-elect-retry-period"},
	} {
		for _, n := range names {
			_ = fs.SetAnnotation(n, FlagGroupAnnotation, []string{group})
		}
	}
}

// FlagGroupAnnotation is the pflag annotation naming a flag's group in the
// help text ("Delivery" lists it under "Delivery flags:").
const FlagGroupAnnotation = "mira.platform.mira.io/flag-group"

// Guard builds the outbound guard from the options.
func (o *Options) Guard() (*delivery.Guard, error) {
	g := &delivery.Guard{AllowPrivate: o.AllowPrivate, AllowLoopback: o.AllowLoopback}
	for _, c := range strings.Split(o.AllowedCIDRs, ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("--allowed-cidrs %q: %w", c, err)
		}
		g.AllowCIDRs = append(g.AllowCIDRs, p)
	}
	return g, nil
}

// Receiver is a running receiver, for tests that need its parts.
type Receiver struct {
	Options      Options
	Manager      manager.Manager
	NATS         *nats.Conn
	JetStream    jetstream.JetStream
	Registry     *endpoints.Registry
	Status       *endpointstatus.Writer
	Log          *deliverylog.Store
	Publisher    *events.Stream
	Integrations *integrations.Secret
	// Workspaces finds each workspace's integrations Secret.
	Workspaces *integrations.Workspaces
	// Auth reviews Kubernetes bearer tokens on /v1/namespaces/{namespace}/... routes.
	Auth    *k8sauth.Reviewer
	Logger  logr.Logger
	metrics *metrics
	// storeBytes bounds the embedded store (0 on an external cluster).
	storeBytes int64
	embedded   interface {
		Shutdown()
		WaitForShutdown()
	}
	ready atomic.Bool
	addr  atomic.Value
	parts []Part
}

// Part is a component the caller constructs and mounts (the inbound
// pipeline): its routes join the receiver's HTTP server and Run runs on
// every replica once the caches have synced.
type Part interface {
	Routes(mux *http.ServeMux)
	Run(ctx context.Context) error
}

// Mount adds a part; call it after New and before Start.
func (r *Receiver) Mount(p Part) { r.parts = append(r.parts, p) }

// metrics are the receiver's Prometheus metrics, one set per stage.
type metrics struct {
	dispatch      *dispatch.Metrics
	eventsIn      *prometheus.CounterVec
	noWorkspace   prometheus.Counter
	queueDepth    *prometheus.GaugeVec
	statusPatches prometheus.Counter
}

// registerReviewMetrics exposes how many TokenReviews and
// SubjectAccessReviews the publishing routes sent (cache misses).
func registerReviewMetrics(reg prometheus.Registerer, a *k8sauth.Reviewer) {
	for kind, n := range map[string]*atomic.Int64{"token": &a.TokenReviews, "access": &a.AccessReviews} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mira_auth_reviews_total", Help: "TokenReviews (kind=token) and SubjectAccessReviews (kind=access) sent for publishers; cached answers are not counted.",
			ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 { return float64(n.Load()) }))
	}
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		dispatch: dispatch.NewMetrics(reg),
		eventsIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mira_events_total", Help: "Events accepted for fan-out, by type.",
		}, []string{"event"}),
		noWorkspace: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mira_events_without_namespace_total", Help: "Events without a namespace (workspace); they reach no endpoint.",
		}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mira_queue_depth", Help: "Messages waiting in each JetStream consumer (pending + waiting for ack).",
		}, []string{"consumer"}),
		statusPatches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mira_status_patches_total", Help: "WebhookEndpoint status writes by the receiver.",
		}),
	}
	reg.MustRegister(m.eventsIn, m.noWorkspace, m.queueDepth, m.statusPatches)
	return m
}

// Scheme returns the scheme of the receiver's client: the built-in and Mira types.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := miraapi.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// New wires a receiver without starting it.
func New(ctx context.Context, cfg *rest.Config, o Options, log logr.Logger) (*Receiver, error) {
	r := &Receiver{Options: o, Logger: log}
	if err := r.connect(ctx); err != nil {
		return nil, err
	}
	if err := r.ensureStreams(ctx); err != nil {
		r.Close()
		return nil, err
	}

	integrationsKey := types.NamespacedName{}
	if o.IntegrationsSecret != "" {
		ns, name, ok := strings.Cut(o.IntegrationsSecret, "/")
		if !ok || ns == "" || name == "" {
			r.Close()
			return nil, fmt.Errorf("--integrations-secret must be namespace/name, got %q", o.IntegrationsSecret)
		}
		integrationsKey = types.NamespacedName{Namespace: ns, Name: name}
	}
	cacheOpts := cache.Options{ByObject: map[client.Object]cache.ByObject{
		// The receiver only reads these objects, so it can skip the copies.
		// Secrets never go through the cache: see secretcache.
		&miraapi.WebhookEndpoint{}: {UnsafeDisableDeepCopy: ptrTrue()},
	}}
	if o.WatchNamespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{o.WatchNamespace: {}}
		if integrationsKey.Namespace != "" {
			cacheOpts.DefaultNamespaces[integrationsKey.Namespace] = cache.Config{}
		}
	}
	mopts := ctrl.Options{
		Scheme:                 Scheme(),
		Metrics:                o.Metrics.Options(o.MetricsAddr),
		HealthProbeBindAddress: "0",
		Cache:                  cacheOpts,
	}
	if o.LeaderElect {
		mopts.LeaderElection = true
		mopts.LeaderElectionID = o.LeaderElectionID
		mopts.LeaderElectionNamespace = o.LeaderElectionNS
		mopts.LeaderElectionReleaseOnCancel = true
		for _, d := range []struct {
			dst **time.Duration
			v   time.Duration
		}{{&mopts.LeaseDuration, o.LeaseDuration}, {&mopts.RenewDeadline, o.LeaseRenewDeadline}, {&mopts.RetryPeriod, o.LeaseRetryPeriod}} {
			if d.v > 0 {
				v := d.v
				*d.dst = &v
			}
		}
	}
	mgr, err := ctrl.NewManager(cfg, mopts)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("create receiver manager: %w", err)
	}
	r.Manager = mgr
	r.metrics = newMetrics(crmetrics.Registry)
	// The pipeline resolves a namespace's default ScoringTemplate through this cache.
	if err := miraapi.IndexDefaultTemplates(ctx, mgr.GetFieldIndexer()); err != nil {
		r.Close()
		return nil, err
	}

	guard, err := o.Guard()
	if err != nil {
		r.Close()
		return nil, err
	}
	// Secrets are read by name and cached briefly; the receiver never lists
	// or watches them (its ClusterRole only has "get").
	secrets, err := secretcache.New(mgr.GetCache(), mgr.GetAPIReader())
	if err != nil {
		r.Close()
		return nil, err
	}
	r.Registry, err = endpoints.NewRegistry(endpoints.RegistryOptions{Reader: secrets, Guard: guard, RotationGrace: o.RotationGrace, MaxResponseBytes: o.MaxResponseBytes,
		AllowCrossNamespaceTargets: o.AllowCrossNS})
	if err != nil {
		r.Close()
		return nil, err
	}
	kvLog, err := r.JetStream.KeyValue(ctx, queue.DeliveryLogBucket)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("open delivery log: %w", err)
	}
	r.Log, _ = deliverylog.New(kvLog)
	// 0 (not connected yet) falls back to the NATS default of 1 MiB.
	r.Log.MaxRecordBytes = deliverylog.RecordBudget(r.NATS.MaxPayload())
	kvStats, err := r.JetStream.KeyValue(ctx, queue.EndpointStatsBucket)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("open endpoint stats: %w", err)
	}
	recorder := mgr.GetEventRecorder("mira-receiver")
	r.Status = endpointstatus.NewWriter(mgr.GetClient(), kvStats, recorder, r.Registry, o.StatusInterval, log.WithName("status"))
	r.Status.CountPatches(r.metrics.statusPatches)
	r.Status.SetElected(mgr.Elected())
	r.Publisher = &events.Stream{JS: r.JetStream}
	r.Status.SetPublisher(r.Publisher) // endpoint.degraded, .disabled, .recovered
	r.Integrations = &integrations.Secret{Reader: secrets, Key: integrationsKey}
	defaultWS := o.DefaultWorkspace
	if defaultWS == "" {
		defaultWS = integrationsKey.Namespace
	}
	if defaultWS != "" && !workspace.Valid(defaultWS) {
		r.Close()
		return nil, fmt.Errorf("--default-workspace %q is not a namespace name", defaultWS)
	}
	r.Workspaces = &integrations.Workspaces{Reader: secrets, SecretName: o.WorkspaceSecretName, DefaultNamespace: defaultWS, Default: r.Integrations}
	r.Auth = &k8sauth.Reviewer{Client: mgr.GetClient(), TTL: o.ReviewCacheTTL, Logger: log.WithName("auth")}
	registerReviewMetrics(crmetrics.Registry, r.Auth)
	if err := (&actions.Actions{Client: mgr.GetClient(), JS: r.JetStream, Publisher: r.Publisher, Registry: r.Registry,
		Log: r.Log, Status: r.Status, Recorder: recorder}).SetupWithManager(mgr); err != nil {
		r.Close()
		return nil, fmt.Errorf("set up annotation actions: %w", err)
	}
	return r, nil
}

func ptrTrue() *bool { t := true; return &t }

// ensureStreams creates the streams and buckets. On a NATS cluster that is
// still forming (or electing a meta leader after a node restart) that can
// time out, so it is retried for up to two minutes before giving up.
func (r *Receiver) ensureStreams(ctx context.Context) error {
	cfg := queue.Config{Replicas: r.Options.Replicas, Retention: r.Options.Retention, MaxBytes: r.Options.StorageMaxBytes}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = queue.DefaultExternalMaxBytes
		if r.storeBytes > 0 {
			cfg.MaxBytes = queue.StreamBytes(r.storeBytes)
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for wait := 500 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := queue.Ensure(ctx, r.JetStream, cfg)
		if err == nil || r.Options.NATSURL == "" || time.Now().After(deadline) {
			return err
		}
		r.Logger.Info("JetStream not ready, retrying", "error", err.Error(), "in", wait)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

func (r *Receiver) connect(ctx context.Context) error {
	o := r.Options
	if o.NATSURL != "" {
		opts, err := o.NATS.Options()
		if err != nil {
			return err
		}
		nc, err := queue.Connect(o.NATSURL, "mira-receiver", opts...)
		if err != nil {
			return err
		}
		r.NATS = nc
	} else {
		if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
			return fmt.Errorf("create data directory: %w", err)
		}
		store, err := queue.EmbeddedStore(o.DataDir, o.MaxStoreBytes)
		if err != nil {
			return err
		}
		r.storeBytes = store
		ns, err := queue.StartEmbedded(queue.EmbeddedOptions{
			DataDir: o.DataDir, Port: -1, SyncAlways: o.SyncAlways, SyncInterval: o.SyncInterval, MaxStore: store,
		})
		if err != nil {
			return err
		}
		r.embedded = ns
		nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name("mira-receiver"))
		if err != nil {
			ns.Shutdown()
			return fmt.Errorf("connect to embedded JetStream: %w", err)
		}
		r.NATS = nc
	}
	js, err := jetstream.New(r.NATS, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return fmt.Errorf("JetStream context: %w", err)
	}
	r.JetStream = js
	return nil
}

// Close releases the NATS connection and the embedded server.
func (r *Receiver) Close() {
	if r.NATS != nil {
		_ = r.NATS.Drain()
		r.NATS.Close()
	}
	if r.embedded != nil {
		r.embedded.Shutdown()
		r.embedded.WaitForShutdown()
	}
}

// Start runs everything until ctx ends.
func (r *Receiver) Start(ctx context.Context) error {
	mgr, o := r.Manager, r.Options
	if err := r.Registry.Watch(ctx, mgr.GetCache()); err != nil {
		return err
	}
	eventsConsumer, err := r.JetStream.Consumer(ctx, queue.EventsStream, queue.FanoutConsumer)
	if err != nil {
		return fmt.Errorf("open fan-out consumer: %w", err)
	}
	fan := &fanout.Fanout{JS: r.JetStream, Consumer: eventsConsumer, Registry: r.Registry, Log: r.Log,
		EventsIn: r.metrics.eventsIn, NoWorkspace: r.metrics.noWorkspace, Logger: r.Logger.WithName("fanout"), Workers: o.FanoutWorkers, Filtered: r.Status}
	disp := &dispatch.Dispatcher{JS: r.JetStream, Log: r.Log, Registry: r.Registry, Status: r.Status, Metrics: r.metrics.dispatch,
		Logger: r.Logger.WithName("dispatch"), Replicas: o.Replicas, MaxPending: o.MaxAckPending, ShutdownGrace: o.ShutdownGrace,
		OnDead: r.Status.DeliveryDead}
	fan.Queued = disp.Wake
	disp.LegacyDrained = r.ensureStreams // the outbox gets its whole share back

	// Data-plane workers start once the endpoint informer has synced, so no
	// delivery is judged against an empty registry.
	waitSynced := func(ctx context.Context) error {
		inf, err := mgr.GetCache().GetInformer(ctx, &miraapi.WebhookEndpoint{})
		if err != nil {
			return err
		}
		if !toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced, r.Registry.HasSynced) {
			return ctx.Err()
		}
		return nil
	}
	// The data plane runs on every replica: JetStream consumers share the
	// work. Only the annotation actions (a controller) and the status writes
	// (gated inside the StatusWriter) wait for the leader election.
	add := func(name string, f func(context.Context) error) error {
		return mgr.Add(everyReplica(func(ctx context.Context) error {
			if err := waitSynced(ctx); err != nil {
				return nil
			}
			r.Logger.V(1).Info("starting", "component", name)
			return f(ctx)
		}))
	}
	if err := add("fanout", fan.Run); err != nil {
		return err
	}
	if err := add("dispatch", disp.Run); err != nil {
		return err
	}
	if err := add("status", r.Status.Run); err != nil {
		return err
	}
	if err := add("queue-depth", r.watchDepth); err != nil {
		return err
	}
	for i, p := range r.parts {
		if err := add(fmt.Sprintf("part-%d", i), p.Run); err != nil {
			return err
		}
	}
	srv := NewServer(o.Listen, r.routes())
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	r.addr.Store(ln.Addr().String())
	if err := mgr.Add(everyReplica(func(ctx context.Context) error {
		go func() {
			<-ctx.Done()
			// The run context has ended: shut down within a deadline of its own.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
		if err := waitSynced(ctx); err == nil && ctx.Err() == nil {
			r.ready.Store(true)
		}
		r.Logger.Info("receiver listening", "address", ln.Addr().String())
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})); err != nil {
		return err
	}
	return mgr.Start(ctx)
}

var _ manager.LeaderElectionRunnable = everyReplica(nil)

// everyReplica is a runnable that does not wait for the leader election.
type everyReplica func(context.Context) error

func (f everyReplica) Start(ctx context.Context) error { return f(ctx) }

// NeedLeaderElection is false: every replica runs it.
func (everyReplica) NeedLeaderElection() bool { return false }

// Addr is the address the HTTP server listens on, once Start has bound it.
func (r *Receiver) Addr() string {
	a, _ := r.addr.Load().(string)
	return a
}

// Ready reports whether the receiver serves traffic.
func (r *Receiver) Ready() bool { return r.ready.Load() }

// watchDepth publishes consumer backlog as a metric every few seconds.
func (r *Receiver) watchDepth(ctx context.Context) error {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		for _, c := range []struct{ stream, name string }{
			{queue.EventsStream, queue.FanoutConsumer}, {queue.InboundStream, queue.PipelineConsumer},
		} {
			if cons, err := r.JetStream.Consumer(ctx, c.stream, c.name); err == nil {
				if info, err := cons.Info(ctx); err == nil {
					r.metrics.queueDepth.WithLabelValues(c.name).Set(float64(info.NumPending) + float64(info.NumAckPending))
				}
			}
		}
		// Deliveries: the outbox keeps a message until its outcome is
		// recorded, so its size is the depth.
		if stream, err := r.JetStream.Stream(ctx, queue.DeliveriesStream); err == nil {
			var depth float64
			if info, err := stream.Info(ctx); err == nil {
				depth = float64(info.State.Msgs)
			}
			r.metrics.queueDepth.WithLabelValues("dispatch").Set(depth)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
