// Package secretcache reads Secrets by name with a short per-object cache,
// so the receiver never lists or watches Secrets: it GETs the few it needs
// (integrations Secrets, endpoints' signing and TLS Secrets) and keeps each
// for TTL. Its ClusterRole has only "get" on secrets.
package secretcache

import (
	"context"
	"errors"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// DefaultTTL is how long a read Secret (or its absence) is reused.
const DefaultTTL = 30 * time.Second

// Reader is a client.Reader that serves Secrets from GETs against the API
// server (cached for TTL per namespace/name) and everything else from
// Objects (the manager's informer cache). Listing Secrets is refused.
type Reader struct {
	// Objects reads every kind but Secrets.
	Objects client.Reader
	// API reads Secrets straight from the API server (mgr.GetAPIReader()).
	API client.Reader
	// TTL of an entry; 0 means DefaultTTL.
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxEntries bounds the cached Secrets; 0 means DefaultMaxEntries.
	MaxEntries int

	mu      sync.Mutex
	entries map[types.NamespacedName]entry
}

type entry struct {
	secret  *corev1.Secret // nil: not found
	expires time.Time
}

// New returns a Reader; both readers are required.
func New(objects, api client.Reader) (*Reader, error) {
	if objects == nil || api == nil {
		return nil, errors.New("secretcache: both an object reader and an API reader are required")
	}
	return &Reader{Objects: objects, API: api}, nil
}

var _ client.Reader = (*Reader)(nil)

// Get implements client.Reader.
func (r *Reader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return r.Objects.Get(ctx, key, obj, opts...)
	}
	now := r.now()
	r.mu.Lock()
	e, hit := r.entries[key]
	r.mu.Unlock()
	if !hit || !now.Before(e.expires) {
		fresh := &corev1.Secret{}
		err := r.API.Get(ctx, key, fresh)
		switch {
		case apierrors.IsNotFound(err):
			fresh = nil
		case err != nil:
			return err // not cached: the next Get asks again
		}
		e = entry{secret: fresh, expires: now.Add(r.ttl())}
		r.mu.Lock()
		if r.entries == nil {
			r.entries = map[types.NamespacedName]entry{}
		}
		if len(r.entries) >= pruneAt {
			r.pruneLocked(now)
		}
		if limit := r.maxEntries(); len(r.entries) >= limit {
			// Still full of live entries: forget half of them (a cache,
			// so it only costs GETs), keeping memory bounded whatever
			// names requests make the receiver read.
			r.evictLocked(limit / 2)
		}
		r.entries[key] = e
		r.mu.Unlock()
	}
	if e.secret == nil {
		return apierrors.NewNotFound(corev1.Resource("secrets"), key.Name)
	}
	e.secret.DeepCopyInto(s)
	return nil
}

// List implements client.Reader; Secrets are never listed.
func (r *Reader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if _, ok := list.(*corev1.SecretList); ok {
		return errors.New("secretcache: Secrets are read by name, never listed")
	}
	return r.Objects.List(ctx, list, opts...)
}

// Forget drops a cached Secret so the next Get reads it again.
func (r *Reader) Forget(key client.ObjectKey) {
	r.mu.Lock()
	delete(r.entries, key)
	r.mu.Unlock()
}

// pruneAt is the entry count at which a miss first drops expired entries,
// so the map stays bounded by the Secrets read within one TTL.
const pruneAt = 1024

// DefaultMaxEntries bounds the cache: past it, live entries are evicted too.
const DefaultMaxEntries = 16384

func (r *Reader) maxEntries() int {
	if r.MaxEntries > 0 {
		return r.MaxEntries
	}
	return DefaultMaxEntries
}

// evictLocked drops entries (in map order, which is random) until n remain.
func (r *Reader) evictLocked(n int) {
	for k := range r.entries {
		if len(r.entries) <= n {
			return
		}
		delete(r.entries, k)
	}
}

// Prune drops expired entries.
func (r *Reader) Prune() {
	r.mu.Lock()
	r.pruneLocked(r.now())
	r.mu.Unlock()
}

func (r *Reader) pruneLocked(now time.Time) {
	for k, e := range r.entries {
		if !now.Before(e.expires) {
			delete(r.entries, k)
		}
	}
}

func (r *Reader) ttl() time.Duration {
	if r.TTL > 0 {
		return r.TTL
	}
	return DefaultTTL
}

func (r *Reader) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}
