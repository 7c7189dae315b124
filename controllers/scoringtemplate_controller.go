package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/statuspatch"
)

// ScoringTemplateReconciler reports whether a ScoringTemplate is usable and
// flags conflicting defaults in a namespace.
type ScoringTemplateReconciler struct {
	client.Client
	Recorder events.EventRecorder
	Now      func() time.Time
	// Concurrency is how many templates reconcile in parallel.
	Concurrency int
}

// +kubebuilder:rbac:groups=platform.mira.io,resources=scoringtemplates,verbs=get;list;watch
// +kubebuilder:rbac:groups=platform.mira.io,resources=scoringtemplates/status,verbs=get;patch;update

// Reconcile implements reconcile.Reconciler.
func (r *ScoringTemplateReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := &miraapi.ScoringTemplate{}
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}

	cond := metav1.Condition{
		Type:    miraapi.ReadyCondition,
		Status:  metav1.ConditionTrue,
		Reason:  miraapi.ValidReason,
		Message: fmt.Sprintf("%d criteria, passing score %d", len(obj.Spec.Criteria), obj.GetPassingScore()),
	}
	if obj.Spec.Default {
		defaults, err := miraapi.DefaultTemplates(ctx, r.Client, obj.Namespace)
		if err != nil {
			return ctrl.Result{}, err
		}
		if len(defaults) > 1 {
			cond.Status, cond.Reason = metav1.ConditionFalse, miraapi.ConflictReason
			cond.Message = fmt.Sprintf("%d templates in namespace %s are marked default (%s); keep exactly one",
				len(defaults), obj.Namespace, strings.Join(defaults, ", "))
		} else {
			cond.Message = "default template; " + cond.Message
		}
	}
	return ctrl.Result{}, r.applyStatus(ctx, obj, cond)
}

func (r *ScoringTemplateReconciler) applyStatus(ctx context.Context, obj *miraapi.ScoringTemplate, cond metav1.Condition) error {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	cond.ObservedGeneration = obj.Generation
	cond.LastTransitionTime = metav1.NewTime(now())
	prev := apimeta.FindStatusCondition(obj.Status.Conditions, miraapi.ReadyCondition)
	if prev != nil && prev.Status == cond.Status {
		cond.LastTransitionTime = prev.LastTransitionTime
		if prev.Reason == cond.Reason && prev.Message == cond.Message && prev.ObservedGeneration == cond.ObservedGeneration &&
			obj.Status.ObservedGeneration == obj.Generation {
			return nil
		}
	}
	status := miraapi.ScoringTemplateStatus{Conditions: []metav1.Condition{cond}, ObservedGeneration: obj.Generation}
	if err := statuspatch.Apply(ctx, r.Client, miraapi.GroupVersion.WithKind("ScoringTemplate"), obj.Namespace, obj.Name, &status, miraapi.ControllerFieldManager); err != nil {
		return err
	}
	if prev == nil || prev.Status != cond.Status || prev.Reason != cond.Reason {
		eventType := corev1.EventTypeNormal
		if cond.Status != metav1.ConditionTrue {
			eventType = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(obj, nil, eventType, cond.Reason, "Reconcile", "%s", cond.Message)
	}
	return nil
}
