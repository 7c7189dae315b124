// Package endpoints is the data plane's view of WebhookEndpoints: a registry
// kept current by an informer, with each endpoint's signing secrets, HTTP
// sender, circuit breaker and rate limit, so a change applies to the next
// delivery without a restart.
package endpoints

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/delivery"
)

// Registry is the receiver's view of WebhookEndpoints and their signing
// secrets, kept current by informers, so a change applies to the next
// delivery without a restart.
type Registry struct {
	reader client.Reader
	// crossNamespace allows Service targets in other namespaces.
	crossNamespace bool
	guard          *delivery.Guard
	// grace is how long a replaced signing secret keeps signing.
	grace time.Duration
	now   func() time.Time
	// maxResponseBytes bounds the response excerpt of every sender.
	maxResponseBytes int64

	mu    sync.RWMutex
	byUID map[types.UID]*Endpoint
	byKey map[types.NamespacedName]types.UID
	// all is the list All returns, rebuilt after an endpoint was added or
	// removed (nil: stale).
	all []*Endpoint
	// byNS indexes endpoints by namespace (workspace) for the fan-out,
	// which reads it for every event: an event only ever reaches its own
	// namespace, so the other namespaces' endpoints are never looked at.
	byNS map[string]*nsIndex

	synced func() bool
}

// HasSynced reports whether the informer's initial list reached the registry.
func (r *Registry) HasSynced() bool {
	return r.synced != nil && r.synced()
}

// RegistryOptions configure a Registry.
type RegistryOptions struct {
	Reader client.Reader
	// Guard refuses unsafe addresses for url targets; Service targets are
	// in-cluster and not guarded.
	Guard            *delivery.Guard
	RotationGrace    time.Duration
	MaxResponseBytes int64
	Now              func() time.Time
	// AllowCrossNamespaceTargets lets spec.service name another namespace
	// (--allow-cross-namespace-targets, as on the manager).
	AllowCrossNamespaceTargets bool
}

