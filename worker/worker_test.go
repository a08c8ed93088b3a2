package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
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

// env is a running worker on the test's Redis and database.
type env struct {
	t       *testing.T
	store   store.Store
	queue   *Enqueuer
	handler *Handler
	reg     store.Registry
}

func newEnv(t *testing.T, cfg HandlerConfig, startServer bool) *env {
	t.Helper()
	ctx := context.Background()
	s, err := storeopen.Open(ctx, testenv.DatabaseURL(t), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	redis, err := asynq.ParseRedisURI(testenv.Redis(t))
	if err != nil {
		t.Fatal(err)
	}

	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	client := delivery.NewClient(delivery.Config{Timeout: 2 * time.Second, AllowLoopback: true})
	h := NewHandler(s, client, 2*time.Second, log, cfg)
	q := NewEnqueuer(redis, h.cfg.MaxAttempts, 10)
	t.Cleanup(func() { q.Close() })
	if startServer {
		srv := NewServer(redis, ServerConfig{Concurrency: 4}, log)
		if err := srv.Start(Mux(h)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
	}

	reg := store.Registry{Scope: store.Scope{Account: "acct"}, Identifier: "reg"}
	if err := s.CreateRegistry(ctx, &reg); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, store: s, queue: q, handler: h, reg: reg}
}

// webhook creates a webhook pointing at url.
func (e *env) webhook(id, url string) store.Webhook {
	e.t.Helper()
	w := store.Webhook{RegistryID: e.reg.ID, Identifier: id, Name: id, URL: url, Enabled: true}
	if err := e.store.CreateWebhook(context.Background(), &w); err != nil {
		e.t.Fatal(err)
	}
	return w
}

// execution stores a pending execution of w and, with enqueue, queues it.
func (e *env) execution(w store.Webhook, body string, enqueue bool) store.Execution {
	e.t.Helper()
	x := &store.Execution{WebhookID: w.ID, RegistryID: e.reg.ID,
		TriggerType: store.TriggerArtifactCreation, RequestURL: w.URL, RequestBody: body}
	if err := e.store.CreateExecutions(context.Background(), e.reg.ID, nil,
		[]*store.Execution{x}); err != nil {
		e.t.Fatal(err)
	}
	if enqueue {
		if err := e.queue.Enqueue(context.Background(), *x, Payload{}); err != nil {
			e.t.Fatal(err)
		}
	}
	return *x
}

// waitFinal waits until the execution is final.
func (e *env) waitFinal(id int64) store.Execution {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		x, err := e.store.GetExecutionByID(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		if x.State == store.StateFinal {
			return x
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("execution %d not final within 20s: %+v", id, x)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// scripted answers each request with the next status of its script, then
// with the last one.
func scripted(t *testing.T, statuses ...int) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		w.WriteHeader(statuses[min(i, len(statuses)-1)])
		fmt.Fprintf(w, "answer %d", i+1)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestDeliveryOutcomes(t *testing.T) {
	e := newEnv(t, HandlerConfig{MaxAttempts: 3, RetryBase: 50 * time.Millisecond}, true)
	for _, tc := range []struct {
		name         string
		statuses     []int
		wantResult   store.Result
		wantAttempts int
	}{
		{"success", []int{200}, store.ResultSuccess, 1},
		{"retried then success", []int{503, 429, 200}, store.ResultSuccess, 3},
		{"fatal at once", []int{404}, store.ResultFatalError, 1},
		{"retries run out", []int{500}, store.ResultRetriableError, 3},
		{"retriable then fatal", []int{408, 501}, store.ResultFatalError, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, hits := scripted(t, tc.statuses...)
			w := e.webhook("h-"+fmt.Sprint(time.Now().UnixNano()), srv.URL)
			x := e.execution(w, `{"n": 1, "text":"héllo"}`, true)

			got := e.waitFinal(x.ID)
			if got.Result != tc.wantResult || got.Attempts != tc.wantAttempts {
				t.Fatalf("result %s after %d attempts, want %s after %d",
					got.Result, got.Attempts, tc.wantResult, tc.wantAttempts)
			}
			if int(hits.Load()) != tc.wantAttempts {
				t.Errorf("receiver hit %d times, want %d", hits.Load(), tc.wantAttempts)
			}
			if got.ResponseBody != fmt.Sprintf("answer %d", tc.wantAttempts) {
				t.Errorf("execution shows response %q, want the latest attempt's", got.ResponseBody)
			}
			attempts, err := e.store.ListAttempts(context.Background(), x.ID)
			if err != nil || len(attempts) != tc.wantAttempts {
				t.Fatalf("%d attempt rows (err %v), want %d", len(attempts), err, tc.wantAttempts)
			}
			for i, a := range attempts {
				want := tc.statuses[min(i, len(tc.statuses)-1)]
				if a.N != i+1 || a.StatusCode != want {
					t.Errorf("attempt %d: n=%d status=%d, want n=%d status=%d",
						i, a.N, a.StatusCode, i+1, want)
				}
			}
		})
	}
}

func TestPendingThenFinal(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
	}))
	defer srv.Close()
	e := newEnv(t, HandlerConfig{}, true)
	x := e.execution(e.webhook("slow", srv.URL), "{}", true)

	<-arrived
	mid, err := e.store.GetExecutionByID(context.Background(), x.ID)
	if err != nil {
		t.Fatal(err)
	}
	if mid.State != store.StatePending || mid.Result != "" || mid.ClaimedUntil.IsZero() {
		t.Errorf("during delivery: state %s result %q claimed %v; want pending, no result, claimed",
			mid.State, mid.Result, mid.ClaimedUntil)
	}
	close(release)
	if got := e.waitFinal(x.ID); got.Result != store.ResultSuccess || !got.ClaimedUntil.IsZero() {
		t.Errorf("after delivery: %s, claimed %v", got.Result, got.ClaimedUntil)
	}
}

