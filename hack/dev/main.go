// Command dev runs the whole product locally for `make run`: a real
// kube-apiserver and etcd (compiled into bin/ from Kubernetes' Go modules),
// the CRDs, the samples, and the operator's processes in the foreground.
// Ctrl-C stops every process it started.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/mira/mira-operator/internal/manager"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}

func run() error {
	root, _ := os.Getwd()
	var (
		binDir   = flag.String("bin", filepath.Join(root, "bin"), "directory with kube-apiserver, etcd and mira-operator")
		devDir   = flag.String("dir", filepath.Join(root, "bin", "dev"), "directory for the kubeconfig and local state")
		samples  = flag.String("samples", filepath.Join(root, "config", "samples", "dev"), "kustomization directory of sample manifests to apply")
		crds     = flag.String("crds", filepath.Join(root, "config", "crd", "bases"), "directory of CRDs to install")
		noManage = flag.Bool("no-manager", false, "only run the control plane")
	)
	flag.Parse()
	if err := os.MkdirAll(*devDir, 0o750); err != nil {
		return err
	}

	fmt.Println("==> starting a local control plane (etcd + kube-apiserver from bin/)")
	env := &envtest.Environment{
		BinaryAssetsDirectory: *binDir,
		CRDDirectoryPaths:     []string{*crds},
		ErrorIfCRDPathMissing: true,
	}
	if err := enableAggregation(env, *devDir); err != nil {
		return err
	}
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("start control plane: %w", err)
	}
	defer func() {
		fmt.Println("==> stopping the control plane")
		_ = env.Stop()
	}()

	user, err := env.AddUser(envtest.User{Name: "mira-dev", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("create admin user: %w", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("render kubeconfig: %w", err)
	}
	kubeconfig := filepath.Join(*devDir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		return err
	}

	c, err := client.New(user.Config(), client.Options{Scheme: manager.Scheme()})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := setupIntegrations(ctx, c, *devDir); err != nil {
		return err
	}
	dataAPIFlags, err := registerDataAPI(ctx, c, *devDir)
	if err != nil {
		return fmt.Errorf("register the data API: %w", err)
	}
	// The user-facing ClusterRoles a real install has (config/rbac,
	// config/apiservice), so the docs' RoleBindings to them work here too.
	// (No kube-controller-manager runs, so they are not aggregated into
	// view/edit/admin: bind them directly.)
	if _, err := applyFiles(ctx, c, userRoleFiles(root)); err != nil {
		return fmt.Errorf("apply the user roles: %w", err)
	}
	n, err := applyDir(ctx, c, *samples)
	if err != nil {
		return fmt.Errorf("apply samples: %w", err)
	}
	fmt.Printf("==> applied %d sample objects from %s\n", n, *samples)
	_ = cfg

	fmt.Printf(`
The control plane is up. In another shell:

    export KUBECONFIG=%s
    kubectl get webhookendpoints,scoringtemplates -A
    kubectl get deliveries,reports -A      # the receiver's aggregated API, once it runs

Press Ctrl-C to stop everything this command started.

`, kubeconfig)

	if *noManage {
		<-ctx.Done()
		return nil
	}
	// A local stand-in for the Recall.ai API (it is not Recall: it serves the
	// documented wire format from memory), so the demo can fetch a transcript
	// without leaving the machine.
	standIn, err := startRecallStandIn(recallStandInAddr)
	if err != nil {
		return err
	}
	defer func() { _ = standIn.Close() }()
	procs := []proc{
		{name: "manager", args: []string{"manager", "--allow-insecure-urls", "--metrics-bind-address=127.0.0.1:18081", "--metrics-secure=false", "--health-probe-bind-address=127.0.0.1:18082"}},
		{name: "receiver", args: append([]string{"receiver", "--listen=" + receiverAddr, "--metrics-bind-address=127.0.0.1:18091", "--metrics-secure=false",
			"--data-dir=" + filepath.Join(*devDir, "jetstream"), "--integrations-secret=" + integrationsNS + "/" + integrationsName,
			"--allowed-cidrs=127.0.0.0/8", "--status-interval=1s", "--recall-api-url=http://" + recallStandInAddr,
			// The samples (listener, templates) are the "default" namespace's:
			// the unscoped routes `make demo` posts to belong to it.
			"--default-workspace=default"}, dataAPIFlags...)},
		{name: "listener", args: []string{"listen", "--endpoint=default/local-listener", "--addr=127.0.0.1:18070"},
			before: func(ctx context.Context) error {
				return waitForSecret(ctx, c, "default", "local-listener-signing-secret")
			}},
	}
	fmt.Printf(`Receiver:        http://%s  (API token: kubectl get secret -n %s %s -o jsonpath='{.data.api-token}' | base64 -d)
Listener:        http://127.0.0.1:18070  (prints every verified delivery below, prefixed "listener")
Recall stand-in: http://%s  (local stand-in of the Recall.ai API, not Recall)
Next step, in another shell:

    make demo        # a signed Recall bot.done webhook -> transcript -> scored report -> deliveries

`, receiverAddr, integrationsNS, integrationsName, recallStandInAddr)
	return runAll(ctx, filepath.Join(*binDir, "mira-operator"), kubeconfig, procs)
}

type proc struct {
	name string
	args []string
	// before, when set, must return before the process starts.
	before func(ctx context.Context) error
}

// runAll starts the processes with the kubeconfig, prefixes their output and
// stops them all (SIGTERM, then SIGKILL after 10 s) when ctx ends or any exits.
func runAll(ctx context.Context, bin, kubeconfig string, procs []proc) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(procs))
	for _, p := range procs {
		if p.before != nil {
			if err := p.before(ctx); err != nil {
				return fmt.Errorf("before starting %s: %w", p.name, err)
			}
		}
		cmd := exec.Command(bin, p.args...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", p.name, err)
		}
		fmt.Printf("==> started %s (pid %d)\n", p.name, cmd.Process.Pid)
		wg.Add(1)
		go prefix(p.name, out, &wg)
		go func(p proc, cmd *exec.Cmd) {
			err := cmd.Wait()
			if ctx.Err() == nil {
				errs <- fmt.Errorf("%s exited: %v", p.name, err)
				cancel()
			}
		}(p, cmd)
		go func(cmd *exec.Cmd) {
			<-ctx.Done()
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			t := time.AfterFunc(10*time.Second, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
			defer t.Stop()
		}(cmd)
	}
	<-ctx.Done()
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func prefix(name string, r io.Reader, wg *sync.WaitGroup) {
	defer wg.Done()
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		fmt.Printf("%-9s| %s\n", name, s.Text())
	}
}

