package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/rehook/rehook/internal/testenv"
	"github.com/rehook/rehook/metrics"
)

// pinger is a store whose Ping answers err.
type pinger struct{ err error }

func (p pinger) Ping(context.Context) error { return p.err }

// newServer serves an admin handler on redisURL with the given store.
func newServer(t *testing.T, redisURL string, s Pinger, m *metrics.Metrics) *httptest.Server {
	t.Helper()
	opt, err := asynq.ParseRedisURI(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Store: s, Redis: opt, Metrics: m,
		Log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), ReadyTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func TestHealthAndReadiness(t *testing.T) {
	redisURL := testenv.Redis(t)
	down := "redis://" + closedAddr(t)
	tests := []struct {
		name       string
		redis      string
		store      error
		wantHealth int
		wantReady  int
		wantChecks map[string]string
	}{
		{"all up", redisURL, nil, 200, 200,
			map[string]string{"store": "ok", "redis": "ok"}},
		{"store down", redisURL, errors.New("dial tcp 127.0.0.1:5432: connection refused"),
			200, 503, map[string]string{"store": "unreachable", "redis": "ok"}},
		{"redis on a closed port", down, nil, 200, 503,
			map[string]string{"store": "ok", "redis": "unreachable"}},
		{"both down", down, errors.New("down"), 200, 503,
			map[string]string{"store": "unreachable", "redis": "unreachable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.redis, pinger{tt.store}, nil)

			code, _, body := get(t, srv.URL+"/healthz")
			if code != tt.wantHealth {
				t.Errorf("/healthz: got %d, want %d; body %s", code, tt.wantHealth, body)
			}

			code, _, body = get(t, srv.URL+"/readyz")
			if code != tt.wantReady {
				t.Errorf("/readyz: got %d, want %d; body %s", code, tt.wantReady, body)
			}
			var got readiness
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("/readyz body %q: %v", body, err)
			}
			for check, want := range tt.wantChecks {
				if got.Checks[check] != want {
					t.Errorf("/readyz check %s: got %q, want %q", check, got.Checks[check], want)
				}
			}
			if strings.Contains(body, "refused") || strings.Contains(body, "5432") {
				t.Errorf("/readyz tells why a check failed: %s", body)
			}
		})
	}
}