// TestFinalNeverDeliveredAgain replays the task of a finished execution.
func TestFinalNeverDeliveredAgain(t *testing.T) {
	srv, hits := scripted(t, 200)
	e := newEnv(t, HandlerConfig{}, false)
	x := e.execution(e.webhook("once", srv.URL), "{}", false)
	task := asynq.NewTask(TypeDeliver, mustJSON(t, Payload{ExecutionID: x.ID}))

	for i := 0; i < 3; i++ {
		if err := e.handler.ProcessTask(context.Background(), task); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	if hits.Load() != 1 {
		t.Fatalf("receiver hit %d times, want 1", hits.Load())
	}
}

// TestLeasedExecutionWaits: a task whose execution another worker holds is
// retried after the lease, without delivering.
func TestLeasedExecutionWaits(t *testing.T) {
	srv, hits := scripted(t, 200)
	e := newEnv(t, HandlerConfig{}, false)
	x := e.execution(e.webhook("leased", srv.URL), "{}", false)
	now := time.Now()
	if _, err := e.store.ClaimExecution(context.Background(), x.ID, now, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	err := e.handler.ProcessTask(context.Background(),
		asynq.NewTask(TypeDeliver, mustJSON(t, Payload{ExecutionID: x.ID})))
	if err == nil || hits.Load() != 0 {
		t.Fatalf("err %v, hits %d: want a retry error and no delivery", err, hits.Load())
	}
	if d := RetryDelay(1, err, nil); d < 50*time.Second {
		t.Errorf("retry in %s, want about the lease's remaining minute", d)
	}
}

func TestSweeperQueuesLostExecutions(t *testing.T) {
	srv, hits := scripted(t, 200)
	e := newEnv(t, HandlerConfig{}, true)
	x := e.execution(e.webhook("lost", srv.URL), "{}", false)

	sw := &Sweeper{Store: e.store, Enqueuer: e.queue, Log: zap.NewNop(), Grace: time.Nanosecond}
	n, err := sw.Sweep(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("sweep enqueued %d (err %v), want 1", n, err)
	}
	if got := e.waitFinal(x.ID); got.Result != store.ResultSuccess || hits.Load() != 1 {
		t.Fatalf("swept execution: %s, %d hits", got.Result, hits.Load())
	}
	if n, err := sw.Sweep(context.Background()); err != nil || n != 0 {
		t.Fatalf("second sweep enqueued %d (err %v), want 0", n, err)
	}
}

// TestEnqueueReplacesArchivedTask: an archived task of the same id must not
// keep a pending execution from being queued again.
func TestEnqueueReplacesArchivedTask(t *testing.T) {
	srv, hits := scripted(t, 200)
	e := newEnv(t, HandlerConfig{}, false)
	x := e.execution(e.webhook("arch", srv.URL), "{}", true)

	insp := e.queue.inspector
	if err := insp.ArchiveTask(QueueEvents, TaskID(x.ID)); err != nil {
		t.Fatal(err)
	}
	if err := e.queue.Enqueue(context.Background(), x, Payload{}); err != nil {
		t.Fatal(err)
	}
	info, err := insp.GetTaskInfo(QueueEvents, TaskID(x.ID))
	if err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("task after re-enqueue: %+v, %v; want pending", info, err)
	}
	_ = hits
}

func TestBackoff(t *testing.T) {
	c := HandlerConfig{RetryBase: time.Second, RetryMax: 10 * time.Second}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second,
		3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 60: 10 * time.Second} {
		if got := c.Backoff(n); got != want {
			t.Errorf("Backoff(%d) = %s, want %s", n, got, want)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
