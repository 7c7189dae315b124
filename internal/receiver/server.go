package receiver

import (
	"context"
	"errors"
	"net/http"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/deliverylog"
	"github.com/mira/mira-operator/internal/events"
)

// Limits of the HTTP server.
const (
	MaxHeaderBytes    = 64 << 10
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 60 * time.Second
	IdleTimeout       = 120 * time.Second
)

// NewServer returns an http.Server with the receiver's limits.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr: addr, Handler: h,
		MaxHeaderBytes: MaxHeaderBytes, ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout: ReadTimeout, WriteTimeout: WriteTimeout, IdleTimeout: IdleTimeout,
	}
}

// ResourceEvents is the data.platform.mira.io resource whose "create"
// permission POST /v1/namespaces/{namespace}/events needs.
const ResourceEvents = "events"

// routes mounts every stage's routes and the mounted parts' on one mux.
func (r *Receiver) routes() http.Handler {
	log := r.Logger.WithName("api")
	token := func(h http.Handler) http.Handler { return r.Integrations.RequireToken(log, h) }
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := r.readiness(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	publish := &events.Handler{Publisher: r.Publisher, DefaultNamespace: r.Workspaces.DefaultNamespace, Logger: log}
	// Legacy: the static api-token publishes in the default workspace only.
	mux.Handle("POST /v1/events", token(publish))
	// A Kubernetes identity allowed to create events.data.platform.mira.io
	// in the namespace publishes in that workspace.
	mux.Handle("POST /v1/namespaces/{namespace}/events", r.Auth.Require(ResourceEvents, r.servedWorkspace(publish)))
	deliveries := &deliverylog.Handlers{Store: r.Log, Logger: log, Lookup: func(ns, name string) (string, bool) {
		if e := r.Registry.Lookup(ns, name); e != nil {
			return string(e.UID), true
		}
		return "", false
	}}
	mux.Handle("GET /v1/endpoints/{namespace}/{name}/deliveries", token(http.HandlerFunc(deliveries.List)))
	mux.Handle("GET /v1/deliveries/{id}", token(http.HandlerFunc(deliveries.Get)))
	for _, p := range r.parts {
		p.Routes(mux)
	}
	return LimitConcurrency(r.Options.MaxInboundConcurrency, mux)
}

// KnownWorkspace says whether namespace ns looks like a Mira workspace:
// the default workspace, or a namespace with a WebhookEndpoint or a
// ScoringTemplate (both from the informer cache, no API call). Inbound
// webhooks for any other namespace are refused before its integrations
// Secret is read, so made-up namespaces in URLs cost no API-server GETs.
func (r *Receiver) KnownWorkspace(ctx context.Context, ns string) bool {
	if ns != "" && ns == r.Workspaces.DefaultNamespace {
		return true
	}
	c := r.Manager.GetCache()
	var eps miraapi.WebhookEndpointList
	if err := c.List(ctx, &eps, client.InNamespace(ns)); err == nil && len(eps.Items) > 0 {
		return true
	}
	var tmpls miraapi.ScoringTemplateList
	return c.List(ctx, &tmpls, client.InNamespace(ns)) == nil && len(tmpls.Items) > 0
}

// servedWorkspace answers 404 for a workspace outside --watch-namespace
// (and the default workspace): its events could reach no endpoint here.
func (r *Receiver) servedWorkspace(next http.Handler) http.Handler {
	watch := r.Options.WatchNamespace
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if ns := req.PathValue("namespace"); watch != "" && ns != watch && ns != r.Workspaces.DefaultNamespace {
			w.Header().Set("Connection", "close")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"no such workspace"}` + "\n"))
			return
		}
		next.ServeHTTP(w, req)
	})
}

// LimitConcurrency serves at most n requests at once (n ≤ 0: no limit);
// past it, it answers 503 with Retry-After at once, before reading anything
// of the request, so a flood cannot pile up goroutines and buffers. Health
// probes are never refused.
func LimitConcurrency(n int, next http.Handler) http.Handler {
	if n <= 0 {
		return next
	}
	slots := make(chan struct{}, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			next.ServeHTTP(w, r)
		default:
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Connection", "close") // nothing of the request is read
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"too many concurrent requests; retry"}` + "\n"))
		}
	})
}

func (r *Receiver) readiness() error {
	if !r.ready.Load() {
		return errors.New("starting")
	}
	if !r.NATS.IsConnected() {
		return errors.New("JetStream connection lost")
	}
	return nil
}
