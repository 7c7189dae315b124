// Package controllers holds one reconciler per kind of the platform.mira.io
// API: they validate configuration, generate signing Secrets and report the
// Ready condition. Delivery health is written by the receiver.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
	"github.com/mira/mira-operator/internal/delivery"
	"github.com/mira/mira-operator/internal/eventfilter"
	"github.com/mira/mira-operator/internal/signing"
	"github.com/mira/mira-operator/internal/statuspatch"
)

// WebhookEndpointReconciler reconciles WebhookEndpoints: it resolves the
// target, makes sure the signing Secret exists (generating it when the spec
// names none) and reports Ready.
type WebhookEndpointReconciler struct {
	client.Client
	// APIReader reads Secrets straight from the API server, so the manager
	// never caches Secret data.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// AllowInsecureURLs lets plain-http url targets become Ready.
	AllowInsecureURLs bool
	// AllowCrossNamespaceTargets lets spec.service name a Service in
	// another namespace (compare Flux's --no-cross-namespace-refs).
	AllowCrossNamespaceTargets bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Concurrency is how many endpoints reconcile in parallel.
	Concurrency int
}

// +kubebuilder:rbac:groups=platform.mira.io,resources=webhookendpoints,verbs=get;list;watch
// +kubebuilder:rbac:groups=platform.mira.io,resources=webhookendpoints/status,verbs=get;patch;update
// +kubebuilder:rbac:groups=platform.mira.io,resources=webhookendpoints/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// endpointOutcome is what one reconcile concluded; it becomes the
// controller-owned part of the status.
type endpointOutcome struct {
	// reason and message describe the configuration; endpointConditions
	// turns them (with the receiver's delivery health) into conditions.
	reason    string
	message   string
	secretRef *miraapi.SecretKeyReference
	targetURL string
	// handledRotation is the rotate-secret annotation value acted on.
	handledRotation string
	// transient is set when the outcome is not final for this generation.
	transient bool
}

// Reconcile implements reconcile.Reconciler.
func (r *WebhookEndpointReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	log := ctrl.LoggerFrom(ctx)
	obj := &miraapi.WebhookEndpoint{}
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.DeletionTimestamp.IsZero() {
		// Generated Secrets are garbage-collected through owner references.
		return ctrl.Result{}, nil
	}

	out := r.reconcile(ctx, obj)

	// One status write per reconcile, and none when nothing changed.
	defer func() {
		if err := r.applyStatus(ctx, obj, out); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()

	if out.transient {
		log.V(1).Info("transient failure, will retry", "reason", out.reason)
		return ctrl.Result{}, fmt.Errorf("reconcile %s: %s", klog.KObj(obj), out.message)
	}
	return ctrl.Result{}, nil
}

// reconcile runs the steps in order; the first that does not succeed decides
// the outcome.
func (r *WebhookEndpointReconciler) reconcile(ctx context.Context, obj *miraapi.WebhookEndpoint) endpointOutcome {
	out := endpointOutcome{handledRotation: obj.Status.HandledAnnotations[miraapi.RotateSecretAnnotation]}
	for _, step := range []func(context.Context, *miraapi.WebhookEndpoint, *endpointOutcome) bool{
		r.resolveTarget,
		r.reconcileSigningSecret,
		r.checkTLSSecrets,
		r.checkHeadersSecret,
		r.checkFilter,
		r.checkSuspended,
	} {
		if !step(ctx, obj, &out) {
			return out
		}
	}
	out.reason = miraapi.ValidReason
	out.message = "delivering " + strings.Join(obj.Spec.Events, ", ") + " to " + out.targetURL
	return out
}

func (o *endpointOutcome) fail(reason, format string, args ...any) bool {
	o.reason, o.message = reason, fmt.Sprintf(format, args...)
	return false
}

func (o *endpointOutcome) transientFail(err error, what string) bool {
	o.transient = true
	return o.fail(miraapi.ProgressingReason, "%s: %v", what, err)
}

// resolveTarget turns spec.url or spec.service into the URL deliveries go to.
func (r *WebhookEndpointReconciler) resolveTarget(ctx context.Context, obj *miraapi.WebhookEndpoint, out *endpointOutcome) bool {
	if obj.Spec.Service != nil {
		svc := obj.Spec.Service
		ns := obj.ServiceNamespace()
		if ns != obj.Namespace && !r.AllowCrossNamespaceTargets {
			return out.fail(miraapi.CrossNamespaceTargetReason,
				"Service %s/%s is in another namespace; targets must be in %s unless the operator runs with --allow-cross-namespace-targets", ns, svc.Name, obj.Namespace)
		}
		service := &corev1.Service{}
		if err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: svc.Name}, service); err != nil {
			if apierrors.IsNotFound(err) {
				return out.fail(miraapi.ServiceNotFoundReason, "Service %s/%s not found", ns, svc.Name)
			}
			return out.transientFail(err, "get Service")
		}
		if service.Spec.Type == corev1.ServiceTypeExternalName {
			return out.fail(miraapi.ExternalNameServiceReason,
				"Service %s/%s is of type ExternalName, which is refused: it can resolve to any address; point spec.url at the external host instead", ns, svc.Name)
		}
		out.targetURL = miraapi.ServiceURL(obj)
		return true
	}
	u, err := url.Parse(obj.Spec.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return out.fail(miraapi.InvalidSpecReason, "url must be an absolute http:// or https:// URL")
	}
	if u.User != nil {
		// Never echo the URL: it holds credentials.
		return out.fail(miraapi.InvalidSpecReason, "url must not embed credentials; use a custom header-free endpoint or a Service")
	}
	// status.targetURL, the Ready message and Events show the URL without
	// query values: they often carry tokens.
	out.targetURL = miraapi.RedactURL(u.String())
	if u.Scheme == "http" && !r.AllowInsecureURLs {
		return out.fail(miraapi.InsecureURLReason, "plain http url %s is refused; use https or run the manager with --allow-insecure-urls", out.targetURL)
	}
	return true
}

