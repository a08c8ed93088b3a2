package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gin-gonic/gin"
	"github.com/hibiken/asynq"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/rehook/rehook/admin"
	"github.com/rehook/rehook/api"
	"github.com/rehook/rehook/delivery"
	"github.com/rehook/rehook/metrics"
	"github.com/rehook/rehook/store"
	"github.com/rehook/rehook/store/sealed"
	"github.com/rehook/rehook/worker"
)

// taskTimeout bounds one run of the delivery handler: the attempt, its
// recording, and a margin, in whole seconds as asynq requires.
func (c config) taskTimeoutSeconds() int {
	return int((c.DeliveryTimeout+30*time.Second+time.Second-1)/time.Second) + 1
}

func newLogger(cfg config) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("REHOOK_LOG_LEVEL=%q: %w", cfg.LogLevel, err)
	}
	zc := zap.NewProductionConfig()
	if cfg.LogFormat == "console" {
		zc = zap.NewDevelopmentConfig()
		zc.DisableStacktrace = true
	}
	zc.Level = zap.NewAtomicLevelAt(level)
	zc.DisableCaller = true
	// Every request and every delivery attempt is logged once: zap's
	// production sampling would drop all but the first 100 of a message per
	// second.
	zc.Sampling = nil
	return zc.Build()
}

// components are what a process runs; each is nil when not in this process.
type components struct {
	log      *zap.Logger
	store    store.Store
	redis    asynq.RedisConnOpt
	enqueuer *worker.Enqueuer
	// metrics are served on the admin listener; inspector reads asynq's
	// queue metrics for them.
	metrics   *metrics.Metrics
	inspector *asynq.Inspector
	// redisInfo describes the embedded Redis for the dashboard; nil for a
	// real one.
	redisInfo func() (addr, info string)
}

// redisOpt is REHOOK_REDIS_URL as asynq's connection options (see
// parseRedisURL); every Redis connection of the process is made from it.
func (cfg config) redisOpt() (asynq.RedisConnOpt, error) {
	opt, err := parseRedisURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("REHOOK_REDIS_URL: %w", err)
	}
	return opt, nil
}

