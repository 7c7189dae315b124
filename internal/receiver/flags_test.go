package receiver_test

import "flag"

func flagSetForDefaults() *flag.FlagSet { return flag.NewFlagSet("test", flag.ContinueOnError) }
