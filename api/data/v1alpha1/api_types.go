package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// DeliveryObject (kind Delivery) is one (event, endpoint) delivery with
// every attempt kept by the delivery log. Its name is the delivery id with
// "_" replaced by "-" (see NameFromID); spec.id keeps the webhook-id header
// value.
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:generate=true
type DeliveryObject struct {
	metav1.TypeMeta `json:",inline"`
	// Standard object metadata. Labels: platform.mira.io/endpoint,
	// platform.mira.io/event and platform.mira.io/state.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// Spec is what was sent: the event, the endpoint and the body.
	Spec DeliverySpec `json:"spec"`
	// Status is how it went: the state and every logged attempt.
	Status DeliveryStatus `json:"status,omitempty"`
}

// DeliverySpec is what a delivery sends.
// +kubebuilder:object:generate=true
type DeliverySpec struct {
	// ID is the delivery id, the value of the webhook-id header.
	ID string `json:"id"`
	// EventID is the id of the event delivered.
	EventID string `json:"eventID"`
	// Event is the event type, e.g. report.completed.
	Event string `json:"event"`
	// Endpoint is the name of the WebhookEndpoint in this namespace.
	Endpoint string `json:"endpoint"`
	// EndpointUID is the uid of that WebhookEndpoint.
	EndpointUID string `json:"endpointUID"`
	// URL is the target the delivery was last sent to, credentials redacted.
	// +optional
	URL string `json:"url,omitempty"`
	// Body is the JSON body sent (empty when omitted to bound the record).
	// +optional
	Body string `json:"body,omitempty"`
	// BodyOmitted is true when the body was dropped to bound the record.
	// +optional
	BodyOmitted bool `json:"bodyOmitted,omitempty"`
}

// DeliveryStatus is the outcome of a delivery so far.
// +kubebuilder:object:generate=true
type DeliveryStatus struct {
	// State is Pending, Delivered, Retrying, Dead or Skipped.
	State string `json:"state"`
	// Reason says why a delivery waits, died or was skipped.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Round counts redeliveries (0: the first round).
	// +optional
	Round int32 `json:"round,omitempty"`
	// AttemptCount counts attempts in the current round.
	AttemptCount int32 `json:"attemptCount"`
	// LastCode is the HTTP status of the last attempt, 0 when none answered.
	// +optional
	LastCode int32 `json:"lastCode,omitempty"`
	// Updated is when the record last changed.
	// +optional
	Updated metav1.Time `json:"updated,omitempty"`
	// FirstAttempt is the first attempt of the current round.
	// +optional
	FirstAttempt *metav1.Time `json:"firstAttempt,omitempty"`
	// NextRetry is when the next attempt is due.
	// +optional
	NextRetry *metav1.Time `json:"nextRetry,omitempty"`
	// Attempts, oldest first, as many as the delivery log keeps in full.
	// +optional
	// +listType=atomic
	Attempts []DeliveryAttempt `json:"attempts,omitempty"`
	// OlderAttempts summarises attempts no longer kept in full.
	// +optional
	OlderAttempts *DeliveryAttemptSummary `json:"olderAttempts,omitempty"`
}

// DeliveryAttempt is one HTTP attempt with its request and response.
// +kubebuilder:object:generate=true
type DeliveryAttempt struct {
	// Attempt is the attempt number within its round, from 1.
	Attempt int32 `json:"attempt"`
	// Round of the attempt.
	// +optional
	Round int32 `json:"round,omitempty"`
	// Time the attempt started.
	Time metav1.Time `json:"time"`
	// DurationMillis is how long it took.
	DurationMillis int64 `json:"durationMillis"`
	// URL is the target, credentials redacted.
	URL string `json:"url"`
	// RequestHeaders sent (signatures included; they are not secrets).
	// +optional
	RequestHeaders map[string]string `json:"requestHeaders,omitempty"`
	// StatusCode answered, 0 when none.
	// +optional
	StatusCode int32 `json:"statusCode,omitempty"`
	// ResponseHeaders received.
	// +optional
	ResponseHeaders map[string]string `json:"responseHeaders,omitempty"`
	// ResponseBody received, bounded.
	// +optional
	ResponseBody string `json:"responseBody,omitempty"`
	// Error is the transport error or refusal, if any.
	// +optional
	Error string `json:"error,omitempty"`
	// Outcome of the attempt: Delivered, Retrying, Dead or Blocked.
	Outcome string `json:"outcome"`
	// NextRetry is when the next attempt was scheduled.
	// +optional
	NextRetry *metav1.Time `json:"nextRetry,omitempty"`
}

// DeliveryAttemptSummary stands for attempts no longer kept in full.
// +kubebuilder:object:generate=true
type DeliveryAttemptSummary struct {
	// Count of summarised attempts.
	Count int32 `json:"count"`
	// First is the time of the oldest summarised attempt.
	First metav1.Time `json:"first"`
	// Last is the time of the newest summarised attempt.
	Last metav1.Time `json:"last"`
	// LastCodes are the status codes of the newest summarised attempts.
	// +optional
	// +listType=atomic
	LastCodes []int32 `json:"lastCodes,omitempty"`
}

// DeliveryObjectList (kind DeliveryList) is a list of deliveries, newest
// first.
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:generate=true
type DeliveryObjectList struct {
	metav1.TypeMeta `json:",inline"`
	// Standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the deliveries.
	Items []DeliveryObject `json:"items"`
}

// ReportObject (kind Report) is a scored coaching report. Its name is the
// report id with "_" replaced by "-".
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:generate=true
type ReportObject struct {
	metav1.TypeMeta `json:",inline"`
	// Standard object metadata. Labels: platform.mira.io/user and
	// platform.mira.io/template.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// Spec summarises the report.
	Spec ReportSpec `json:"spec"`
	// Data is the scored report exactly as stored (the report.completed
	// payload's full form: criteria, participants, rep selection, ...).
	// +optional
	Data runtime.RawExtension `json:"data,omitempty"`
}

// ReportSpec summarises a report.
// +kubebuilder:object:generate=true
type ReportSpec struct {
	// ReportID is the report id used in events (report_id).
	ReportID string `json:"reportID"`
	// MeetingID is set for meeting reports.
	// +optional
	MeetingID string `json:"meetingID,omitempty"`
	// RoleplayID is set for roleplay reports.
	// +optional
	RoleplayID string `json:"roleplayID,omitempty"`
	// UserID is the Mira user the report belongs to.
	UserID string `json:"userID"`
	// Template is the ScoringTemplate, "<name>" in this namespace.
	Template string `json:"template"`
	// TemplateGeneration is the generation of the template scored with.
	// +optional
	TemplateGeneration int64 `json:"templateGeneration,omitempty"`
	// OverallScore is the weighted score, 0–100, as a decimal string.
	OverallScore string `json:"overallScore"`
	// Passed is OverallScore >= the template's passing score.
	Passed bool `json:"passed"`
}

// ReportObjectList (kind ReportList) is a list of reports.
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:generate=true
type ReportObjectList struct {
	metav1.TypeMeta `json:",inline"`
	// Standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the reports.
	Items []ReportObject `json:"items"`
}
