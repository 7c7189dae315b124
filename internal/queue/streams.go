package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names of the streams, consumers and buckets the receiver uses.
const (
	// EventsStream holds every Mira event (subject mira.events.<type>), with
	// the event id as message id so a republished event is dropped.
	EventsStream   = "MIRA_EVENTS"
	EventsSubject  = "mira.events"
	FanoutConsumer = "fanout"

	// DeliveriesStream holds one message per (event, endpoint) delivery
	// until its outcome is recorded (work-queue retention: an acknowledged
	// message is removed), subject mira.outbox.<namespace>.<endpoint uid>,
	// with the delivery id as message id. Retries are delayed redeliveries
	// of the same message. An endpoint has a consumer ("dispatch-<uid>",
	// filtered on its subject, created by the dispatcher) only while its
	// subject holds messages: idle endpoints cost nothing on the NATS side.
	DeliveriesStream  = "MIRA_OUTBOX"
	DeliveriesSubject = "mira.outbox"

	// LegacyDeliveriesStream is the deliveries stream of earlier versions
	// (limits retention, subject mira.deliveries.<endpoint uid>, one
	// durable consumer per endpoint). A stream's retention cannot change
	// to work-queue, so the outbox is a new stream; the dispatcher drains
	// the legacy consumers and then deletes this stream.
	LegacyDeliveriesStream = "MIRA_DELIVERIES"

	// InboundStream holds verified inbound webhooks (Recall, Stripe,
	// roleplays) until the pipeline has processed them.
	InboundStream    = "MIRA_INBOUND"
	InboundSubject   = "mira.inbound"
	PipelineConsumer = "pipeline"

	// DeliveryLogBucket keeps every delivery's attempts, key
	// "<endpoint uid>.<delivery id>", for the configured retention.
	DeliveryLogBucket = "mira-delivery-log"
	// EndpointStatsBucket keeps each endpoint's delivery counters so they
	// survive restarts, key "<endpoint uid>".
	EndpointStatsBucket = "mira-endpoint-stats"
	// ReportsBucket keeps coaching reports, key "<report id>".
	ReportsBucket = "mira-reports"
	// StateBucket keeps the pipeline's small state (meetings, roleplays).
	StateBucket = "mira-state"
)

// DefaultAckWait is how long a fetched message may go unacknowledged before
// JetStream hands it out again. Workers extend it while an attempt runs
// (InProgress), so it bounds how long work of a crashed receiver waits.
const DefaultAckWait = 30 * time.Second

// DuplicateWindow is how long the events and inbound streams remember
// message ids, so a replayed event or webhook is stored once.
const DuplicateWindow = 24 * time.Hour

// DeliveriesDuplicateWindow is how long the deliveries stream remembers
// delivery ids. A fan-out redone after a crash happens within seconds, and
// the delivery log's create-if-absent still guards a later one, so the
// window is short: the id map of a long one dominated the receiver's memory
// with many deliveries queued.
const DeliveriesDuplicateWindow = 2 * time.Minute

// DeliveriesSubjectOf is the deliveries-stream subject of one endpoint:
// mira.outbox.<namespace>.<endpoint uid> ("_" for an empty namespace).
func DeliveriesSubjectOf(namespace, endpointUID string) string {
	if namespace == "" {
		namespace = "_"
	}
	return DeliveriesSubject + "." + namespace + "." + endpointUID
}

// DefaultMaxBytes is the storage the streams and buckets share when
// Config.MaxBytes is zero (the receiver derives it from the volume instead;
// see docs/operations.md).
const DefaultMaxBytes = 1 << 30

// MinMaxBytes is the smallest storage budget Ensure accepts.
const MinMaxBytes = 8 << 20

// Shares of Config.MaxBytes, in percent. They add up to 100.
var shares = map[string]int64{
	EventsStream:        15,
	DeliveriesStream:    25,
	InboundStream:       10,
	DeliveryLogBucket:   35,
	ReportsBucket:       10,
	StateBucket:         4,
	EndpointStatsBucket: 1,
}

// Config sizes the streams and buckets.
type Config struct {
	// Replicas for every stream and bucket: 1 embedded, 3 on a cluster.
	Replicas int
	// Retention of events, deliveries and the delivery log.
	Retention time.Duration
	// MaxBytes is the storage all streams and buckets share (per replica);
	// each gets a fixed share (MaxBytesOf). Zero means DefaultMaxBytes.
	MaxBytes int64
}

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Retention == 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	return c
}

// MaxBytesOf is the bound of one stream or bucket (by stream or bucket name).
func (c Config) MaxBytesOf(name string) int64 {
	return c.WithDefaults().MaxBytes / 100 * shares[name]
}

