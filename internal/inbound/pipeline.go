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
)

// Pipeline outcome labels.
const (
	resultCompleted = "completed"
	resultFailed    = "failed"
	resultIgnored   = "ignored"
	resultReplayed  = "replayed"
	resultRetried   = "retried"
	resultInvalid   = "invalid"
)

// Subject states in mira-state.
const (
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
	var err error
	switch source := strings.TrimPrefix(msg.Subject(), queue.InboundSubject+"."); source {
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

// lock serializes work on one subject (a meeting, a roleplay) in this process.
func (in *Inbound) lock(key string) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	m := &in.locks[h.Sum32()%uint32(len(in.locks))]
	m.Lock()
	return m.Unlock
}

// subjectState is the record of a meeting or roleplay in mira-state: what has
// been emitted, so a replay after the dedupe window emits nothing again.
type subjectState struct {
	ID       string    `json:"id"`
	BotID    string    `json:"bot_id,omitempty"`
	UserID   string    `json:"user_id,omitempty"`
	State    string    `json:"state"`
	ReportID string    `json:"report_id,omitempty"`
	Emitted  []string  `json:"emitted,omitempty"`
	Code     string    `json:"code,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Updated  time.Time `json:"updated"`

	key string
	rev uint64
}

func (s *subjectState) terminal() bool { return s.State == stateCompleted || s.State == stateFailed }

func (s *subjectState) emitted(eventType string) bool {
	for _, e := range s.Emitted {
		if e == eventType {
			return true
		}
	}
	return false
}

// loadState reads a subject's record; a missing one is empty.
func (in *Inbound) loadState(ctx context.Context, key string) (*subjectState, error) {
	s := &subjectState{key: key}
	entry, err := in.state.Get(ctx, key)
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
		rev, err = in.state.Create(ctx, s.key, b)
	} else {
		rev, err = in.state.Update(ctx, s.key, b, s.rev)
	}
	if err != nil {
		return fmt.Errorf("write pipeline state %s: %w", s.key, err)
	}
	s.rev = rev
	return nil
}

// emit publishes an event once: its id is derived from its type and
// subject, and the subject's record remembers it was emitted.
func (in *Inbound) emit(ctx context.Context, s *subjectState, eventType, subject string, data any) error {
	if s.emitted(eventType) {
		return nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode %s: %w", eventType, err)
	}
	ev := events.Event{ID: events.DerivedEventID(eventType, subject), Type: eventType, Data: b, Time: in.o.Now().UTC()}
	if err := in.publisher.Publish(ctx, ev); err != nil {
		return err
	}
	s.Emitted = append(s.Emitted, eventType)
	return nil
}

// storeReport writes a report to mira-reports under its id.
func (in *Inbound) storeReport(ctx context.Context, id string, report any) error {
	b, err := json.Marshal(report)
	if err != nil {
		return fmt.Errorf("encode report %s: %w", id, err)
	}
	if _, err := in.reports.Put(ctx, id, b); err != nil {
		return fmt.Errorf("store report %s: %w", id, err)
	}
	return nil
}

func (in *Inbound) countPipeline(source, kind, outcome string) {
	in.metrics.pipeline.WithLabelValues(source, kind, outcome).Inc()
}
