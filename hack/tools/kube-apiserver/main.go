// Command kube-apiserver is the upstream Kubernetes API server, compiled from
// k8s.io/kubernetes so that envtest and `make run` need no downloaded binaries.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
