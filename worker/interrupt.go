package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/rehook/rehook/store"
)

// handBackDelay is how long a task handed back at shutdown waits before
// another worker may take it: long enough for the handler to have recorded
// the interruption and dropped its lease.
const handBackDelay = 2 * time.Second

// maxStoreBackoff caps the delay of a task whose run found the database
// unreachable.
const maxStoreBackoff = 30 * time.Second

// storeBackoff is the delay before the next run of a task whose run n
// (0-based, as asynq counts retries) found the database unreachable: it
// doubles from storeRetryDelay up to maxStoreBackoff, so that an outage of
// some minutes spends the task's spare retries slowly.
func storeBackoff(n int) time.Duration {
	d := storeRetryDelay
	for i := 0; i < n && d < maxStoreBackoff; i++ {
		d *= 2
	}
	return min(d, maxStoreBackoff)
}

// interrupted ends a run whose context was cancelled while it delivered: the
// worker is shutting down and its grace period is over. What the receiver
// got is unknown, so the attempt is recorded as interrupted, spending
// none, and the lease is dropped so that another worker takes the execution
// at once. The error wraps cause, which makes asynq hand the task back.
func (h *Handler) interrupted(exec store.Execution, log *zap.Logger, cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	err := h.store.InterruptExecution(ctx, exec.ID, h.now(), store.InterruptedShutdown)
	switch {
	case err == nil:
		log.Warn("delivery interrupted by shutdown; execution handed back",
			zap.Int("attempt", exec.Attempts+1))
	case errors.Is(err, store.ErrNotClaimable), errors.Is(err, store.ErrNotFound):
	default:
		// The lease stays; it expires and the next claim records the
		// interruption instead.
		log.Warn("record interrupted delivery", zap.Error(err))
	}
	return fmt.Errorf("delivery of execution %d interrupted: %w", exec.ID, cause)
}

// record stores an attempt, trying again while the database is unreachable
// until ctx ends: a delivery that happened should not be sent again for a
// database restart of a few seconds.
func (h *Handler) record(ctx context.Context, id int64, rec store.AttemptRecord) error {
	wait := 100 * time.Millisecond
	for {
		err := h.store.RecordAttempt(ctx, id, rec)
		if !errors.Is(err, store.ErrUnavailable) {
			return err
		}

		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}
