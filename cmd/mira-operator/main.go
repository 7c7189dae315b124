// Command mira-operator is the one binary of the Mira operator. Its
// subcommands are the two Deployments (manager, receiver) and the tools users
// run on their machines.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/mira/mira-operator/internal/cli"
	"github.com/mira/mira-operator/internal/delivery"
	"github.com/mira/mira-operator/internal/version"
)

type command struct {
	name, summary string
	run           func(args []string) error
}

func commands() []command {
	return []command{
		{"manager", "run the controllers (WebhookEndpoint, ScoringTemplate)", withBuildInfo(runManager)},
		{"receiver", "run the data plane: inbound webhooks, events, signed deliveries, status", withBuildInfo(runReceiver)},
		{"listen", "a local consumer: verify, print and forward an endpoint's deliveries", cli.Listen},
		{"kubectl", "the kubectl plugin (installed as kubectl-mira): deliveries, redeliver, test, rotate-secret", cli.Kubectl},
		{"version", "print the version, commit and build date", versionCmd},
	}
}

// withBuildInfo registers mira_build_info with the controller-runtime
// metrics registry, which the manager and the receiver serve, before run.
func withBuildInfo(run func(args []string) error) func(args []string) error {
	return func(args []string) error {
		if err := version.Register(crmetrics.Registry); err != nil {
			return err
		}
		return run(args)
	}
}

func versionCmd(args []string) error {
	fs := pflag.NewFlagSet("version", pflag.ContinueOnError)
	output := fs.StringP("output", "o", "", "output format: \"\" (text) or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *output != "" && *output != "json" {
		return fmt.Errorf("-o %q: want json or nothing", *output)
	}
	return version.Print(os.Stdout, *output == "json")
}

func usage() {
	fmt.Fprintf(os.Stderr, "Usage: mira-operator <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'mira-operator <command> --help' for the flags of a command.\n")
}

func main() {
	args := os.Args[1:]
	// Installed as kubectl-mira, the binary is the kubectl plugin, and its
	// errors name the command as the user typed it ("kubectl mira: ...").
	plugin := strings.HasPrefix(filepath.Base(os.Args[0]), "kubectl-mira")
	if plugin {
		args = append([]string{"kubectl"}, args...)
	}
	// `kubectl mira version` is the binary's own version command.
	if len(args) > 1 && args[0] == "kubectl" && args[1] == "version" {
		args = args[1:]
	}
	// The User-Agent of every delivery names the stamped version.
	delivery.Version = version.Version
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			os.Exit(2)
		}
		return
	}
	for _, c := range commands() {
		if c.name == args[0] {
			if err := c.run(args[1:]); errors.Is(err, errHelp) {
				return
			} else if err != nil {
				prefix := "mira-operator " + c.name
				if plugin {
					prefix = "kubectl mira"
				}
				fmt.Fprintf(os.Stderr, "%s: %v\n", prefix, err)
				os.Exit(1)
			}
			return
		}
	}
	fmt.Fprintf(os.Stderr, "mira-operator: unknown command %q\n\n", args[0])
	usage()
	os.Exit(2)
}
