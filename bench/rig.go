package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/rehook/rehook/api"
	"github.com/rehook/rehook/delivery"
	"github.com/rehook/rehook/store"
	"github.com/rehook/rehook/store/postgres"
	"github.com/rehook/rehook/store/storeopen"
	"github.com/rehook/rehook/worker"
)

// benchScope is the account, org and project of every registry the
// benchmark makes.
var benchScope = store.Scope{Account: "bench", Org: "org", Project: "proj"}

// taskTimeoutSeconds is the asynq task timeout the rigs use, as rehook's
// serve computes it for the default 10s delivery timeout.
const taskTimeoutSeconds = 42

// discardLogger logs as rehook does in production (JSON, info), but into
// nothing: the encoding is part of rehook's cost, the terminal is not.
func discardLogger() *zap.Logger {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(io.Discard), zap.InfoLevel))
}

// rig is rehook running in this process: the API on a loopback listener,
// and, when asked, a worker delivering through asynq. With Postgres the API
// and the worker each have a store (a pool) of their own, as the api and
// worker processes do; with SQLite they share one, as rehook dev does.
type rig struct {
	b        *backends
	apiURL   string
	apiStore store.Store
	wStore   store.Store
	enqueuer *worker.Enqueuer
	server   *worker.Pool
	httpSrv  *http.Server

	// onRecorded, when set, is called with every execution whose attempt
	// the worker recorded.
	onRecorded atomic.Pointer[func(id int64)]
}

// rigConfig says what a rig runs.
type rigConfig struct {
	// worker starts an in-process worker.
	worker bool
	// concurrency is the worker's; 0 means rehook's default of 10.
	concurrency int
	// maxPending is the API's most pending executions per webhook; 0 turns
	// the check (and its query) off.
	maxPending int
}

// defaultMaxPending is REHOOK_MAX_PENDING_PER_WEBHOOK's default. Phases with
// a worker keep it; phases without one turn it off, since their pending
// executions pile up. The per-key rate limit (REHOOK_RATE_LIMIT) is off in
// every phase, as in any load test that uses one key.
const defaultMaxPending = 1000

// poolOptions are the Postgres pool settings rehook api and worker run
// with by default (REHOOK_DB_MAX_CONNS, REHOOK_DB_STATEMENT_TIMEOUT).
var poolOptions = postgres.Options{MaxConns: 10, StatementTimeout: 30 * time.Second}

func startRig(ctx context.Context, b *backends, cfg rigConfig) (*rig, error) {
	r := &rig{b: b}
	log := discardLogger()

	var err error
	r.apiStore, err = storeopen.OpenWith(ctx, b.dbURL, false, poolOptions)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	r.wStore = r.apiStore
	if b.postgres && cfg.worker {
		r.wStore, err = storeopen.OpenWith(ctx, b.dbURL, false, poolOptions)
		if err != nil {
			r.apiStore.Close()
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	r.enqueuer = worker.NewEnqueuer(b.redisOpt, 5, taskTimeoutSeconds)

	if cfg.worker {
		client := delivery.NewClient(delivery.Config{AllowLoopback: true,
			UserAgent: "rehook/bench"})
		rec := recordingStore{Store: r.wStore, r: r}
		h := worker.NewHandler(rec, client, 10*time.Second, log, worker.HandlerConfig{
			UserAgent: "rehook/bench"})
		r.server = worker.NewPool(b.redisOpt, worker.ServerConfig{
			Concurrency: cfg.concurrency}, h, log)
		if err := r.server.Start(); err != nil {
			r.close()
			return nil, fmt.Errorf("start worker: %w", err)
		}
	}

	gin.SetMode(gin.ReleaseMode)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.close()
		return nil, err
	}
	r.httpSrv = &http.Server{
		Handler: api.New(r.apiStore, r.enqueuer, log,
			api.Config{MaxPendingPerWebhook: cfg.maxPending}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = r.httpSrv.Serve(ln) }()
	r.apiURL = "http://" + ln.Addr().String()
	return r, nil
}

func (r *rig) close() {
	if r.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = r.httpSrv.Shutdown(ctx)
		cancel()
	}
	if r.server != nil {
		r.server.Shutdown()
	}
	_ = r.enqueuer.Close()
	if r.wStore != r.apiStore {
		_ = r.wStore.Close()
	}
	_ = r.apiStore.Close()
}

// recordingStore tells the rig about every attempt the worker records.
type recordingStore struct {
	store.Store
	r *rig
}

func (s recordingStore) RecordAttempt(ctx context.Context, id int64,
	rec store.AttemptRecord) error {
	err := s.Store.RecordAttempt(ctx, id, rec)
	if err == nil {
		if f := s.r.onRecorded.Load(); f != nil {
			(*f)(id)
		}
	}
	return err
}

// fixture is a webhook with one final execution to retrigger.
type fixture struct {
	registry store.Registry
	hook     store.Webhook
	execID   int64
	key      string
}

// retriggerPath is the API path that retriggers the fixture's execution.
func (f fixture) retriggerPath() string {
	return f.executionsPath() + "/" + strconv.FormatInt(f.execID, 10) + "/retrigger"
}

func (f fixture) executionsPath() string {
	return api.Prefix + "/registry/" + benchScope.String() + "/" + f.registry.Identifier +
		"/+/webhooks/" + f.hook.Identifier + "/executions"
}

// sampleBody is the stored body every benchmark execution delivers: an
// artifact event of a usual size.
const sampleBody = `{"trigger":"ARTIFACT_CREATION","registry":{"identifier":"bench",` +
	`"packageType":"DOCKER","url":"https://registry.example/bench"},"artifact":{"type":` +
	`"DOCKER","name":"team/app","version":"1.4.2","tag":"1.4.2","digest":"sha256:` +
	`9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","url":` +
	`"https://registry.example/bench/team/app:1.4.2"},"principal":{"userName":"alice",` +
	`"email":"alice@example.com"}}`

// newFixture makes a registry named name with a webhook to target and an
// admin key for it, and one delivered (final) execution.
func newFixture(ctx context.Context, s store.Store, name, target string) (fixture, error) {
	f := fixture{registry: store.Registry{Scope: benchScope, Identifier: name,
		PackageType: "DOCKER"}}
	if err := s.CreateRegistry(ctx, &f.registry); err != nil {
		return f, fmt.Errorf("create registry: %w", err)
	}

	f.hook = store.Webhook{RegistryID: f.registry.ID, Identifier: "hook", Name: "bench",
		URL: target, Enabled: true,
		Triggers: []store.Trigger{store.TriggerArtifactCreation}}
	if err := s.CreateWebhook(ctx, &f.hook); err != nil {
		return f, fmt.Errorf("create webhook: %w", err)
	}

	plain, k, err := api.NewAPIKey(benchScope, store.RoleAdmin)
	if err != nil {
		return f, err
	}
	if err := s.CreateAPIKey(ctx, &k); err != nil {
		return f, fmt.Errorf("create api key: %w", err)
	}
	f.key = plain

	e := store.Execution{WebhookID: f.hook.ID, TriggerType: store.TriggerArtifactCreation,
		RequestURL: target, RequestBody: sampleBody}
	if err := s.CreateExecutions(ctx, f.registry.ID, nil, []*store.Execution{&e}); err != nil {
		return f, fmt.Errorf("create execution: %w", err)
	}
	now := time.Now()
	if _, err := s.ClaimExecution(ctx, e.ID, now, now.Add(time.Minute)); err != nil {
		return f, fmt.Errorf("claim execution: %w", err)
	}
	err = s.RecordAttempt(ctx, e.ID, store.AttemptRecord{
		Attempt: store.Attempt{ExecutionID: e.ID, N: 1, Started: now,
			Duration: time.Millisecond, Result: store.ResultSuccess, StatusCode: 200},
		Final: true, RequestURL: target, ResponseStatusCode: 200, ResponseStatus: "200 OK"})
	if err != nil {
		return f, fmt.Errorf("record attempt: %w", err)
	}
	f.execID = e.ID
	return f, nil
}

// dropFixture deletes the fixture's registry with everything in it, so
// that what a phase left pending is not swept into the next phase.
func dropFixture(s store.Store, f fixture) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return s.DeleteRegistry(ctx, f.registry.ID)
}

