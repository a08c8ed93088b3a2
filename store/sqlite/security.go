package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/rehook/rehook/store"
)

// CountPendingForWebhook implements store.Store.
func (s *Store) CountPendingForWebhook(ctx context.Context, webhookID int64) (int, error) {
	var n int
	err := s.withRead(ctx, func(c *sql.Conn) error {
		return c.QueryRowContext(ctx, `
			SELECT count(*) FROM executions
			WHERE webhook_id = ? AND state = 'pending'`,
			webhookID).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("count pending executions of webhook %d: %w", webhookID, err)
	}
	return n, nil
}

// ListWebhookSecrets implements store.Store.
func (s *Store) ListWebhookSecrets(ctx context.Context, afterID int64, limit int) (
	[]store.WebhookSecret, error) {
	secrets := []store.WebhookSecret{}
	err := s.withRead(ctx, func(c *sql.Conn) error {
		rows, err := c.QueryContext(ctx, `
			SELECT id, secret FROM webhooks
			WHERE id > ? AND secret IS NOT NULL
			ORDER BY id
			LIMIT ?`,
			afterID, limit)
		if err != nil {
			return err
		}

		secrets, err = collect(secrets, rows, func(row scanner) (store.WebhookSecret, error) {
			var ws store.WebhookSecret
			err := row.Scan(&ws.WebhookID, &ws.Secret)
			return ws, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list webhook secrets after %d: %w", afterID, err)
	}
	return secrets, nil
}

// ReplaceWebhookSecret implements store.Store.
func (s *Store) ReplaceWebhookSecret(ctx context.Context, id int64, prev, next []byte) error {
	err := s.withTx(ctx, s.write, nil, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE webhooks SET secret = ? WHERE id = ? AND secret IS ?`,
			nullBlob(next), id, nullBlob(prev))
		if err := oneRow(res, err); !errors.Is(err, store.ErrNotFound) {
			return err
		}

		var one int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM webhooks WHERE id = ?`, id).Scan(&one)
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: the secret changed in the meantime", store.ErrConflict)
	})
	if err != nil {
		return fmt.Errorf("replace secret of webhook %d: %w", id, err)
	}
	return nil
}

// nullBlob is b as a BLOB parameter: NULL when empty, as webhooks store no
// secret.
func nullBlob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}
