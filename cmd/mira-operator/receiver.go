package main

import (
	"flag"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/mira/mira-operator/internal/inbound"
	"github.com/mira/mira-operator/internal/receiver"
)

// runReceiver wires `mira-operator receiver`: the data plane, with the
// inbound pipeline constructed here and mounted on it.
func runReceiver(args []string) error {
	fs := flag.NewFlagSet("receiver", flag.ContinueOnError)
	var o receiver.Options
	o.BindFlags(fs)
	var io inbound.Options
	io.BindFlags(fs)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	ctx := ctrl.SetupSignalHandler()
	log := ctrl.Log.WithName("receiver")
	r, err := receiver.New(ctx, cfg, o, log)
	if err != nil {
		return err
	}
	defer r.Close()
	in, err := inbound.New(inbound.Deps{
		JetStream: r.JetStream, Publisher: r.Publisher, Integrations: r.Integrations, Templates: r.Manager.GetCache(),
		Replicas: o.Replicas, WatchNamespace: o.WatchNamespace, Logger: log.WithName("inbound"),
	}, io)
	if err != nil {
		return err
	}
	r.Mount(in)
	return r.Start(ctx)
}
