package inbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mira/mira-operator/internal/events"
	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/workspace"
)

// Pipeline outcome labels.
const (
	resultCompleted = "completed"
	resultFailed    = "failed"
	resultIgnored   = "ignored"
	resultReplayed  = "replayed"
	resultRetried   = "retried"
	resultInvalid   = "invalid"
	resultWaiting   = "waiting"
)

// Subject states in mira-state.
const (
	stateWaiting         = "waiting_transcript"
	stateTranscriptReady = "transcript_ready"
	stateCompleted       = "completed"
	stateFailed          = "failed"
)

// progressEvery is how often a long-running message is marked in progress,
// well inside the consumer's ack wait.
const progressEvery = 10 * time.Second

// Run consumes the inbound stream until ctx ends.
func (in *Inbound) Run(ctx context.Context) error {
	cons, err := in.js.Consumer(ctx, queue.InboundStream, queue.PipelineConsumer)
	if err != nil {
		return fmt.Errorf("open pipeline consumer: %w", err)
	}
	return queue.Consume(ctx, cons, in.o.Workers, in.log, in.process)
}

// process handles one message and acknowledges it. Handlers deal with
// failures that retrying cannot fix themselves (meeting.failed, a log line)
// and return only transient errors, which ask for a delayed redelivery.
func (in *Inbound) process(ctx context.Context, msg jetstream.Msg) {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	source, ns, _ := strings.Cut(strings.TrimPrefix(msg.Subject(), queue.InboundSubject+"."), ".")
	if ns == "" {
		// Stored before workspaces existed: it belongs to the default workspace.
		ns = in.defaultNS
	}
	if !workspace.Valid(ns) {
		in.log.Info("dropping inbound message without a workspace (no --default-workspace for a message stored before workspaces)", "subject", msg.Subject())
		_ = msg.Term()
		return
	}
	ctx = workspace.With(ctx, ns)
	var err error
	switch source {
	case "recall":
		err = in.handleRecall(ctx, msg)
	case "stripe":
		err = in.handleStripe(ctx, msg)
	case "roleplay":
		err = in.handleRoleplay(ctx, msg)
	default:
		in.log.Info("dropping inbound message of an unknown source", "subject", msg.Subject())
		_ = msg.Term()
		return
	}
	if err != nil {
		if ctx.Err() != nil {
			// Shutting down: the message is redelivered after a restart.
			_ = msg.Nak()
			return
		}
		var later retryLater
		if errors.As(err, &later) {
			if !later.quiet {
				in.log.Error(later.err, "inbound message failed; retrying later", "subject", msg.Subject(),
					"webhookID", msg.Headers().Get(HeaderWebhookID), "retryIn", later.delay)
			}
			_ = msg.NakWithDelay(later.delay)
			return
		}
		delay := retryDelay(msg)
		in.log.Error(err, "inbound message failed; retrying later", "subject", msg.Subject(),
			"webhookID", msg.Headers().Get(HeaderWebhookID), "retryIn", delay)
		_ = msg.NakWithDelay(delay)
		return
	}
	_ = msg.Ack()
}

// deliveries is how often the message has been delivered, including this time.
func deliveries(msg jetstream.Msg) uint64 {
	if md, err := msg.Metadata(); err == nil {
		return md.NumDelivered
	}
	return 1
}

// retryDelay backs off exponentially from 2 s to 5 minutes.
func retryDelay(msg jetstream.Msg) time.Duration {
	n := min(deliveries(msg), 9)
	return min(time.Duration(1<<n)*time.Second, 5*time.Minute)
}

// lock serializes work on one subject (a roleplay) in this process; across
// replicas the compare-and-set in transition decides.
func (in *Inbound) lock(key string) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	m := &in.locks[h.Sum32()%uint32(len(in.locks))]
	m.Lock()
	return m.Unlock
}

// retryLater asks process for a redelivery after delay (quiet: a planned
// wait, not an error worth a log line).
type retryLater struct {
	delay time.Duration
	quiet bool
	err   error
}

func (r retryLater) Error() string {
	if r.err == nil {
		return fmt.Sprintf("look again in %s", r.delay)
	}
	return r.err.Error()
}

func (r retryLater) Unwrap() error { return r.err }

// errStateConflict means another worker or replica changed a subject's
// record since it was read: read it again and decide again.
var errStateConflict = errors.New("pipeline state changed concurrently")

// subjectState is the record of a meeting or roleplay in mira-state. It is
// the single source of truth for what happened to the subject: every state
// change is a compare-and-set on the record's revision, and the events of a
// change are written into the record's outbox by that same write, then
// published, so two replicas can never both publish contradictory events.
type subjectState struct {
	ID string `json:"id"`
	// Namespace is the workspace the subject belongs to; its events carry it.
	Namespace string `json:"namespace,omitempty"`
	BotID     string `json:"bot_id,omitempty"`
	UserID    string `json:"user_id,omitempty"`
	State     string `json:"state"`
	ReportID  string `json:"report_id,omitempty"`
	// Emitted lists the keys of the events published (see outboxEvent).
	Emitted []string `json:"emitted,omitempty"`
	// Outbox holds the events of the last change until they are published.
	Outbox  []outboxEvent `json:"outbox,omitempty"`
	Code    string        `json:"code,omitempty"`
	SubCode string        `json:"sub_code,omitempty"`
	Reason  string        `json:"reason,omitempty"`

	// Meetings only.
	MeetingURL   string    `json:"meeting_url,omitempty"`
	RecordingID  string    `json:"recording_id,omitempty"`
	TranscriptID string    `json:"transcript_id,omitempty"`
	WaitingSince time.Time `json:"waiting_since,omitzero"`
	// Polls counts the looks of the waiting meeting's poller message.
	Polls int `json:"polls,omitempty"`
	// Poller is the webhook id of the message that polls while waiting.
	Poller string `json:"poller,omitempty"`
	// Attempts counts failed attempts at fetching the transcript; unlike
	// JetStream's delivery count it ignores redeliveries.
	Attempts int `json:"attempts,omitempty"`
	// Generation counts rescoring runs; 0 for the first.
	Generation int `json:"generation,omitempty"`

	Updated time.Time `json:"updated"`

	key string
	rev uint64
}