// Ensure creates or updates the streams, consumers and buckets. It is
// idempotent and safe to run from several receivers at once.
//
// When a bound is reached: the events, deliveries and inbound streams refuse
// new messages (DiscardNew), so ingest answers 503 and the fan-out retries
// its event later, and nothing queued is dropped; the delivery log drops
// its oldest entries (DiscardOld); the reports and state buckets refuse
// writes, which the pipeline retries.
func Ensure(ctx context.Context, js jetstream.JetStream, c Config) error {
	c = c.WithDefaults()
	if c.MaxBytes < MinMaxBytes {
		return fmt.Errorf("storage bound %d bytes is below the minimum of %d", c.MaxBytes, int64(MinMaxBytes))
	}
	legacy, err := shrinkLegacy(ctx, js)
	if err != nil {
		return err
	}
	streams := []jetstream.StreamConfig{
		{Name: EventsStream, Subjects: []string{EventsSubject + ".>"}},
		// Delivery ids only need dedupe while a fan-out may be replayed
		// (seconds after a crash); the dispatcher also skips deliveries whose
		// record says they ended. A short window keeps the id map small.
		// Work-queue retention: a delivered message leaves the stream, so a
		// subject holds messages exactly while its endpoint has work.
		{Name: DeliveriesStream, Subjects: []string{DeliveriesSubject + ".>"}, Duplicates: DeliveriesDuplicateWindow,
			Retention: jetstream.WorkQueuePolicy},
		{Name: InboundStream, Subjects: []string{InboundSubject + ".>"}},
	}
	for _, s := range streams {
		s.Storage = jetstream.FileStorage
		s.Replicas = c.Replicas
		s.MaxAge = c.Retention
		if s.Duplicates == 0 {
			s.Duplicates = DuplicateWindow
		}
		// Full: publishing fails rather than dropping queued messages.
		s.MaxBytes = c.MaxBytesOf(s.Name)
		if s.Name == DeliveriesStream && legacy > 0 {
			// The legacy stream keeps what it holds out of the same share
			// (at most a tenth more in all: the streams get 95% of the
			// store). Once it is drained, Ensure runs again and the outbox
			// gets its whole share.
			s.MaxBytes = max(s.MaxBytes-legacy, s.MaxBytes/10)
		}
		s.Discard = jetstream.DiscardNew
		if _, err := js.CreateOrUpdateStream(ctx, s); err != nil {
			return fmt.Errorf("create stream %s: %w", s.Name, err)
		}
	}
	consumers := []struct {
		stream string
		cfg    jetstream.ConsumerConfig
	}{
		{EventsStream, jetstream.ConsumerConfig{Durable: FanoutConsumer, MaxAckPending: 10_000}},
		// A meeting waiting for its transcript keeps one message pending
		// (redelivered with a delay to poll), so the bound must sit far above
		// the meetings that can wait at once or Stripe events would queue
		// behind them; workers still only fetch what they can take.
		{InboundStream, jetstream.ConsumerConfig{Durable: PipelineConsumer, MaxAckPending: 50_000}},
	}
	for _, cc := range consumers {
		cc.cfg.AckPolicy = jetstream.AckExplicitPolicy
		cc.cfg.AckWait = DefaultAckWait
		cc.cfg.MaxDeliver = -1
		cc.cfg.DeliverPolicy = jetstream.DeliverAllPolicy
		cc.cfg.Replicas = c.Replicas
		if _, err := js.CreateOrUpdateConsumer(ctx, cc.stream, cc.cfg); err != nil {
			return fmt.Errorf("create consumer %s on %s: %w", cc.cfg.Durable, cc.stream, err)
		}
	}
	buckets := []jetstream.KeyValueConfig{
		{Bucket: DeliveryLogBucket, TTL: c.Retention, Description: "delivery attempts"},
		{Bucket: EndpointStatsBucket, Description: "per-endpoint delivery counters"},
		{Bucket: ReportsBucket, TTL: c.Retention * 52, Description: "coaching reports"},
		{Bucket: StateBucket, Description: "pipeline state"},
	}
	for _, b := range buckets {
		b.Storage = jetstream.FileStorage
		b.Replicas = c.Replicas
		b.History = 1
		b.MaxBytes = c.MaxBytesOf(b.Bucket)
		if _, err := js.CreateOrUpdateKeyValue(ctx, b); err != nil {
			return fmt.Errorf("create bucket %s: %w", b.Bucket, err)
		}
	}
	return discardOldest(ctx, js, DeliveryLogBucket)
}

