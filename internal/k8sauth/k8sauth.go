// Package k8sauth guards the receiver's publishing routes with Kubernetes
// identities: a caller presents a Kubernetes bearer token (typically a
// ServiceAccount's), the receiver authenticates it with a TokenReview and
// authorises the request with a SubjectAccessReview (verb "create" on a
// resource of group data.platform.mira.io in the namespace of the path).
//
// Both answers are cached for TTL (about a minute), the positive and the
// negative ones, in a bounded map keyed by a SHA-256 of the token: the raw
// token is never stored or logged. At 5,000 publishes/s from a few callers
// the API server sees a few reviews a minute.
package k8sauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/mira/mira-operator/internal/workspace"
)

// Group is the API group whose resources the publishing routes are
// authorised against.
const Group = "data.platform.mira.io"

// Defaults of Reviewer.
const (
	DefaultTTL        = time.Minute
	DefaultMaxEntries = 10000
)

// Creator creates review objects; a controller-runtime client is one.
type Creator interface {
	Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error
}

// Reviewer authenticates and authorises requests against the API server,
// with a cache.
type Reviewer struct {
	// Client creates TokenReviews and SubjectAccessReviews.
	Client Creator
	// TTL of a cached answer; 0 means DefaultTTL.
	TTL time.Duration
	// MaxEntries bounds each cache; 0 means DefaultMaxEntries.
	MaxEntries int
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger logr.Logger

	// TokenReviews and AccessReviews count the reviews sent to the API
	// server (cache misses), for metrics and tests.
	TokenReviews  atomic.Int64
	AccessReviews atomic.Int64

	mu      sync.Mutex
	users   map[string]userEntry
	allowed map[string]allowEntry
	// flights holds the reviews under way, so a burst of requests with a
	// token not cached yet sends one review, not one per request.
	flights map[string]*flight
}

// flight is one review under way; done closes when val and err are set.
type flight struct {
	done chan struct{}
	val  any
	err  error
}

// once runs review for key unless one is under way, in which case it
// waits for that one and shares its answer. cached, called with a.mu held,
// returns an answer cached meanwhile (a review that just finished), so a
// burst of requests sends exactly one review.
func (a *Reviewer) once(ctx context.Context, key string, cached func() (any, bool), review func() (any, error)) (any, error) {
	a.mu.Lock()
	if v, ok := cached(); ok {
		a.mu.Unlock()
		return v, nil
	}
	if f, ok := a.flights[key]; ok {
		a.mu.Unlock()
		select {
		case <-f.done:
			return f.val, f.err
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
		}
	}
	if a.flights == nil {
		a.flights = map[string]*flight{}
	}
	f := &flight{done: make(chan struct{})}
	a.flights[key] = f
	a.mu.Unlock()
	f.val, f.err = review()
	a.mu.Lock()
	delete(a.flights, key)
	a.mu.Unlock()
	close(f.done)
	return f.val, f.err
}

// userEntry is a cached TokenReview answer (user nil: not authenticated).
type userEntry struct {
	user    *authnv1.UserInfo
	expires time.Time
}

// allowEntry is a cached SubjectAccessReview answer.
type allowEntry struct {
	allowed bool
	expires time.Time
}

// ErrUnavailable wraps a review the API server could not answer.
var ErrUnavailable = errors.New("the Kubernetes API server could not review the request")

// Require serves next only to callers allowed to "create" resource
// (group data.platform.mira.io) in the namespace the path names
// ({namespace}): 401 without a valid token, 403 without the permission,
// 503 when the API server cannot be asked, 404 for a path that cannot
// name a namespace. Every refusal comes before the body is read.
func (a *Reviewer) Require(resource string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ns := r.PathValue("namespace")
		if !workspace.Valid(ns) {
			refuse(w, http.StatusNotFound, "no such workspace")
			return
		}
		token, ok := bearer(r)
		if !ok {
			refuse(w, http.StatusUnauthorized, "unauthorized: a Kubernetes bearer token is required")
			return
		}
		code, err := a.Check(r.Context(), token, ns, resource)
		switch code {
		case http.StatusOK:
			next.ServeHTTP(w, r)
		case http.StatusServiceUnavailable:
			a.Logger.Error(err, "publishing request not reviewed", "namespace", ns, "resource", resource)
			w.Header().Set("Retry-After", "1")
			refuse(w, code, "the Kubernetes API server could not review the request; retry")
		case http.StatusForbidden:
			refuse(w, code, fmt.Sprintf("forbidden: cannot create %s.%s in namespace %s", resource, Group, ns))
		default:
			refuse(w, http.StatusUnauthorized, "unauthorized")
		}
	})
}

// Check reviews one request: 200 allowed, 401 not authenticated, 403
// not authorised, 503 (with the error) when a review failed.
func (a *Reviewer) Check(ctx context.Context, token, namespace, resource string) (int, error) {
	id := tokenID(token)
	user, err := a.authenticate(ctx, id, token)
	if err != nil {
		return http.StatusServiceUnavailable, err
	}
	if user == nil {
		return http.StatusUnauthorized, nil
	}
	ok, err := a.authorize(ctx, id, user, namespace, resource)
	switch {
	case err != nil:
		return http.StatusServiceUnavailable, err
	case !ok:
		return http.StatusForbidden, nil
	}
	return http.StatusOK, nil
}

