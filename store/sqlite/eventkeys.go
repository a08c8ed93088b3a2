package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/rehook/rehook/store"
	"github.com/rehook/rehook/store/internal/rowprep"
)

// PutEventKey implements store.Store.
func (s *Store) PutEventKey(ctx context.Context, registryID int64, key string) error {
	err := s.withWrite(ctx, func(c *sql.Conn) error {
		_, err := c.ExecContext(ctx, `
			INSERT INTO event_keys (registry_id, key, created) VALUES (?, ?, ?)
			ON CONFLICT DO NOTHING`,
			registryID, key, micros(rowprep.Now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("put event key in registry %d: %w", registryID, err)
	}
	return nil
}

// HasEventKey implements store.Store.
func (s *Store) HasEventKey(ctx context.Context, registryID int64, key string) (bool, error) {
	err := s.withRead(ctx, func(c *sql.Conn) error {
		var one int
		return c.QueryRowContext(ctx, `
			SELECT 1 FROM event_keys WHERE registry_id = ? AND key = ?`,
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
