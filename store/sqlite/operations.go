package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/rehook/rehook/store"
)

// CountPending implements store.Store.
func (s *Store) CountPending(ctx context.Context) (int, error) {
	var n int
	err := s.withRead(ctx, func(c *sql.Conn) error {
		return c.QueryRowContext(ctx,
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
	err := s.withRead(ctx, func(c *sql.Conn) error {
		row := c.QueryRowContext(ctx,
			`SELECT `+registryColumns+` FROM registries WHERE id = ?`, id)

		var err error
		r, err = scanRegistry(row)
		return err
	})
	if err != nil {
		return store.Registry{}, fmt.Errorf("get registry %d: %w", id, err)
	}
	return r, nil
}
