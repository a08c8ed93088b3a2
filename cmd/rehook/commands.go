package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rehook/rehook/api"
	"github.com/rehook/rehook/store"
	"github.com/rehook/rehook/store/storeopen"
)

const usage = `rehook records webhook executions of an artifact registry and retriggers them.

Usage:
  rehook dev                 API, worker, SQLite and an in-process Redis in one process
  rehook api                 the HTTP API (needs REHOOK_DATABASE_URL, REHOOK_REDIS_URL)
  rehook worker              a delivery worker (needs REHOOK_DATABASE_URL, REHOOK_REDIS_URL)
  rehook migrate             apply database migrations
  rehook apikey create --scope ACCOUNT[/ORG[/PROJECT]] --role view|edit|admin
  rehook apikey list
  rehook apikey revoke ID
  rehook rotate-secrets      encrypt every webhook secret with REHOOK_ENCRYPTION_KEY
  rehook healthcheck [URL]   exit 0 if URL (default http://127.0.0.1:8081/readyz) answers 2xx
  rehook version

Run "rehook COMMAND --help" for a command's flags and environment.
`

// run dispatches a subcommand; it is main without the process around it.
func run(ctx context.Context, args []string) error {
	return runWith(ctx, args, os.Stdout, os.Stderr, getenv)
}

func runWith(ctx context.Context, args []string, stdout, stderr io.Writer,
	env func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "dev", "api", "worker", "migrate":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		if done, err := parseFlags(fs, cmd, rest, stdout, stderr); done {
			return err
		}
		if fs.NArg() > 0 {
			return fmt.Errorf("rehook %s takes no arguments, got %q", cmd, fs.Args())
		}
		cfg, err := loadConfig(env, cmd)
		if err != nil {
			return err
		}
		switch cmd {
		case "dev":
			return runDev(ctx, cfg, stdout)
		case "api":
			return runAPI(ctx, cfg)
		case "worker":
			return runWorker(ctx, cfg)
		}
		return runMigrate(ctx, cfg, stdout)
	case "apikey":
		return runAPIKey(ctx, rest, stdout, stderr, env)
	case "rotate-secrets":
		return runRotateSecrets(ctx, rest, stdout, stderr, env)
	case "healthcheck":
		return runHealthcheck(ctx, rest, stdout, stderr)
	case "version", "--version":
		fs := flag.NewFlagSet("version", flag.ContinueOnError)
		if done, err := parseFlags(fs, "version", rest, stdout, stderr); done {
			return err
		}
		fmt.Fprintln(stdout, "rehook", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

func runMigrate(ctx context.Context, cfg config, stdout io.Writer) error {
	s, err := openStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintln(stdout, "migrated", redactURL(cfg.databaseURL()))
	return nil
}

// openStore opens the configured database, creating the data directory of
// the embedded default when it is used.
func openStore(ctx context.Context, cfg config, migrate bool) (store.Store, error) {
	if cfg.DatabaseURL == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("REHOOK_DATA_DIR: %w", err)
		}
	}
	s, err := storeopen.OpenWith(ctx, cfg.databaseURL(), migrate, cfg.postgresOptions())
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", redactURL(cfg.databaseURL()), err)
	}
	return s, nil
}

func runAPIKey(ctx context.Context, args []string, stdout, stderr io.Writer,
	env func(string) string) error {
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("apikey "+sub, flag.ContinueOnError)
	scope := fs.String("scope", "", "create: ACCOUNT[/ORG[/PROJECT]], or * for every account")
	role := fs.String("role", "", "create: view (reads), edit (also retrigger, webhooks, "+
		"events), admin (also registries)")
	if done, err := parseFlags(fs, "apikey", args, stdout, stderr); done {
		return err
	}
	if sub == "" {
		printHelp(stderr, "apikey", fs)
		return errors.New("apikey needs a command: create, list or revoke")
	}
	cfg, err := loadConfig(env, "apikey")
	if err != nil {
		return err
	}

	switch sub {
	case "create":
		sc, err := api.ParseScope(*scope)
		if err != nil {
			return fmt.Errorf("--scope %q: must be ACCOUNT[/ORG[/PROJECT]] or *", *scope)
		}
		r := store.Role(*role)
		if !r.Allows(store.RoleView) {
			return fmt.Errorf("--role %q: must be view, edit or admin", *role)
		}
		s, err := openStore(ctx, cfg, true)
		if err != nil {
			return err
		}
		defer s.Close()
		plain, key, err := api.NewAPIKey(sc, r)
		if err != nil {
			return err
		}
		if err := s.CreateAPIKey(ctx, &key); err != nil {
			return fmt.Errorf("store key: %w", err)
		}
		fmt.Fprintf(stdout, "created API key %d, scope %s, role %s; it is shown only once:\n",
			key.ID, key.Scope, key.Role)
		fmt.Fprintln(stdout, plain)
		return nil
	case "list":
		s, err := openStore(ctx, cfg, true)
		if err != nil {
			return err
		}
		defer s.Close()
		keys, err := s.ListAPIKeys(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSCOPE\tROLE\tCREATED\tREVOKED")
		for _, k := range keys {
			revoked := "-"
			if !k.Revoked.IsZero() {
				revoked = k.Revoked.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", k.ID, k.Scope, k.Role,
				k.Created.UTC().Format(time.RFC3339), revoked)
		}
		return tw.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return errors.New("usage: rehook apikey revoke ID")
		}
		id, err := strconv.ParseInt(fs.Arg(0), 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("key id %q: must be a positive integer", fs.Arg(0))
		}
		s, err := openStore(ctx, cfg, true)
		if err != nil {
			return err
		}
		defer s.Close()
		if err := s.RevokeAPIKey(ctx, id, time.Now()); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no API key %d", id)
			}
			return err
		}
		fmt.Fprintf(stdout, "revoked API key %d\n", id)
		return nil
	}
	printHelp(stderr, "apikey", fs)
	return fmt.Errorf("unknown apikey command %q", sub)
}
