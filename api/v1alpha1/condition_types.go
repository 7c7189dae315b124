package v1alpha1

// Condition types.
const (
	// ReadyCondition is True when the object is valid and usable. For a
	// WebhookEndpoint: configured (controller) and deliveries flowing
	// (receiver); False while misconfigured, suspended or disabled. The
	// controller computes it from both in one place.
	ReadyCondition = "Ready"
	// ReconcilingCondition is True while the controller is still working
	// towards the spec (kstatus "InProgress"): a transient error, or a
	// referenced Secret or Service that does not exist yet.
	ReconcilingCondition = "Reconciling"
	// StalledCondition is True when the object cannot make progress without
	// a change by a person (kstatus "Failed"): an invalid spec, or an endpoint
	// the receiver disabled.
	StalledCondition = "Stalled"
	// DegradedCondition is True while a WebhookEndpoint keeps failing
	// deliveries; it warns before the endpoint is disabled. Owned by the receiver.
	DegradedCondition = "Degraded"
	// DisabledCondition is True when the receiver stopped delivering to the
	// endpoint (continuous failures or 410 Gone). Owned by the receiver.
	DisabledCondition = "Disabled"
)

// Condition reasons.
const (
	ValidReason            = "Valid"
	SecretNotFoundReason   = "SecretNotFound"
	SecretKeyMissingReason = "SecretKeyMissing"
	SecretGeneratedReason  = "SecretGenerated"
	ServiceNotFoundReason  = "ServiceNotFound"
	// CrossNamespaceTargetReason on Ready: spec.service names another
	// namespace and the operator does not run with
	// --allow-cross-namespace-targets.
	CrossNamespaceTargetReason = "CrossNamespaceTarget"
	// ExternalNameServiceReason on Ready: spec.service names an ExternalName
	// Service, which could resolve anywhere (a metadata address included).
	ExternalNameServiceReason = "ExternalNameService"
	InsecureURLReason         = "InsecureURL"
	InvalidSpecReason         = "InvalidSpec"
	SuspendedReason           = "Suspended"
	ConflictReason            = "Conflict"
	ProgressingReason         = "Progressing"
	// DisabledReason on Ready and Stalled: the receiver disabled the endpoint.
	DisabledReason = "Disabled"
	// DegradedReason on Ready (which stays True): deliveries keep failing but
	// the endpoint is not disabled yet.
	DegradedReason = "Degraded"
	// ReconciledReason on Reconciling=False and Stalled=False.
	ReconciledReason = "Reconciled"

	// Receiver-owned reasons.
	DeliveriesFailingReason = "DeliveriesFailing"
	DeliveriesHealthyReason = "DeliveriesHealthy"
	ContinuousFailureReason = "ContinuousFailure"
	GoneReason              = "EndpointGone"
	EnabledReason           = "Enabled"
)

// Finalizer is not used: generated Secrets are garbage-collected through
// owner references, and nothing else outlives an endpoint in the cluster.

// Annotations that ask the operator to act once. The value identifies the
// request; a new value asks again. The receiver records the last handled
// value in status so a request is never handled twice.
const (
	// RedeliverAnnotation redelivers one delivery id ("dlv_…"; "dlv_…@<nonce>"
	// asks for the same one again), or every retrying, dead or skipped
	// delivery since a time ("since=2026-01-02T15:04:05Z"), optionally up
	// to another (";until=2026-01-02T17:04:05Z").
	RedeliverAnnotation = "platform.mira.io/redeliver"
	// TestAnnotation sends a webhook.test event to this endpoint regardless of
	// its subscriptions; any new value sends one.
	TestAnnotation = "platform.mira.io/test"
	// RotateSecretAnnotation asks the controller to rotate a generated signing
	// secret; any new value rotates once.
	RotateSecretAnnotation = "platform.mira.io/rotate-secret"
	// EnableAnnotation re-enables an endpoint the receiver disabled; any new
	// value re-enables once.
	EnableAnnotation = "platform.mira.io/enable"
	// ReplayAnnotation queues deliveries to this endpoint for stored events
	// in a window: "since=<RFC 3339>[;until=<RFC 3339>][;event=<type>]
	// [;include-delivered][;nonce=<any>]". Each new value replays once.
	ReplayAnnotation = "platform.mira.io/replay"
)

// Event types a WebhookEndpoint can subscribe to.
const (
	EventReportCompleted        = "report.completed"
	EventMeetingTranscriptReady = "meeting.transcript_ready"
	EventMeetingFailed          = "meeting.failed"
	EventRoleplayCompleted      = "roleplay.completed"
	// EventWebhookTest is sent by the test annotation and the CLI; it cannot
	// be subscribed to.
	EventWebhookTest = "webhook.test"
	// EventAll subscribes to every product event type (not the
	// operational ones).
	EventAll = "*"
)

// Operational event types: about the webhook plane itself, published into
// the endpoint's namespace, delivered only to endpoints that list them
// explicitly and never to the endpoint they are about.
const (
	EventEndpointDegraded  = "endpoint.degraded"
	EventEndpointDisabled  = "endpoint.disabled"
	EventEndpointRecovered = "endpoint.recovered"
	EventDeliveryDead      = "delivery.dead"
)

// OperationalEventTypes lists the operational event types.
var OperationalEventTypes = []string{EventEndpointDegraded, EventEndpointDisabled, EventEndpointRecovered, EventDeliveryDead}

// IsOperationalEvent reports whether t is an operational event type.
func IsOperationalEvent(t string) bool {
	for _, o := range OperationalEventTypes {
		if t == o {
			return true
		}
	}
	return false
}

// Ready reasons of configuration added with headers and filters.
const (
	// InvalidHeadersReason: the headers Secret has a key that is not a valid
	// header name or names a header Mira owns.
	InvalidHeadersReason = "InvalidHeaders"
	// InvalidFilterReason: spec.filter does not compile or is too costly.
	InvalidFilterReason = "InvalidFilter"
)

// EventTypes lists the subscribable event types.
var EventTypes = []string{EventReportCompleted, EventMeetingTranscriptReady, EventMeetingFailed, EventRoleplayCompleted}

// Field managers used with server-side apply on the status subresource.
const (
	ControllerFieldManager = "mira-controller"
	ReceiverFieldManager   = "mira-receiver"
)

// SigningSecretKey is the default key of the signing secret in its Secret.
const SigningSecretKey = "signingSecret"

// PreviousSigningSecretKey holds the secret that was replaced by a rotation,
// kept for the grace period so consumers can switch over.
const PreviousSigningSecretKey = "previousSigningSecret"

// RotatedAtAnnotation on a generated Secret records when it was last rotated
// (RFC 3339); the receiver keeps signing with the previous secret until the
// grace period after that time has passed.
const RotatedAtAnnotation = "platform.mira.io/rotated-at"
