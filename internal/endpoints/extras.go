package endpoints

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/mira/mira-operator/internal/delivery"
	"github.com/mira/mira-operator/internal/eventfilter"
)

// compiledFilter is an endpoint's spec.filter compiled for one generation.
type compiledFilter struct {
	mu         sync.Mutex
	generation int64
	expr       string
	filter     *eventfilter.Filter
	err        error
	// errLogged: an evaluation error was logged for this generation.
	errLogged bool
}

// Filter returns the endpoint's compiled spec.filter, nil when it has none.
// It compiles once per generation; an endpoint without a filter costs
// nothing (no CEL call).
func (e *Endpoint) Filter() (*eventfilter.Filter, error) {
	obj := e.Object()
	if obj.Spec.Filter == "" {
		return nil, nil
	}
	c := &e.filter
	c.mu.Lock()
	defer c.mu.Unlock()
	if (c.filter == nil && c.err == nil) || c.generation != obj.Generation || c.expr != obj.Spec.Filter {
		c.filter, c.err = eventfilter.Compile(obj.Spec.Filter)
		c.generation, c.expr, c.errLogged = obj.Generation, obj.Spec.Filter, false
	}
	return c.filter, c.err
}

// FirstFilterError reports whether an evaluation error is the first one
// seen for the endpoint's current filter, so it is logged once.
func (e *Endpoint) FirstFilterError() bool {
	c := &e.filter
	c.mu.Lock()
	defer c.mu.Unlock()
	first := !c.errLogged
	c.errLogged = true
	return first
}

// Headers returns the custom headers of an endpoint (spec.headersSecretRef),
// nil when it names none. The Secret is read through the registry's reader
// (the receiver's Secret cache, 30 s), so a change applies to later
// attempts without a restart. A Secret that does not validate is an error:
// nothing of it is sent.
func (r *Registry) Headers(ctx context.Context, e *Endpoint) (map[string][]byte, error) {
	w := e.Object()
	ref := w.Spec.HeadersSecretRef
	if ref == nil {
		return nil, nil
	}
	s := &corev1.Secret{}
	if err := r.reader.Get(ctx, types.NamespacedName{Namespace: w.Namespace, Name: ref.Name}, s); err != nil {
		return nil, fmt.Errorf("read headers Secret %s: %w", ref.Name, err)
	}
	if err := delivery.ValidateCustomHeaders(s.Data); err != nil {
		return nil, fmt.Errorf("headers Secret %s: %w", ref.Name, err)
	}
	return s.Data, nil
}
