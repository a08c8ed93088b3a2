package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/rehook/rehook/store"
)

// leaseSkew is how long past its end the sweeper waits before it takes a
// lease for expired, allowing for clocks a little apart.
const leaseSkew = time.Second

// RescueTaskID is the task id that re-queues an execution whose lease
// expired at leaseEnd. The task of the worker that held the lease is still
// "active" in Redis until asynq's recoverer notices, about a minute or two
// later, and its id blocks a new task of the usual id; the lease's end
// names this one so that every sweeper picks the same id for one lease.
func RescueTaskID(executionID int64, leaseEnd time.Time) string {
	return TaskID(executionID) + ":lease:" + strconv.FormatInt(leaseEnd.UnixMicro(), 10)
}

// Rescue queues the delivery of e, whose lease has expired, under
// RescueTaskID. A task already queued with that id is not an error.
func (q *Enqueuer) Rescue(ctx context.Context, e store.Execution) error {
	body, err := json.Marshal(Payload{
		ExecutionID: e.ID, WebhookID: e.WebhookID, Trigger: string(e.TriggerType),
		RetriggerOf: e.RetriggerOf, Attempt: e.Attempts + 1,
	})
	if err != nil {
		return fmt.Errorf("encode payload: %w", err)
	}

	task := asynq.NewTask(TypeDeliver, body,
		asynq.TaskID(RescueTaskID(e.ID, e.ClaimedUntil)), asynq.Queue(QueueOf(e)),
		asynq.MaxRetry(q.maxRetry), asynq.Timeout(secondsOf(q.timeout)))
	_, err = q.client.EnqueueContext(ctx, task)
	return ignoreConflict(err)
}

// RescueExpired re-queues pending executions whose lease expired: their
// worker died or lost the database mid-delivery. The claim that follows
// records the cut-off attempt as interrupted. It returns how many it queued.
func (s *Sweeper) RescueExpired(ctx context.Context) (int, error) {
	s.fill()
	ids, err := s.Store.ListExpiredLeases(ctx, time.Now().Add(-leaseSkew), s.Batch)
	if err != nil {
		return 0, fmt.Errorf("list expired leases: %w", err)
	}

	n := 0
	for _, id := range ids {
		exec, err := s.Store.GetExecutionByID(ctx, id)
		if err != nil {
			return n, fmt.Errorf("load execution %d: %w", id, err)
		}
		if exec.State != store.StatePending || exec.ClaimedUntil.IsZero() {
			continue
		}
		if err := s.Enqueuer.Rescue(ctx, exec); err != nil {
			return n, fmt.Errorf("rescue execution %d: %w", id, err)
		}
		n++
	}
	return n, nil
}

// rescueAndLog runs RescueExpired and logs what it did.
func (s *Sweeper) rescueAndLog(ctx context.Context) {
	n, err := s.RescueExpired(ctx)
	switch {
	case err != nil:
		s.Log.Warn("rescue expired leases", zap.Error(err), zap.Int("enqueued", n))
	case n > 0:
		s.Log.Info("re-enqueued executions whose worker's lease expired",
			zap.Int("enqueued", n))
	}
}
