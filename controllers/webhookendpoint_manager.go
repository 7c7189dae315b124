package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

// Field indexes on WebhookEndpoints.
const (
	// SecretIndexKey indexes endpoints by every Secret name they read.
	SecretIndexKey = ".metadata.secretNames"
	// ServiceIndexKey indexes endpoints by "namespace/name" of their Service.
	ServiceIndexKey = ".spec.service.namespacedName"
)

// SecretNames lists the Secrets, in the endpoint's namespace, it depends on.
func SecretNames(obj *miraapi.WebhookEndpoint) []string {
	names := []string{obj.SigningSecretName()}
	if t := obj.Spec.TLS; t != nil {
		if t.CASecretRef != nil && t.CASecretRef.Name != "" {
			names = append(names, t.CASecretRef.Name)
		}
		if t.ClientCertSecretRef != nil {
			names = append(names, t.ClientCertSecretRef.Name)
		}
	}
	if ref := obj.Spec.HeadersSecretRef; ref != nil && ref.Name != "" {
		names = append(names, ref.Name)
	}
	return names
}

// SetupWithManager registers the reconciler, its indexes and its watches.
func (r *WebhookEndpointReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &miraapi.WebhookEndpoint{}, SecretIndexKey, func(o client.Object) []string {
		return SecretNames(o.(*miraapi.WebhookEndpoint))
	}); err != nil {
		return fmt.Errorf("index WebhookEndpoints by Secret: %w", err)
	}
	if err := idx.IndexField(ctx, &miraapi.WebhookEndpoint{}, ServiceIndexKey, func(o client.Object) []string {
		obj := o.(*miraapi.WebhookEndpoint)
		if obj.Spec.Service == nil {
			return nil
		}
		return []string{obj.ServiceNamespace() + "/" + obj.Spec.Service.Name}
	}); err != nil {
		return fmt.Errorf("index WebhookEndpoints by Service: %w", err)
	}

	return ctrl.NewControllerManagedBy(mgr).
		For(&miraapi.WebhookEndpoint{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{},
			// The rotate-secret annotation is a request to act.
			predicate.AnnotationChangedPredicate{},
			// Ready reflects the delivery health the receiver writes.
			deliveryHealthChanged,
		))).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.endpointsForSecret)).
		// Full objects: the type matters (ExternalName Services are refused).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.endpointsForService)).
		Named("webhookendpoint").
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, r.Concurrency)}).
		Complete(r)
}

// deliveryHealthChanged passes updates in which the receiver's Degraded or
// Disabled conditions changed, so that Ready follows them; the receiver's
// other status writes (counts, recent attempts) do not reconcile.
var deliveryHealthChanged = predicate.Funcs{
	CreateFunc:  func(event.CreateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*miraapi.WebhookEndpoint)
		n, ok2 := e.ObjectNew.(*miraapi.WebhookEndpoint)
		if !ok1 || !ok2 {
			return false
		}
		ho, hn := o.Health(), n.Health()
		return ho.Disabled != hn.Disabled || ho.Degraded != hn.Degraded || ho.DisabledMessage != hn.DisabledMessage
	},
}

func (r *WebhookEndpointReconciler) endpointsForSecret(ctx context.Context, o client.Object) []reconcile.Request {
	return r.listRequests(ctx, client.InNamespace(o.GetNamespace()), client.MatchingFields{SecretIndexKey: o.GetName()})
}

func (r *WebhookEndpointReconciler) endpointsForService(ctx context.Context, o client.Object) []reconcile.Request {
	return r.listRequests(ctx, client.MatchingFields{ServiceIndexKey: o.GetNamespace() + "/" + o.GetName()})
}

func (r *WebhookEndpointReconciler) listRequests(ctx context.Context, opts ...client.ListOption) []reconcile.Request {
	var list miraapi.WebhookEndpointList
	if err := r.List(ctx, &list, opts...); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list WebhookEndpoints for a watched object")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, item := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: item.Namespace, Name: item.Name}})
	}
	return reqs
}
