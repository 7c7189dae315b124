package inbound

import "github.com/spf13/pflag"

func flagSet() *pflag.FlagSet { return pflag.NewFlagSet("test", pflag.ContinueOnError) }
