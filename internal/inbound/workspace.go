package inbound

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mira/mira-operator/internal/billing"
	"github.com/mira/mira-operator/internal/integrations"
	"github.com/mira/mira-operator/internal/workspace"
)

// Everything the pipeline does happens in one workspace, carried by the
// context (workspace.With): the routes set it from the path (or the
// default workspace), the pipeline from the inbound message's subject.
// These helpers give that workspace's view of the shared state.

// secret is the integrations Secret of ctx's workspace.
func (in *Inbound) secret(ctx context.Context) *integrations.Secret {
	return in.workspaces.Secret(workspace.From(ctx))
}

// legacy says whether ns may read keys written before workspaces existed
// (unprefixed): only the default workspace, which owned everything then.
func (in *Inbound) legacy(ns string) bool { return ns != "" && ns == in.defaultNS }

// stateOf is the pipeline state bucket scoped to ctx's workspace.
func (in *Inbound) stateOf(ctx context.Context) jetstream.KeyValue {
	ns := workspace.From(ctx)
	return workspace.Scoped(in.state, ns, in.legacy(ns))
}

// reportsOf is the reports bucket scoped to ctx's workspace: the key of a
// report is "<namespace>.<reportID>".
func (in *Inbound) reportsOf(ctx context.Context) jetstream.KeyValue {
	ns := workspace.From(ctx)
	return workspace.Scoped(in.reports, ns, in.legacy(ns))
}

// billingOf is the billing state of ctx's workspace.
func (in *Inbound) billingOf(ctx context.Context) *billing.Processor {
	ns := workspace.From(ctx)
	return in.billing.WithKV(workspace.Scoped(in.billing.KV(), ns, in.legacy(ns)))
}

// templatesNamespace is where ctx's workspace looks up ScoringTemplates:
// its own namespace (the legacy --templates-namespace for the default one).
func (in *Inbound) templatesNamespace(ctx context.Context) string {
	ns := workspace.From(ctx)
	if ns == in.defaultNS && in.o.TemplatesNamespace != "" {
		return in.o.TemplatesNamespace
	}
	return ns
}
