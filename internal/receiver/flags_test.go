package receiver_test

import "github.com/spf13/pflag"

func flagSetForDefaults() *pflag.FlagSet { return pflag.NewFlagSet("test", pflag.ContinueOnError) }
