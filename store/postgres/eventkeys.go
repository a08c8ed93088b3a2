package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rehook/rehook/store"
	"github.com/rehook/rehook/store/internal/rowprep"
)

// PutEventKey implements store.Store.
func (s *Store) PutEventKey(ctx context.Context, registryID int64, key string) error {
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		_, err := c.Exec(ctx, `
			INSERT INTO event_keys (registry_id, key, created) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING`,
			registryID, key, rowprep.Now())
		return err
	})
	if err != nil {
		return fmt.Errorf("put event key in registry %d: %w", registryID, err)
	}
	return nil
}

// HasEventKey implements store.Store.
func (s *Store) HasEventKey(ctx context.Context, registryID int64, key string) (bool, error) {
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		var one int
		return c.QueryRow(ctx, `
			SELECT 1 FROM event_keys WHERE registry_id = $1 AND key = $2`,
			registryID, key).Scan(&one)
	})
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up event key in registry %d: %w", registryID, err)
	}
	return true, nil
}
