package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every flag of the server commands belongs to a group of the help text.
func TestEveryFlagHasAGroup(t *testing.T) {
	for name, c := range map[string]*serverCommand{
		"manager": newManagerCommand().serverCommand, "receiver": newReceiverCommand().serverCommand,
	} {
		groups := groupNames(c.fs)
		for _, must := range []string{"kubeconfig", "context", "zap-log-level", "metrics-bind-address"} {
			if _, ok := groups[must]; !ok {
				t.Errorf("%s has no --%s", name, must)
			}
		}
		for flag, g := range groups {
			if g == "" {
				t.Errorf("%s --%s has no group", name, flag)
			}
		}
		var help bytes.Buffer
		c.usage(&help)
		for _, heading := range []string{"\nServer flags:\n", "\nKubernetes flags:\n", "\nLogging flags:\n"} {
			if !strings.Contains(help.String(), heading) {
				t.Errorf("%s help lacks %q:\n%s", name, heading, help.String())
			}
		}
	}
	var help bytes.Buffer
	newReceiverCommand().usage(&help)
	for _, heading := range []string{"\nNATS flags:\n", "\nDelivery flags:\n", "\nInbound flags:\n"} {
		if !strings.Contains(help.String(), heading) {
			t.Errorf("receiver help lacks %q", heading)
		}
	}
}

const twoClusters = `apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://a.example:6443"}
- name: b
  cluster: {server: "https://b.example:6443"}
users:
- name: u
  user: {token: t}
contexts:
- name: ctx-a
  context: {cluster: a, user: u}
- name: ctx-b
  context: {cluster: b, user: u}
current-context: ctx-a
`

// --kubeconfig wins over $KUBECONFIG, and --context picks a context.
func TestKubeconfigFlag(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(twoClusters), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "missing"))
	tests := []struct {
		args []string
		host string
	}{
		{[]string{"--kubeconfig", path}, "https://a.example:6443"},
		{[]string{"--kubeconfig=" + path, "--context", "ctx-b"}, "https://b.example:6443"},
	}
	for _, tt := range tests {
		c := newReceiverCommand()
		if err := c.parse(tt.args); err != nil {
			t.Fatal(err)
		}
		cfg, err := c.kube.restConfig()
		if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if cfg.Host != tt.host || cfg.BearerToken != "t" || cfg.QPS != 20 {
			t.Fatalf("%v: host %q token %q qps %v, want %s", tt.args, cfg.Host, cfg.BearerToken, cfg.QPS, tt.host)
		}
	}
	// Go's single-dash long flags are gone; kubectl-style ones parse.
	if err := newManagerCommand().parse([]string{"--leader-elect", "--concurrent=2", "--zap-log-level=debug"}); err != nil {
		t.Fatal(err)
	}
}
