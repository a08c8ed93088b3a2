package worker

import (
	"context"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"
)

// handBackTimeout bounds how long Shutdown waits, after cutting deliveries
// short, for their handlers to record the interruptions and drop their
// leases.
const handBackTimeout = 10 * time.Second

// Pool is the delivery side of a worker process: an asynq server running
// the handler, stopped in steps so that no execution stays leased.
//
// Shutdown stops taking tasks, lets in-flight deliveries finish for the
// grace period (ServerConfig.ShutdownTimeout), then cancels the ones still
// running: each records its attempt as interrupted, drops its lease and
// hands its task back to the queue for another worker.
type Pool struct {
	srv     *asynq.Server
	mux     *asynq.ServeMux
	log     *zap.Logger
	grace   time.Duration
	cancel  context.CancelFunc
	running runCounter
}

// NewPool builds a Pool that runs h for delivery tasks; Handle adds more
// task types before Start.
func NewPool(redis asynq.RedisConnOpt, cfg ServerConfig, h *Handler, log *zap.Logger) *Pool {
	cfg.fill()
	base, cancel := context.WithCancel(context.Background())
	p := &Pool{mux: asynq.NewServeMux(), log: log, grace: cfg.ShutdownTimeout, cancel: cancel}

	// asynq's own shutdown timeout must not run out before the pool's grace
	// and hand-back: asynq would push tasks back while they still run.
	cfg.ShutdownTimeout += handBackTimeout + 5*time.Second
	cfg.BaseContext = func() context.Context { return base }
	p.srv = NewServer(redis, cfg, log)

	p.Handle(TypeDeliver, h)
	return p
}

// Handle routes tasks of a type to handler, counting its runs as in flight.
func (p *Pool) Handle(taskType string, handler asynq.Handler) {
	p.mux.Handle(taskType, asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		p.running.add(1)
		defer p.running.add(-1)
		return handler.ProcessTask(ctx, t)
	}))
}

// Start starts taking tasks.
func (p *Pool) Start() error {
	return p.srv.Start(p.mux)
}

// Shutdown stops the pool as the type's comment says and returns once every
// handler run has ended, or handBackTimeout after the grace period.
func (p *Pool) Shutdown() {
	p.srv.Stop()

	if n := p.running.waitZero(p.grace); n > 0 {
		p.log.Warn("grace period over; handing in-flight deliveries back",
			zap.Int("in_flight", n), zap.Duration("grace", p.grace))
		p.cancel()
		if n := p.running.waitZero(handBackTimeout); n > 0 {
			p.log.Error("handlers still running after hand-back; their leases will expire",
				zap.Int("in_flight", n))
		}
	}

	p.cancel()
	p.srv.Shutdown()
}

// runCounter counts handler runs in flight and lets Shutdown wait for none.
type runCounter struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed when n drops to 0; nil while n is 0
}

func (c *runCounter) add(d int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 && d > 0 {
		c.zero = make(chan struct{})
	}
	c.n += d
	if c.n == 0 && c.zero != nil {
		close(c.zero)
		c.zero = nil
	}
}

// waitZero waits up to d for no run to be in flight and returns how many
// still are.
func (c *runCounter) waitZero(d time.Duration) int {
	c.mu.Lock()
	zero := c.zero
	c.mu.Unlock()
	if zero != nil {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-zero:
		case <-t.C:
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
