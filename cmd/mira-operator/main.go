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

	"github.com/mira/mira-operator/internal/cli"
)

type command struct {
	name, summary string
	run           func(args []string) error
}

func commands() []command {
	return []command{
		{"manager", "run the controllers (WebhookEndpoint, ScoringTemplate)", runManager},
		{"receiver", "run the data plane: inbound webhooks, events, signed deliveries, status", runReceiver},
		{"listen", "a local consumer: verify, print and forward an endpoint's deliveries", cli.Listen},
		{"kubectl", "the kubectl plugin (installed as kubectl-mira): deliveries, redeliver, test, rotate-secret", cli.Kubectl},
	}
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
	// Installed as kubectl-mira, the binary is the kubectl plugin.
	if strings.HasPrefix(filepath.Base(os.Args[0]), "kubectl-mira") {
		args = append([]string{"kubectl"}, args...)
	}
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
				fmt.Fprintf(os.Stderr, "mira-operator %s: %v\n", c.name, err)
				os.Exit(1)
			}
			return
		}
	}
	fmt.Fprintf(os.Stderr, "mira-operator: unknown command %q\n\n", args[0])
	usage()
	os.Exit(2)
}
