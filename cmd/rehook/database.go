package main

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/rehook/rehook/store"
	"github.com/rehook/rehook/store/postgres"
)

// postgresOptions are REHOOK_DB_MAX_CONNS and REHOOK_DB_STATEMENT_TIMEOUT as
// the Postgres store takes them.
func (c config) postgresOptions() postgres.Options {
	return postgres.Options{
		MaxConns:         int32(min(c.DBMaxConns, 1<<20)),
		StatementTimeout: c.DBStatementTimeout,
	}
}

// logDatabaseSettings logs the pool size and statement timeout a Postgres
// store runs with, as Postgres reports them, so an operator sees what
// REHOOK_DB_* and the URL came to. Other stores have nothing to report.
func logDatabaseSettings(ctx context.Context, s store.Store, log *zap.Logger) {
	pg, ok := s.(*postgres.Store)
	if !ok {
		return
	}

	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	got, err := pg.Settings(ctx)
	if err != nil {
		log.Warn("read database settings", zap.Error(err))
		return
	}
	log.Info("database pool", zap.Int32("max_conns", got.MaxConns),
		zap.String("statement_timeout", got.StatementTimeout))
}