// enqueue puts a task on queue with a payload like rehook's.
func enqueue(t *testing.T, redisURL, queue, id, payload string) {
	t.Helper()
	opt, err := asynq.ParseRedisURI(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	c := asynq.NewClient(opt)
	defer c.Close()
	_, err = c.Enqueue(asynq.NewTask("webhook:deliver", []byte(payload)),
		asynq.Queue(queue), asynq.TaskID(id))
	if err != nil {
		t.Fatalf("enqueue %s on %s: %v", id, queue, err)
	}
}

// TestDashboardAPI calls every read route of the dashboard's API, on the
// test's Redis (miniredis when none is given): each answers 200, and the
// queues and payloads are rehook's.
func TestDashboardAPI(t *testing.T) {
	t.Logf("backends: %s", testenv.Describe())
	redisURL := testenv.Redis(t)
	const payload = `{"execution_id":7,"webhook_id":3,"webhook":"hook1",` +
		`"registry":"acct/org/proj/reg1/+","trigger":"ARTIFACT_CREATION","attempt":1}`
	enqueue(t, redisURL, "events", "execution:7", payload)
	enqueue(t, redisURL, "retrigger", "execution:8",
		`{"execution_id":8,"webhook_id":3,"retrigger_of":7,"attempt":1}`)
	srv := newServer(t, redisURL, pinger{}, nil)

	api := srv.URL + DashboardPath + "/api"
	paths := []string{
		"/queues", "/queue_stats", "/servers", "/scheduler_entries", "/redis_info",
		"/queues/events/tasks/execution:7",
	}
	for _, q := range []string{"events", "retrigger"} {
		paths = append(paths, "/queues/"+q, "/queues/"+q+"/groups")
		for _, state := range []string{"active", "pending", "scheduled", "retry", "archived",
			"completed"} {
			paths = append(paths, "/queues/"+q+"/"+state+"_tasks")
		}
	}
	for _, p := range paths {
		code, _, body := get(t, api+p)
		if code != http.StatusOK {
			t.Errorf("GET %s: got %d, want 200; body %s", p, code, body)
		}
	}

	_, _, body := get(t, api+"/queues")
	for _, q := range []string{`"queue":"events"`, `"queue":"retrigger"`} {
		if !strings.Contains(body, q) {
			t.Errorf("/api/queues lacks %s: %s", q, body)
		}
	}
	_, _, body = get(t, api+"/queues/events/pending_tasks")
	var pending struct {
		Tasks []struct {
			ID      string `json:"id"`
			Payload string `json:"payload"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal([]byte(body), &pending); err != nil {
		t.Fatalf("pending tasks %q: %v", body, err)
	}
	if len(pending.Tasks) != 1 || pending.Tasks[0].Payload != payload {
		t.Errorf("pending tasks of events:\ngot  %+v\nwant one with payload %s", pending.Tasks,
			payload)
	}
}

// TestDashboardPageLoadsNothingElsewhere checks that the page the browser
// gets names no other host and forbids loading from one.
func TestDashboardPageLoadsNothingElsewhere(t *testing.T) {
	srv := newServer(t, testenv.Redis(t), pinger{}, nil)

	for _, path := range []string{"/monitoring/", "/monitoring/queues/events"} {
		code, header, body := get(t, srv.URL+path)
		if code != http.StatusOK || !strings.Contains(body, `<div id="root">`) {
			t.Fatalf("GET %s: got %d, want 200 and the dashboard page; body %.300s",
				path, code, body)
		}
		if strings.Contains(body, "https://") || strings.Contains(body, "http://") {
			t.Errorf("GET %s: the page links to another host: %s", path, body)
		}
		if csp := header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q, want default-src 'self'", path, csp)
		}
	}

	code, header, _ := get(t, srv.URL+"/monitoring/favicon.ico")
	if code != http.StatusOK || header.Get("Content-Security-Policy") == "" {
		t.Errorf("favicon: got %d with CSP %q, want 200 with one", code,
			header.Get("Content-Security-Policy"))
	}
	code, _, _ = get(t, srv.URL+"/monitoring")
	if code != http.StatusOK {
		t.Errorf("/monitoring (redirected): got %d, want 200", code)
	}
}

// TestRedisInfoFromConfig: with RedisInfo set, the dashboard's Redis page
// reads it instead of INFO.
func TestRedisInfoFromConfig(t *testing.T) {
	opt, err := asynq.ParseRedisURI(testenv.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Store: pinger{}, Redis: opt, Log: zap.NewNop(),
		RedisInfo: func() (string, string) {
			return "127.0.0.1:1", "# Server\r\nredis_version:embedded\r\nuptime_in_days:0\r\n"
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	code, _, body := get(t, srv.URL+"/monitoring/api/redis_info")
	var got struct {
		Address string            `json:"address"`
		Info    map[string]string `json:"info"`
	}
	_ = json.Unmarshal([]byte(body), &got)
	want := map[string]string{"redis_version": "embedded", "uptime_in_days": "0"}
	if code != 200 || got.Address != "127.0.0.1:1" || len(got.Info) != 2 ||
		got.Info["redis_version"] != want["redis_version"] ||
		got.Info["uptime_in_days"] != want["uptime_in_days"] {
		t.Errorf("redis_info: got %d %s, want 200 with address 127.0.0.1:1 and info %v",
			code, body, want)
	}
}

func TestMetricsAndProfiles(t *testing.T) {
	redisURL := testenv.Redis(t)
	m := metrics.New()
	m.RetriggerAccepted()
	srv := newServer(t, redisURL, pinger{}, m)

	tests := []struct {
		path     string
		wantCode int
		wantBody string
	}{
		{"/metrics", 200, "rehook_retriggers_accepted_total 1"},
		{"/debug/pprof/", 200, "goroutine"},
		{"/debug/pprof/cmdline", 200, ""},
		{"/", 200, "/monitoring/"},
		{"/nothing-here", 404, ""},
	}
	for _, tt := range tests {
		code, _, body := get(t, srv.URL+tt.path)
		if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
			t.Errorf("GET %s: got %d %.200q, want %d containing %q", tt.path, code, body,
				tt.wantCode, tt.wantBody)
		}
	}

	noMetrics := newServer(t, redisURL, pinger{}, nil)
	if code, _, _ := get(t, noMetrics.URL+"/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics without Metrics: got %d, want 404", code)
	}
}
