package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// config is everything rehook reads from its environment. Each field is
// filled from the variable named in settings, or from its default there.
type config struct {
	HTTPAddr          string
	AdminAddr         string
	DatabaseURL       string
	RedisURL          string
	DataDir           string
	DevAPIKey         string
	WorkerConcurrency int
	DeliveryTimeout   time.Duration
	MaxAttempts       int
	RetryBase         time.Duration
	RetryMax          time.Duration
	ResponseBodyLimit int
	AllowLoopback     bool
	AllowPrivate      bool
	AllowLinkLocal    bool
	SweepInterval     time.Duration
	ShutdownTimeout   time.Duration
	LogFormat         string
	LogLevel          string

	// DBMaxConns is the most Postgres connections one process opens.
	DBMaxConns int
	// DBStatementTimeout is the longest one Postgres statement may run.
	DBStatementTimeout time.Duration

	// DeliveryProxy is the URL of the proxy every delivery goes through;
	// empty for none. Proxy environment variables are never read.
	DeliveryProxy string
	// EncryptionKey is the 32-byte key, base64 or hex, that seals webhook
	// secrets at rest; empty for none. Default none.
	EncryptionKey string
	// EncryptionOldKeys are earlier keys, comma-separated, that only open
	// secrets sealed with them. Default none.
	EncryptionOldKeys string
	// AllowPlaintextSecrets lets api and worker run without EncryptionKey,
	// storing secrets in the clear. Default false (dev: true).
	AllowPlaintextSecrets bool
	// RateLimit is the requests a second one API key may make on average,
	// per API process; 0 disables the limit. Default 50.
	RateLimit float64
	// RateBurst is the requests one API key may make at once. Default 100.
	RateBurst int
	// MaxPendingPerWebhook is the most pending executions a webhook may
	// have before retriggers answer 429; 0 disables it. Default 1000.
	MaxPendingPerWebhook int

	// LeaseMargin is added to DeliveryTimeout to make the lease a worker
	// holds on an execution it delivers. Default 30s.
	LeaseMargin time.Duration
	// SweepGrace is how long past due a pending execution must be before
	// the sweeper takes its task for lost. Default 30s.
	SweepGrace time.Duration
	// Retention is the age past which executions, their attempts and
	// event keys are deleted. Default 720h.
	Retention time.Duration
	// RetentionBatch is the most rows one retention delete removes. Default
	// 1000.
	RetentionBatch int
	// RetentionInterval is how often the cluster runs retention. Default 1h.
	RetentionInterval time.Duration
}

// setting ties an environment variable to a config field.
type setting struct {
	env  string
	def  string
	doc  string
	dst  func(c *config) any
	used string // the subcommands that read it
}