// NewRegistry builds an empty registry; Start fills it from informers.
func NewRegistry(o RegistryOptions) (*Registry, error) {
	if o.Reader == nil {
		return nil, errors.New("registry needs a reader")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	// Senders are built per endpoint on first use; this one only checks
	// the options now rather than at the first delivery.
	if _, err := delivery.NewSender(delivery.SenderOptions{Guard: o.Guard, MaxResponseBytes: o.MaxResponseBytes}); err != nil {
		return nil, err
	}
	return &Registry{
		crossNamespace: o.AllowCrossNamespaceTargets,
		reader:         o.Reader, guard: o.Guard, grace: o.RotationGrace, now: o.Now, maxResponseBytes: o.MaxResponseBytes,
		byUID: map[types.UID]*Endpoint{}, byKey: map[types.NamespacedName]types.UID{}, byNS: map[string]*nsIndex{},
	}, nil
}

// Watch registers informer handlers on the cache for WebhookEndpoints.
func (r *Registry) Watch(ctx context.Context, c cache.Cache) error {
	inf, err := c.GetInformer(ctx, &miraapi.WebhookEndpoint{})
	if err != nil {
		return fmt.Errorf("get WebhookEndpoint informer: %w", err)
	}
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { r.upsert(o) },
		UpdateFunc: func(_, o any) { r.upsert(o) },
		DeleteFunc: func(o any) {
			if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			if w, ok := o.(*miraapi.WebhookEndpoint); ok {
				r.remove(w)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("watch WebhookEndpoints: %w", err)
	}
	r.synced = reg.HasSynced
	return nil
}

func (r *Registry) upsert(o any) {
	if w, ok := o.(*miraapi.WebhookEndpoint); ok {
		r.Observe(w)
	}
}

// Observe records the latest version of an endpoint (read-only: it is shared
// with the informer cache) and returns its state. An older version than the
// one held is ignored.
func (r *Registry) Observe(w *miraapi.WebhookEndpoint) *Endpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.byUID[w.UID]
	if e == nil {
		e = newEndpoint(w)
		r.byUID[w.UID] = e
		r.all = nil
		r.nsIndex(w.Namespace).add(e)
	}
	r.byKey[types.NamespacedName{Namespace: w.Namespace, Name: w.Name}] = w.UID
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.obj != nil && olderThan(w.ResourceVersion, e.obj.ResourceVersion) {
		return e
	}
	if e.obj != nil && e.obj.GetRateLimit() != w.GetRateLimit() {
		e.rate = newRateLimit(w.GetRateLimit())
	}
	if e.obj != nil && !slices.Equal(e.obj.Spec.Events, w.Spec.Events) {
		r.nsIndex(w.Namespace).stale()
	}
	e.obj = w
	return e
}

// nsIndex returns the index of a namespace, creating it; r.mu is held.
func (r *Registry) nsIndex(ns string) *nsIndex {
	x := r.byNS[ns]
	if x == nil {
		x = &nsIndex{members: map[types.UID]*Endpoint{}}
		r.byNS[ns] = x
	}
	return x
}

// olderThan compares resourceVersions; they are etcd revisions, numeric in
// practice, and treated as opaque (never older) when they are not.
func olderThan(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	return err1 == nil && err2 == nil && x < y
}

func (r *Registry) remove(w *miraapi.WebhookEndpoint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.byUID[w.UID]; e != nil {
		e.closeIdle()
	}
	delete(r.byUID, w.UID)
	r.all = nil
	if x := r.byNS[w.Namespace]; x != nil {
		x.remove(w.UID)
		if len(x.members) == 0 {
			delete(r.byNS, w.Namespace)
		}
	}
	key := types.NamespacedName{Namespace: w.Namespace, Name: w.Name}
	if r.byKey[key] == w.UID {
		delete(r.byKey, key)
	}
}

// Get returns an endpoint by uid.
func (r *Registry) Get(uid types.UID) *Endpoint {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byUID[uid]
}

// Lookup returns an endpoint by namespace and name.
func (r *Registry) Lookup(ns, name string) *Endpoint {
	r.mu.RLock()
	defer r.mu.RUnlock()
	uid, ok := r.byKey[types.NamespacedName{Namespace: ns, Name: name}]
	if !ok {
		return nil
	}
	return r.byUID[uid]
}

// All returns every endpoint. The slice is shared until the next change of
// membership: callers must not modify it. (Building a fresh one per event
// walked and copied the whole map for every event the fan-out handled.)
func (r *Registry) All() []*Endpoint {
	r.mu.RLock()
	all := r.all
	r.mu.RUnlock()
	if all != nil {
		return all
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.all == nil {
		r.all = make([]*Endpoint, 0, len(r.byUID))
		for _, e := range r.byUID {
			r.all = append(r.all, e)
		}
	}
	return r.all
}

// Subscribed returns the endpoints of namespace ns subscribed to an event
// type, whatever their Ready state, from an index kept per namespace and
// type: the fan-out's cost per event follows the subscribers, not the
// endpoints configured. The slice is shared until the namespace's
// membership or an endpoint's spec.events changes: callers must not modify it.
func (r *Registry) Subscribed(ns, eventType string) []*Endpoint {
	r.mu.RLock()
	x := r.byNS[ns]
	var list []*Endpoint
	ok := false
	if x != nil {
		list, ok = x.byType[eventType]
	}
	r.mu.RUnlock()
	if x == nil || ok {
		return list
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if x = r.byNS[ns]; x == nil {
		return nil
	}
	return x.subscribed(eventType)
}

// SigningSecrets returns the current secret and the previous one while it is
// within the rotation grace period.
//
// The Secret is read (from the secret cache, a deep copy per read) at most
// once per secretRecheck per endpoint; in between the values read last are
// reused, which saved a Secret copy per delivery.
func (r *Registry) SigningSecrets(ctx context.Context, e *Endpoint) (string, []string, error) {
	w := e.Object()
	now := r.now()
	if cur, prev, ok := e.recentSecrets(w.SigningSecretName(), now, r.grace); ok {
		return cur, prev, nil
	}
	s := &corev1.Secret{}
	if err := r.reader.Get(ctx, types.NamespacedName{Namespace: w.Namespace, Name: w.SigningSecretName()}, s); err != nil {
		return "", nil, fmt.Errorf("read signing Secret %s: %w", w.SigningSecretName(), err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.ResourceVersion != e.secretRV {
		value := string(s.Data[w.SigningSecretKey()])
		if value == "" {
			return "", nil, fmt.Errorf("signing Secret %s has no key %s", s.Name, w.SigningSecretKey())
		}
		switch {
		case len(s.Data[miraapi.PreviousSigningSecretKey]) > 0 && w.UsesGeneratedSecret():
			// A controller rotation: the previous value and the time are in the Secret.
			e.previous = string(s.Data[miraapi.PreviousSigningSecretKey])
			e.previousAt, _ = time.Parse(time.RFC3339, s.Annotations[miraapi.RotatedAtAnnotation])
		case e.current != "" && e.current != value:
			// A user changed their own Secret while we were running.
			e.previous, e.previousAt = e.current, now
		}
		e.current, e.secretRV = value, s.ResourceVersion
	}
	e.secretName, e.secretRead = w.SigningSecretName(), now
	return e.current, e.previousWithin(now, r.grace), nil
}

// Sender returns the HTTP sender for an endpoint: guarded for url targets,
// unguarded for in-cluster Services, with the endpoint's TLS settings.
//
// Each endpoint has a sender of its own whose connections per host are
// bounded by the endpoint's maxConcurrency, idle ones included: a burst
// reuses the connections of earlier attempts and never opens more than
// maxConcurrency (a transport shared by all endpoints dialled extra
// connections while others were being freed, and let one endpoint's
// connections crowd another's out of the idle pool). Idle endpoints have
// no sender until their first delivery.
func (r *Registry) Sender(ctx context.Context, e *Endpoint) (*delivery.Sender, error) {
	w := e.Object()
	// The receiver checks this itself rather than trusting the manager's
	// Ready condition: the two may run with different flags.
	if s := w.Spec.Service; s != nil && w.ServiceNamespace() != w.Namespace && !r.crossNamespace {
		return nil, fmt.Errorf("service target %s/%s is in another namespace (run with --allow-cross-namespace-targets)", w.ServiceNamespace(), s.Name)
	}
	conc := w.GetMaxConcurrency()
	key := fmt.Sprintf("service=%t conc=%d", w.Spec.Service != nil, conc)
	var caPEM, certPEM, keyPEM []byte
	if w.Spec.TLS != nil {
		rv := ""
		if ref := w.Spec.TLS.CASecretRef; ref != nil {
			s := &corev1.Secret{}
			if err := r.reader.Get(ctx, types.NamespacedName{Namespace: w.Namespace, Name: ref.Name}, s); err != nil {
				return nil, fmt.Errorf("read CA Secret %s: %w", ref.Name, err)
			}
			key := ref.Key
			if key == "" {
				key = "ca.crt"
			}
			caPEM, rv = s.Data[key], rv+s.ResourceVersion
		}
		if ref := w.Spec.TLS.ClientCertSecretRef; ref != nil {
			s := &corev1.Secret{}
			if err := r.reader.Get(ctx, types.NamespacedName{Namespace: w.Namespace, Name: ref.Name}, s); err != nil {
				return nil, fmt.Errorf("read client certificate Secret %s: %w", ref.Name, err)
			}
			certPEM, keyPEM, rv = s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey], rv+"/"+s.ResourceVersion
		}
		key += " tls=" + rv
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sender != nil && e.senderKey == key {
		return e.sender, nil
	}
	opts := delivery.SenderOptions{MaxResponseBytes: r.maxResponseBytes, MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}
	if w.Spec.Service == nil {
		opts.Guard = r.guard
	}
	if w.Spec.TLS != nil {
		cfg, err := delivery.TLSConfigFromPEM(caPEM, certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("TLS settings of %s/%s: %w", w.Namespace, w.Name, err)
		}
		opts.TLS = cfg
	}
	s, err := delivery.NewSender(opts)
	if err != nil {
		return nil, err
	}
	if e.sender != nil {
		// Attempts still running on the old sender finish; its idle
		// connections close now.
		e.sender.CloseIdleConnections()
	}
	e.sender, e.senderKey = s, key
	return s, nil
}