// shrinkLegacy bounds the legacy deliveries stream, left by an earlier
// version until the dispatcher has drained it, to the bytes it holds, so the
// new outbox fits in the storage the two share; an empty one is deleted. It
// returns the bytes the legacy stream keeps. Nothing is removed from it: an
// earlier replica still publishing there during a rolling upgrade is refused
// (its fan-out retries the event later, and a new replica takes it).
func shrinkLegacy(ctx context.Context, js jetstream.JetStream) (int64, error) {
	st, err := js.Stream(ctx, LegacyDeliveriesStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read stream %s: %w", LegacyDeliveriesStream, err)
	}
	// Messages every consumer has acknowledged stay in a limits stream
	// until they expire; only the rest still need room. Without any
	// consumer nothing would ever deliver what it holds (the dispatcher
	// drains the legacy stream through its consumers): it goes.
	floor, consumers, ok := minAckFloor(ctx, st)
	if ok && consumers == 0 {
		if err := js.DeleteStream(ctx, LegacyDeliveriesStream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return 0, fmt.Errorf("delete stream %s without consumers: %w", LegacyDeliveriesStream, err)
		}
		return 0, nil
	}
	if ok && floor > 0 {
		if err := st.Purge(ctx, jetstream.WithPurgeSequence(floor+1)); err != nil {
			return 0, fmt.Errorf("purge delivered messages of stream %s: %w", LegacyDeliveriesStream, err)
		}
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("read stream %s: %w", LegacyDeliveriesStream, err)
	}
	if info.State.Msgs == 0 {
		if err := js.DeleteStream(ctx, LegacyDeliveriesStream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return 0, fmt.Errorf("delete empty stream %s: %w", LegacyDeliveriesStream, err)
		}
		return 0, nil
	}
	used := int64(info.State.Bytes) //nolint:gosec // G115: a stream's size fits
	cfg := info.Config
	if cfg.MaxBytes != used {
		cfg.MaxBytes, cfg.Discard = used, jetstream.DiscardNew
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			return 0, fmt.Errorf("bound stream %s to its contents: %w", LegacyDeliveriesStream, err)
		}
	}
	return used, nil
}

// minAckFloor is the lowest stream sequence every consumer of st has
// acknowledged up to, and how many consumers st has (ok false when they
// cannot be listed).
func minAckFloor(ctx context.Context, st jetstream.Stream) (floor uint64, consumers int, ok bool) {
	infos := st.ListConsumers(ctx)
	for info := range infos.Info() {
		if consumers == 0 || info.AckFloor.Stream < floor {
			floor = info.AckFloor.Stream
		}
		consumers++
	}
	if infos.Err() != nil {
		return 0, 0, false
	}
	return floor, consumers, true
}

// discardOldest makes a full bucket drop its oldest entries instead of
// refusing writes: the delivery log ages out rather than blocking outcomes.
// (KV buckets are created with DiscardNew.)
func discardOldest(ctx context.Context, js jetstream.JetStream, bucket string) error {
	name := "KV_" + bucket
	st, err := js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("read bucket %s: %w", bucket, err)
	}
	cfg := st.CachedInfo().Config
	if cfg.Discard == jetstream.DiscardOld {
		return nil
	}
	cfg.Discard = jetstream.DiscardOld
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("set discard policy of bucket %s: %w", bucket, err)
	}
	return nil
}

// Connect opens a connection to an external NATS cluster that retries
// forever on disconnects, so a restarting NATS node never stops the receiver.
func Connect(url, name string, opts ...nats.Option) (*nats.Conn, error) {
	base := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
	}
	nc, err := nats.Connect(url, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", redactURL(url), err)
	}
	return nc, nil
}

// redactURL drops credentials from a NATS URL list before it is logged.
func redactURL(u string) string {
	out := []byte{}
	skip := false
	for i := 0; i < len(u); i++ {
		switch {
		case u[i] == '/' && i+1 < len(u) && u[i+1] == '/':
			out = append(out, '/', '/')
			i++
			// Drop "user:pass@" if present before the next '/', ',' or end.
			rest := u[i+1:]
			for j := 0; j < len(rest) && rest[j] != '/' && rest[j] != ','; j++ {
				if rest[j] == '@' {
					out = append(out, "***@"...)
					i += j + 1
					break
				}
			}
		default:
			if !skip {
				out = append(out, u[i])
			}
		}
	}
	return string(out)
}

// EventSubject is the subject an event is stored under:
// mira.events.<namespace>.<type>. The namespace is part of it so that NATS
// permissions can scope a workspace; an event without one is stored under
// the "_" token (it reaches no endpoint).
func EventSubject(namespace, eventType string) string {
	if namespace == "" {
		namespace = "_"
	}
	return EventsSubject + "." + namespace + "." + eventType
}