// reconcileSigningSecret makes sure the signing secret can be read: it
// generates (and on request rotates) an owned Secret, or checks a referenced one.
func (r *WebhookEndpointReconciler) reconcileSigningSecret(ctx context.Context, obj *miraapi.WebhookEndpoint, out *endpointOutcome) bool {
	name, key := obj.SigningSecretName(), obj.SigningSecretKey()
	if obj.UsesGeneratedSecret() && key != miraapi.SigningSecretKey {
		// Refused at admission; objects stored before that rule existed end
		// here instead of rewriting the generated Secret on every reconcile.
		return out.fail(miraapi.InvalidSpecReason, "secretRef.key %q needs secretRef.name: a generated Secret always uses the key %q", key, miraapi.SigningSecretKey)
	}
	secret := &corev1.Secret{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: obj.Namespace, Name: name}, secret)
	switch {
	case apierrors.IsNotFound(err) && obj.UsesGeneratedSecret():
		if err := r.generateSecret(ctx, obj); err != nil {
			return out.transientFail(err, "generate signing Secret")
		}
		out.secretRef = &miraapi.SecretKeyReference{Name: name, Key: key}
		return true
	case apierrors.IsNotFound(err):
		return out.fail(miraapi.SecretNotFoundReason, "Secret %s not found in namespace %s", name, obj.Namespace)
	case err != nil:
		return out.transientFail(err, "get signing Secret")
	}

	owned := metav1.IsControlledBy(secret, obj)
	if obj.UsesGeneratedSecret() && owned {
		if len(secret.Data[key]) == 0 {
			if err := r.rotateSecret(ctx, obj, secret, ""); err != nil {
				return out.transientFail(err, "repair signing Secret")
			}
		}
		// The Secret records which request it was rotated for (it is read
		// from the API server, so this holds even when the cached endpoint
		// status lags), making each request rotate exactly once.
		if want := obj.Annotations[miraapi.RotateSecretAnnotation]; want != "" && want != out.handledRotation {
			if secret.Annotations[miraapi.RotateSecretAnnotation] != want {
				if err := r.rotateSecret(ctx, obj, secret, want); err != nil {
					return out.transientFail(err, "rotate signing Secret")
				}
			}
			out.handledRotation = want
		}
	} else if len(secret.Data[key]) == 0 {
		return out.fail(miraapi.SecretKeyMissingReason, "Secret %s has no key %q", name, key)
	}
	out.secretRef = &miraapi.SecretKeyReference{Name: name, Key: key}
	return true
}

