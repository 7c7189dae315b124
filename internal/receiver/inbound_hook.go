package receiver

import (
	"flag"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// Extension plugs a part into the receiver (the inbound pipeline): its flags
// join the receiver's, and Setup runs after New and before Start so it can
// append Routes and Runnables. It lives here, not in the extension's package,
// because that package imports this one.
type Extension interface {
	BindFlags(fs *flag.FlagSet)
	Setup(r *Receiver) error
}

// MainWith parses flags (the receiver's and every extension's) and runs the
// receiver with the extensions set up until SIGINT/SIGTERM.
func MainWith(args []string, exts ...Extension) error {
	fs := flag.NewFlagSet("receiver", flag.ContinueOnError)
	var o Options
	o.BindFlags(fs)
	for _, e := range exts {
		e.BindFlags(fs)
	}
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
	r, err := New(ctx, cfg, o, ctrl.Log.WithName("receiver"))
	if err != nil {
		return err
	}
	defer r.Close()
	for _, e := range exts {
		if err := e.Setup(r); err != nil {
			return err
		}
	}
	return r.Start(ctx)
}
