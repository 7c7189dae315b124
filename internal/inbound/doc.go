// Package inbound is the receiver's inbound side: verified Recall.ai and
// Stripe webhooks, the roleplay API, and the pipeline that turns them into
// coaching reports, billing state and Mira events.
//
// Every request is verified, then stored durably in the MIRA_INBOUND stream
// (deduplicated on the provider's id) before it is answered 2xx. The pipeline
// workers (durable consumer "pipeline") process each stored message:
//
//   - Recall bot.done, recording.done, transcript.done (legacy: done,
//     analysis_done): follow the transcript's own lifecycle (recall.Plan):
//     download a done transcript, wait for a processing one (recorded,
//     nothing emitted, one message polls with a bounded backoff until
//     --recall-transcript-timeout), start one with create_transcript exactly
//     once per recording (a create-if-absent key in mira-state), or use the
//     legacy endpoint for bots without media_shortcuts. Then emit
//     meeting.transcript_ready, score with a ScoringTemplate, store the
//     report in mira-reports and emit report.completed.
//   - Recall fatal, transcript.failed, analysis_failed, an empty transcript,
//     a timeout, or a transcript that cannot be fetched or scored: emit
//     meeting.failed. Mira-side failures can be rescored
//     (POST /v1/meetings/{id}/rescore).
//   - Stripe: apply the event to the billing bucket.
//   - Roleplays: score, store the report, emit roleplay.completed.
//
// Ids are deterministic (meeting id from the bot id, report id from subject
// and template, event ids from type and subject) and a small per-meeting and
// per-roleplay record in mira-state is the single source of truth: each
// state change is a compare-and-set on its revision that also puts the
// change's events in the record's outbox, and only then are they published.
// Replicas racing on one meeting therefore never publish contradictory
// events, and replays emit nothing new even after JetStream's 24 h dedupe
// window.
//
// +kubebuilder:rbac:groups=platform.mira.io,resources=scoringtemplates,verbs=get;list;watch
package inbound
