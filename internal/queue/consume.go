package queue

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go/jetstream"
)

// FetchWait bounds one pull request of Consume. It also bounds how long a
// resumed consumer (PauseConsumer, then ResumeConsumer) stays idle: the
// server does not serve an outstanding pull request on resume, only a new
// one, so a long-lived request would sleep until it expires.
const FetchWait = 2 * time.Second

// Consume hands each message of cons to handle, with at most workers
// messages in progress, until ctx ends; then it waits for the handlers that
// are running. Handlers get ctx: one that must finish its message despite a
// shutdown detaches from it (context.WithoutCancel).
//
// It fetches only as many messages as it has idle workers, so no message
// waits in a client-side buffer while its ack wait runs out (which would
// hand it out again and inflate its delivery count); a handler that works
// long marks its message in progress.
func Consume(ctx context.Context, cons jetstream.Consumer, workers int, log logr.Logger, handle func(context.Context, jetstream.Msg)) error {
	workers = max(workers, 1)
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		// Wait for one idle worker, then take every other idle one.
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		idle := 1
	take:
		for idle < workers {
			select {
			case sem <- struct{}{}:
				idle++
			default:
				break take
			}
		}
		fctx, cancel := context.WithTimeout(ctx, FetchWait)
		batch, err := cons.Fetch(idle, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			for range idle {
				<-sem
			}
			if ctx.Err() != nil {
				return nil
			}
			log.Error(err, "fetch messages", "consumer", cons.CachedInfo().Name)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				handle(ctx, msg)
			}()
		}
		cancel()
		for ; n < idle; n++ {
			<-sem
		}
		if err := batch.Error(); err != nil && ctx.Err() == nil && fctx.Err() == nil &&
			!errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			log.V(1).Info("fetch ended early", "consumer", cons.CachedInfo().Name, "reason", err.Error())
		}
	}
}
