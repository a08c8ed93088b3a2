package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/rehook/rehook/metrics"
	"github.com/rehook/rehook/store"
)

// ServerConfig tunes the asynq server.
type ServerConfig struct {
	// Concurrency is how many deliveries one worker process runs at once.
	// Default 10.
	Concurrency int
	// PollInterval is how long an idle worker waits before looking for new
	// tasks again. asynq's default of 1s puts a second of latency on an idle
	// system's deliveries. Default 20ms.
	PollInterval time.Duration
	// DelayedPollInterval is how often retries that have come due are moved
	// to their queue. Default 200ms.
	DelayedPollInterval time.Duration
	// ShutdownTimeout is how long in-flight deliveries may run after a stop
	// signal before their tasks are handed back to the queue. Default 15s.
	ShutdownTimeout time.Duration
	// BaseContext, when set, gives the context every handler run derives
	// from; Pool cancels it to cut deliveries short at the end of its grace
	// period. Default: context.Background.
	BaseContext func() context.Context
}

func (c *ServerConfig) fill() {
	if c.Concurrency <= 0 {
		c.Concurrency = 10
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 20 * time.Millisecond
	}
	if c.DelayedPollInterval <= 0 {
		c.DelayedPollInterval = 200 * time.Millisecond
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 15 * time.Second
	}
}

// NewServer returns an asynq server that runs h for delivery tasks. Start it
// with Start(Mux(h)) and stop it with Shutdown.
func NewServer(redis asynq.RedisConnOpt, cfg ServerConfig, log *zap.Logger) *asynq.Server {
	cfg.fill()
	return asynq.NewServer(redis, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   Queues,
		TaskCheckInterval:        cfg.PollInterval,
		DelayedTaskCheckInterval: cfg.DelayedPollInterval,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		RetryDelayFunc:           RetryDelay,
		BaseContext:              cfg.BaseContext,
		Logger:                   asynqLogger{log.Sugar().With("component", "asynq")},
		LogLevel:                 asynq.WarnLevel,
	})
}

// Mux routes delivery tasks to h.
func Mux(h *Handler) *asynq.ServeMux {
	mux := asynq.NewServeMux()
	mux.Handle(TypeDeliver, h)
	return mux
}

// asynqLogger adapts zap to asynq's logger.
type asynqLogger struct{ s *zap.SugaredLogger }

func (l asynqLogger) Debug(args ...any) { l.s.Debug(args...) }
func (l asynqLogger) Info(args ...any)  { l.s.Info(args...) }
func (l asynqLogger) Warn(args ...any)  { l.s.Warn(args...) }
func (l asynqLogger) Error(args ...any) { l.s.Error(args...) }
func (l asynqLogger) Fatal(args ...any) { l.s.Fatal(args...) }

// Sweeper re-enqueues pending executions whose task the queue lost: accepted
// while Redis was down, or dropped with a crashed Redis. Every worker may run
// one; the task id makes a second enqueue of the same execution harmless.
type Sweeper struct {
	Store    store.Store
	Enqueuer *Enqueuer
	Log      *zap.Logger
	// Interval between sweeps. Default 15s.
	Interval time.Duration
	// Grace is how long past due an execution must be before the sweeper
	// considers its task lost, so it does not race the normal path.
	// Default 30s.
	Grace time.Duration
	// Batch is the most executions one sweep re-enqueues. Default 500.
	Batch int
	// Metrics counts the executions re-enqueued. Default nil: none are
	// counted.
	Metrics *metrics.Metrics
}

func (s *Sweeper) fill() {
	if s.Interval <= 0 {
		s.Interval = 15 * time.Second
	}
	if s.Grace <= 0 {
		s.Grace = 30 * time.Second
	}
	if s.Batch <= 0 {
		s.Batch = 500
	}
}

// Run sweeps every Interval until ctx ends.
func (s *Sweeper) Run(ctx context.Context) {
	s.fill()
	t := time.NewTicker(s.Interval)
	defer t.Stop()
	for {
		if n, err := s.Sweep(ctx); err != nil {
			s.Log.Warn("sweep", zap.Error(err), zap.Int("enqueued", n))
		} else if n > 0 {
			s.Log.Info("sweep re-enqueued pending executions", zap.Int("enqueued", n))
		}
		s.rescueAndLog(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep runs once and returns how many executions it enqueued.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	s.fill()
	ids, err := s.Store.ListDuePending(ctx, time.Now().Add(-s.Grace), s.Batch)
	if err != nil {
		return 0, fmt.Errorf("list due executions: %w", err)
	}

	n := 0
	for _, id := range ids {
		exec, err := s.Store.GetExecutionByID(ctx, id)
		if err != nil {
			return n, fmt.Errorf("load execution %d: %w", id, err)
		}
		if err := s.Enqueuer.Enqueue(ctx, exec, s.payload(ctx, exec)); err != nil {
			return n, fmt.Errorf("enqueue execution %d: %w", id, err)
		}
		s.Metrics.SweepReenqueued(1)
		n++
	}
	return n, nil
}

// payload names the execution's webhook and registry in its task, as the API
// does, so that a swept task reads the same in asynqmon. The names are for
// people only: a failed lookup leaves them out.
func (s *Sweeper) payload(ctx context.Context, exec store.Execution) Payload {
	var p Payload
	if hook, err := s.Store.GetWebhookByID(ctx, exec.WebhookID); err == nil {
		p.Webhook = hook.Identifier
	}
	if reg, err := s.Store.GetRegistryByID(ctx, exec.RegistryID); err == nil {
		p.Registry = RegistryRef(reg)
	}
	return p
}
