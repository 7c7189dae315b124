package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mira/mira-operator/internal/dashboard"
	"github.com/mira/mira-operator/internal/scoring"
)

// `kubectl mira dashboard` serves internal/dashboard with the user's own
// credentials. Everything it reads and does goes through the code of the
// other subcommands: the delivery log and reports through the aggregated
// API data.platform.mira.io (dataClient), actions through the very
// subcommand functions (redeliverCmd, testCmd, enableCmd, rotateCmd).

func dashboardCmd(fs *pflag.FlagSet) func(context.Context, *globals, []string) error {
	port := fs.Int("port", 0, "port to listen on (0 picks a free one)")
	address := fs.String("address", "127.0.0.1", "address to listen on; keep it on loopback unless an auth proxy stands in front (see docs/dashboard.md)")
	noBrowser := fs.Bool("no-browser", false, "do not open a browser, only print the URL")
	allowHosts := fs.StringSlice("allow-host", nil, "also answer requests whose Host header is this host[:port] (the name an auth proxy forwards); repeatable")
	refresh := fs.Duration("refresh", 5*time.Second, "how often open pages refresh their live parts; 0 turns live refresh off")
	return func(ctx context.Context, g *globals, args []string) error {
		if err := exactArgs(args, 0, "no arguments"); err != nil {
			return err
		}
		if *refresh < 0 {
			return errors.New("--refresh must not be negative")
		}
		l, err := net.Listen("tcp", net.JoinHostPort(*address, strconv.Itoa(*port)))
		if err != nil {
			return fmt.Errorf("listen on %s:%d: %w", *address, *port, err)
		}
		defer func() { _ = l.Close() }()
		hosts, browse := dashboardHosts(l.Addr().(*net.TCPAddr))
		hosts = append(hosts, *allowHosts...)
		srv, err := dashboard.New(dashboard.Options{
			Client:           g.client,
			Log:              &dashboardLog{g: g},
			Actions:          dashboardActions{g: g},
			DefaultNamespace: g.namespace,
			Hosts:            hosts,
			RefreshSeconds:   int(refresh.Seconds()),
			Logger: funcr.New(func(prefix, args string) {
				fmt.Fprintln(g.stderr, prefix, args)
			}, funcr.Options{}),
		})
		if err != nil {
			return err
		}
		u := "http://" + browse + "/endpoints"
		fmt.Fprintf(g.stdout, "Mira dashboard: %s (Ctrl-C to stop)\n", u)
		if !*noBrowser {
			if err := openBrowser(u); err != nil {
				fmt.Fprintf(g.stderr, "Could not open a browser (%v): open %s yourself.\n", err, u)
			}
		}
		return dashboard.Serve(ctx, l, srv.Handler())
	}
}

// dashboardHosts returns the Host values the dashboard answers on its
// address and the host:port to print.
func dashboardHosts(a *net.TCPAddr) ([]string, string) {
	port := strconv.Itoa(a.Port)
	if a.IP.IsLoopback() || a.IP.IsUnspecified() {
		hosts := []string{"127.0.0.1:" + port, "localhost:" + port, "[::1]:" + port}
		return hosts, "127.0.0.1:" + port
	}
	hp := net.JoinHostPort(a.IP.String(), port)
	return []string{hp}, hp
}

func openBrowser(u string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u) //nolint:gosec // G204: the dashboard's own URL
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u) //nolint:gosec // G204: the dashboard's own URL
	default:
		cmd = exec.Command("xdg-open", u) //nolint:gosec // G204: the dashboard's own URL
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}

// dashboardLog reads the delivery log and reports through the aggregated
// API data.platform.mira.io with the user's credentials, exactly as
// `kubectl mira deliveries|delivery|report` do. Deliveries and reports
// looked up by id alone are read in the dashboard's namespace first, then
// wherever the user may list them.
type dashboardLog struct {
	g *globals

	once sync.Once
	data *dataClient
	err  error
}

func (l *dashboardLog) client() (*dataClient, error) {
	l.once.Do(func() { l.data, l.err = newDataClient(l.g.cfg) })
	return l.data, l.err
}

func (l *dashboardLog) Deliveries(ctx context.Context, ns, name string, q dashboard.Query) (dashboard.Page, error) {
	d, err := l.client()
	if err != nil {
		return dashboard.Page{}, err
	}
	items, next, err := d.page(ctx, ns, deliveryQuery{Endpoint: name, Outcome: q.Outcome, Since: metav1.NewTime(q.Since), Limit: q.Limit, Cursor: q.Cursor})
	return dashboard.Page{Items: items, NextCursor: next}, err
}

func (l *dashboardLog) Delivery(ctx context.Context, id string) (*dashboard.Delivery, error) {
	d, err := l.client()
	if err != nil {
		return nil, err
	}
	o, err := d.findDelivery(ctx, l.g.namespace, id, false)
	if err != nil {
		return nil, err
	}
	rec := recordOf(o)
	return &rec, nil
}

func (l *dashboardLog) Report(ctx context.Context, id string) (*scoring.Report, error) {
	d, err := l.client()
	if err != nil {
		return nil, err
	}
	o, err := d.findReport(ctx, l.g.namespace, id, false)
	if err != nil {
		return nil, err
	}
	r := &scoring.Report{}
	if err := json.Unmarshal(o.Data.Raw, r); err != nil {
		return nil, fmt.Errorf("decode report %s: %w", id, err)
	}
	return r, nil
}

// dashboardActions runs the `kubectl mira` action subcommands themselves,
// with -o json into a buffer, so the dashboard and the CLI cannot drift.
type dashboardActions struct{ g *globals }

func (a dashboardActions) Do(ctx context.Context, act dashboard.Action) (dashboard.ActionResult, error) {
	var cmd func(*pflag.FlagSet) func(context.Context, *globals, []string) error
	args := []string{act.Namespace + "/" + act.Endpoint}
	switch act.Kind {
	case dashboard.ActionRedeliver:
		cmd, args = redeliverCmd, append(args, act.DeliveryID)
	case dashboard.ActionRedeliverFailed:
		cmd, args = redeliverCmd, append(args, "--failed-since", act.Since.UTC().Format(time.RFC3339))
	case dashboard.ActionTest:
		cmd = testCmd
	case dashboard.ActionEnable:
		cmd = enableCmd
	case dashboard.ActionRotateSecret:
		cmd = rotateCmd
	default:
		return dashboard.ActionResult{}, fmt.Errorf("unknown action %q", act.Kind)
	}
	fs := pflag.NewFlagSet("kubectl mira "+act.Kind, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	run := cmd(fs)
	if err := fs.Parse(args); err != nil {
		return dashboard.ActionResult{}, err
	}
	var out bytes.Buffer
	g := *a.g
	g.stdout, g.stderr, g.output = &out, io.Discard, "json"
	runErr := run(ctx, &g, fs.Args())
	var res dashboard.ActionResult
	var printed ActionResult
	if out.Len() > 0 && json.Unmarshal(out.Bytes(), &printed) == nil {
		res.Annotation, res.Value = printed.Annotation, printed.Value
		if e := printed.Event; e != nil {
			res.EventType, res.EventReason, res.EventMessage = e.Type, e.Reason, e.Message
		}
	}
	return res, runErr
}
