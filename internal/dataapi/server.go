package dataapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	utilcompatibility "k8s.io/apiserver/pkg/util/compatibility"
	clientrest "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
	"github.com/mira/mira-operator/internal/dataapi/openapi"
)

var (
	// Scheme holds the served kinds, registered both as v1alpha1 and as the
	// internal version (they are the same Go types: there is one version).
	Scheme = runtime.NewScheme()
	// Codecs encode and decode the served kinds.
	Codecs = serializer.NewCodecFactory(Scheme)
)

func init() {
	if err := datav1.AddToScheme(Scheme); err != nil {
		panic(err)
	}
	internal := schema.GroupVersion{Group: datav1.GroupName, Version: runtime.APIVersionInternal}
	Scheme.AddKnownTypeWithName(internal.WithKind(datav1.KindDelivery), &datav1.DeliveryObject{})
	Scheme.AddKnownTypeWithName(internal.WithKind(datav1.KindDelivery+"List"), &datav1.DeliveryObjectList{})
	Scheme.AddKnownTypeWithName(internal.WithKind(datav1.KindReport), &datav1.ReportObject{})
	Scheme.AddKnownTypeWithName(internal.WithKind(datav1.KindReport+"List"), &datav1.ReportObjectList{})
	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
	unversioned := schema.GroupVersion{Group: "", Version: "v1"}
	Scheme.AddUnversionedTypes(unversioned, &metav1.Status{}, &metav1.APIVersions{}, &metav1.APIGroupList{},
		&metav1.APIGroup{}, &metav1.APIResourceList{})
}

// Options configure the aggregated API server.
type Options struct {
	// BindAddress is host:port of the TLS listener (port 0: any free port).
	BindAddress string
	// CertDir holds tls.crt and tls.key; empty: a self-signed certificate
	// kept in memory (development; the APIService then needs
	// insecureSkipTLSVerify or the generated CA is unknown to it).
	CertDir string
	// SelfSignedHosts are the DNS names of the self-signed certificate.
	SelfSignedHosts []string
}

// Server is the aggregated API server of data.platform.mira.io.
type Server struct {
	generic  *genericapiserver.GenericAPIServer
	listener net.Listener
	tmpDir   string
}

// New builds the server: TLS serving, authentication delegated to the
// cluster (TokenReview, and the front proxy's request headers trusted per
// kube-system/extension-apiserver-authentication), authorization delegated
// with SubjectAccessReview, and the deliveries and reports storages.
// kube is the receiver's own client configuration, used for the delegation.
func New(kube *clientrest.Config, src Source, o Options) (*Server, error) {
	if src == nil {
		return nil, errors.New("data API needs a source")
	}
	s := &Server{}
	cfg, err := s.config(kube, o)
	if err != nil {
		s.cleanup()
		return nil, err
	}
	gs, err := cfg.Complete(nil).New("mira-data-api", genericapiserver.NewEmptyDelegate())
	if err != nil {
		s.cleanup()
		return nil, fmt.Errorf("build data API server: %w", err)
	}
	info := genericapiserver.NewDefaultAPIGroupInfo(datav1.GroupName, Scheme, metav1.ParameterCodec, Codecs)
	info.VersionedResourcesStorageMap[datav1.SchemeGroupVersion.Version] = map[string]rest.Storage{
		datav1.ResourceDeliveries: &deliveryStorage{src: src},
		datav1.ResourceReports:    &reportStorage{src: src},
	}
	if err := gs.InstallAPIGroup(&info); err != nil {
		s.cleanup()
		return nil, fmt.Errorf("install %s: %w", datav1.GroupName, err)
	}
	s.generic = gs
	return s, nil
}

