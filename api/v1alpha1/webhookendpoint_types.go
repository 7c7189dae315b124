package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WebhookEndpointSpec is an outgoing webhook subscription: where Mira POSTs
// which events, signed with which secret, under which delivery policy.
// +kubebuilder:validation:XValidation:rule="!(has(self.url) && has(self.service))",message="url and service are mutually exclusive: set exactly one"
// +kubebuilder:validation:XValidation:rule="has(self.url) || has(self.service)",message="one of url or service is required"
type WebhookEndpointSpec struct {
	// URL is the absolute http(s) URL deliveries are POSTed to. Plain http is
	// accepted here but the endpoint stays not Ready (reason InsecureURL)
	// unless the manager runs with --allow-insecure-urls. Exactly one of url
	// and service is required.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="url must be an absolute http:// or https:// URL"
	URL string `json:"url,omitempty"`

	// Service targets a Service in the cluster, as Kubernetes admission
	// webhooks do. Exactly one of url and service is required.
	// +optional
	Service *ServiceReference `json:"service,omitempty"`

	// Events this endpoint subscribes to: report.completed,
	// meeting.transcript_ready, meeting.failed, roleplay.completed, or "*"
	// for all of them; and the operational events endpoint.degraded,
	// endpoint.disabled, endpoint.recovered and delivery.dead, which "*"
	// does not match: they are delivered only to endpoints that list them,
	// and never to the endpoint they are about. "*" may be combined only
	// with operational events.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=9
	// +kubebuilder:validation:items:Enum="report.completed";"meeting.transcript_ready";"meeting.failed";"roleplay.completed";"endpoint.degraded";"endpoint.disabled";"endpoint.recovered";"delivery.dead";"*"
	// +kubebuilder:validation:XValidation:rule="self.all(e, self.exists_one(f, f == e))",message="events must not contain duplicates"
	// +kubebuilder:validation:XValidation:rule="!('*' in self) || self.all(e, e == '*' || e.startsWith('endpoint.') || e.startsWith('delivery.'))",message="'*' subscribes to every product event and may only be combined with operational events (endpoint.*, delivery.dead)"
	Events []string `json:"events"`

	// HeadersSecretRef names a Secret, in the endpoint's namespace, whose
	// every key is sent as an HTTP header with its value on each attempt
	// (for example "Authorization: Bearer …" or "X-Api-Key"). Keys must be
	// valid header names and must not be a header Mira owns (X-Mira-*,
	// webhook-*, Content-Type, Content-Length, Host, User-Agent): the
	// endpoint is not Ready (reason InvalidHeaders) otherwise. Values never
	// appear in logs, Events, status or the delivery log. A change to the
	// Secret applies to attempts made after the receiver's Secret cache
	// (30 s) expires, without a restart.
	// +optional
	HeadersSecretRef *LocalSecretReference `json:"headersSecretRef,omitempty"`

	// Filter is a CEL expression over "event" (event.type, event.id,
	// event.data, event.timestamp) that must be true for an event to be
	// delivered, e.g. `event.data.user_id in ["usr_1", "usr_2"]`. Events
	// that do not match (or whose evaluation fails) produce no delivery and
	// are counted in status.deliveries.filtered. A filter that does not
	// compile makes the endpoint not Ready (reason InvalidFilter).
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Filter string `json:"filter,omitempty"`

	// SecretRef names the Secret, in the endpoint's namespace, whose key
	// (default "signingSecret") holds the signing secret. The operator never
	// writes to a Secret named here. When omitted, the controller generates a
	// Secret "<endpoint name>-signing-secret" owned by the endpoint, holding
	// "whsec_" + base64 of 32 random bytes under the key "signingSecret";
	// key can then only be set together with name.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.key) || self.key == 'signingSecret' || has(self.name)",message="secretRef.key needs secretRef.name: a generated Secret always uses the key signingSecret; name your own Secret to choose the key"
	SecretRef *SecretKeyReference `json:"secretRef,omitempty"`

	// Delivery tunes timeouts, retries, concurrency and auto-disable. Every
	// field has a default.
	// +optional
	Delivery *DeliveryPolicy `json:"delivery,omitempty"`

	// TLS configures a custom CA bundle and client certificate for https
	// targets.
	// +optional
	TLS *TLSConfig `json:"tls,omitempty"`

	// Suspend stops deliveries to this endpoint. Events that arrive while
	// suspended are recorded as skipped and can be redelivered.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// ServiceReference points at a Service port in the cluster.
type ServiceReference struct {
	// Name of the Service.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// Namespace of the Service; defaults to the endpoint's namespace.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`

	// Port of the Service; defaults to 443 for https and 80 for http.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`

	// Path of the request; defaults to "/".
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="service.path must start with '/'"
	Path string `json:"path,omitempty"`

	// Scheme is https (default) or http. In-cluster http is allowed.
	// +optional
	// +kubebuilder:validation:Enum=https;http
	Scheme string `json:"scheme,omitempty"`
}

// SecretKeyReference names a key of a Secret in the same namespace.
type SecretKeyReference struct {
	// Name of the Secret; defaults to "<endpoint name>-signing-secret".
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name,omitempty"`

	// Key in the Secret's data; defaults to "signingSecret".
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// CASecretReference names a key of a Secret, in the same namespace, that
// holds a PEM CA bundle.
type CASecretReference struct {
	// Name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Key holding the PEM bundle; defaults to "ca.crt".
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// LocalSecretReference names a Secret in the same namespace.
type LocalSecretReference struct {
	// Name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// TLSConfig holds TLS settings for https targets.
type TLSConfig struct {
	// CASecretRef names a Secret whose key (default "ca.crt") holds a PEM CA
	// bundle used instead of the system roots.
	// +optional
	CASecretRef *CASecretReference `json:"caSecretRef,omitempty"`

	// ClientCertSecretRef names a kubernetes.io/tls Secret ("tls.crt" and
	// "tls.key") presented as the client certificate.
	// +optional
	ClientCertSecretRef *LocalSecretReference `json:"clientCertSecretRef,omitempty"`
}

// DeliveryPolicy tunes how deliveries are attempted.
type DeliveryPolicy struct {
	// Timeout of one attempt, 1s to 60s. Default 15s.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('60s')",message="delivery.timeout must be between 1s and 60s"
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// MaxAttempts is how many attempts a delivery gets before it is dead,
	// 1 to 50. Default 18. With the default backoff that spreads retries
	// over about a day.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=50
	MaxAttempts *int32 `json:"maxAttempts,omitempty"`

	// MaxRetryDuration bounds how long after the first attempt a delivery is
	// retried, 1m to 168h. Default 24h. Whichever of maxAttempts and
	// maxRetryDuration is reached first ends the retries.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m') && duration(self) <= duration('168h')",message="delivery.maxRetryDuration must be between 1m and 168h"
	MaxRetryDuration *metav1.Duration `json:"maxRetryDuration,omitempty"`

	// Backoff between attempts.
	// +optional
	Backoff *BackoffPolicy `json:"backoff,omitempty"`

	// MaxConcurrency is how many attempts to this endpoint may be in flight
	// at once, 1 to 64. Default 16.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=64
	MaxConcurrency *int32 `json:"maxConcurrency,omitempty"`

	// RateLimit caps attempts per second to this endpoint, 1 to 10000.
	// Unset means no limit.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	RateLimit *int32 `json:"rateLimit,omitempty"`

	// DisableAfter is how long an endpoint may fail continuously before the
	// receiver disables it, 1m to 720h. Default 72h. It is marked Degraded
	// (with a Warning Event) after 5 consecutive failures first.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m') && duration(self) <= duration('720h')",message="delivery.disableAfter must be between 1m and 720h"
	DisableAfter *metav1.Duration `json:"disableAfter,omitempty"`
}

// BackoffPolicy is exponential backoff with jitter: initial × 2^(attempt−1),
// capped at max, each delay shortened by a random share of up to jitter percent.
// +kubebuilder:validation:XValidation:rule="!has(self.initial) || !has(self.max) || duration(self.initial) <= duration(self.max)",message="backoff.initial must not exceed backoff.max"
type BackoffPolicy struct {
	// Initial delay before the second attempt, 1s to 1h. Default 5s.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('1h')",message="backoff.initial must be between 1s and 1h"
	Initial *metav1.Duration `json:"initial,omitempty"`

	// Max delay between attempts, 1s to 24h. Default 4h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="backoff.max must be between 1s and 24h"
	Max *metav1.Duration `json:"max,omitempty"`

	// Jitter in percent, 1 to 100. Default 20. It cannot be switched off:
	// without it, deliveries that failed together retry together.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Jitter *int32 `json:"jitter,omitempty"`
}

// WebhookEndpointStatus is written by two field managers: the controller
// (Ready, observedGeneration, signingSecretRef, targetURL) and the receiver
// (delivery health, Degraded and Disabled).
type WebhookEndpointStatus struct {
	// Conditions: Ready, Reconciling and Stalled (controller; Ready also
	// reflects the receiver's delivery health), Degraded and Disabled
	// (receiver). Ready is True while deliveries can flow (reason Degraded
	// while they keep failing), False when misconfigured, suspended or
	// disabled.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the generation the controller last reconciled to
	// a final outcome.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// SigningSecretRef is the Secret and key deliveries are signed with.
	// +optional
	SigningSecretRef *SecretKeyReference `json:"signingSecretRef,omitempty"`

	// TargetURL is the resolved URL deliveries are POSTed to.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	TargetURL string `json:"targetURL,omitempty"`

	// LastDelivery is the most recent attempt.
	// +optional
	LastDelivery *DeliveryAttempt `json:"lastDelivery,omitempty"`

	// LastSuccessTime is when an attempt last succeeded.
	// +optional
	LastSuccessTime *metav1.Time `json:"lastSuccessTime,omitempty"`

	// LastFailureTime is when an attempt last failed.
	// +optional
	LastFailureTime *metav1.Time `json:"lastFailureTime,omitempty"`

	// FailingSince is when the current run of consecutive failures began.
	// +optional
	FailingSince *metav1.Time `json:"failingSince,omitempty"`

	// ConsecutiveFailures counts failed attempts since the last success.
	// +optional
	ConsecutiveFailures int32 `json:"consecutiveFailures,omitempty"`

	// Deliveries counts deliveries by state since the receiver's data began.
	// +optional
	Deliveries *DeliveryCounts `json:"deliveries,omitempty"`

	// RecentAttempts are the last attempts, newest first (at most 10). The
	// full history is served by the receiver's API and `kubectl mira`.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	RecentAttempts []DeliveryAttempt `json:"recentAttempts,omitempty"`

	// HandledAnnotations records, per action annotation, the last value the
	// operator acted on, so that each request is handled once.
	// +optional
	// +kubebuilder:validation:MaxProperties=8
	HandledAnnotations map[string]string `json:"handledAnnotations,omitempty"`
}

// DeliveryAttempt summarises one HTTP attempt.
type DeliveryAttempt struct {
	// DeliveryID is stable across the retries of one delivery (= webhook-id).
	// +kubebuilder:validation:MaxLength=128
	DeliveryID string `json:"deliveryID"`
	// Event type.
	// +kubebuilder:validation:MaxLength=64
	Event string `json:"event"`
	// Attempt number, from 1.
	Attempt int32 `json:"attempt"`
	// Time the attempt started.
	Time metav1.Time `json:"time"`
	// StatusCode of the response; 0 when none was received.
	// +optional
	StatusCode int32 `json:"statusCode,omitempty"`
	// DurationMilliseconds of the attempt.
	// +optional
	DurationMilliseconds int64 `json:"durationMilliseconds,omitempty"`
	// Outcome: Delivered, Retrying, Dead, Skipped or Blocked.
	// +kubebuilder:validation:MaxLength=32
	Outcome string `json:"outcome"`
	// Error, when the attempt failed without a response or with one.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Error string `json:"error,omitempty"`
	// Payload is the request body, truncated to 1 KiB.
	// +optional
	// +kubebuilder:validation:MaxLength=1100
	Payload string `json:"payload,omitempty"`
}

// DeliveryCounts counts deliveries by state.
type DeliveryCounts struct {
	// Delivered successfully.
	// +optional
	Delivered int64 `json:"delivered,omitempty"`
	// Retrying: failed at least once and scheduled again.
	// +optional
	Retrying int64 `json:"retrying,omitempty"`
	// Dead: gave up after the retry policy ran out.
	// +optional
	Dead int64 `json:"dead,omitempty"`
	// Skipped: not attempted because the endpoint was suspended or disabled.
	// +optional
	Skipped int64 `json:"skipped,omitempty"`
	// Filtered: events the endpoint subscribes to that spec.filter
	// dropped; no delivery was made for them.
	// +optional
	Filtered int64 `json:"filtered,omitempty"`
}

// WebhookEndpoint is an outgoing webhook subscription. `kubectl get
// webhookendpoints` answers "is my webhook working?".
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=whe,categories=mira
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.status.targetURL`
// +kubebuilder:printcolumn:name="Events",type=string,JSONPath=`.spec.events`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Last Status",type=integer,JSONPath=`.status.lastDelivery.statusCode`
// +kubebuilder:printcolumn:name="Last Delivery",type=date,JSONPath=`.status.lastDelivery.time`
// +kubebuilder:printcolumn:name="Failures",type=integer,JSONPath=`.status.consecutiveFailures`,priority=1
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type WebhookEndpoint struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired subscription.
	// +required
	Spec WebhookEndpointSpec `json:"spec"`

	// Status is what the controller and receiver observed.
	// +optional
	Status WebhookEndpointStatus `json:"status,omitempty"`
}

// WebhookEndpointList is a list of WebhookEndpoints.
// +kubebuilder:object:root=true
type WebhookEndpointList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WebhookEndpoint `json:"items"`
}

func init() {
	SchemeBuilder.Register(&WebhookEndpoint{}, &WebhookEndpointList{})
}
