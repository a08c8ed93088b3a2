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

// TypeRetention is the asynq task type of a retention run.
const TypeRetention = "maintenance:retention"

// RetentionPayload is a retention task's JSON body: the period it runs for,
// for people reading the queue.
type RetentionPayload struct {
	Period time.Time `json:"period"`
}

// Retention deletes executions (with their attempts) and event keys older
// than Age. Every worker runs Schedule; the task of one period has an id
// naming the period and stays in Redis as completed for a period, so the
// cluster runs it once per period however many workers schedule it.
type Retention struct {
	Store    store.Store
	Enqueuer *Enqueuer
	Log      *zap.Logger
	// Age is how old an execution or event key must be to be deleted.
	// Default 720h (30 days).
	Age time.Duration
	// Batch is the most rows one transaction deletes, so that no delete
	// holds locks for long. Default 1000.
	Batch int
	// Interval is the period of the runs. Default 1h.
	Interval time.Duration

	now func() time.Time
}

func (r *Retention) fill() {
	if r.Age <= 0 {
		r.Age = 30 * 24 * time.Hour
	}
	if r.Batch <= 0 {
		r.Batch = 1000
	}
	if r.Interval <= 0 {
		r.Interval = time.Hour
	}
	if r.now == nil {
		r.now = time.Now
	}
}

// RetentionTaskID is the task id of the retention run of the period that
// starts at period.
func RetentionTaskID(period time.Time) string {
	return "retention:" + strconv.FormatInt(period.Unix(), 10)
}

// Schedule queues the run of the current period, then of each period as it
// starts, until ctx ends. A failure is logged and tried again at the next
// period.
func (r *Retention) Schedule(ctx context.Context) {
	r.fill()
	for {
		period := r.now().Truncate(r.Interval)
		queued, err := r.EnqueuePeriod(ctx, period)
		switch {
		case err != nil:
			r.Log.Warn("schedule retention", zap.Error(err), zap.Time("period", period))
		case queued:
			r.Log.Debug("retention run queued", zap.Time("period", period))
		}

		t := time.NewTimer(period.Add(r.Interval).Sub(r.now()))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// EnqueuePeriod queues the retention run of the period starting at period
// and reports whether it did; false means the run was queued (or done)
// already, by this worker or another.
func (r *Retention) EnqueuePeriod(ctx context.Context, period time.Time) (bool, error) {
	r.fill()
	body, err := json.Marshal(RetentionPayload{Period: period.UTC()})
	if err != nil {
		return false, fmt.Errorf("encode retention payload: %w", err)
	}

	task := asynq.NewTask(TypeRetention, body,
		asynq.TaskID(RetentionTaskID(period)), asynq.Queue(QueueEvents),
		asynq.Retention(r.Interval), asynq.MaxRetry(10))
	_, err = r.Enqueuer.client.EnqueueContext(ctx, task)
	if ignoreConflict(err) != nil {
		return false, fmt.Errorf("enqueue retention run: %w", err)
	}
	return err == nil, nil
}

// ProcessTask implements asynq.Handler for retention tasks.
func (r *Retention) ProcessTask(ctx context.Context, _ *asynq.Task) error {
	execs, keys, err := r.Run(ctx)
	if err != nil {
		return fmt.Errorf("retention run after %d executions, %d event keys: %w",
			execs, keys, err)
	}
	r.Log.Info("retention run", zap.Int("executions_deleted", execs),
		zap.Int("event_keys_deleted", keys), zap.Duration("retention", r.Age))
	return nil
}

// Run deletes, a batch at a time, what is older than Age, and returns how
// many executions and event keys it deleted.
func (r *Retention) Run(ctx context.Context) (execs, keys int, err error) {
	r.fill()
	now := r.now()
	cutoff := now.Add(-r.Age)

	for {
		n, err := r.Store.DeleteExecutionsBefore(ctx, cutoff, now, r.Batch)
		execs += n
		if err != nil {
			return execs, keys, err
		}
		if n < r.Batch {
			break
		}
	}

	for {
		n, err := r.Store.DeleteEventKeysBefore(ctx, cutoff, r.Batch)
		keys += n
		if err != nil {
			return execs, keys, err
		}
		if n < r.Batch {
			break
		}
	}
	return execs, keys, nil
}
