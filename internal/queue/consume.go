package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go/jetstream"
)

// Consume hands each message of cons to handle, with at most workers
// messages in progress, until ctx ends; then it waits for the handlers that
// are running. Handlers get ctx: one that must finish its message despite a
// shutdown detaches from it (context.WithoutCancel).
func Consume(ctx context.Context, cons jetstream.Consumer, workers int, log logr.Logger, handle func(context.Context, jetstream.Msg)) error {
	workers = max(workers, 1)
	it, err := cons.Messages(jetstream.PullMaxMessages(workers * 2))
	if err != nil {
		return fmt.Errorf("consume %s: %w", cons.CachedInfo().Name, err)
	}
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				break
			}
			log.Error(err, "fetch messages", "consumer", cons.CachedInfo().Name)
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			handle(ctx, msg)
		}()
	}
	wg.Wait()
	return nil
}
