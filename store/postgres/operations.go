package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rehook/rehook/store"
)

// CountPending implements store.Store.
func (s *Store) CountPending(ctx context.Context) (int, error) {
	var n int
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		return c.QueryRow(ctx,
			`SELECT count(*) FROM executions WHERE state = 'pending'`).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("count pending executions: %w", err)
	}
	return n, nil
}

// GetRegistryByID implements store.Store.
func (s *Store) GetRegistryByID(ctx context.Context, id int64) (store.Registry, error) {
	var r store.Registry
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		row := c.QueryRow(ctx, `SELECT `+registryColumns+` FROM registries WHERE id = $1`, id)

		var err error
		r, err = scanRegistry(row)
		return err
	})
	if err != nil {
		return store.Registry{}, fmt.Errorf("get registry %d: %w", id, err)
	}
	return r, nil
}
