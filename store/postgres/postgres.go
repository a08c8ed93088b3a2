// Package postgres implements store.Store on PostgreSQL with a pgx
// connection pool. It is rehook's production store.
//
// Times are stored as timestamptz with microsecond precision and returned in
// UTC; a zero time is stored as NULL where the column allows it. Recorded
// delivery text (request and response headers and bodies, errors) is made
// valid UTF-8 without NUL bytes before it is written, since Postgres text
// cannot hold anything else; the bytes that do not fit become U+FFFD.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/rehook/rehook/store"
	"github.com/rehook/rehook/store/internal/rowprep"
	"github.com/rehook/rehook/store/migrations"
)

// Options tune the connection pool. The zero value keeps what the URL says
// and pgx's defaults otherwise.
type Options struct {
	// MaxConns is the most connections the pool keeps open at once. Zero
	// keeps the URL's pool_max_conns, or else pgx's default: the greater of
	// 4 and the number of CPUs.
	MaxConns int32

	// StatementTimeout is the longest a single statement may run on the
	// server before Postgres cancels it (the statement_timeout run-time
	// parameter), in whole milliseconds: a fraction is dropped, and anything
	// under a millisecond is one. Zero keeps the URL's statement_timeout, or
	// else the server's (no limit by default). Migrations run without it.
	StatementTimeout time.Duration
}

// Store is a store.Store on a Postgres database. It is safe for concurrent
// use; Close releases its connections.
type Store struct {
	pool      *pgxpool.Pool
	closeOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// Open connects to the Postgres database at url (postgres://... or a
// key=value connection string, as pgx accepts) and checks that it answers.
// It does not migrate; call Migrate for that. A database that cannot be
// reached gives an error wrapping store.ErrUnavailable.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := poolConfig(url, opts)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}

	s := &Store{pool: pool}
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	return s, nil
}

func poolConfig(url string, opts Options) (*pgxpool.Config, error) {
	if opts.MaxConns < 0 {
		return nil, fmt.Errorf("invalid MaxConns %d: must not be negative", opts.MaxConns)
	}
	if opts.StatementTimeout < 0 {
		return nil, fmt.Errorf("invalid StatementTimeout %s: must not be negative",
			opts.StatementTimeout)
	}

	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}

	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if opts.StatementTimeout > 0 {
		ms := max(opts.StatementTimeout.Milliseconds(), 1)
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(ms, 10)
	}
	return cfg, nil
}

// Migrate applies rehook's pending migrations to the database at url,
// without a statement timeout. A database that cannot be reached gives an
// error wrapping store.ErrUnavailable.
func Migrate(ctx context.Context, url string) error {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("migrate postgres: %w", err)
	}
	return migrate(ctx, cfg)
}

// Migrate applies rehook's pending migrations to the store's database, on
// connections of its own that have no statement timeout.
func (s *Store) Migrate(ctx context.Context) error {
	return migrate(ctx, s.pool.Config())
}

func migrate(ctx context.Context, cfg *pgxpool.Config) error {
	cfg.MaxConns = 2
	cfg.MinConns = 0
	delete(cfg.ConnConfig.RuntimeParams, "statement_timeout")

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("migrate postgres: %w", err)
	}
	defer pool.Close()

	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()

	err = migrations.Migrate(ctx, db, migrations.DialectPostgres)
	if isUnavailable(err) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		return c.Ping(ctx)
	})
	if err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be returned.
// Calls after the first do nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(s.pool.Close)
	return nil
}

// querier is what a pooled connection and a transaction have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// withConn runs fn on a connection from the pool and maps its error.
func (s *Store) withConn(ctx context.Context, fn func(c *pgxpool.Conn) error) error {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return mapAcquireError(err)
	}
	defer c.Release()

	return mapError(fn(c))
}

// withTx runs fn in a transaction, committing if fn returns nil and rolling
// back otherwise, and maps its error.
func (s *Store) withTx(ctx context.Context, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	return s.withConn(ctx, func(c *pgxpool.Conn) error {
		return pgx.BeginTxFunc(ctx, c, opts, fn)
	})
}

// oneRow turns a statement's result into store.ErrNotFound when it touched
// no row.
func oneRow(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// SQLSTATE codes the store maps.
const (
	codeUniqueViolation     = "23505"
	codeBadEncoding         = "22021"
	codeUntranslatable      = "22P05"
	codeForeignKeyViolation = "23503"
	codeTooManyConnections  = "53300"
	codeAdminShutdown       = "57P01"
	codeCrashShutdown       = "57P02"
	codeCannotConnectNow    = "57P03"
	classConnectionError    = "08"
)

// mapError maps a pgx error onto the store's sentinels, keeping the cause
// wrapped where it says more: no rows is store.ErrNotFound, a unique
// violation store.ErrConflict, a foreign key violation (a referenced row is
// missing) store.ErrNotFound, and a lost or refused connection
// store.ErrUnavailable. Other errors, the sentinels among them, pass as they
// are.
func mapError(err error) error {
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return store.ErrNotFound
	case errors.As(err, &pgErr) && pgErr.Code == codeUniqueViolation:
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	case errors.As(err, &pgErr) && pgErr.Code == codeForeignKeyViolation:
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	case errors.As(err, &pgErr) &&
		(pgErr.Code == codeBadEncoding || pgErr.Code == codeUntranslatable):
		return fmt.Errorf("%w: %w", store.ErrInvalidText, err)
	case isUnavailable(err):
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// mapAcquireError maps a failure to get a connection from the pool: the
// database refused or did not answer, the pool is closed, or no connection
// came free before the context's deadline. All of those are
// store.ErrUnavailable; a cancelled context is the caller's own doing and
// passes as it is.
func mapAcquireError(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

// isUnavailable reports whether err means the database could not be reached
// or dropped the connection, as opposed to refusing a statement.
func isUnavailable(err error) bool {
	if err == nil {
		return false
	}

	// net.OpError rather than net.Error: context.DeadlineExceeded is a
	// net.Error too, and a statement that ran out of time is not an outage.
	var connectErr *pgconn.ConnectError
	var opErr *net.OpError
	if errors.As(err, &connectErr) || errors.As(err, &opErr) {
		return true
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, pgconn.ErrConnClosed) {
		return true
	}

	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case codeTooManyConnections, codeAdminShutdown, codeCrashShutdown, codeCannotConnectNow:
			return true
		}
		return strings.HasPrefix(pgErr.Code, classConnectionError)
	}
	return false
}

// dbTime is t as the store keeps it: UTC, microseconds.
func dbTime(t time.Time) time.Time {
	return rowprep.Time(t)
}

// dbNullTime is dbTime for a nullable column: nil for the zero time.
func dbNullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := dbTime(t)
	return &u
}

// fromNullTime is the inverse of dbNullTime.
func fromNullTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// rowTo adapts a single-row scan function to pgx's row collectors.
func rowTo[T any](scan func(row pgx.Row) (T, error)) pgx.RowToFunc[T] {
	return func(row pgx.CollectableRow) (T, error) {
		return scan(row)
	}
}