func (s *Server) config(kube *clientrest.Config, o Options) (*genericapiserver.Config, error) {
	host, portStr, err := net.SplitHostPort(o.BindAddress)
	if err != nil {
		return nil, fmt.Errorf("data API bind address %q: %w", o.BindAddress, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("data API bind port %q: %w", portStr, err)
	}
	s.listener, err = net.Listen("tcp", net.JoinHostPort(host, portStr))
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", o.BindAddress, err)
	}
	if port == 0 {
		port = s.listener.Addr().(*net.TCPAddr).Port
	}
	serving := genericoptions.NewSecureServingOptions().WithLoopback()
	serving.Listener, serving.BindPort = s.listener, port
	if ip := net.ParseIP(host); ip != nil {
		serving.BindAddress = ip
	}
	serving.ServerCert.CertDirectory = "" // never write a generated certificate to disk
	if o.CertDir != "" {
		serving.ServerCert.CertKey.CertFile = filepath.Join(o.CertDir, "tls.crt")
		serving.ServerCert.CertKey.KeyFile = filepath.Join(o.CertDir, "tls.key")
	} else if err := serving.MaybeDefaultWithSelfSignedCerts("localhost", o.SelfSignedHosts, []net.IP{net.ParseIP("127.0.0.1")}); err != nil {
		return nil, fmt.Errorf("self-signed data API certificate: %w", err)
	}
	kubeconfig := "" // in a pod: the in-cluster configuration, no file written
	if !inCluster(kube) {
		if kubeconfig, err = s.writeKubeconfig(kube); err != nil {
			return nil, err
		}
	}
	authn := genericoptions.NewDelegatingAuthenticationOptions()
	authn.RemoteKubeConfigFile = kubeconfig
	authz := genericoptions.NewDelegatingAuthorizationOptions()
	authz.RemoteKubeConfigFile = kubeconfig

	cfg := genericapiserver.NewConfig(Codecs)
	namer := openapinamer.NewDefinitionNamer(Scheme)
	cfg.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(openapi.GetOpenAPIDefinitions, namer)
	cfg.OpenAPIConfig.Info.Title, cfg.OpenAPIConfig.Info.Version = "Mira data API", "v1alpha1"
	cfg.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(openapi.GetOpenAPIDefinitions, namer)
	cfg.OpenAPIV3Config.Info.Title, cfg.OpenAPIV3Config.Info.Version = "Mira data API", "v1alpha1"
	if err := serving.ApplyTo(&cfg.SecureServing, &cfg.LoopbackClientConfig); err != nil {
		return nil, fmt.Errorf("data API serving: %w", err)
	}
	if err := authn.ApplyTo(&cfg.Authentication, cfg.SecureServing, cfg.OpenAPIConfig); err != nil {
		return nil, fmt.Errorf("data API delegated authentication: %w", err)
	}
	if err := authz.ApplyTo(&cfg.Authorization); err != nil {
		return nil, fmt.Errorf("data API delegated authorization: %w", err)
	}
	cfg.EffectiveVersion = utilcompatibility.DefaultBuildEffectiveVersion()
	return cfg, nil
}

// inCluster reports whether kube is the pod's in-cluster configuration,
// which the delegating options of k8s.io/apiserver load themselves (the
// receiver's root file system is read-only there).
func inCluster(kube *clientrest.Config) bool {
	c, err := clientrest.InClusterConfig()
	return err == nil && c.Host == kube.Host && c.BearerTokenFile == kube.BearerTokenFile && kube.BearerTokenFile != ""
}

// writeKubeconfig writes kube as a private kubeconfig file (a 0700
// temporary directory, removed at the end of Run) for the delegating
// options of k8s.io/apiserver, which read their client from a file or the
// in-cluster configuration: outside a pod (make run, tests).
func (s *Server) writeKubeconfig(kube *clientrest.Config) (string, error) {
	dir, err := os.MkdirTemp("", "mira-data-api-")
	if err != nil {
		return "", fmt.Errorf("data API kubeconfig dir: %w", err)
	}
	s.tmpDir = dir
	c := clientcmdapi.NewConfig()
	c.Clusters["c"] = &clientcmdapi.Cluster{
		Server: kube.Host, CertificateAuthority: kube.CAFile, CertificateAuthorityData: kube.CAData,
		InsecureSkipTLSVerify: kube.Insecure, TLSServerName: kube.ServerName,
	}
	c.AuthInfos["u"] = &clientcmdapi.AuthInfo{
		ClientCertificate: kube.CertFile, ClientCertificateData: kube.CertData,
		ClientKey: kube.KeyFile, ClientKeyData: kube.KeyData,
		Token: kube.BearerToken, TokenFile: kube.BearerTokenFile,
	}
	c.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	c.CurrentContext = "c"
	path := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*c, path); err != nil {
		return "", fmt.Errorf("write data API kubeconfig: %w", err)
	}
	return path, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.listener.Addr() }

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	defer s.cleanup()
	prepared := s.generic.PrepareRun()
	if err := prepared.RunWithContext(ctx); err != nil {
		return fmt.Errorf("data API server: %w", err)
	}
	return nil
}

func (s *Server) cleanup() {
	if s.tmpDir != "" {
		_ = os.RemoveAll(s.tmpDir)
	}
}
