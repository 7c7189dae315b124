// Package inbound is the receiver's inbound side: verified Recall.ai and
// Stripe webhooks, the roleplay API, and the pipeline that turns them into
// coaching reports, billing state and Mira events.
//
// Every request is verified, then stored durably in the MIRA_INBOUND stream
// (deduplicated on the provider's id) before it is answered 2xx. The pipeline
// workers (durable consumer "pipeline") process each stored message:
//
//   - Recall "done" (bot.done, bot.status_change with code done,
//     transcript.done): fetch the transcript, emit meeting.transcript_ready,
//     score it with a ScoringTemplate, store the report in mira-reports and
//     emit report.completed.
//   - Recall "fatal", transcript.failed, or a transcript that cannot be
//     fetched or scored: emit meeting.failed.
//   - Stripe: apply the event to the billing bucket.
//   - Roleplays: score, store the report, emit roleplay.completed.
//
// Ids are deterministic (meeting id from the bot id, report id from subject
// and template, event ids from type and subject) and a small per-meeting and
// per-roleplay record in mira-state remembers what was emitted, so replays
// emit nothing new even after JetStream's 24 h dedupe window.
//
// +kubebuilder:rbac:groups=platform.mira.io,resources=scoringtemplates,verbs=get;list;watch
package inbound
