package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// flagGroupAnnotation names a flag's group (the packages that define flags
// set it with the same key).
const flagGroupAnnotation = "mira.platform.mira.io/flag-group"

// groupOrder is the order of the groups in help; others follow by name.
var groupOrder = []string{"Server", "Kubernetes", "Controller", "NATS", "Delivery", "Inbound", "Logging"}

// serverCommand is the flag set of one server subcommand, kubectl-style
// (--name value), printed in groups.
type serverCommand struct {
	name string
	fs   *pflag.FlagSet
	kube kubeFlags
	zap  zap.Options
}

func newServerCommand(name string) *serverCommand {
	c := &serverCommand{name: name, fs: pflag.NewFlagSet(name, pflag.ContinueOnError)}
	c.fs.SortFlags = false
	c.kube.bind(c.fs)
	// zap's flags are Go flags; pflag carries them over with their names.
	gofs := flag.NewFlagSet(name, flag.ContinueOnError)
	c.zap.BindFlags(gofs)
	c.fs.AddGoFlagSet(gofs)
	gofs.VisitAll(func(f *flag.Flag) { setGroup(c.fs, f.Name, "Logging") })
	c.fs.Usage = func() { c.usage(os.Stderr) }
	return c
}

func setGroup(fs *pflag.FlagSet, name, group string) {
	_ = fs.SetAnnotation(name, flagGroupAnnotation, []string{group})
}

// parse parses args; errHelp means -h/--help was asked for (usage printed).
func (c *serverCommand) parse(args []string) error {
	err := c.fs.Parse(args)
	if errors.Is(err, pflag.ErrHelp) {
		return errHelp
	}
	if err == nil && c.fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", c.fs.Args())
	}
	return err
}

var errHelp = errors.New("help requested")

// start parses args, sets up logging from the zap flags and loads the
// Kubernetes client configuration from the kubeconfig flags: what every
// server subcommand does before it builds anything.
func (c *serverCommand) start(args []string) (*rest.Config, error) {
	if err := c.parse(args); err != nil {
		return nil, err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&c.zap)))
	return c.kube.restConfig()
}

// usage prints the flags, one section per group.
func (c *serverCommand) usage(w io.Writer) {
	groups := map[string]*pflag.FlagSet{}
	var names []string
	c.fs.VisitAll(func(f *pflag.Flag) {
		g := "General"
		if v := f.Annotations[flagGroupAnnotation]; len(v) > 0 {
			g = v[0]
		}
		if groups[g] == nil {
			groups[g] = pflag.NewFlagSet(g, pflag.ContinueOnError)
			groups[g].SortFlags = false
			names = append(names, g)
		}
		groups[g].AddFlag(f)
	})
	rank := func(g string) int {
		for i, o := range groupOrder {
			if o == g {
				return i
			}
		}
		return len(groupOrder)
	}
	sort.SliceStable(names, func(i, j int) bool {
		if rank(names[i]) != rank(names[j]) {
			return rank(names[i]) < rank(names[j])
		}
		return names[i] < names[j]
	})
	fmt.Fprintf(w, "Usage:\n  mira-operator %s [flags]\n", c.name)
	for _, g := range names {
		fmt.Fprintf(w, "\n%s flags:\n%s", g, groups[g].FlagUsages())
	}
}

// kubeFlags select the cluster, with kubectl's names and precedence:
// --kubeconfig, then $KUBECONFIG, then ~/.kube/config, then the in-cluster
// configuration.
type kubeFlags struct {
	kubeconfig string
	context    string
}

func (k *kubeFlags) bind(fs *pflag.FlagSet) {
	fs.StringVar(&k.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the in-cluster configuration)")
	fs.StringVar(&k.context, "context", "", "kubeconfig context to use (default: the current context)")
	setGroup(fs, "kubeconfig", "Kubernetes")
	setGroup(fs, "context", "Kubernetes")
}

// restConfig loads the configuration the flags select.
func (k *kubeFlags) restConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = k.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: k.context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	// controller-runtime's defaults (ctrl.GetConfig) for a client that is
	// not rate-limited into uselessness.
	if cfg.QPS == 0 {
		cfg.QPS = 20
	}
	if cfg.Burst == 0 {
		cfg.Burst = 30
	}
	return cfg, nil
}

// groupNames lists the groups of the flags of fs, for tests.
func groupNames(fs *pflag.FlagSet) map[string]string {
	out := map[string]string{}
	fs.VisitAll(func(f *pflag.Flag) {
		out[f.Name] = strings.Join(f.Annotations[flagGroupAnnotation], ",")
	})
	return out
}
