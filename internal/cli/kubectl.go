package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// globals are the flags every plugin subcommand takes.
type globals struct {
	kube     kubeFlags
	output   string
	receiver receiverFlags
	timeout  time.Duration

	stdout, stderr io.Writer
	// Filled by setup.
	cfg       *rest.Config
	namespace string
	client    client.WithWatch
}

func (g *globals) bind(fs *pflag.FlagSet) {
	g.kube.bind(fs, true)
	fs.StringVarP(&g.output, "output", "o", "table", "output format: table, json or yaml")
	fs.StringVar(&g.receiver.URL, "receiver-url", "", "call the receiver at this URL instead of through the API server")
	fs.StringVar(&g.receiver.Namespace, "receiver-namespace", "mira-system", "namespace of the receiver's Service")
	fs.StringVar(&g.receiver.Service, "receiver-service", "mira-receiver", "name of the receiver's Service")
	fs.StringVar(&g.receiver.Port, "receiver-port", "http", "port (name or number) of the receiver's Service")
	fs.StringVar(&g.receiver.Scheme, "receiver-scheme", "http", "scheme the API server uses towards the receiver: http or https")
	fs.StringVar(&g.receiver.IntegrationsSecret, "integrations-secret", "mira-system/mira-integrations", "namespace/name of the Secret whose api-token authorizes calls to the receiver")
	fs.DurationVar(&g.timeout, "timeout", 2*time.Minute, "how long to wait for the operator to handle a request")
	inGroup(fs, "Output", "output")
	inGroup(fs, "Receiver", "receiver-url", "receiver-namespace", "receiver-service", "receiver-port", "receiver-scheme",
		"integrations-secret", "timeout")
}

func (g *globals) setup() error {
	switch g.output {
	case "table", "json", "yaml":
	default:
		return fmt.Errorf("-o %q: want table, json or yaml", g.output)
	}
	cfg, ns, err := g.kube.load()
	if err != nil {
		return err
	}
	c, err := newClient(cfg)
	if err != nil {
		return err
	}
	g.cfg, g.namespace, g.client = cfg, ns, c
	return nil
}

func (g *globals) receiverAPI(ctx context.Context) (*receiverAPI, error) {
	return g.receiver.connect(ctx, g.cfg, g.client)
}

// subcommand is one `kubectl mira` verb.
type subcommand struct {
	name, args, summary string
	// flags adds the subcommand's own flags; run gets the positional args.
	flags func(fs *pflag.FlagSet) func(ctx context.Context, g *globals, args []string) error
}

func subcommands() []subcommand {
	return []subcommand{
		{"deliveries", "<endpoint>", "list an endpoint's deliveries (newest first)", deliveriesCmd},
		{"delivery", "<id>", "show one delivery with every attempt, request and response", deliveryCmd},
		{"redeliver", "<endpoint> <id> | <endpoint> --failed-since <time> [--until <time>]", "deliver again and wait until the receiver queued it", redeliverCmd},
		{"replay", "<endpoint> --since <time> [--until <time>] [--event TYPE] [--include-delivered]", "deliver the stored events of a window to the endpoint (also from before it existed)", replayCmd},
		{"test", "<endpoint>", "send a webhook.test event to the endpoint and wait until it is queued", testCmd},
		{"rotate-secret", "<endpoint>", "rotate a generated signing secret and wait until it is done", rotateCmd},
		{"enable", "<endpoint>", "re-enable an endpoint the receiver disabled", enableCmd},
		{"report", "<id>", "show a coaching report", reportCmd},
		{"rescore", "<meeting id>", "score again a meeting that failed for a Mira-side reason, once fixed", rescoreCmd},
		{"dashboard", "[--port N] [--address 127.0.0.1] [--no-browser]", "serve the Webhooks dashboard and open it in a browser", dashboardCmd},
	}
}

func kubectlUsage(w io.Writer) {
	fmt.Fprintf(w, "kubectl mira: Mira webhook deliveries and actions.\n\nUsage:\n  kubectl mira <command> [args] [flags]\n\nCommands:\n")
	for _, s := range subcommands() {
		fmt.Fprintf(w, "  %-14s %s\n", s.name, s.summary)
	}
	fmt.Fprintf(w, "\nRun 'kubectl mira <command> -h' for its flags.\n")
}

// Kubectl is the kubectl plugin: `kubectl mira …` or `mira-operator kubectl …`.
func Kubectl(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return RunKubectl(ctx, args, os.Stdout, os.Stderr)
}

// RunKubectl runs one plugin subcommand.
func RunKubectl(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		kubectlUsage(stderr)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	var sub *subcommand
	for _, s := range subcommands() {
		if s.name == args[0] {
			sub = &s
			break
		}
	}
	if sub == nil {
		kubectlUsage(stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
	fs := pflag.NewFlagSet("kubectl mira "+sub.name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	g := &globals{stdout: stdout, stderr: stderr}
	g.bind(fs)
	run := sub.flags(fs)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\nUsage:\n  kubectl mira %s %s [flags]\n", sub.summary, sub.name, sub.args)
		printFlagGroups(stderr, fs)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	if err := g.setup(); err != nil {
		return err
	}
	return run(ctx, g, fs.Args())
}

// exactArgs checks the number of positional arguments.
func exactArgs(args []string, n int, what string) error {
	if len(args) != n {
		return fmt.Errorf("want %s, got %d argument(s)", what, len(args))
	}
	return nil
}

// parseSince accepts an RFC 3339 time or a duration back from now.
func parseSince(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a positive duration such as 1h", v)
	}
	return now.Add(-d).UTC().Truncate(time.Second), nil
}

// sortedKeys returns the keys of m, sorted.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// endpointKey resolves "<name>" or "<namespace>/<name>" against -n.
func (g *globals) endpointKey(arg string) (string, string, error) {
	if ns, name, ok := strings.Cut(arg, "/"); ok {
		if ns == "" || name == "" || strings.Contains(name, "/") {
			return "", "", fmt.Errorf("endpoint %q: want <name> or <namespace>/<name>", arg)
		}
		return ns, name, nil
	}
	if arg == "" {
		return "", "", errors.New("endpoint name is empty")
	}
	return g.namespace, arg, nil
}
