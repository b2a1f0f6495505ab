package adtrack

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/protolake/protolake/internal/adtrackpb"
)

// LoadConfig drives a load generator against ClickTrackService.
type LoadConfig struct {
	// Rate is the target impressions per second across all workers; 0 means
	// as fast as the service answers.
	Rate float64
	// Messages stops the load after this many successful calls; 0 means no
	// limit (stop with the context).
	Messages int64
	// Concurrency is the number of concurrent callers. Default 8.
	Concurrency int
	// Next returns the i-th impression to send (i counts from 0 across
	// workers). Required.
	Next func(i int64) *adtrackpb.AdImpression
}

// callTimeout bounds one AdTrack call.
const callTimeout = 10 * time.Second

// LoadStats counts what a load run did; safe for concurrent reads while the
// load runs.
type LoadStats struct {
	Sent   atomic.Int64 // successful AdTrack calls
	Failed atomic.Int64 // calls that returned an error
}

// Load calls AdTrack until ctx ends or cfg.Messages calls succeeded, pacing
// calls to cfg.Rate. Each impression index is sent until it succeeds, so the
// i-th impression is delivered at least once, and exactly once when no call
// fails after reaching Kafka. It returns nil when it stopped because of ctx or
// the message count, and an error when 100 calls in a row failed.
func Load(ctx context.Context, client adtrackpb.ClickTrackServiceClient, cfg LoadConfig, stats *LoadStats) error {
	if cfg.Next == nil {
		return errors.New("load: LoadConfig.Next is required")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Impression i is due at start + i/Rate: pacing by schedule, not by a
	// ticker, keeps the rate when a busy machine delays a wake-up.
	start := time.Now()
	due := func(i int64) time.Time {
		return start.Add(time.Duration(float64(i) / cfg.Rate * float64(time.Second)))
	}
	var (
		next    atomic.Int64 // index of the next impression to send
		inARow  atomic.Int64 // consecutive failures across workers
		errLoad = errors.New("load failed")
		wg      sync.WaitGroup
	)
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if cfg.Messages > 0 && i >= cfg.Messages {
					return
				}
				if cfg.Rate > 0 {
					if wait := time.Until(due(i)); wait > 0 {
						t := time.NewTimer(wait)
						select {
						case <-t.C:
						case <-ctx.Done():
							t.Stop()
							return
						}
					}
				}
				imp := cfg.Next(i)
				for {
					if ctx.Err() != nil {
						return
					}
					// A call in flight when the load stops is finished, not
					// cancelled, so Sent counts every impression Kafka got.
					callCtx, done := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
					_, err := client.AdTrack(callCtx, imp)
					done()
					if err == nil {
						inARow.Store(0)
						stats.Sent.Add(1)
						break
					}
					if ctx.Err() != nil {
						return
					}
					stats.Failed.Add(1)
					if inARow.Add(1) >= 100 {
						cancel(fmt.Errorf("%w: 100 AdTrack calls failed in a row, last: %w", errLoad, err))
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); errors.Is(err, errLoad) {
		return err
	}
	return nil
}
