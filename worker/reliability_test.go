package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/rehook/rehook/delivery"
	"github.com/rehook/rehook/internal/testenv"
	"github.com/rehook/rehook/store"
	"github.com/rehook/rehook/store/storeopen"
)

// poolEnv is a store, a queue and the Redis they share, with no worker
// running: tests start pools of their own.
type poolEnv struct {
	*env
	redis asynq.RedisConnOpt
}

func newPoolEnv(t *testing.T) *poolEnv {
	t.Helper()
	s, err := storeopen.Open(context.Background(), testenv.DatabaseURL(t), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	redis, err := asynq.ParseRedisURI(testenv.Redis(t))
	if err != nil {
		t.Fatal(err)
	}

	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	client := delivery.NewClient(delivery.Config{Timeout: 5 * time.Second, AllowLoopback: true})
	h := NewHandler(s, client, 5*time.Second, log, HandlerConfig{})
	q := NewEnqueuer(redis, h.cfg.MaxAttempts, 30)
	t.Cleanup(func() { q.Close() })

	reg := store.Registry{Scope: store.Scope{Account: "acct"}, Identifier: "reg"}
	if err := s.CreateRegistry(context.Background(), &reg); err != nil {
		t.Fatal(err)
	}
	return &poolEnv{env: &env{t: t, store: s, queue: q, handler: h, reg: reg}, redis: redis}
}

// pool starts a Pool of the env's handler with the given grace period.
func (e *poolEnv) pool(grace time.Duration) *Pool {
	e.t.Helper()
	log := zaptest.NewLogger(e.t, zaptest.Level(zap.ErrorLevel))
	p := NewPool(e.redis, ServerConfig{Concurrency: 2, ShutdownTimeout: grace}, e.handler, log)
	if err := p.Start(); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// blocking is a receiver that holds the first request until release is
// called (or the client goes), telling arrived when it comes; later requests
// get 200 at once.
func blocking(t *testing.T) (srv *httptest.Server, arrived chan struct{}, release func(),
	hits *atomic.Int32) {
	arrived, released := make(chan struct{}), make(chan struct{})
	hits = &atomic.Int32{}
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			close(arrived)
			select {
			case <-released:
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(srv.Close)
	var once sync.Once
	release = func() { once.Do(func() { close(released) }) }
	t.Cleanup(release)
	return srv, arrived, release, hits
}

func waitClosed(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not happen within 20s", what)
	}
}

func attemptsOf(t *testing.T, s store.Store, id int64) []store.Attempt {
	t.Helper()
	attempts, err := s.ListAttempts(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return attempts
}

// TestShutdownHandsBackDeliveries: a delivery still running when the grace
// period ends is cut off, recorded as interrupted, its lease dropped and its
// task handed back; another pool finishes it.
func TestShutdownHandsBackDeliveries(t *testing.T) {
	e := newPoolEnv(t)
	srv, arrived, _, hits := blocking(t)
	x := e.execution(e.webhook("slow", srv.URL), "{}", true)

	p := e.pool(100 * time.Millisecond)
	waitClosed(t, arrived, "first delivery")
	p.Shutdown()

	got, err := e.store.GetExecutionByID(context.Background(), x.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.StatePending || !got.ClaimedUntil.IsZero() || got.Attempts != 0 {
		t.Fatalf("after shutdown: state %s, claimed until %v, attempts %d; "+
			"want pending, unclaimed, 0 attempts", got.State, got.ClaimedUntil, got.Attempts)
	}
	attempts := attemptsOf(t, e.store, x.ID)
	if len(attempts) != 1 || !attempts[0].Interrupted ||
		attempts[0].Error != store.InterruptedShutdown {
		t.Fatalf("attempts after shutdown: got %+v, want one interrupted by shutdown", attempts)
	}
	info, err := e.queue.inspector.GetTaskInfo(QueueEvents, TaskID(x.ID))
	if err != nil || (info.State != asynq.TaskStateRetry && info.State != asynq.TaskStatePending) {
		t.Fatalf("task after shutdown: %+v, %v; want handed back (retry or pending)", info, err)
	}

	next := e.pool(time.Second)
	t.Cleanup(next.Shutdown)
	done := e.waitFinal(x.ID)
	if done.Result != store.ResultSuccess || done.Attempts != 1 || hits.Load() != 2 {
		t.Fatalf("after another pool: %s after %d attempts, %d requests; "+
			"want SUCCESS after 1, 2 requests", done.Result, done.Attempts, hits.Load())
	}
	attempts = attemptsOf(t, e.store, x.ID)
	if len(attempts) != 2 || !attempts[0].Interrupted || attempts[1].N != 1 ||
		attempts[1].Result != store.ResultSuccess {
		t.Errorf("attempts: got %+v, want the interruption then attempt 1 SUCCESS", attempts)
	}
}

// TestShutdownFinishesInFlight: a delivery that ends within the grace period
// is recorded as usual.
func TestShutdownFinishesInFlight(t *testing.T) {
	e := newPoolEnv(t)
	srv, arrived, release, _ := blocking(t)
	x := e.execution(e.webhook("slow", srv.URL), "{}", true)

	p := e.pool(20 * time.Second)
	waitClosed(t, arrived, "first delivery")
	stopped := make(chan struct{})
	go func() {
		p.Shutdown()
		close(stopped)
	}()
	release()
	waitClosed(t, stopped, "shutdown")

	got, err := e.store.GetExecutionByID(context.Background(), x.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.StateFinal || got.Result != store.ResultSuccess ||
		!got.ClaimedUntil.IsZero() {
		t.Fatalf("after shutdown: %s %s claimed until %v; want final SUCCESS, unclaimed",
			got.State, got.Result, got.ClaimedUntil)
	}
	if attempts := attemptsOf(t, e.store, x.ID); len(attempts) != 1 || attempts[0].Interrupted {
		t.Errorf("attempts: got %+v, want one, not interrupted", attempts)
	}
}

// TestSweeperRescuesExpiredLease: an execution whose worker died holding
// it (its lease expired, its task id still taken) is queued under a rescue
// id and delivered; the cut-off attempt is recorded as interrupted.
func TestSweeperRescuesExpiredLease(t *testing.T) {
	e := newPoolEnv(t)
	srv, hits := scripted(t, 200)
	x := e.execution(e.webhook("orphan", srv.URL), "{}", false)

	// The dead worker's claim, and its task, which asynq has not recovered:
	// it stands for the orphaned active task that holds the usual id.
	dead := time.Now().Add(-2 * time.Minute)
	if _, err := e.store.ClaimExecution(context.Background(), x.ID, dead,
		dead.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	blocker := asynq.NewTask(TypeDeliver, mustJSON(t, Payload{ExecutionID: x.ID}),
		asynq.TaskID(TaskID(x.ID)), asynq.Queue(QueueEvents), asynq.ProcessIn(time.Hour))
	if _, err := e.queue.client.Enqueue(blocker); err != nil {
		t.Fatal(err)
	}

	sw := &Sweeper{Store: e.store, Enqueuer: e.queue, Log: zap.NewNop(), Grace: time.Nanosecond}
	for i := range 2 {
		n, err := sw.RescueExpired(context.Background())
		if err != nil || n != 1 {
			t.Fatalf("rescue %d: enqueued %d (err %v), want 1", i, n, err)
		}
	}

	p := e.pool(time.Second)
	t.Cleanup(p.Shutdown)
	got := e.waitFinal(x.ID)
	if got.Result != store.ResultSuccess || got.Attempts != 1 || hits.Load() != 1 {
		t.Fatalf("rescued execution: %s after %d attempts, %d requests; "+
			"want SUCCESS after 1, 1 request", got.Result, got.Attempts, hits.Load())
	}
	attempts := attemptsOf(t, e.store, x.ID)
	if len(attempts) != 2 || !attempts[0].Interrupted ||
		attempts[0].Error != store.InterruptedLeaseExpired || attempts[0].N != 1 ||
		attempts[1].Interrupted || attempts[1].N != 1 {
		t.Errorf("attempts: got %+v, want attempt 1 interrupted (lease expired), "+
			"then attempt 1", attempts)
	}
	if n, err := sw.RescueExpired(context.Background()); err != nil || n != 0 {
		t.Errorf("rescue after delivery: enqueued %d (err %v), want 0", n, err)
	}
}

// TestRetentionOncePerPeriod: however many workers schedule a period, its
// run is queued once; the run deletes in batches what is older than Age.
func TestRetentionOncePerPeriod(t *testing.T) {
	e := newPoolEnv(t)
	hook := e.webhook("old", "http://127.0.0.1:9/")
	var ids []int64
	for range 5 {
		ids = append(ids, e.execution(hook, "{}", false).ID)
	}

	log := zap.NewNop()
	a := &Retention{Store: e.store, Enqueuer: e.queue, Log: log, Age: time.Nanosecond,
		Batch: 2, Interval: time.Hour}
	b := &Retention{Store: e.store, Enqueuer: e.queue, Log: log, Age: time.Nanosecond,
		Batch: 2, Interval: time.Hour}
	period := time.Now().Truncate(time.Hour)

	for _, tc := range []struct {
		name   string
		r      *Retention
		period time.Time
		want   bool
	}{
		{"first worker", a, period, true},
		{"second worker, same period", b, period, false},
		{"first worker again", a, period, false},
	} {
		got, err := tc.r.EnqueuePeriod(context.Background(), tc.period)
		if err != nil || got != tc.want {
			t.Fatalf("%s: queued %v (err %v), want %v", tc.name, got, err, tc.want)
		}
	}

	p := NewPool(e.redis, ServerConfig{Concurrency: 1}, e.handler, zap.NewNop())
	p.Handle(TypeRetention, a)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Shutdown)
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := e.queue.inspector.GetTaskInfo(QueueEvents, RetentionTaskID(period))
		if err == nil && info.State == asynq.TaskStateCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retention task not completed within 20s: %+v, %v", info, err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	for _, id := range ids {
		if _, err := e.store.GetExecutionByID(context.Background(), id); !errors.Is(err,
			store.ErrNotFound) {
			t.Errorf("execution %d after retention: got error %v, want not found", id, err)
		}
	}
	if got, err := b.EnqueuePeriod(context.Background(), period); err != nil || got {
		t.Errorf("period already run: queued %v (err %v), want false", got, err)
	}
	if got, err := b.EnqueuePeriod(context.Background(), period.Add(time.Hour)); err != nil ||
		!got {
		t.Errorf("next period: queued %v (err %v), want true", got, err)
	}
}

// TestRetentionKeepsRecent: nothing younger than Age is deleted.
func TestRetentionKeepsRecent(t *testing.T) {
	e := newPoolEnv(t)
	x := e.execution(e.webhook("new", "http://127.0.0.1:9/"), "{}", false)
	r := &Retention{Store: e.store, Enqueuer: e.queue, Log: zap.NewNop(), Age: time.Hour}
	execs, keys, err := r.Run(context.Background())
	if err != nil || execs != 0 || keys != 0 {
		t.Fatalf("run: deleted %d executions, %d keys (err %v), want none", execs, keys, err)
	}
	if _, err := e.store.GetExecutionByID(context.Background(), x.ID); err != nil {
		t.Errorf("recent execution: %v", err)
	}
}

// TestFailFast: once Redis failed, enqueues fail at once for the cooldown,
// then try Redis again.
func TestFailFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	q := NewEnqueuer(asynq.RedisClientOpt{Addr: addr, DialTimeout: 200 * time.Millisecond}, 5, 30)
	t.Cleanup(func() { q.Close() })
	clock := time.Now()
	f := NewFailFast(q, time.Second)
	f.now = func() time.Time { return clock }
	x := store.Execution{ID: 1, WebhookID: 1}

	for _, tc := range []struct {
		name     string
		advance  time.Duration
		wantDown bool
	}{
		{"first try reaches for Redis", 0, false},
		{"within the cooldown", 500 * time.Millisecond, true},
		{"after the cooldown", time.Second, false},
	} {
		clock = clock.Add(tc.advance)
		err := f.Enqueue(context.Background(), x, Payload{})
		if err == nil {
			t.Fatalf("%s: got no error from a Redis that is down", tc.name)
		}
		if got := errors.Is(err, ErrQueueDown); got != tc.wantDown {
			t.Errorf("%s: got error %v; ErrQueueDown %v, want %v", tc.name, err, got,
				tc.wantDown)
		}
	}
}

func TestStoreBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{0: 2 * time.Second, 1: 4 * time.Second,
		3: 16 * time.Second, 4: 30 * time.Second, 25: 30 * time.Second} {
		if got := storeBackoff(n); got != want {
			t.Errorf("storeBackoff(%d) = %s, want %s", n, got, want)
		}
	}
	err := &retryIn{time.Second, fmt.Errorf("claim: %w", store.ErrUnavailable)}
	if got := RetryDelay(3, err, nil); got != 16*time.Second {
		t.Errorf("RetryDelay of an unreachable store after 3 retries: got %s, want 16s", got)
	}
	if got := RetryDelay(3, context.Canceled, nil); got != handBackDelay {
		t.Errorf("RetryDelay of a hand-back: got %s, want %s", got, handBackDelay)
	}
}
