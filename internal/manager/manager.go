// Package manager runs the controllers: `mira-operator manager`.
package manager

import (
	"context"
	"fmt"
	"github.com/mira/mira-operator/internal/metricsendpoint"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/controllers"
)

// Options are the manager's flags.
type Options struct {
	MetricsAddr       string
	Metrics           metricsendpoint.Flags
	ProbeAddr         string
	LeaderElect       bool
	LeaderElectionID  string
	LeaderElectionNS  string
	AllowInsecureURLs bool
	// AllowCrossNamespaceTargets lets spec.service name other namespaces.
	AllowCrossNamespaceTargets bool
	WatchNamespace             string
	MaxConcurrentRecon         int
	SyncPeriod                 time.Duration
}

// Scheme returns the scheme with the built-in and Mira types.
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

// FlagGroupAnnotation is the pflag annotation naming a flag's group in the
// help text; the same key as the receiver's.
const FlagGroupAnnotation = "mira.platform.mira.io/flag-group"

// BindFlags registers the options on fs with their defaults.
func (o *Options) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8081", "address the Prometheus metrics endpoint binds to; \"0\" disables it")
	o.Metrics.Bind(fs)
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8082", "address the /healthz and /readyz probes bind to")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "elect a leader so that only one manager replica reconciles at a time")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", "mira-operator-manager.platform.mira.io", "name of the leader-election Lease")
	fs.StringVar(&o.LeaderElectionNS, "leader-election-namespace", "", "namespace of the leader-election Lease (default: the pod's namespace)")
	fs.BoolVar(&o.AllowInsecureURLs, "allow-insecure-urls", false, "let WebhookEndpoints with plain http:// urls become Ready (for local development)")
	fs.BoolVar(&o.AllowCrossNamespaceTargets, "allow-cross-namespace-targets", false, "let spec.service name a Service in another namespace (the receiver needs the same flag)")
	fs.StringVar(&o.WatchNamespace, "watch-namespace", "", "only reconcile objects in this namespace (default: all namespaces)")
	fs.IntVar(&o.MaxConcurrentRecon, "concurrent", 4, "reconciles run in parallel per kind")
	fs.DurationVar(&o.SyncPeriod, "sync-period", 10*time.Hour, "how often every object is reconciled even without changes")
	for group, names := range map[string][]string{
		"Server":     {"metrics-bind-address", "metrics-secure", "metrics-cert-dir", "health-probe-bind-address"},
		"Controller": {"allow-insecure-urls", "allow-cross-namespace-targets", "concurrent", "sync-period"},
		"Kubernetes": {"watch-namespace", "leader-elect", "leader-election-id", "leader-election-namespace"},
	} {
		for _, n := range names {
			_ = fs.SetAnnotation(n, FlagGroupAnnotation, []string{group})
		}
	}
}

// New builds a controller-runtime manager for these options.
func New(cfg *rest.Config, o Options) (ctrl.Manager, error) {
	cacheOpts := cache.Options{SyncPeriod: &o.SyncPeriod}
	if o.WatchNamespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{o.WatchNamespace: {}}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  Scheme(),
		Metrics:                 o.Metrics.Options(o.MetricsAddr),
		HealthProbeBindAddress:  o.ProbeAddr,
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        o.LeaderElectionID,
		LeaderElectionNamespace: o.LeaderElectionNS,
		// The manager ends its lease on shutdown so a new replica takes over at once.
		LeaderElectionReleaseOnCancel: true,
		Cache:                         cacheOpts,
		Client: client.Options{Cache: &client.CacheOptions{
			// Secret data is read straight from the API server and never cached.
			DisableFor: []client.Object{&corev1.Secret{}},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	return mgr, nil
}

// Setup registers the reconcilers and health checks on mgr.
func Setup(ctx context.Context, mgr ctrl.Manager, o Options) error {
	if err := (&controllers.WebhookEndpointReconciler{
		Client:                     mgr.GetClient(),
		APIReader:                  mgr.GetAPIReader(),
		Recorder:                   mgr.GetEventRecorder("mira-controller"),
		AllowInsecureURLs:          o.AllowInsecureURLs,
		AllowCrossNamespaceTargets: o.AllowCrossNamespaceTargets,
		Concurrency:                o.MaxConcurrentRecon,
	}).SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("set up WebhookEndpoint controller: %w", err)
	}
	if err := (&controllers.ScoringTemplateReconciler{
		Client:      mgr.GetClient(),
		Recorder:    mgr.GetEventRecorder("mira-controller"),
		Concurrency: o.MaxConcurrentRecon,
	}).SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("set up ScoringTemplate controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("add ready check: %w", err)
	}
	return nil
}
