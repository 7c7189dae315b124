// Package dashboard serves the Webhooks dashboard: server-rendered pages of
// WebhookEndpoints, their delivery logs, single deliveries and coaching
// reports, plus the operator's actions (redeliver, test, enable,
// rotate-secret) as CSRF-protected forms.
//
// It holds no credentials of its own. Endpoints are read through a
// Kubernetes client built from the user's kubeconfig; the delivery log,
// reports and actions come through the Log and Actions interfaces, which
// `kubectl mira dashboard` (internal/cli) implements with exactly the code
// its other subcommands use. So the pages show what the user's RBAC lets
// them see, and a refused action shows the API server's message.
//
// See docs/dashboard.md.
package dashboard
