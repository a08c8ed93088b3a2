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
	{"REHOOK_DATABASE_URL", "",
		"postgres://USER@HOST:PORT/DB or sqlite:PATH; dev, migrate and apikey default to " +
			"sqlite:$REHOOK_DATA_DIR/rehook.db, api and worker require it",
		func(c *config) any { return &c.DatabaseURL }, "dev api worker migrate apikey"},
	{"REHOOK_REDIS_URL", "",
		"redis://[:PASSWORD@]HOST:PORT[/DB] (or rediss://, redis-sentinel://); dev defaults " +
			"to an in-process Redis, api and worker require it",
		func(c *config) any { return &c.RedisURL }, "dev api worker"},
	{"REHOOK_DATA_DIR", "rehook-data",
		"directory of the embedded default's SQLite file",
		func(c *config) any { return &c.DataDir }, "dev migrate apikey"},
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
	{"REHOOK_LOG_FORMAT", "json (dev: console)",
		"json or console",
		func(c *config) any { return &c.LogFormat }, "dev api worker"},
	{"REHOOK_LOG_LEVEL", "info",
		"debug, info, warn or error",
		func(c *config) any { return &c.LogLevel }, "dev api worker"},
}

// loadConfig reads the environment. dev selects the dev defaults.
func loadConfig(getenv func(string) string, dev bool) (config, error) {
	var c config
	for _, s := range settings {
		v := getenv(s.env)
		if v == "" {
			v = s.def
			if i := strings.Index(v, " (dev: "); i >= 0 {
				if dev {
					v = strings.TrimSuffix(v[i+len(" (dev: "):], ")")
				} else {
					v = v[:i]
				}
			}
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
	}
	return c, nil
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
	case *time.Duration:
		*d, err = time.ParseDuration(v)
		if err == nil && *d <= 0 {
			err = fmt.Errorf("must be positive")
		}
	}
	return err
}

// printSettings writes the variables that cmd reads, with their defaults.
func printSettings(w io.Writer, cmd string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Environment:")
	for _, s := range settings {
		if !strings.Contains(" "+s.used+" ", " "+cmd+" ") {
			continue
		}
		def := s.def
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
