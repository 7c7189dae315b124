package main

import (
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

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
	if err := c.parse(args); err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&c.zap)))
	cfg, err := c.kube.restConfig()
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