func (r *WebhookEndpointReconciler) generateSecret(ctx context.Context, obj *miraapi.WebhookEndpoint) error {
	value, err := signing.GenerateSecret()
	if err != nil {
		return err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      obj.GeneratedSecretName(),
			Namespace: obj.Namespace,
			Labels: map[string]string{
				"app.kubernetes.io/managed-by": "mira-operator",
				"platform.mira.io/endpoint":    obj.Name,
			},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{miraapi.SigningSecretKey: []byte(value)},
	}
	if err := controllerutil.SetControllerReference(obj, secret, r.Scheme()); err != nil {
		return fmt.Errorf("set owner of Secret %s: %w", secret.Name, err)
	}
	if err := r.Create(ctx, secret); err != nil {
		return fmt.Errorf("create Secret %s: %w", secret.Name, err)
	}
	r.Recorder.Eventf(obj, secret, corev1.EventTypeNormal, miraapi.SecretGeneratedReason, "GenerateSecret",
		"generated signing Secret %s (key %s)", secret.Name, miraapi.SigningSecretKey)
	return nil
}

// rotateSecret writes a new signing secret into an owned Secret. For a
// rotation request (non-empty request), the old value stays under
// previousSigningSecret and the rotation time is annotated, so the receiver
// signs with both during the grace period; an empty request repairs a Secret
// whose key went missing.
func (r *WebhookEndpointReconciler) rotateSecret(ctx context.Context, obj *miraapi.WebhookEndpoint, secret *corev1.Secret, request string) error {
	value, err := signing.GenerateSecret()
	if err != nil {
		return err
	}
	patch := client.MergeFrom(secret.DeepCopy())
	if secret.Data == nil {
		secret.Data = map[string][]byte{}
	}
	if request != "" {
		if secret.Annotations == nil {
			secret.Annotations = map[string]string{}
		}
		secret.Annotations[miraapi.RotateSecretAnnotation] = request
		if len(secret.Data[miraapi.SigningSecretKey]) > 0 {
			secret.Data[miraapi.PreviousSigningSecretKey] = secret.Data[miraapi.SigningSecretKey]
			secret.Annotations[miraapi.RotatedAtAnnotation] = r.now().UTC().Format(time.RFC3339)
		}
	}
	secret.Data[miraapi.SigningSecretKey] = []byte(value)
	if err := r.Patch(ctx, secret, patch); err != nil {
		return fmt.Errorf("update Secret %s: %w", secret.Name, err)
	}
	r.Recorder.Eventf(obj, secret, corev1.EventTypeNormal, "SecretRotated", "RotateSecret",
		"rotated signing Secret %s; the previous secret keeps signing webhook-signature during the grace period", secret.Name)
	return nil
}

// checkTLSSecrets checks that Secrets named under spec.tls exist with their keys.
func (r *WebhookEndpointReconciler) checkTLSSecrets(ctx context.Context, obj *miraapi.WebhookEndpoint, out *endpointOutcome) bool {
	if obj.Spec.TLS == nil {
		return true
	}
	type need struct {
		name string
		keys []string
	}
	var needs []need
	if ref := obj.Spec.TLS.CASecretRef; ref != nil {
		key := ref.Key
		if key == "" {
			key = "ca.crt"
		}
		needs = append(needs, need{ref.Name, []string{key}})
	}
	if ref := obj.Spec.TLS.ClientCertSecretRef; ref != nil {
		needs = append(needs, need{ref.Name, []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey}})
	}
	for _, n := range needs {
		s := &corev1.Secret{}
		if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: obj.Namespace, Name: n.name}, s); err != nil {
			if apierrors.IsNotFound(err) {
				return out.fail(miraapi.SecretNotFoundReason, "TLS Secret %s not found in namespace %s", n.name, obj.Namespace)
			}
			return out.transientFail(err, "get TLS Secret")
		}
		for _, k := range n.keys {
			if len(s.Data[k]) == 0 {
				return out.fail(miraapi.SecretKeyMissingReason, "TLS Secret %s has no key %q", n.name, k)
			}
		}
	}
	return true
}

// checkHeadersSecret checks that the Secret named by spec.headersSecretRef
// exists and that every key is a header Mira may send. Messages name the
// offending key, never a value.
func (r *WebhookEndpointReconciler) checkHeadersSecret(ctx context.Context, obj *miraapi.WebhookEndpoint, out *endpointOutcome) bool {
	ref := obj.Spec.HeadersSecretRef
	if ref == nil {
		return true
	}
	s := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: obj.Namespace, Name: ref.Name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return out.fail(miraapi.SecretNotFoundReason, "headers Secret %s not found in namespace %s", ref.Name, obj.Namespace)
		}
		return out.transientFail(err, "get headers Secret")
	}
	if err := delivery.ValidateCustomHeaders(s.Data); err != nil {
		return out.fail(miraapi.InvalidHeadersReason, "headers Secret %s: %v", ref.Name, err)
	}
	return true
}

