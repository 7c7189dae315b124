package dataapi

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"
	clientrest "k8s.io/client-go/rest"

	"github.com/mira/mira-operator/internal/queue"
)

// Flags are the receiver's data API flags.
type Flags struct {
	// BindAddress of the TLS listener; "0" or "" turns the API off.
	BindAddress string
	// CertDir holds tls.crt and tls.key of the serving certificate.
	CertDir string
}

// Bind registers the flags on fs.
func (f *Flags) Bind(fs *pflag.FlagSet) {
	fs.StringVar(&f.BindAddress, "data-api-bind-address", ":8443", "TLS address of the aggregated API data.platform.mira.io (kubectl get deliveries); \"0\" disables it")
	fs.StringVar(&f.CertDir, "data-api-cert-dir", "", "directory with tls.crt and tls.key of the data API's serving certificate (default: self-signed, in memory)")
}

// FlagNames are the names Bind registers, for grouping in help text.
var FlagNames = []string{"data-api-bind-address", "data-api-cert-dir"}

// Enabled reports whether the API is to be served.
func (f *Flags) Enabled() bool { return f.BindAddress != "" && f.BindAddress != "0" }

// Part is the data API as a receiver part: it has no routes on the
// receiver's plain-HTTP listener and serves on its own TLS port.
type Part struct{ srv *Server }

// NewPart builds the API over the receiver's buckets. A namespaced list
// scans the delivery log and keeps the namespace's records, so deliveries
// of deleted endpoints stay readable until they age out. hosts are the
// DNS names of a self-signed certificate (the receiver's Service).
func NewPart(ctx context.Context, kube *clientrest.Config, js jetstream.JetStream, f Flags, hosts []string) (*Part, error) {
	log, err := js.KeyValue(ctx, queue.DeliveryLogBucket)
	if err != nil {
		return nil, fmt.Errorf("open delivery log: %w", err)
	}
	reports, err := js.KeyValue(ctx, queue.ReportsBucket)
	if err != nil {
		return nil, fmt.Errorf("open reports: %w", err)
	}
	srv, err := New(kube, &KVSource{DeliveryLog: log, ReportsKV: reports},
		Options{BindAddress: f.BindAddress, CertDir: f.CertDir, SelfSignedHosts: hosts})
	if err != nil {
		return nil, err
	}
	return &Part{srv: srv}, nil
}

// Routes implements the receiver's Part: none on the plain listener.
func (*Part) Routes(*http.ServeMux) {}

// Run serves until ctx ends.
func (p *Part) Run(ctx context.Context) error { return p.srv.Run(ctx) }

// Addr is the address the API listens on (the port chosen for port 0).
func (p *Part) Addr() net.Addr { return p.srv.Addr() }
