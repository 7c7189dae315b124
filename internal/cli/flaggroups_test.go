package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// The help of listen and of the kubectl plugin lists every flag under a
// group heading.
func TestHelpListsFlagsInGroups(t *testing.T) {
	fs := pflag.NewFlagSet("listen", pflag.ContinueOnError)
	fs.SortFlags = false
	var o ListenOptions
	o.bind(fs)
	var b bytes.Buffer
	printFlagGroups(&b, fs)
	want := []string{"\nVerification flags:\n", "\nServer flags:\n", "\nKubernetes flags:\n"}
	at := -1
	for _, h := range want {
		i := strings.Index(b.String(), h)
		if i <= at {
			t.Fatalf("heading %q missing or out of order:\n%s", h, b.String())
		}
		at = i
	}
	if strings.Contains(b.String(), "\nFlags:\n") {
		t.Fatalf("listen has flags without a group:\n%s", b.String())
	}
	fs.VisitAll(func(f *pflag.Flag) {
		if !strings.Contains(b.String(), "--"+f.Name+" ") {
			t.Errorf("--%s is not in the help", f.Name)
		}
	})

	fs = pflag.NewFlagSet("kubectl mira deliveries", pflag.ContinueOnError)
	fs.SortFlags = false
	(&globals{}).bind(fs)
	fs.Int("limit", 20, "at most this many deliveries")
	b.Reset()
	printFlagGroups(&b, fs)
	for _, h := range []string{"\nFlags:\n      --limit", "\nKubernetes flags:\n", "\nOutput flags:\n", "\nReceiver flags:\n"} {
		if !strings.Contains(b.String(), h) {
			t.Fatalf("kubectl help lacks %q:\n%s", h, b.String())
		}
	}
}