var settings = []setting{
	{"REHOOK_HTTP_ADDR", "127.0.0.1:8080",
		"address the API listens on (use 0.0.0.0:8080 in a container)",
		func(c *config) any { return &c.HTTPAddr }, "dev api"},
	{"REHOOK_ADMIN_ADDR", "127.0.0.1:8081 (worker: 127.0.0.1:8082)",
		"admin listener: dashboard at /monitoring, /metrics, /healthz, /readyz, " +
			"/debug/pprof; no authentication, keep it private; each process on a host " +
			"needs its own (127.0.0.1:0 picks a free port)",
		func(c *config) any { return &c.AdminAddr }, "dev api worker"},
	{"REHOOK_DATABASE_URL", "",
		"postgres://USER@HOST:PORT/DB or sqlite:PATH; dev, migrate, apikey and " +
			"rotate-secrets default to sqlite:$REHOOK_DATA_DIR/rehook.db, api and worker " +
			"require it",
		func(c *config) any { return &c.DatabaseURL },
		"dev api worker migrate apikey rotate-secrets"},
	{"REHOOK_REDIS_URL", "",
		"redis://[:PASSWORD@]HOST:PORT[/DB] (or rediss://, redis-sentinel://, " +
			"redis-cluster://; see Deploy); dev defaults to an in-process Redis, api and " +
			"worker require it",
		func(c *config) any { return &c.RedisURL }, "dev api worker"},
	{"REHOOK_DATA_DIR", "rehook-data",
		"directory of the embedded default's SQLite file",
		func(c *config) any { return &c.DataDir }, "dev migrate apikey rotate-secrets"},
	{"REHOOK_DEV_API_KEY", "",
		"dev only: use this admin key (all accounts) instead of generating one at start",
		func(c *config) any { return &c.DevAPIKey }, "dev"},
	{"REHOOK_WORKER_CONCURRENCY", "10",
		"deliveries one worker process runs at once",
		func(c *config) any { return &c.WorkerConcurrency }, "dev worker"},
	{"REHOOK_DELIVERY_TIMEOUT", "10s",
		"time limit of one delivery attempt, response body included",
		func(c *config) any { return &c.DeliveryTimeout }, "dev worker"},
	{"REHOOK_MAX_ATTEMPTS", "5",
		"attempts an execution gets before a RETRIABLE_ERROR is final",
		func(c *config) any { return &c.MaxAttempts }, "dev api worker"},
	{"REHOOK_RETRY_BASE", "5s",
		"delay before the second attempt; it doubles for each attempt after",
		func(c *config) any { return &c.RetryBase }, "dev worker"},
	{"REHOOK_RETRY_MAX", "1h",
		"longest delay between two attempts",
		func(c *config) any { return &c.RetryMax }, "dev worker"},
	{"REHOOK_RESPONSE_BODY_LIMIT", "65536",
		"bytes of a response body recorded (cut on a UTF-8 boundary, marked as cut)",
		func(c *config) any { return &c.ResponseBodyLimit }, "dev worker"},
	{"REHOOK_ALLOW_LOOPBACK", "false (dev: true)",
		"allow deliveries to loopback addresses",
		func(c *config) any { return &c.AllowLoopback }, "dev worker"},
	{"REHOOK_ALLOW_PRIVATE", "false",
		"allow deliveries to private addresses (RFC 1918, fc00::/7)",
		func(c *config) any { return &c.AllowPrivate }, "dev worker"},
	{"REHOOK_ALLOW_LINK_LOCAL", "false",
		"allow deliveries to link-local addresses (169.254.0.0/16, fe80::/10)",
		func(c *config) any { return &c.AllowLinkLocal }, "dev worker"},
	{"REHOOK_SWEEP_INTERVAL", "15s",
		"how often a worker re-queues pending executions whose task was lost",
		func(c *config) any { return &c.SweepInterval }, "dev worker"},
	{"REHOOK_SHUTDOWN_TIMEOUT", "15s",
		"on SIGTERM, how long in-flight requests and deliveries may finish",
		func(c *config) any { return &c.ShutdownTimeout }, "dev api worker"},
	{"REHOOK_LEASE_MARGIN", "30s",
		"added to REHOOK_DELIVERY_TIMEOUT to make the lease a worker holds on an execution " +
			"it delivers; a dead worker's execution is taken over once its lease ends",
		func(c *config) any { return &c.LeaseMargin }, "dev worker"},
	{"REHOOK_SWEEP_GRACE", "30s",
		"how long past due a pending execution must be before the sweeper re-queues it",
		func(c *config) any { return &c.SweepGrace }, "dev worker"},
	{"REHOOK_RETENTION", "720h",
		"age past which executions, their attempts and event keys are deleted",
		func(c *config) any { return &c.Retention }, "dev worker"},
	{"REHOOK_RETENTION_BATCH", "1000",
		"most rows one retention delete removes (one short transaction each)",
		func(c *config) any { return &c.RetentionBatch }, "dev worker"},
	{"REHOOK_RETENTION_INTERVAL", "1h",
		"how often retention runs, once per cluster whatever the number of workers",
		func(c *config) any { return &c.RetentionInterval }, "dev worker"},
	{"REHOOK_LOG_FORMAT", "json (dev: console)",
		"json or console",
		func(c *config) any { return &c.LogFormat }, "dev api worker"},
	{"REHOOK_LOG_LEVEL", "info",
		"debug, info, warn or error",
		func(c *config) any { return &c.LogLevel }, "dev api worker"},
	{"REHOOK_DB_MAX_CONNS", "10",
		"Postgres only: most connections in one process's pool (wins over the URL's " +
			"pool_max_conns)",
		func(c *config) any { return &c.DBMaxConns }, "dev api worker"},
	{"REHOOK_DB_STATEMENT_TIMEOUT", "30s",
		"Postgres only: longest one statement may run before Postgres cancels it, in whole " +
			"milliseconds (wins over the URL's statement_timeout; migrations have none)",
		func(c *config) any { return &c.DBStatementTimeout }, "dev api worker"},
	{"REHOOK_DELIVERY_PROXY", "",
		"URL (http, https or socks5) of a proxy every delivery goes through; HTTP_PROXY " +
			"and the like are never read",
		func(c *config) any { return &c.DeliveryProxy }, "dev worker"},
	{"REHOOK_ENCRYPTION_KEY", "",
		"32-byte key, base64 or 64 hex digits, that encrypts webhook secrets at rest " +
			"(AES-256-GCM); api and worker refuse to start without it unless " +
			"REHOOK_ALLOW_PLAINTEXT_SECRETS is true",
		func(c *config) any { return &c.EncryptionKey }, "dev api worker rotate-secrets"},
	{"REHOOK_ENCRYPTION_OLD_KEYS", "",
		"earlier encryption keys, comma-separated, used only to decrypt the secrets they " +
			"encrypted (see Security, key rotation)",
		func(c *config) any { return &c.EncryptionOldKeys }, "dev api worker rotate-secrets"},
	{"REHOOK_ALLOW_PLAINTEXT_SECRETS", "false (dev: true)",
		"store webhook secrets unencrypted when REHOOK_ENCRYPTION_KEY is not set",
		func(c *config) any { return &c.AllowPlaintextSecrets }, "dev api worker"},
	{"REHOOK_RATE_LIMIT", "50",
		"requests per second one API key may make on average, per API process (429 with " +
			"Retry-After beyond); 0 disables the limit",
		func(c *config) any { return &c.RateLimit }, "dev api"},
	{"REHOOK_RATE_BURST", "100",
		"requests one API key may make at once before REHOOK_RATE_LIMIT applies",
		func(c *config) any { return &c.RateBurst }, "dev api"},
	{"REHOOK_MAX_PENDING_PER_WEBHOOK", "1000",
		"most pending executions a webhook may have before its retriggers answer 429; " +
			"0 disables the limit",
		func(c *config) any { return &c.MaxPendingPerWebhook }, "dev api"},
}

