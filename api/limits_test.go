package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/rehook/rehook/store"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// serverWith serves st's store and queue with cfg and the clock.
func serverWith(t *testing.T, st *setup, cfg Config, clock *fakeClock) *httptest.Server {
	t.Helper()
	a := New(st.store, st.queue, zap.NewNop(), cfg)
	if clock != nil {
		a.now = clock.Now
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return srv
}

func TestRateLimitPerAPIKey(t *testing.T) {
	st := newSetup(t)
	st.finished()
	clock := &fakeClock{now: time.Now()}
	srv := serverWith(t, st, Config{RateLimit: 2, RateBurst: 3}, clock)
	get := func(key string) response {
		return st.callWith(srv, key, "GET", ref, "", nil)
	}

	for i := range 3 {
		if r := get("admin"); r.status != http.StatusOK {
			t.Fatalf("request %d of the burst: got %d %s, want 200", i+1, r.status, r.raw)
		}
	}
	r := get("admin")
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("request past the burst: got %d %s, want 429", r.status, r.raw)
	}
	checkErrorShape(t, r)
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After: got %q, want 1 (a token comes every 0.5s)", got)
	}

	if r := get("view"); r.status != http.StatusOK {
		t.Errorf("another key: got %d %s, want 200 (buckets are per key)", r.status, r.raw)
	}

	clock.Add(500 * time.Millisecond)
	if r := get("admin"); r.status != http.StatusOK {
		t.Errorf("after 0.5s: got %d %s, want 200 (one token back)", r.status, r.raw)
	}
	if r := get("admin"); r.status != http.StatusTooManyRequests {
		t.Errorf("second request after 0.5s: got %d, want 429", r.status)
	}

	plain := serverWith(t, st, Config{}, clock)
	for i := range 20 {
		if r := st.callWith(plain, "admin", "GET", ref, "", nil); r.status != http.StatusOK {
			t.Fatalf("request %d without a limit: got %d, want 200", i+1, r.status)
		}
	}
}

func TestKeyLimiterDropsIdleBuckets(t *testing.T) {
	l := newKeyLimiter(10, 5)
	start := time.Now()
	for key := range int64(1000) {
		if wait := l.take(key, start); wait != 0 {
			t.Fatalf("first request of key %d: got wait %s, want none", key, wait)
		}
	}
	if got := l.size(); got != 1000 {
		t.Fatalf("buckets after 1000 keys: got %d, want 1000", got)
	}

	// One key drains its bucket; it is not idle, so it is kept.
	later := start.Add(l.idle)
	for range 5 {
		l.take(1, later)
	}
	if got := l.size(); got != 1 {
		t.Errorf("buckets after the idle time: got %d, want 1 (idle ones dropped)", got)
	}
	if wait := l.take(1, later); wait <= 0 {
		t.Errorf("key 1 past its burst: got no wait; a busy bucket must be kept")
	}
}

func TestPendingLimitPerWebhook(t *testing.T) {
	st := newSetup(t)
	hook, exec := st.finished()
	srv := serverWith(t, st, Config{MaxPendingPerWebhook: 2}, nil)
	retrigger := fmt.Sprintf("%s/webhooks/%s/executions/%d/retrigger", ref, hook.Identifier,
		exec.ID)
	bulk := ref + "/webhooks/" + hook.Identifier + "/executions/retrigger"

	replay := http.Header{"Idempotency-Key": {"deploy-1"}}
	var created []int64
	for i := range 2 {
		r := st.callWith(srv, "edit", "GET", retrigger, "", replay)
		replay = nil
		if r.status != http.StatusOK {
			t.Fatalf("retrigger %d: got %d %s, want 200", i+1, r.status, r.raw)
		}
		id, _ := data(t, r.body)["id"].(float64)
		created = append(created, int64(id))
	}

	for _, tt := range []struct{ name, method, path, body string }{
		{"retrigger", "GET", retrigger, ""},
		{"bulk retrigger", "POST", bulk, "{}"},
	} {
		r := st.callWith(srv, "edit", tt.method, tt.path, tt.body, nil)
		if r.status != http.StatusTooManyRequests {
			t.Errorf("%s at the limit: got %d %s, want 429", tt.name, r.status, r.raw)
			continue
		}
		checkErrorShape(t, r)
		if got := r.header.Get("Retry-After"); got != strconv.Itoa(pendingRetryAfter) {
			t.Errorf("%s: Retry-After got %q, want %d", tt.name, got, pendingRetryAfter)
		}
	}
	if r := st.callWith(srv, "edit", "POST", bulk, `{"dryRun":true}`, nil); r.status != 200 {
		t.Errorf("dry run at the limit: got %d %s, want 200 (it creates nothing)", r.status, r.raw)
	}
	t.Run("replay at the limit", func(t *testing.T) {
		r := st.callWith(srv, "edit", "GET", retrigger, "",
			http.Header{"Idempotency-Key": {"deploy-1"}})
		if id, _ := data(t, r.body)["id"].(float64); r.status != http.StatusOK ||
			int64(id) != created[0] || r.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay at the limit: got %d %s, want 200 with execution %d, replayed "+
				"(it creates nothing)", r.status, r.raw, created[0])
		}
	})

	st.finish(created[0])
	if r := st.callWith(srv, "edit", "GET", retrigger, "", nil); r.status != http.StatusOK {
		t.Errorf("retrigger once one was delivered: got %d %s, want 200", r.status, r.raw)
	}
}

// TestBulkRetriggerFillsTheRoomLeft: a bulk retrigger creates no more
// executions than the webhook has room for.
func TestBulkRetriggerFillsTheRoomLeft(t *testing.T) {
	st := newSetup(t)
	hook, _ := st.finished()
	st.executions(hook, 5, []store.Result{store.ResultFatalError},
		[]store.Trigger{store.TriggerArtifactCreation})
	st.executions(hook, 1, []store.Result{""}, []store.Trigger{store.TriggerArtifactCreation})
	srv := serverWith(t, st, Config{MaxPendingPerWebhook: 4}, nil)

	r := st.callWith(srv, "edit", "POST", ref+"/webhooks/hook1/executions/retrigger", "{}", nil)
	if r.status != http.StatusOK {
		t.Fatalf("bulk retrigger: got %d %s, want 200", r.status, r.raw)
	}
	if got, _ := data(t, r.body)["count"].(float64); got != 3 {
		t.Errorf("bulk retrigger with 1 of 4 pending: created %v, want 3", got)
	}
	n, err := st.store.CountPendingForWebhook(context.Background(), hook.ID)
	if err != nil || n != 4 {
		t.Errorf("pending after the bulk retrigger: got %d, %v; want 4", n, err)
	}
}
