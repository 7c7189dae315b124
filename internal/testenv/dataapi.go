package testenv

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	"github.com/mira/mira-operator/internal/dataapi"
)

// DataAPIService is the name of the Service the data API is registered
// behind, as in config/apiservice and `make run`.
const DataAPIService = "mira-data-api"

// ServeDataAPI serves the aggregated API data.platform.mira.io over the
// delivery-log and reports buckets of js (a receiver's JetStream) the way
// the receiver command does (dataapi.NewPart), and registers it the way
// `make run` does: a serving certificate for mira-data-api.<ns>.svc written
// under dir, an ExternalName Service ns/mira-data-api naming localhost and
// the APIService v1alpha1.data.platform.mira.io verified with its CA. cfg
// is the server's own identity towards the cluster (TokenReview and
// SubjectAccessReview); c registers the objects.
//
// It returns once the aggregator reports the APIService Available. The
// server stops when ctx ends; the returned channel then receives the
// result of its Run.
func ServeDataAPI(ctx context.Context, cfg *rest.Config, c client.Client, js jetstream.JetStream, ns, dir string) (<-chan error, error) {
	certDir := filepath.Join(dir, "data-api")
	caBundle, err := WriteServingCert(certDir, []string{DataAPIService + "." + ns + ".svc"})
	if err != nil {
		return nil, err
	}
	part, err := dataapi.NewPart(ctx, cfg, js, dataapi.Flags{BindAddress: "127.0.0.1:0", CertDir: certDir}, nil)
	if err != nil {
		return nil, fmt.Errorf("data API: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- part.Run(ctx) }()
	port := part.Addr().(*net.TCPAddr).Port
	if err := RegisterLocalAPIService(ctx, c, ns, DataAPIService, datav1.GroupName, port, caBundle); err != nil {
		return nil, err
	}
	if err := awaitAvailable(ctx, c, "v1alpha1."+datav1.GroupName, done, 60*time.Second); err != nil {
		return nil, err
	}
	return done, nil
}

// awaitAvailable polls the APIService until it is Available, the server
// behind it stops (stopped), or timeout passes.
func awaitAvailable(ctx context.Context, c client.Client, name string, stopped <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, msg, err := APIServiceAvailable(ctx, c, name)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("APIService %s not Available after %s: %s", name, timeout, msg)
		}
		select {
		case err := <-stopped:
			return fmt.Errorf("the server behind APIService %s stopped: %v", name, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