// loadConfig reads the environment of the subcommand cmd.
func loadConfig(getenv func(string) string, cmd string) (config, error) {
	var c config
	for _, s := range settings {
		v := getenv(s.env)
		if v == "" {
			v = defaultFor(s.def, cmd)
		}
		if err := parseInto(s.dst(&c), v); err != nil {
			return c, fmt.Errorf("%s=%q: %w", s.env, v, err)
		}
	}

	switch {
	case c.WorkerConcurrency < 1:
		return c, fmt.Errorf("REHOOK_WORKER_CONCURRENCY=%d: must be at least 1", c.WorkerConcurrency)
	case c.MaxAttempts < 1:
		return c, fmt.Errorf("REHOOK_MAX_ATTEMPTS=%d: must be at least 1", c.MaxAttempts)
	case c.DeliveryTimeout < 100*time.Millisecond:
		return c, fmt.Errorf("REHOOK_DELIVERY_TIMEOUT=%s: must be at least 100ms", c.DeliveryTimeout)
	case c.ResponseBodyLimit < 1024:
		return c, fmt.Errorf("REHOOK_RESPONSE_BODY_LIMIT=%d: must be at least 1024",
			c.ResponseBodyLimit)
	case c.LogFormat != "json" && c.LogFormat != "console":
		return c, fmt.Errorf("REHOOK_LOG_FORMAT=%q: must be json or console", c.LogFormat)
	case c.RetentionBatch < 1:
		return c, fmt.Errorf("REHOOK_RETENTION_BATCH=%d: must be at least 1", c.RetentionBatch)
	case c.DBMaxConns < 1:
		return c, fmt.Errorf("REHOOK_DB_MAX_CONNS=%d: must be at least 1", c.DBMaxConns)
	}
	if err := c.checkSecurity(); err != nil {
		return c, err
	}
	return c, nil
}

// defaultFor is a setting's default for the subcommand cmd: def is
// "VALUE" or "VALUE (CMD: OTHER)", where OTHER is the default of CMD alone.
func defaultFor(def, cmd string) string {
	i := strings.Index(def, " (")
	if i < 0 || !strings.HasSuffix(def, ")") {
		return def
	}
	name, other, ok := strings.Cut(def[i+2:len(def)-1], ": ")
	if ok && name == cmd {
		return other
	}
	return def[:i]
}

func parseInto(dst any, v string) error {
	var err error
	switch d := dst.(type) {
	case *string:
		*d = v
	case *int:
		*d, err = strconv.Atoi(v)
	case *bool:
		*d, err = strconv.ParseBool(v)
	case *float64:
		*d, err = strconv.ParseFloat(v, 64)
	case *time.Duration:
		*d, err = time.ParseDuration(v)
		if err == nil && *d <= 0 {
			err = fmt.Errorf("must be positive")
		}
	}
	return err
}

// printSettings writes the variables that cmd reads, with their defaults
// for cmd.
func printSettings(w io.Writer, cmd string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Environment:")
	if len(settingsOf(cmd)) == 0 {
		fmt.Fprintln(tw, "  none")
	}
	for _, s := range settingsOf(cmd) {
		def := defaultFor(s.def, cmd)
		if def == "" {
			def = "(none)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.env, def, s.doc)
	}
	_ = tw.Flush()
}

// databaseURL is the configured database, or the embedded default's file.
func (c config) databaseURL() string {
	if c.DatabaseURL != "" {
		return c.DatabaseURL
	}
	return "sqlite:" + c.DataDir + "/rehook.db"
}

func getenv(k string) string { return os.Getenv(k) }
