// Package endpointstatus turns delivery outcomes into each WebhookEndpoint's
// delivery health: a pure stats model (record an outcome, merge what several
// replicas learned) and the writer that merges through the stats bucket and
// applies the receiver's part of the status (Degraded, Disabled, counts,
// recent attempts) with server-side apply.
package endpointstatus
