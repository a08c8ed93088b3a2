package postgres

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Settings are the pool size and statement timeout a Store runs with.
type Settings struct {
	// MaxConns is the most connections the pool opens.
	MaxConns int32
	// StatementTimeout is statement_timeout as Postgres reports it on a
	// connection of the pool, such as "30s", or "0" for no limit.
	StatementTimeout string
}

// Settings asks a connection of the pool for its statement_timeout, so the
// answer is what Postgres applies, not what was asked for.
func (s *Store) Settings(ctx context.Context) (Settings, error) {
	out := Settings{MaxConns: s.pool.Config().MaxConns}
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		return c.QueryRow(ctx, "SHOW statement_timeout").Scan(&out.StatementTimeout)
	})
	return out, err
}
