package worker

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/rehook/rehook/store"
)

// ErrQueueDown is returned by FailFast while a recent enqueue failure keeps
// it from trying Redis.
var ErrQueueDown = errors.New("queue unavailable: a recent enqueue failed")

// FailFast wraps an Enqueuer for callers that answer people and must not
// wait on a Redis that is down, the API: once an enqueue fails, the ones in
// the next Cooldown fail at once with ErrQueueDown. Their executions are
// stored all the same, and the sweeper queues them.
type FailFast struct {
	q        *Enqueuer
	cooldown time.Duration
	// downUntil is when trying Redis again is allowed, in Unix nanoseconds.
	downUntil atomic.Int64
	now       func() time.Time
}

// NewFailFast returns a FailFast on q; cooldown is how long a failure stops
// the next enqueues from trying Redis.
func NewFailFast(q *Enqueuer, cooldown time.Duration) *FailFast {
	return &FailFast{q: q, cooldown: cooldown, now: time.Now}
}

// Enqueue is Enqueuer.Enqueue unless Redis failed within the cooldown.
func (f *FailFast) Enqueue(ctx context.Context, e store.Execution, p Payload) error {
	if f.now().UnixNano() < f.downUntil.Load() {
		return ErrQueueDown
	}

	err := f.q.Enqueue(ctx, e, p)
	if err != nil {
		f.downUntil.Store(f.now().Add(f.cooldown).UnixNano())
	}
	return err
}
