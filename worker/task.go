// Package worker runs rehook's asynq side: the task that names an execution,
// the client that enqueues it, the handler that delivers it, and the sweeper
// that re-enqueues what the queue lost.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/hibiken/asynq"

	"github.com/rehook/rehook/store"
)

// TypeDeliver is the asynq task type of a delivery.
const TypeDeliver = "webhook:deliver"

// Queue names. Retriggers are an operator waiting at a terminal; events are
// the steady background flow, so retriggers are weighted above them.
const (
	QueueRetrigger = "retrigger"
	QueueEvents    = "events"
)

// Queues maps each queue to its asynq priority weight.
var Queues = map[string]int{QueueRetrigger: 6, QueueEvents: 3}

// Payload is the task's JSON body. Only ExecutionID is acted on: the
// execution row is the truth. The other fields make the task readable in
// asynqmon.
type Payload struct {
	ExecutionID int64  `json:"execution_id"`
	WebhookID   int64  `json:"webhook_id"`
	Webhook     string `json:"webhook,omitempty"`
	Registry    string `json:"registry,omitempty"`
	Trigger     string `json:"trigger,omitempty"`
	RetriggerOf int64  `json:"retrigger_of,omitempty"`
	// Attempt is the attempt the task was queued for: 1 for a new
	// execution, more for one the sweeper queued again after a retry was
	// lost. Each retry of the task is the next attempt, so asynqmon's
	// retried count, shown beside the payload, tells how far it has got.
	Attempt int `json:"attempt,omitempty"`
}

// RegistryRef is a registry's registry_ref as the API's paths spell it:
// ACCOUNT[/ORG[/PROJECT]]/REGISTRY/+.
func RegistryRef(r store.Registry) string {
	return r.Scope.String() + "/" + r.Identifier + "/+"
}

// TaskID is the asynq task id of an execution, so that enqueuing it twice
// is harmless.
func TaskID(executionID int64) string {
	return "execution:" + strconv.FormatInt(executionID, 10)
}

// QueueOf is the queue an execution's task goes to.
func QueueOf(e store.Execution) string {
	if e.RetriggerOf != 0 {
		return QueueRetrigger
	}
	return QueueEvents
}

// Enqueuer puts delivery tasks on the queue.
type Enqueuer struct {
	client    *asynq.Client
	inspector *asynq.Inspector
	// maxRetry is asynq's retry budget per task; rehook counts attempts
	// itself, so this only needs to exceed REHOOK_MAX_ATTEMPTS.
	maxRetry int
	timeout  int
}

// NewEnqueuer returns an Enqueuer on the given Redis. maxAttempts is
// REHOOK_MAX_ATTEMPTS; taskTimeoutSeconds bounds one run of the handler.
func NewEnqueuer(redis asynq.RedisConnOpt, maxAttempts, taskTimeoutSeconds int) *Enqueuer {
	return &Enqueuer{
		client:    asynq.NewClient(redis),
		inspector: asynq.NewInspector(redis),
		maxRetry:  maxAttempts + spareRetries,
		timeout:   taskTimeoutSeconds,
	}
}

// spareRetries are asynq retries beyond the delivery attempts, spent when a
// run ends without an attempt (store unreachable, execution leased).
const spareRetries = 20

// Close releases the Redis connections.
func (q *Enqueuer) Close() error {
	return errors.Join(q.client.Close(), q.inspector.Close())
}

// Enqueue queues the delivery of e. A task already queued for e is not an
// error; a finished (archived or completed) task of the same id is replaced,
// since the execution row, not the queue, says whether work remains.
func (q *Enqueuer) Enqueue(ctx context.Context, e store.Execution, p Payload) error {
	p.ExecutionID = e.ID
	p.WebhookID = e.WebhookID
	p.Trigger = string(e.TriggerType)
	p.RetriggerOf = e.RetriggerOf
	p.Attempt = e.Attempts + 1
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode payload: %w", err)
	}

	queue, id := QueueOf(e), TaskID(e.ID)
	task := asynq.NewTask(TypeDeliver, body,
		asynq.TaskID(id), asynq.Queue(queue), asynq.MaxRetry(q.maxRetry),
		asynq.Timeout(secondsOf(q.timeout)))
	_, err = q.client.EnqueueContext(ctx, task)
	if !errors.Is(err, asynq.ErrTaskIDConflict) {
		return err
	}

	info, err := q.inspector.GetTaskInfo(queue, id)
	if err != nil {
		if errors.Is(err, asynq.ErrTaskNotFound) {
			_, err = q.client.EnqueueContext(ctx, task)
			return ignoreConflict(err)
		}
		return fmt.Errorf("inspect task %s: %w", id, err)
	}
	if info.State != asynq.TaskStateArchived && info.State != asynq.TaskStateCompleted {
		return nil
	}
	if err := q.inspector.DeleteTask(queue, id); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
		return fmt.Errorf("delete finished task %s: %w", id, err)
	}
	_, err = q.client.EnqueueContext(ctx, task)
	return ignoreConflict(err)
}

func ignoreConflict(err error) error {
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil
	}
	return err
}