// checkFilter compiles spec.filter; a filter that does not compile (or is
// too costly) makes the endpoint not Ready with the compiler's message.
func (r *WebhookEndpointReconciler) checkFilter(_ context.Context, obj *miraapi.WebhookEndpoint, out *endpointOutcome) bool {
	if obj.Spec.Filter == "" {
		return true
	}
	if _, err := eventfilter.Compile(obj.Spec.Filter); err != nil {
		return out.fail(miraapi.InvalidFilterReason, "spec.filter: %v", err)
	}
	return true
}

func (r *WebhookEndpointReconciler) checkSuspended(_ context.Context, obj *miraapi.WebhookEndpoint, out *endpointOutcome) bool {
	if obj.Spec.Suspend {
		return out.fail(miraapi.SuspendedReason, "deliveries are suspended (spec.suspend); events are kept as skipped")
	}
	return true
}

// applyStatus writes the controller's status fields when they differ from
// what is stored, and emits an Event when the Ready condition changes.
func (r *WebhookEndpointReconciler) applyStatus(ctx context.Context, obj *miraapi.WebhookEndpoint, out endpointOutcome) error {
	observed := obj.Status.ObservedGeneration
	if !out.transient {
		observed = obj.Generation
	}
	ready, reconciling, stalled := endpointConditions(out.reason, out.message, obj.Health(), obj.Generation)
	conds := []metav1.Condition{ready, reconciling, stalled}
	now := metav1.NewTime(r.now())
	unchanged := true
	for i := range conds {
		c := &conds[i]
		c.LastTransitionTime = now
		prev := apimeta.FindStatusCondition(obj.Status.Conditions, c.Type)
		if prev != nil && prev.Status == c.Status {
			c.LastTransitionTime = prev.LastTransitionTime
		}
		if prev == nil || prev.Status != c.Status || prev.Reason != c.Reason || prev.Message != c.Message ||
			prev.ObservedGeneration != c.ObservedGeneration {
			unchanged = false
		}
	}
	secretRef, targetURL := out.secretRef, out.targetURL
	if secretRef == nil {
		secretRef = obj.Status.SigningSecretRef
	}
	if targetURL == "" {
		targetURL = obj.Status.TargetURL
	}
	unchanged = unchanged && observed == obj.Status.ObservedGeneration &&
		equalRef(secretRef, obj.Status.SigningSecretRef) && targetURL == obj.Status.TargetURL &&
		out.handledRotation == obj.Status.HandledAnnotations[miraapi.RotateSecretAnnotation]
	if unchanged {
		return nil
	}
	status := miraapi.WebhookEndpointStatus{
		Conditions:         conds,
		ObservedGeneration: observed,
		SigningSecretRef:   secretRef,
		TargetURL:          targetURL,
	}
	if out.handledRotation != "" {
		status.HandledAnnotations = map[string]string{miraapi.RotateSecretAnnotation: out.handledRotation}
	}
	if err := statuspatch.Apply(ctx, r.Client, miraapi.GroupVersion.WithKind("WebhookEndpoint"), obj.Namespace, obj.Name, &status, miraapi.ControllerFieldManager); err != nil {
		return err
	}
	// Delivery-health transitions (Degraded, Disabled and back) already have
	// their Events from the receiver; the controller reports configuration.
	prev := apimeta.FindStatusCondition(obj.Status.Conditions, miraapi.ReadyCondition)
	if prev == nil || (prev.Reason != ready.Reason && !(healthReason(prev.Reason) && healthReason(ready.Reason))) {
		eventType := corev1.EventTypeNormal
		if ready.Status != metav1.ConditionTrue || ready.Reason == miraapi.DegradedReason {
			eventType = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(obj, nil, eventType, ready.Reason, "Reconcile", "%s", ready.Message)
	}
	return nil
}

// healthReason reports whether a Ready reason is about delivery health on a
// valid configuration.
func healthReason(reason string) bool {
	return reason == miraapi.ValidReason || reason == miraapi.DegradedReason || reason == miraapi.DisabledReason
}

func equalRef(a, b *miraapi.SecretKeyReference) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func (r *WebhookEndpointReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

var _ reconcile.Reconciler = &WebhookEndpointReconciler{}
