package cli

import (
	"fmt"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	miraapi "github.com/mira/mira-operator/api/v1alpha1"
)

// kubeFlags are the kubeconfig flags shared by the commands: kubectl's own
// set (--kubeconfig, --context, --cluster, --user, -n, --as, --as-group,
// --as-uid, --token, --server, --certificate-authority, --request-timeout,
// ...), bound by client-go's clientcmd as kubectl binds them, with kubectl's
// precedence (--kubeconfig, then $KUBECONFIG, then ~/.kube/config, then the
// in-cluster config).
type kubeFlags struct {
	Kubeconfig string
	overrides  clientcmd.ConfigOverrides
}

func (k *kubeFlags) bind(fs *pflag.FlagSet, withNamespace bool) {
	fs.StringVar(&k.Kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	names := clientcmd.RecommendedConfigOverrideFlags("")
	names.ContextOverrideFlags.Namespace.Description = "namespace of the WebhookEndpoint (default: the context's namespace)"
	if !withNamespace {
		names.ContextOverrideFlags.Namespace = clientcmd.FlagInfo{}
	}
	kube := pflag.NewFlagSet("kubernetes", pflag.ContinueOnError)
	clientcmd.BindOverrideFlags(&k.overrides, kube, names)
	fs.AddFlagSet(kube)
	inGroup(fs, "Kubernetes", "kubeconfig")
	kube.VisitAll(func(f *pflag.Flag) { inGroup(fs, "Kubernetes", f.Name) })
}

// load returns the REST config and the effective namespace.
func (k *kubeFlags) load() (*rest.Config, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = k.Kubeconfig
	overrides := k.overrides
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("load kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("read the namespace from the kubeconfig: %w", err)
	}
	return cfg, ns, nil
}

// scheme holds the few kinds the CLI reads and writes.
func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := miraapi.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

func newClient(cfg *rest.Config) (client.WithWatch, error) {
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme()})
	if err != nil {
		return nil, fmt.Errorf("create Kubernetes client: %w", err)
	}
	return c, nil
}
