package queue

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
)

// ConnectOptions secure the connection to an external NATS cluster:
// TLS (a CA to verify the servers, a client certificate for mutual TLS)
// and one way to authenticate (a .creds file, an NKey seed file, or a user
// and a password read from a file).
type ConnectOptions struct {
	CAFile       string
	CertFile     string
	KeyFile      string
	CredsFile    string
	NKeySeedFile string
	User         string
	PasswordFile string
}

// Options turns the settings into nats.Options, checking that they make
// sense together.
func (c ConnectOptions) Options() ([]nats.Option, error) {
	var opts []nats.Option
	if c.CAFile != "" {
		opts = append(opts, nats.RootCAs(c.CAFile))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("--nats-cert-file and --nats-key-file go together")
	}
	if c.CertFile != "" {
		opts = append(opts, nats.ClientCert(c.CertFile, c.KeyFile))
	}
	auth := 0
	for _, set := range []bool{c.CredsFile != "", c.NKeySeedFile != "", c.User != ""} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		return nil, errors.New("use one of --nats-creds-file, --nats-nkey-seed-file and --nats-user")
	}
	switch {
	case c.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	case c.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("read NATS nkey seed file: %w", err)
		}
		opts = append(opts, o)
	case c.User != "":
		if c.PasswordFile == "" {
			return nil, errors.New("--nats-user needs --nats-password-file")
		}
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("read NATS password file: %w", err)
		}
		opts = append(opts, nats.UserInfo(c.User, strings.TrimRight(string(b), "\r\n")))
	case c.PasswordFile != "":
		return nil, errors.New("--nats-password-file needs --nats-user")
	}
	return opts, nil
}

// Secured reports whether any TLS or credential option is set.
func (c ConnectOptions) Secured() bool { return c != (ConnectOptions{}) }