// caller calls rehook's API over keep-alive connections.
type caller struct {
	http *http.Client
	base string
	key  string
}

func newCaller(base, key string, conns int) *caller {
	t := &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &caller{http: &http.Client{Transport: t, Timeout: 30 * time.Second},
		base: base, key: key}
}

func (c *caller) close() { c.http.CloseIdleConnections() }

// get calls path and returns the body of a 200; anything else is an error.
func (c *caller) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("x-api-key", c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d: %.200s", path, resp.StatusCode, body)
	}
	return body, nil
}

// retrigger retriggers the fixture's execution and returns the new
// execution's id.
func (c *caller) retrigger(ctx context.Context, f fixture) (int64, error) {
	body, err := c.get(ctx, f.retriggerPath())
	if err != nil {
		return 0, err
	}
	var out struct {
		Data struct {
			ID int64 `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Data.ID == 0 {
		return 0, fmt.Errorf("retrigger: unexpected answer %.200s", body)
	}
	return out.Data.ID, nil
}

// receiver is the loopback webhook endpoint deliveries go to. What it does
// with a request is set per phase.
type receiver struct {
	url     string
	srv     *http.Server
	handler atomic.Pointer[http.HandlerFunc]
	// conns counts the connections deliveries opened.
	conns atomic.Int64
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{url: "http://" + ln.Addr().String() + "/hook"}
	r.set(answerOK)
	r.srv = &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			(*r.handler.Load())(w, req)
		}),
		ConnState: func(_ net.Conn, state http.ConnState) {
			if state == http.StateNew {
				r.conns.Add(1)
			}
		},
	}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) set(h http.HandlerFunc) { r.handler.Store(&h) }

func (r *receiver) close() { _ = r.srv.Close() }

// answerOK reads the delivery and answers 200 at once.
func answerOK(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body)
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "ok")
}

// counter counts events and closes done when want of them have come.
type counter struct {
	mu   sync.Mutex
	n    int
	want int
	done chan struct{}
}

func newCounter(want int) *counter {
	return &counter{want: want, done: make(chan struct{})}
}

func (c *counter) add() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if c.n == c.want {
		close(c.done)
	}
}

func (c *counter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// wait waits for the count, ctx or timeout, whichever is first.
func (c *counter) wait(ctx context.Context, timeout time.Duration, what string) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("%s: %d of %d within %s", what, c.count(), c.want, timeout)
	}
}
