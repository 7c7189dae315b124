// Package cli holds the commands users run on their machines:
//
//   - `mira-operator listen`: a local webhook consumer that verifies both
//     signatures of every delivery (X-Mira-Signature and webhook-signature),
//     prints it, and optionally forwards it to a local app.
//   - `kubectl mira` (the same binary installed as kubectl-mira): reads the
//     receiver's delivery log through the API server and asks the operator
//     to act (redeliver, replay, test, rotate-secret, enable) through the action
//     annotations of a WebhookEndpoint.
//
// See docs/cli.md.
package cli