func runAPI(ctx context.Context, cfg config) error {
	if cfg.DatabaseURL == "" || cfg.RedisURL == "" {
		return errors.New("rehook api needs REHOOK_DATABASE_URL and REHOOK_REDIS_URL " +
			"(or run rehook dev for the embedded default)")
	}
	c, err := setup(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer c.close()
	return serve(ctx, cfg, c, true, false, nil)
}

func runWorker(ctx context.Context, cfg config) error {
	if cfg.DatabaseURL == "" || cfg.RedisURL == "" {
		return errors.New("rehook worker needs REHOOK_DATABASE_URL and REHOOK_REDIS_URL " +
			"(or run rehook dev for the embedded default)")
	}
	c, err := setup(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer c.close()
	return serve(ctx, cfg, c, false, true, nil)
}

// runDev runs everything in one process on the embedded default: a SQLite
// file, an in-process Redis unless REHOOK_REDIS_URL is set, and an admin key.
func runDev(ctx context.Context, cfg config, stdout io.Writer) error {
	var redisInfo func() (string, string)
	if cfg.RedisURL == "" {
		mr, err := startEmbeddedRedis(ctx)
		if err != nil {
			return err
		}
		defer mr.Close()
		cfg.RedisURL = "redis://" + mr.Addr()
		redisInfo = embeddedRedisInfo(mr, time.Now())
	}
	c, err := setup(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer c.close()
	c.redisInfo = redisInfo

	key, err := devAPIKey(ctx, cfg, c.store)
	if err != nil {
		return err
	}

	banner := func(addr, adminAddr string) {
		fmt.Fprintf(stdout, "rehook %s (dev) listening on http://%s%s\n", version, addr, api.Prefix)
		fmt.Fprintf(stdout, "  admin:    http://%s (dashboard %s/, /metrics, /healthz, "+
			"/readyz)\n", adminAddr, admin.DashboardPath)
		fmt.Fprintf(stdout, "  database: %s\n", redactURL(cfg.databaseURL()))
		fmt.Fprintf(stdout, "  redis:    %s\n", redactURL(cfg.RedisURL))
		if cfg.AllowLoopback {
			fmt.Fprintln(stdout, "  deliveries to loopback addresses are allowed (dev)")
		}
		fmt.Fprintln(stdout, "  "+cfg.secretsNote())
		fmt.Fprintf(stdout, "  admin API key (all accounts): %s\n", key)
	}
	return serve(ctx, cfg, c, true, true, banner)
}

// devKeyFile holds the dev admin key under REHOOK_DATA_DIR, so that every
// start of rehook dev on the same data uses the same key.
const devKeyFile = "dev-api-key"

// devAPIKey is the admin key of rehook dev: REHOOK_DEV_API_KEY when set,
// else the key kept in the data directory, else a new one, kept there.
func devAPIKey(ctx context.Context, cfg config, s store.Store) (string, error) {
	if cfg.DevAPIKey != "" {
		err := api.EnsureAPIKey(ctx, s, cfg.DevAPIKey, store.Scope{}, store.RoleAdmin)
		if err != nil {
			return "", fmt.Errorf("REHOOK_DEV_API_KEY: %w", err)
		}
		return cfg.DevAPIKey, nil
	}

	path := filepath.Join(cfg.DataDir, devKeyFile)
	if b, err := os.ReadFile(path); err == nil {
		kept := strings.TrimSpace(string(b))
		err := api.EnsureAPIKey(ctx, s, kept, store.Scope{}, store.RoleAdmin)
		if err == nil {
			return kept, nil
		}
		if errors.Is(err, store.ErrUnavailable) {
			return "", fmt.Errorf("check the dev API key: %w", err)
		}
		// Revoked: make a new one.
	}

	plain, k, err := api.NewAPIKey(store.Scope{}, store.RoleAdmin)
	if err != nil {
		return "", err
	}
	if err := s.CreateAPIKey(ctx, &k); err != nil {
		return "", fmt.Errorf("store dev API key: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return "", fmt.Errorf("REHOOK_DATA_DIR: %w", err)
	}
	if err := os.WriteFile(path, []byte(plain+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep the dev API key: %w", err)
	}
	return plain, nil
}

// startEmbeddedRedis starts miniredis on a loopback port. miniredis only
// expires keys when its clock is moved, so a ticker moves it with real time.
func startEmbeddedRedis(ctx context.Context) (*miniredis.Miniredis, error) {
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("start embedded redis: %w", err)
	}
	go func() {
		const step = 250 * time.Millisecond
		t := time.NewTicker(step)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				mr.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
	return mr, nil
}

func setup(ctx context.Context, cfg config, dev bool) (*components, error) {
	keys, err := cfg.secretKeyring()
	if err != nil {
		return nil, err
	}
	log, err := newLogger(cfg)
	if err != nil {
		return nil, err
	}
	redis, err := cfg.redisOpt()
	if err != nil {
		return nil, err
	}
	s, err := openStore(ctx, cfg, dev)
	if err != nil {
		return nil, err
	}
	logDatabaseSettings(ctx, s, log)
	s = sealed.Wrap(s, keys)

	m := metrics.New()
	m.WatchPending(s, 2*time.Second)
	inspector := asynq.NewInspector(redis)
	m.WatchQueues(inspector)
	return &components{
		log:       log,
		store:     s,
		redis:     redis,
		enqueuer:  worker.NewEnqueuer(redis, cfg.MaxAttempts, cfg.taskTimeoutSeconds()),
		metrics:   m,
		inspector: inspector,
	}, nil
}

func (c *components) close() {
	_ = c.inspector.Close()
	_ = c.enqueuer.Close()
	_ = c.store.Close()
	_ = c.log.Sync()
}

// serve runs the API and/or the worker until ctx ends, then shuts down: the
// API stops accepting and drains its requests, the worker finishes in-flight
// deliveries within the shutdown timeout and hands the rest back to the queue.
func serve(ctx context.Context, cfg config, c *components, runAPI, runWorker bool,
	banner func(apiAddr, adminAddr string)) error {
	errc := make(chan error, 3)

	adm, err := startAdmin(cfg, c, errc)
	if err != nil {
		return err
	}
	defer adm.stop()

	var srv *worker.Pool
	sweepCtx, stopSweep := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSweep()
	if runWorker {
		proxy, _ := cfg.proxyURL() // checked by loadConfig
		client := delivery.NewClient(delivery.Config{
			Timeout:         cfg.DeliveryTimeout,
			MaxResponseBody: cfg.ResponseBodyLimit,
			UserAgent:       "rehook/" + version,
			AllowLoopback:   cfg.AllowLoopback,
			AllowPrivate:    cfg.AllowPrivate,
			AllowLinkLocal:  cfg.AllowLinkLocal,
			Proxy:           proxy,
		})
		h := worker.NewHandler(c.store, client, cfg.DeliveryTimeout, c.log, worker.HandlerConfig{
			MaxAttempts: cfg.MaxAttempts,
			RetryBase:   cfg.RetryBase,
			RetryMax:    cfg.RetryMax,
			UserAgent:   "rehook/" + version,
			Metrics:     c.metrics,
			Lease:       cfg.DeliveryTimeout + cfg.LeaseMargin,
		})
		srv = worker.NewPool(c.redis, worker.ServerConfig{
			Concurrency:     cfg.WorkerConcurrency,
			ShutdownTimeout: cfg.ShutdownTimeout,
		}, h, c.log)
		retention := cfg.retention(c)
		srv.Handle(worker.TypeRetention, retention)
		if err := srv.Start(); err != nil {
			return fmt.Errorf("start worker: %w", err)
		}
		sw := &worker.Sweeper{Store: c.store, Enqueuer: c.enqueuer, Log: c.log,
			Interval: cfg.SweepInterval, Grace: cfg.SweepGrace, Metrics: c.metrics}
		go sw.Run(sweepCtx)
		go retention.Schedule(sweepCtx)
		c.log.Info("worker started", zap.Int("concurrency", cfg.WorkerConcurrency),
			zap.Bool("allow_loopback", cfg.AllowLoopback))
	}

	var httpSrv *http.Server
	if runAPI {
		gin.SetMode(gin.ReleaseMode)
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			if srv != nil {
				srv.Shutdown()
			}
			return fmt.Errorf("REHOOK_HTTP_ADDR: %w", err)
		}
		httpSrv = &http.Server{
			Handler: api.New(c.store, worker.NewFailFast(c.enqueuer, enqueueCooldown), c.log,
				api.Config{Metrics: c.metrics, RateLimit: cfg.RateLimit,
					RateBurst: cfg.RateBurst, MaxPendingPerWebhook: cfg.MaxPendingPerWebhook}),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			IdleTimeout:       2 * time.Minute,
		}
		go func() { errc <- httpSrv.Serve(ln) }()
		c.log.Info("api listening", zap.String("addr", ln.Addr().String()))
		if banner != nil {
			banner(ln.Addr().String(), adm.addr)
		}
	}

	select {
	case <-ctx.Done():
		c.log.Info("shutting down")
	case err = <-errc:
	}

	if httpSrv != nil {
		shutCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		if e := httpSrv.Shutdown(shutCtx); e != nil {
			c.log.Warn("api shutdown", zap.Error(e))
		}
		cancel()
	}
	stopSweep()
	if srv != nil {
		srv.Shutdown()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	c.log.Info("stopped")
	return err
}

// redactURL hides a URL's password for printing.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}