// applyDir server-side-applies every YAML document of the files listed as
// resources in dir/kustomization.yaml (default namespace when none is set).
func applyDir(ctx context.Context, c client.Client, dir string) (int, error) {
	files, err := kustomizeResources(dir)
	if err != nil {
		return 0, err
	}
	return applyFiles(ctx, c, files)
}

// userRoleFiles are the ClusterRoles users bind: mira-view/mira-edit,
// mira-data-publisher and mira-data-view.
func userRoleFiles(root string) []string {
	return []string{
		filepath.Join(root, "config", "rbac", "user_roles.yaml"),
		filepath.Join(root, "config", "rbac", "data_publisher_role.yaml"),
		filepath.Join(root, "config", "apiservice", "user_roles.yaml"),
	}
}

// applyFiles server-side-applies every YAML document of files, namespaced
// objects without a namespace into default.
func applyFiles(ctx context.Context, c client.Client, files []string) (int, error) {
	n := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return n, err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return n, fmt.Errorf("%s: %w", f, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			if namespaced, err := c.IsObjectNamespaced(u); err != nil {
				return n, fmt.Errorf("%s: %s %s: %w", filepath.Base(f), u.GetKind(), u.GetName(), err)
			} else if namespaced && u.GetNamespace() == "" {
				u.SetNamespace("default")
			}
			if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("mira-dev"), client.ForceOwnership); err != nil {
				return n, fmt.Errorf("%s: apply %s %s: %w", filepath.Base(f), u.GetKind(), u.GetName(), err)
			}
			n++
		}
	}
	return n, nil
}