// authenticate returns the token's user, nil when the token is not valid.
func (a *Reviewer) authenticate(ctx context.Context, id, token string) (*authnv1.UserInfo, error) {
	cached := func() (any, bool) {
		e, hit := a.users[id]
		return e.user, hit && a.now().Before(e.expires)
	}
	a.mu.Lock()
	u, hit := cached()
	a.mu.Unlock()
	if hit {
		user, _ := u.(*authnv1.UserInfo)
		return user, nil
	}
	v, err := a.once(ctx, "authn/"+id, cached, func() (any, error) { return a.tokenReview(ctx, id, token) })
	if err != nil {
		return nil, err
	}
	user, _ := v.(*authnv1.UserInfo)
	return user, nil
}

// tokenReview asks the API server who the token is (nil: not
// authenticated) and caches the answer.
func (a *Reviewer) tokenReview(ctx context.Context, id, token string) (*authnv1.UserInfo, error) {
	a.TokenReviews.Add(1)
	ctx, cancel := reviewContext(ctx)
	defer cancel()
	tr := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}
	if err := a.Client.Create(ctx, tr); err != nil {
		return nil, fmt.Errorf("%w: TokenReview: %w", ErrUnavailable, err)
	}
	if !tr.Status.Authenticated {
		a.Logger.V(1).Info("bearer token not authenticated", "reason", tr.Status.Error)
	}
	var user *authnv1.UserInfo
	if tr.Status.Authenticated {
		u := tr.Status.User
		user = &u
	}
	now := a.now()
	a.mu.Lock()
	a.users = putBounded(a.users, id, userEntry{user: user, expires: now.Add(a.ttl())}, a.max(), now,
		func(e userEntry) time.Time { return e.expires })
	a.mu.Unlock()
	return user, nil
}

// authorize asks whether user may create resource in namespace.
func (a *Reviewer) authorize(ctx context.Context, id string, user *authnv1.UserInfo, namespace, resource string) (bool, error) {
	key := id + "/" + namespace + "/" + resource
	cached := func() (any, bool) {
		e, hit := a.allowed[key]
		return e.allowed, hit && a.now().Before(e.expires)
	}
	a.mu.Lock()
	ok, hit := cached()
	a.mu.Unlock()
	if hit {
		return ok.(bool), nil
	}
	v, err := a.once(ctx, "authz/"+key, cached, func() (any, error) { return a.accessReview(ctx, key, user, namespace, resource) })
	if err != nil {
		return false, err
	}
	allowed, _ := v.(bool)
	return allowed, nil
}

// accessReview asks the API server whether user may create resource in
// namespace and caches the answer under key.
func (a *Reviewer) accessReview(ctx context.Context, key string, user *authnv1.UserInfo, namespace, resource string) (bool, error) {
	a.AccessReviews.Add(1)
	ctx, cancel := reviewContext(ctx)
	defer cancel()
	extra := map[string]authzv1.ExtraValue{}
	for k, v := range user.Extra {
		extra[k] = authzv1.ExtraValue(v)
	}
	sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra,
		ResourceAttributes: &authzv1.ResourceAttributes{
			Namespace: namespace, Verb: "create", Group: Group, Resource: resource,
		},
	}}
	if err := a.Client.Create(ctx, sar); err != nil {
		return false, fmt.Errorf("%w: SubjectAccessReview: %w", ErrUnavailable, err)
	}
	allowed := sar.Status.Allowed && !sar.Status.Denied
	now := a.now()
	a.mu.Lock()
	a.allowed = putBounded(a.allowed, key, allowEntry{allowed: allowed, expires: now.Add(a.ttl())}, a.max(), now,
		func(e allowEntry) time.Time { return e.expires })
	a.mu.Unlock()
	return allowed, nil
}

// reviewTimeout bounds one review; past it the request answers 503.
const reviewTimeout = 10 * time.Second

// reviewContext detaches a review from the request that started it (other
// requests wait for the same answer) and bounds it.
func reviewContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), reviewTimeout)
}

// putBounded stores v under k; a full map first drops its expired
// entries and, if still full, everything (a cache, so only a cost).
func putBounded[V any](m map[string]V, k string, v V, limit int, now time.Time, expires func(V) time.Time) map[string]V {
	if m == nil {
		m = map[string]V{}
	}
	if _, ok := m[k]; !ok && len(m) >= limit {
		for key, e := range m {
			if !now.Before(expires(e)) {
				delete(m, key)
			}
		}
		if len(m) >= limit {
			clear(m)
		}
	}
	m[k] = v
	return m
}

// tokenID is the cache key of a token: a SHA-256, so the token itself is
// never kept.
func tokenID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// bearer returns the request's bearer token.
func bearer(r *http.Request) (string, bool) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	token = strings.TrimSpace(token)
	return token, ok && token != ""
}

// refuse answers without reading the body (the connection closes, so no
// unread body is drained).
func refuse(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Connection", "close")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func (a *Reviewer) ttl() time.Duration {
	if a.TTL > 0 {
		return a.TTL
	}
	return DefaultTTL
}

func (a *Reviewer) max() int {
	if a.MaxEntries > 0 {
		return a.MaxEntries
	}
	return DefaultMaxEntries
}

func (a *Reviewer) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}
