package main

import (
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/mira/mira-operator/internal/dataapi"
	"github.com/mira/mira-operator/internal/inbound"
	"github.com/mira/mira-operator/internal/receiver"
)

// receiverCommand holds the flags of `mira-operator receiver`.
type receiverCommand struct {
	*serverCommand
	o  receiver.Options
	in inbound.Options
	// data serves the aggregated API data.platform.mira.io.
	data dataapi.Flags
}

func newReceiverCommand() *receiverCommand {
	c := &receiverCommand{serverCommand: newServerCommand("receiver")}
	c.o.BindFlags(c.fs)
	c.in.BindFlags(c.fs)
	c.data.Bind(c.fs)
	for _, n := range dataapi.FlagNames {
		setGroup(c.fs, n, "Server")
	}
	return c
}

// runReceiver wires `mira-operator receiver`: the data plane, with the
// inbound pipeline constructed here and mounted on it.
func runReceiver(args []string) error {
	c := newReceiverCommand()
	cfg, err := c.start(args)
	if err != nil {
		return err
	}
	ctx := ctrl.SetupSignalHandler()
	log := ctrl.Log.WithName("receiver")
	r, err := receiver.New(ctx, cfg, c.o, log)
	if err != nil {
		return err
	}
	defer r.Close()
	in, err := inbound.New(inbound.Deps{
		JetStream: r.JetStream, Publisher: r.Publisher, Integrations: r.Integrations, Workspaces: r.Workspaces,
		NamespaceAuth: r.Auth.Require, KnownWorkspace: r.KnownWorkspace, Templates: r.Manager.GetCache(),
		Replicas: c.o.Replicas, WatchNamespace: c.o.WatchNamespace, Logger: log.WithName("inbound"),
	}, c.in)
	if err != nil {
		return err
	}
	r.Mount(in)
	if c.data.Enabled() {
		api, err := dataapi.NewPart(ctx, cfg, r.JetStream, c.data, nil)
		if err != nil {
			return err
		}
		r.Mount(api)
	}
	return r.Start(ctx)
}