// outboxEvent is an event a state change decided to publish.
type outboxEvent struct {
	// Key identifies the event in Emitted: its type, plus "#<generation>"
	// for meeting.failed of a rescoring run.
	Key  string          `json:"key"`
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
	Time time.Time       `json:"time"`
}

func (s *subjectState) terminal() bool { return s.State == stateCompleted || s.State == stateFailed }

func (s *subjectState) emitted(key string) bool {
	for _, e := range s.Emitted {
		if e == key {
			return true
		}
	}
	for _, e := range s.Outbox {
		if e.Key == key {
			return true
		}
	}
	return false
}

// generationSuffix distinguishes the events of a rescoring run.
func (s *subjectState) generationSuffix() string {
	if s.Generation == 0 {
		return ""
	}
	return fmt.Sprintf("#%d", s.Generation)
}

// event builds an outbox event whose id is derived from its type, subject
// and suffix, so a republished event is deduplicated downstream.
func (in *Inbound) event(eventType, subject, suffix string, data any) outboxEvent {
	b, err := json.Marshal(data)
	if err != nil {
		// Only plain structs are passed: cannot happen.
		panic(fmt.Sprintf("encode %s: %v", eventType, err))
	}
	return outboxEvent{
		Key: eventType + suffix, ID: events.DerivedEventID(eventType, subject+suffix), Type: eventType,
		Data: b, Time: in.o.Now().UTC(),
	}
}

// transition changes a subject's state with compare-and-set, putting evs
// (those not emitted before) in its outbox by the same write, and then
// publishes them. A conflicting write returns errStateConflict and publishes
// nothing.
func (in *Inbound) transition(ctx context.Context, s *subjectState, state string, evs ...outboxEvent) error {
	for _, e := range evs {
		if !s.emitted(e.Key) {
			s.Outbox = append(s.Outbox, e)
		}
	}
	s.State = state
	if err := in.saveState(ctx, s); err != nil {
		return err
	}
	return in.flush(ctx, s)
}

// flush publishes the outbox and records it as emitted. Publishing is
// idempotent (event ids are derived), so a crash between the two steps
// only republishes.
func (in *Inbound) flush(ctx context.Context, s *subjectState) error {
	if len(s.Outbox) == 0 {
		return nil
	}
	for _, e := range s.Outbox {
		ev := events.Event{ID: e.ID, Type: e.Type, Namespace: s.Namespace, Data: e.Data, Time: e.Time}
		if err := in.publisher.Publish(ctx, ev); err != nil {
			return err
		}
	}
	for _, e := range s.Outbox {
		s.Emitted = append(s.Emitted, e.Key)
	}
	s.Outbox = nil
	if err := in.saveState(ctx, s); err != nil && !errors.Is(err, errStateConflict) {
		return err
	}
	// On a conflict another worker flushed (or will flush) the same ids.
	return nil
}

// loadState reads a subject's record; a missing one is empty.
func (in *Inbound) loadState(ctx context.Context, key string) (*subjectState, error) {
	ns := workspace.From(ctx)
	s := &subjectState{key: key, Namespace: ns}
	entry, err := in.stateOf(ctx).Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read pipeline state %s: %w", key, err)
	}
	if err := json.Unmarshal(entry.Value(), s); err != nil {
		return nil, fmt.Errorf("decode pipeline state %s: %w", key, err)
	}
	s.rev = entry.Revision()
	// A record written before workspaces (read as the default workspace's)
	// has no namespace: it is the one it was read in.
	s.Namespace = ns
	return s, nil
}

// saveState writes a subject's record with compare-and-set.
func (in *Inbound) saveState(ctx context.Context, s *subjectState) error {
	s.Updated = in.o.Now().UTC()
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	var rev uint64
	if s.rev == 0 {
		rev, err = in.stateOf(ctx).Create(ctx, s.key, b)
	} else {
		rev, err = in.stateOf(ctx).Update(ctx, s.key, b, s.rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || isWrongLastSequence(err) {
		return fmt.Errorf("write pipeline state %s: %w", s.key, errStateConflict)
	}
	if err != nil {
		return fmt.Errorf("write pipeline state %s: %w", s.key, err)
	}
	s.rev = rev
	return nil
}

// isWrongLastSequence recognises a KV update refused for its revision.
func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// storeReport writes a report to mira-reports under its id.
func (in *Inbound) storeReport(ctx context.Context, id string, report any) error {
	b, err := json.Marshal(report)
	if err != nil {
		return fmt.Errorf("encode report %s: %w", id, err)
	}
	if _, err := in.reportsOf(ctx).Put(ctx, id, b); err != nil {
		return fmt.Errorf("store report %s: %w", id, err)
	}
	return nil
}

func (in *Inbound) countPipeline(source, kind, outcome string) {
	in.metrics.pipeline.WithLabelValues(source, kind, outcome).Inc()
}
