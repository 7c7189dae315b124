package main

import (
	"context"
	"fmt"
	"path/filepath"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	"github.com/mira/mira-operator/internal/testenv"
)

// The receiver's aggregated API (data.platform.mira.io) on this machine.
const (
	dataAPIPort    = 18443
	dataAPIService = "mira-data-api"
)

// enableAggregation turns on the kube-apiserver's aggregation layer with
// front-proxy certificates generated in devDir.
func enableAggregation(env *envtest.Environment, devDir string) error {
	flags, err := testenv.AggregatorFlags(filepath.Join(devDir, "aggregator"))
	if err != nil {
		return err
	}
	args := env.ControlPlane.GetAPIServer().Configure()
	for k, v := range flags {
		args.Set(k, v)
	}
	return nil
}

// registerDataAPI writes the receiver's serving certificate into devDir
// and registers the APIService v1alpha1.data.platform.mira.io against an
// ExternalName Service naming localhost, verified with the certificate's
// CA. It returns the receiver flags that serve the API.
func registerDataAPI(ctx context.Context, c client.Client, devDir string) ([]string, error) {
	certDir := filepath.Join(devDir, "data-api")
	host := dataAPIService + "." + integrationsNS + ".svc"
	caBundle, err := testenv.WriteServingCert(certDir, []string{host})
	if err != nil {
		return nil, err
	}
	if err := testenv.RegisterLocalAPIService(ctx, c, integrationsNS, dataAPIService, datav1.GroupName, dataAPIPort, caBundle); err != nil {
		return nil, err
	}
	return []string{fmt.Sprintf("--data-api-bind-address=127.0.0.1:%d", dataAPIPort), "--data-api-cert-dir=" + certDir}, nil
}
