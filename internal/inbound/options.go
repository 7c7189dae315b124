package inbound

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/mira/mira-operator/internal/billing"
)

// DefaultRecallAPIURL is Recall.ai's us-east-1 region (api.recall.ai).
const DefaultRecallAPIURL = "https://us-east-1.recall.ai"

// Body limits of the inbound routes.
const (
	// MaxWebhookBytes bounds a Recall or Stripe webhook body (413 past it).
	MaxWebhookBytes = 1 << 20
	// MaxRoleplayBytes bounds a POST /v1/roleplays body. An external NATS
	// needs max_payload at least this large (the embedded server has 8 MiB).
	MaxRoleplayBytes = 4 << 20
)

// FlagGroupAnnotation is the pflag annotation naming a flag's group in the
// help text; the same key as the receiver's.
const FlagGroupAnnotation = "mira.platform.mira.io/flag-group"

// Options configure the inbound routes and the pipeline.
type Options struct {
	// RecallAPIURL is the Recall.ai regional base URL.
	RecallAPIURL string
	// StripeAPIURL is Stripe's API base, used to retrieve a checkout's
	// subscription when the integrations Secret has a stripe-api-key.
	StripeAPIURL string
	// StripeAPIVersionPolicy is billing.APIVersionStrict or billing.APIVersionIgnore.
	StripeAPIVersionPolicy string
	// TemplatesNamespace (legacy) is where the default workspace's
	// meetings and roleplays look up ScoringTemplates; default: the default
	// workspace's namespace. Every other workspace uses its own namespace.
	TemplatesNamespace string
	// RecallMaxRetryDuration bounds the time one transcript fetch spends
	// retrying the Recall API (429/5xx/507) before the message is retried
	// later.
	RecallMaxRetryDuration time.Duration
	// RecallMaxAttempts is how many times the pipeline tries a meeting
	// whose transcript fetch keeps failing transiently before it emits
	// meeting.failed.
	RecallMaxAttempts int
	// TranscriptTimeout bounds how long a meeting waits for its transcript
	// before it fails with transcript_timeout.
	TranscriptTimeout time.Duration
	// TranscriptPollInterval is the first delay before a waiting meeting
	// looks at its transcript again; it doubles per look up to 10 minutes.
	TranscriptPollInterval time.Duration
	// Workers process inbound messages in parallel.
	Workers int
	// Tolerance of webhook timestamps (Recall and Stripe); default 5 minutes.
	Tolerance time.Duration

	// Registerer receives the metrics; default: controller-runtime's registry.
	Registerer prometheus.Registerer
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// BindFlags registers the options on fs with their defaults.
func (o *Options) BindFlags(into *pflag.FlagSet) {
	// Every flag bound here belongs to the Inbound group of the help text.
	fs := pflag.NewFlagSet("inbound", pflag.ContinueOnError)
	defer func() {
		fs.VisitAll(func(f *pflag.Flag) {
			_ = fs.SetAnnotation(f.Name, FlagGroupAnnotation, []string{"Inbound"})
		})
		into.AddFlagSet(fs)
	}()
	fs.StringVar(&o.RecallAPIURL, "recall-api-url", DefaultRecallAPIURL,
		"Recall.ai regional API base URL (https://us-west-2.recall.ai, https://us-east-1.recall.ai, https://eu-central-1.recall.ai, https://ap-northeast-1.recall.ai)")
	fs.StringVar(&o.StripeAPIVersionPolicy, "stripe-api-version-policy", billing.APIVersionStrict,
		"what to do with Stripe events whose api_version is not stripe-go's pinned 2023-10-16: \"strict\" answers 400 (pin the Stripe endpoint to 2023-10-16), \"ignore\" accepts them (fields a newer version moved may decode empty)")
	fs.StringVar(&o.StripeAPIURL, "stripe-api-url", billing.DefaultStripeAPIURL,
		"Stripe API base URL, used to retrieve the subscription of a checkout when the integrations Secret has a stripe-api-key")
	fs.StringVar(&o.TemplatesNamespace, "templates-namespace", "",
		"legacy: namespace of the default workspace's ScoringTemplates (default: the default workspace's namespace); every other workspace uses the ScoringTemplates of its own namespace")
	fs.DurationVar(&o.RecallMaxRetryDuration, "recall-max-retry-duration", 2*time.Minute,
		"total time one Recall transcript fetch spends retrying 429/5xx answers before the meeting is retried later")
	fs.IntVar(&o.RecallMaxAttempts, "recall-max-attempts", 10,
		"attempts at a meeting whose transcript fetch keeps failing transiently before meeting.failed is emitted")
	fs.DurationVar(&o.TranscriptTimeout, "recall-transcript-timeout", 6*time.Hour,
		"how long a meeting waits for Recall to finish its transcript before meeting.failed with code transcript_timeout")
	fs.DurationVar(&o.TranscriptPollInterval, "recall-transcript-poll-interval", 30*time.Second,
		"first delay before a meeting waiting for its transcript asks Recall again (doubling up to 10 minutes), for accounts not subscribed to transcript.* webhooks")
	fs.IntVar(&o.Workers, "inbound-workers", 8, "inbound messages (meetings, roleplays, Stripe events) processed in parallel")
}

// withDefaults fills zero fields and checks the rest.
func (o Options) withDefaults(d Deps) (Options, error) {
	if o.RecallAPIURL == "" {
		o.RecallAPIURL = DefaultRecallAPIURL
	}
	if o.StripeAPIURL == "" {
		o.StripeAPIURL = billing.DefaultStripeAPIURL
	}
	if o.StripeAPIVersionPolicy == "" {
		o.StripeAPIVersionPolicy = billing.APIVersionStrict
	}
	if o.StripeAPIVersionPolicy != billing.APIVersionStrict && o.StripeAPIVersionPolicy != billing.APIVersionIgnore {
		return o, fmt.Errorf("--stripe-api-version-policy must be %q or %q, got %q",
			billing.APIVersionStrict, billing.APIVersionIgnore, o.StripeAPIVersionPolicy)
	}
	if o.RecallMaxRetryDuration < 0 {
		return o, fmt.Errorf("--recall-max-retry-duration must not be negative, got %s", o.RecallMaxRetryDuration)
	}
	if o.RecallMaxAttempts <= 0 {
		o.RecallMaxAttempts = 10
	}
	if o.TranscriptTimeout <= 0 {
		o.TranscriptTimeout = 6 * time.Hour
	}
	if o.TranscriptPollInterval <= 0 {
		o.TranscriptPollInterval = 30 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.Tolerance <= 0 {
		o.Tolerance = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if ns := d.WatchNamespace; ns != "" && o.TemplatesNamespace != "" && o.TemplatesNamespace != ns && o.TemplatesNamespace != d.Integrations.Key.Namespace {
		return o, fmt.Errorf("--templates-namespace %q is outside the receiver's cache (--watch-namespace %q and the integrations Secret's namespace)",
			o.TemplatesNamespace, ns)
	}
	return o, nil
}
