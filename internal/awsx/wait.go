package awsx

import (
	"context"
	"fmt"
	"time"

	"github.com/coderctl/coderctl/internal/engine"
)

// WaitPolicy is how often SDK waiters poll and how long they wait. Each
// wait declares its own as a value (real AWS resources take minutes, so
// they follow the SDK's delays); the run's policy, which tests and
// benchmarks shorten, applies over it through For.
type WaitPolicy struct {
	MinDelay time.Duration
	MaxDelay time.Duration
	// Timeout bounds one wait.
	Timeout time.Duration
}

// MaxPollDelay caps the SDK waiters' default backoff. Their defaults grow
// to 60–120 s between polls, which on real AWS adds ~40 s of lag after a
// resource is ready to each wait on the critical path (measured with the
// waiters' own delay function: ~13% on top of the waits). A poll is one
// cheap read; waiting less matters more.
const MaxPollDelay = 15 * time.Second

// Delays returns the policy's delays, or the waiter's defaults with the
// maximum capped at MaxPollDelay (never below the default minimum).
func (p WaitPolicy) Delays(defMin, defMax time.Duration) (time.Duration, time.Duration) {
	lo, hi := defMin, min(defMax, max(defMin, MaxPollDelay))
	if p.MinDelay > 0 {
		lo = p.MinDelay
	}
	if p.MaxDelay > 0 {
		hi = p.MaxDelay
	}
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

// For is wait w, a waiter's own delays and bound (the real resource's
// pace), under the run's policy p: p's fields where set, otherwise w's with
// the maximum delay capped as Delays says.
func (p WaitPolicy) For(w WaitPolicy) WaitPolicy {
	lo, hi := p.Delays(w.MinDelay, w.MaxDelay)
	return WaitPolicy{MinDelay: lo, MaxDelay: hi, Timeout: p.WaitTimeout(w.Timeout)}
}

// WaitTimeout returns the policy's timeout, or def when unset.
func (p WaitPolicy) WaitTimeout(def time.Duration) time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return def
}

// Retryable is the shape of every SDK waiter's Retryable option.
type Retryable[I, O any] func(ctx context.Context, in *I, out *O, err error) (bool, error)

// Watch wraps an SDK waiter's Retryable so that each poll reports what is
// being waited for, its current status and the elapsed time, while the SDK's
// own acceptors still decide when the wait is over.
func Watch[I, O any](r engine.Reporter, what string, status func(*O) string, next Retryable[I, O]) Retryable[I, O] {
	start := time.Now()
	return func(ctx context.Context, in *I, out *O, err error) (bool, error) {
		if r != nil {
			st := "unknown"
			switch {
			case err != nil:
				st = "error " + ErrorCode(err)
			case out != nil:
				st = status(out)
			}
			r.Progress(fmt.Sprintf("waiting for %s: %s (%s elapsed)", what, st, time.Since(start).Round(time.Second)))
		}
		return next(ctx, in, out, err)
	}
}

// Poll waits until check reports done, reporting each status. It is for
// conditions the SDK has no waiter for.
func Poll(ctx context.Context, r engine.Reporter, what string, p WaitPolicy, defTimeout time.Duration, check func(ctx context.Context) (done bool, status string, err error)) error {
	wait := p.For(WaitPolicy{MinDelay: 2 * time.Second, MaxDelay: 15 * time.Second, Timeout: defTimeout})
	ctx, cancel := context.WithTimeout(ctx, wait.Timeout)
	defer cancel()
	start := time.Now()
	delay := wait.MinDelay
	for {
		done, status, err := check(ctx)
		if err != nil {
			return err
		}
		if r != nil {
			r.Progress(fmt.Sprintf("waiting for %s: %s (%s elapsed)", what, status, time.Since(start).Round(time.Second)))
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out after %s waiting for %s (last status %s)", time.Since(start).Round(time.Second), what, status)
		case <-time.After(delay):
		}
		delay = min(delay*2, wait.MaxDelay)
	}
}
