// Package sqlite implements store.Store on a SQLite file with the pure-Go
// modernc.org/sqlite driver. It is rehook's embedded default store.
//
// The database runs in WAL mode with foreign keys on. Writes go through a
// single connection, so concurrent writers in this process queue in Go
// (bounded by their contexts) instead of failing with SQLITE_BUSY; reads use
// a pool of query-only connections and run alongside a write. A transaction
// takes the write lock when it begins (BEGIN IMMEDIATE), and a write that
// meets another process's lock waits for it up to BusyTimeout.
//
// Times are stored as INTEGER microseconds since the Unix epoch and returned
// in UTC; a zero time is stored as NULL where the column allows it. Recorded
// delivery text is made valid UTF-8 without NUL bytes, as the Postgres store
// does, so both return the same values.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/rehook/rehook/store"
	"github.com/rehook/rehook/store/migrations"
)

// BusyTimeout is how long a statement waits for a lock that another process
// (or a checkpoint) holds on the database before it fails with SQLITE_BUSY,
// which the store reports as store.ErrUnavailable.
const BusyTimeout = 5 * time.Second

// minReadConns is the least number of read connections; there are more on
// machines with more CPUs.
const minReadConns = 4

// Store is a store.Store on a SQLite file. It is safe for concurrent use;
// Close releases the file.
type Store struct {
	// write has exactly one connection: writes queue for it in Go.
	write *sql.DB
	// read has query-only connections, which WAL lets run during a write.
	read *sql.DB

	closeOnce sync.Once
	closeErr  error
}

var (
	_ store.Store = (*Store)(nil)
)

// Open opens (creating it if needed) the SQLite database file at path and
// checks that it can be used. It does not migrate; call Migrate for that.
// path is a file system path; ":memory:" and "file:" URIs are refused, as
// an in-memory database would not be shared by the store's connections.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := checkPath(path); err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}

	busy := fmt.Sprintf("_pragma=busy_timeout(%d)", BusyTimeout.Milliseconds())
	write, err := openDB(ctx, path+"?_txlock=immediate&"+busy+
		"&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)", 1)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}

	readConns := max(minReadConns, runtime.GOMAXPROCS(0))
	read, err := openDB(ctx, path+"?"+busy+"&_pragma=foreign_keys(1)&_pragma=query_only(1)",
		readConns)
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}

	return &Store{write: write, read: read}, nil
}

func checkPath(path string) error {
	switch {
	case path == "":
		return errors.New("empty database path")
	case path == ":memory:" || strings.HasPrefix(path, "file:"):
		return fmt.Errorf("database path %q: want a file path", path)
	case strings.ContainsAny(path, "?#"):
		return fmt.Errorf("database path %q: '?' and '#' are not supported", path)
	}
	return nil
}

func openDB(ctx context.Context, dsn string, conns int) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)

	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, mapError(err)
	}
	return db, nil
}

// Migrate applies rehook's pending migrations to the store's database.
func (s *Store) Migrate(ctx context.Context) error {
	err := migrations.Migrate(ctx, s.write, migrations.DialectSQLite)
	return mapError(err)
}

// Ping checks that the database file can be read.
func (s *Store) Ping(ctx context.Context) error {
	err := s.withConn(ctx, s.read, func(c *sql.Conn) error {
		return c.PingContext(ctx)
	})
	if err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	return nil
}

// Close closes the database, waiting for statements in progress. Calls
// after the first return the first one's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = errors.Join(s.read.Close(), s.write.Close())
	})
	return s.closeErr
}

// withConn runs fn on a connection of db and maps its error.
func (s *Store) withConn(ctx context.Context, db *sql.DB, fn func(c *sql.Conn) error) error {
	c, err := db.Conn(ctx)
	if err != nil {
		return mapAcquireError(err)
	}
	defer c.Close()

	return mapError(fn(c))
}

// withWrite runs fn on the write connection.
func (s *Store) withWrite(ctx context.Context, fn func(c *sql.Conn) error) error {
	return s.withConn(ctx, s.write, fn)
}

// withRead runs fn on a read connection.
func (s *Store) withRead(ctx context.Context, fn func(c *sql.Conn) error) error {
	return s.withConn(ctx, s.read, fn)
}

// withTx runs fn in a transaction on a connection of db, committing if fn
// returns nil and rolling back otherwise, and maps its error. On the write
// connection the transaction holds the write lock from its start.
func (s *Store) withTx(
	ctx context.Context, db *sql.DB, opts *sql.TxOptions, fn func(tx *sql.Tx) error,
) error {
	return s.withConn(ctx, db, func(c *sql.Conn) error {
		tx, err := c.BeginTx(ctx, opts)
		if err != nil {
			return err
		}

		if err := fn(tx); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	})
}

// mapError maps a driver error onto the store's sentinels, keeping the cause
// wrapped where it says more: no rows is store.ErrNotFound, a unique or
// primary key violation store.ErrConflict, a foreign key violation (a
// referenced row is missing) store.ErrNotFound, and a database that is
// locked, cannot be opened or read, or is closed store.ErrUnavailable.
// Other errors, the sentinels among them, pass as they are.
func mapError(err error) error {
	var sqliteErr *sqlite.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound
	case errors.Is(err, sql.ErrConnDone), errors.Is(err, driver.ErrBadConn):
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	case !errors.As(err, &sqliteErr):
		return err
	}

	switch sqliteErr.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	}

	// The primary result code is the low byte of an extended one.
	switch sqliteErr.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN,
		sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL:
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// mapAcquireError maps a failure to get a connection: the database is
// closed or cannot be opened, or no connection came free before the
// context's deadline. All of those are store.ErrUnavailable; a cancelled
// context is the caller's own doing and passes as it is.
func mapAcquireError(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

// micros is t as the store keeps it: microseconds since the Unix epoch.
func micros(t time.Time) int64 {
	return t.UnixMicro()
}

// nullMicros is micros for a nullable column: NULL for the zero time.
func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

// fromMicros is the inverse of micros, in UTC.
func fromMicros(us int64) time.Time {
	return time.UnixMicro(us).UTC()
}

// fromNullMicros is the inverse of nullMicros.
func fromNullMicros(us sql.NullInt64) time.Time {
	if !us.Valid {
		return time.Time{}
	}
	return fromMicros(us.Int64)
}

// scanner is what sql.Row and sql.Rows have in common.
type scanner interface {
	Scan(dest ...any) error
}

// scanID scans a row of one id column.
func scanID(row scanner) (int64, error) {
	var id int64
	err := row.Scan(&id)
	return id, err
}

// collect scans every row of rows onto list and closes rows.
func collect[T any](list []T, rows *sql.Rows, scan func(row scanner) (T, error)) ([]T, error) {
	defer rows.Close()

	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		list = append(list, v)
	}
	return list, rows.Err()
}
