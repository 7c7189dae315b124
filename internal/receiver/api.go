package receiver

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

// Keys of the integrations Secret.
const (
	APITokenKey            = "api-token"
	RecallWebhookSecretKey = "recall-webhook-secret"
	RecallAPIKeyKey        = "recall-api-key"
	StripeWebhookSecretKey = "stripe-webhook-secret"
)

// Limits of the HTTP server.
const (
	MaxEventBytes     = 1 << 20 // POST /v1/events
	MaxHeaderBytes    = 64 << 10
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 60 * time.Second
	IdleTimeout       = 120 * time.Second
)

// Integrations reads the integrations Secret (through the informer cache, so
// a change applies to the next request without a restart).
type Integrations struct {
	Reader client.Reader
	Key    types.NamespacedName
}

// Value returns one key of the Secret, "" when the Secret or key is missing.
func (i *Integrations) Value(ctx context.Context, key string) string {
	if i == nil || i.Reader == nil || i.Key.Name == "" {
		return ""
	}
	s := &corev1.Secret{}
	if err := i.Reader.Get(ctx, i.Key, s); err != nil {
		return ""
	}
	return string(s.Data[key])
}

// API serves the receiver's HTTP routes.
type API struct {
	Integrations *Integrations
	Publisher    *Publisher
	Log          *LogStore
	Registry     *Registry
	Logger       logr.Logger
	Now          func() time.Time
	// Ready reports whether the receiver can take work.
	Ready func() error
	// Extra lets other packages (the inbound pipeline) add routes.
	Extra func(mux *http.ServeMux)
}

// Handler returns the routes.
func (a *API) Handler() http.Handler {
	if a.Now == nil {
		a.Now = time.Now
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if a.Ready != nil {
			if err := a.Ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("POST /v1/events", a.RequireToken(http.HandlerFunc(a.postEvent)))
	mux.Handle("GET /v1/endpoints/{namespace}/{name}/deliveries", a.RequireToken(http.HandlerFunc(a.listDeliveries)))
	mux.Handle("GET /v1/deliveries/{id}", a.RequireToken(http.HandlerFunc(a.getDelivery)))
	if a.Extra != nil {
		a.Extra(mux)
	}
	return mux
}

// APITokenHeader carries the API token when the Authorization header cannot
// (requests through the Kubernetes API server's service proxy).
const APITokenHeader = "X-Mira-Api-Token"

// RequireToken checks "Authorization: Bearer <api-token>" (or
// X-Mira-Api-Token) in constant time.
// Without a configured token the route answers 503.
func (a *API) RequireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := a.Integrations.Value(r.Context(), APITokenKey)
		if token == "" {
			a.Logger.Info("API route refused: the integrations Secret has no api-token", "path", r.URL.Path)
			writeError(w, http.StatusServiceUnavailable, "the API token is not configured")
			return
		}
		// Through the API server's service proxy the Authorization header is
		// consumed by the API server, so the CLI sends X-Mira-Api-Token.
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			got, ok = r.Header.Get(APITokenHeader), r.Header.Get(APITokenHeader) != ""
		}
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			writeError(w, http.StatusUnauthorized, "unauthorized")
			return
		}
		next.ServeHTTP(w, r)
	})
}

type postedEvent struct {
	ID    string          `json:"id,omitempty"`
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

func (a *API) postEvent(w http.ResponseWriter, r *http.Request) {
	var in postedEvent
	if !decodeBody(w, r, MaxEventBytes, &in) {
		return
	}
	if !isEventType(in.Event) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("event must be one of %s", strings.Join(miraapi.EventTypes, ", ")))
		return
	}
	if len(in.Data) == 0 || in.Data[0] != '{' {
		writeError(w, http.StatusBadRequest, "data must be a JSON object")
		return
	}
	if in.ID != "" && !validToken(in.ID) {
		writeError(w, http.StatusBadRequest, "id must be 1–128 characters of [A-Za-z0-9_-]")
		return
	}
	now := a.Now().UTC()
	ev := Event{ID: in.ID, Type: in.Event, Data: in.Data, Time: now}
	if ev.ID == "" {
		ev.ID = NewEventID(now)
	}
	if err := a.Publisher.Publish(r.Context(), ev); err != nil {
		a.Logger.Error(err, "store event")
		writeError(w, http.StatusServiceUnavailable, "the event could not be stored; retry")
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": ev.ID})
}

func isEventType(t string) bool {
	for _, e := range miraapi.EventTypes {
		if e == t {
			return true
		}
	}
	return false
}

// DeliveryPage is the answer of the listing route.
type DeliveryPage struct {
	Items      []Record `json:"items"`
	NextCursor string   `json:"next_cursor,omitempty"`
}

func (a *API) listDeliveries(w http.ResponseWriter, r *http.Request) {
	e := a.Registry.Lookup(r.PathValue("namespace"), r.PathValue("name"))
	if e == nil {
		writeError(w, http.StatusNotFound, "no such WebhookEndpoint")
		return
	}
	q := r.URL.Query()
	o := ListOptions{After: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "limit must be a positive number")
			return
		}
		o.Limit = n
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "since must be an RFC 3339 time")
			return
		}
		o.Since = t
	}
	states, err := parseOutcomes(q.Get("outcome"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	o.States = states
	items, next, err := a.Log.List(r.Context(), string(e.UID), o)
	if err != nil {
		a.Logger.Error(err, "list deliveries")
		writeError(w, http.StatusServiceUnavailable, "the delivery log is unavailable")
		return
	}
	if items == nil {
		items = []Record{}
	}
	writeJSON(w, http.StatusOK, DeliveryPage{Items: items, NextCursor: next})
}

// parseOutcomes maps ?outcome=a,b to states; "failed" means retrying or dead.
func parseOutcomes(v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "delivered":
			out = append(out, StateDelivered)
		case "retrying":
			out = append(out, StateRetrying)
		case "dead":
			out = append(out, StateDead)
		case "skipped":
			out = append(out, StateSkipped)
		case "pending":
			out = append(out, StatePending)
		case "failed":
			out = append(out, StateRetrying, StateDead)
		default:
			return nil, fmt.Errorf("outcome must be delivered, retrying, dead, skipped, pending or failed, not %q", s)
		}
	}
	return out, nil
}

func (a *API) getDelivery(w http.ResponseWriter, r *http.Request) {
	rec, err := a.Log.Find(r.Context(), r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such delivery")
		return
	}
	if err != nil {
		a.Logger.Error(err, "read delivery")
		writeError(w, http.StatusServiceUnavailable, "the delivery log is unavailable")
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// decodeBody reads a bounded JSON body: 413 past the limit, 400 when invalid.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", limit))
			return false
		}
		writeError(w, http.StatusBadRequest, "invalid JSON body")
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// NewServer returns an http.Server with the receiver's limits.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr: addr, Handler: h,
		MaxHeaderBytes: MaxHeaderBytes, ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout: ReadTimeout, WriteTimeout: WriteTimeout, IdleTimeout: IdleTimeout,
	}
}
