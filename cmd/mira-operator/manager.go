package main

import (
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/mira/mira-operator/internal/manager"
)

// managerCommand holds the flags of `mira-operator manager`.
type managerCommand struct {
	*serverCommand
	o manager.Options
}

func newManagerCommand() *managerCommand {
	c := &managerCommand{serverCommand: newServerCommand("manager")}
	c.o.BindFlags(c.fs)
	return c
}

// runManager runs the controllers until SIGINT/SIGTERM.
func runManager(args []string) error {
	c := newManagerCommand()
	cfg, err := c.start(args)
	if err != nil {
		return err
	}
	mgr, err := manager.New(cfg, c.o)
	if err != nil {
		return err
	}
	ctx := ctrl.SetupSignalHandler()
	if err := manager.Setup(ctx, mgr, c.o); err != nil {
		return err
	}
	ctrl.Log.WithName("setup").Info("starting manager", "allowInsecureURLs", c.o.AllowInsecureURLs, "watchNamespace", c.o.WatchNamespace)
	return mgr.Start(ctx)
}
