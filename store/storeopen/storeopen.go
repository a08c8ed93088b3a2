// Package storeopen opens the store.Store that a database URL names, so that
// commands need not know the implementations.
package storeopen

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rehook/rehook/store"
	"github.com/rehook/rehook/store/postgres"
	"github.com/rehook/rehook/store/sqlite"
)

const wantSchemes = "want postgres://..., postgresql://..., sqlite:PATH or sqlite://PATH"

// Open opens the store that databaseURL names and, when migrate is true,
// applies its pending migrations. The URL is one of:
//
//   - postgres://... or postgresql://...: Postgres, with the URL as pgx reads
//     it; pool_max_conns and run-time parameters such as statement_timeout
//     (in milliseconds) may be given as query parameters.
//   - sqlite:PATH or sqlite://PATH: the SQLite file at PATH, taken as it is,
//     relative to the working directory unless it starts with "/". So
//     sqlite:rehook.db and sqlite://rehook.db are ./rehook.db, and
//     sqlite:/var/lib/rehook.db and sqlite:///var/lib/rehook.db are
//     /var/lib/rehook.db.
//
// Any other URL is an error that names its scheme but not the rest, which
// may hold a password. A database that cannot be reached gives an error
// wrapping store.ErrUnavailable.
func Open(ctx context.Context, databaseURL string, migrate bool) (store.Store, error) {
	return OpenWith(ctx, databaseURL, migrate, postgres.Options{})
}

// OpenWith is Open with the Postgres pool tuned by pg, whose non-zero fields
// win over the URL's pool_max_conns and statement_timeout. A SQLite store
// has no pool and ignores pg.
func OpenWith(ctx context.Context, databaseURL string, migrate bool,
	pg postgres.Options) (store.Store, error) {
	scheme, rest, ok := strings.Cut(databaseURL, ":")
	switch {
	case databaseURL == "":
		return nil, errors.New("database url is empty; " + wantSchemes)
	case !ok:
		return nil, errors.New("database url has no scheme; " + wantSchemes)
	}

	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		return openPostgres(ctx, databaseURL, migrate, pg)
	case "sqlite":
		return openSQLite(ctx, strings.TrimPrefix(rest, "//"), migrate)
	}
	return nil, fmt.Errorf("database url scheme %q is not supported; %s", scheme, wantSchemes)
}

func openPostgres(ctx context.Context, url string, migrate bool,
	opts postgres.Options) (store.Store, error) {
	s, err := postgres.Open(ctx, url, opts)
	if err != nil {
		return nil, err
	}

	if migrate {
		if err := s.Migrate(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

func openSQLite(ctx context.Context, path string, migrate bool) (store.Store, error) {
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}

	if migrate {
		if err := s.Migrate(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}
