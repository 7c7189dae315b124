package controllers

import (
	"context"

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

// SetupWithManager registers the reconciler and its watches. Besides its own
// changes, a template is reconciled whenever a default template in its
// namespace appears, changes or goes away, so a conflict clears on its own.
func (r *ScoringTemplateReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := miraapi.IndexDefaultTemplates(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	defaultsChanged := predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return e.Object.(*miraapi.ScoringTemplate).Spec.Default },
		DeleteFunc: func(e event.DeleteEvent) bool { return e.Object.(*miraapi.ScoringTemplate).Spec.Default },
		UpdateFunc: func(e event.UpdateEvent) bool {
			return e.ObjectOld.(*miraapi.ScoringTemplate).Spec.Default != e.ObjectNew.(*miraapi.ScoringTemplate).Spec.Default
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&miraapi.ScoringTemplate{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&miraapi.ScoringTemplate{}, handler.EnqueueRequestsFromMapFunc(r.defaultsInNamespace), builder.WithPredicates(defaultsChanged)).
		Named("scoringtemplate").
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, r.Concurrency)}).
		Complete(r)
}

func (r *ScoringTemplateReconciler) defaultsInNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	var list miraapi.ScoringTemplateList
	if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{miraapi.DefaultTemplateIndexKey: "true"}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list default ScoringTemplates")
		return nil
	}
	var reqs []reconcile.Request
	for _, t := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: t.Namespace, Name: t.Name}})
	}
	// The object itself, when it stopped being the default.
	reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}})
	return reqs
}
