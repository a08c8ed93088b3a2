// Package migrations holds rehook's schema, one set of goose SQL migrations
// per dialect, embedded in the binary, and applies them.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Dialects Migrate knows; each names a folder of migrations.
const (
	DialectPostgres = "postgres"
	DialectSQLite   = "sqlite"
)

// lockWaitTries is how many times, one second apart, Migrate tries to take
// the Postgres migration lock held by another process migrating the same
// schema before it gives up.
const lockWaitTries = 120

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// FS returns the migrations of a dialect, for tools that want to read them.
func FS(dialect string) (fs.FS, error) {
	if dialect != DialectPostgres && dialect != DialectSQLite {
		return nil, fmt.Errorf("unknown dialect %q; want %q or %q",
			dialect, DialectPostgres, DialectSQLite)
	}
	return fs.Sub(files, dialect)
}

// Migrate applies every migration of dialect that db has not seen yet, each
// in its own transaction, and records them in goose's version table in the
// current schema. It is safe to call on every start.
//
// On Postgres it holds an advisory lock keyed by the current schema while it
// works, so processes starting together migrate one after the other (a
// waiting process gives up after about two minutes). SQLite needs no lock: a
// second writer waits on the database's own write lock.
func Migrate(ctx context.Context, db *sql.DB, dialect string) error {
	fsys, err := FS(dialect)
	if err != nil {
		return err
	}

	gooseDialect := goose.DialectSQLite3
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if dialect == DialectPostgres {
		gooseDialect = goose.DialectPostgres

		locker, err := schemaLocker(ctx, db)
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}

	provider, err := goose.NewProvider(gooseDialect, db, fsys, opts...)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", dialect, err)
	}

	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", dialect, err)
	}
	return nil
}

// schemaLocker returns a session locker whose advisory lock id is derived
// from the current schema, so that migrations of different schemas of one
// database (tests, several deployments) do not wait on each other.
func schemaLocker(ctx context.Context, db *sql.DB) (lock.SessionLocker, error) {
	var schema sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return nil, fmt.Errorf("migrate postgres: read current schema: %w", err)
	}
	if !schema.Valid {
		return nil, errors.New("migrate postgres: no schema of the search_path exists")
	}

	h := fnv.New64a()
	h.Write([]byte("rehook migrations " + schema.String))
	id := int64(h.Sum64() >> 1)

	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(id),
		lock.WithLockTimeout(1, lockWaitTries),
	)
	if err != nil {
		return nil, fmt.Errorf("migrate postgres: %w", err)
	}
	return locker, nil
}
