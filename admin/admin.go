// Package admin is the handler of rehook's admin listener, which every
// process (api, worker, dev) serves apart from the API: the asynqmon
// dashboard, Prometheus metrics, pprof, and the health and readiness checks.
// It has no authentication: it belongs on loopback or a private network.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/rehook/rehook/metrics"
)

// DashboardPath is where the asynqmon dashboard is mounted.
const DashboardPath = "/monitoring"

// Pinger is what readiness asks of the store.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config is what the admin handler serves.
type Config struct {
	// Store is pinged by /readyz. Required.
	Store Pinger
	// Redis is the queue's Redis: the dashboard reads it and /readyz pings
	// it. Required.
	Redis asynq.RedisConnOpt
	// Metrics is served at /metrics. Default nil: /metrics answers 404.
	Metrics *metrics.Metrics
	// Log receives readiness changes and metrics collection errors.
	// Required.
	Log *zap.Logger
	// ReadyTimeout bounds each readiness check. Default 2s.
	ReadyTimeout time.Duration
	// RedisInfo, when set, answers the dashboard's Redis page in place of
	// the INFO command, with the Redis's address and INFO-formatted text.
	// The embedded Redis of rehook dev sets it: it answers INFO only in
	// part. Default nil: the dashboard asks Redis.
	RedisInfo func() (addr, info string)
}

// Handler serves the admin routes. Close it to release its Redis
// connections.
type Handler struct {
	mux       *http.ServeMux
	cfg       Config
	redis     redis.UniversalClient
	dashboard *asynqmon.HTTPHandler
	// ready is 1 while the last readiness check passed, 0 after a failed
	// one, -1 before the first; changes are logged.
	ready atomic.Int32
}

// New builds the admin handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Store == nil || cfg.Redis == nil || cfg.Log == nil {
		return nil, errors.New("admin: Store, Redis and Log are required")
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 2 * time.Second
	}
	rc, ok := cfg.Redis.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, fmt.Errorf("admin: unsupported redis connection %T", cfg.Redis)
	}
	h := &Handler{
		mux:   http.NewServeMux(),
		cfg:   cfg,
		redis: rc,
		dashboard: asynqmon.New(asynqmon.Options{
			RootPath:     DashboardPath,
			RedisConnOpt: cfg.Redis,
		}),
	}
	h.ready.Store(-1)

	h.mux.HandleFunc("GET /{$}", h.index)
	h.mux.HandleFunc("GET /healthz", h.healthz)
	h.mux.HandleFunc("GET /readyz", h.readyz)
	if cfg.Metrics != nil {
		h.mux.Handle("GET /metrics", cfg.Metrics.Handler(func(msg string, err error) {
			cfg.Log.Warn(msg, zap.Error(err))
		}))
	}
	h.mux.HandleFunc("/debug/pprof/", pprof.Index)
	h.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	h.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	h.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	h.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	if cfg.RedisInfo != nil {
		h.mux.HandleFunc("GET "+DashboardPath+"/api/redis_info", h.redisInfo)
	}
	h.mux.Handle(DashboardPath+"/", selfContained(h.dashboard))
	h.mux.Handle(DashboardPath, http.RedirectHandler(DashboardPath+"/", http.StatusFound))
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Close releases the Redis connections of the dashboard and the checks.
func (h *Handler) Close() error {
	return errors.Join(h.dashboard.Close(), h.redis.Close())
}

const indexText = `rehook admin
  /monitoring/     asynqmon dashboard of the delivery queues
  /metrics         Prometheus metrics
  /healthz         200 while the process runs
  /readyz          200 when the store and Redis answer, else 503
  /debug/pprof/    Go profiles
`

func (h *Handler) index(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(indexText))
}

// healthz answers while the process is up: it checks nothing else, so a
// liveness probe never restarts a process for a dependency's outage.
func (h *Handler) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readiness is /readyz's answer.
type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// readyz checks that the store and Redis answer, each within ReadyTimeout,
// at the same time. It answers 200, or 503 naming the check that failed;
// why it failed is logged, not answered.
func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	checks := map[string]func(context.Context) error{
		"store": h.cfg.Store.Ping,
		"redis": func(ctx context.Context) error { return h.redis.Ping(ctx).Err() },
	}

	var mu sync.Mutex
	var wg sync.WaitGroup
	out := readiness{Status: "ok", Checks: map[string]string{}}
	var failed []zap.Field
	for name, check := range checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.Context(), h.cfg.ReadyTimeout)
			defer cancel()
			err := check(ctx)

			mu.Lock()
			defer mu.Unlock()
			out.Checks[name] = "ok"
			if err != nil {
				out.Status = "unavailable"
				out.Checks[name] = "unreachable"
				failed = append(failed, zap.NamedError(name+"_error", err))
			}
		})
	}
	wg.Wait()

	if len(failed) > 0 {
		if h.ready.Swap(0) != 0 {
			h.cfg.Log.Warn("not ready", failed...)
		}
		writeJSON(w, http.StatusServiceUnavailable, out)
		return
	}
	if h.ready.Swap(1) == 0 {
		h.cfg.Log.Info("ready again")
	}
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
