package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rehook/rehook/store"
)

// CountPendingForWebhook implements store.Store.
func (s *Store) CountPendingForWebhook(ctx context.Context, webhookID int64) (int, error) {
	var n int
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		return c.QueryRow(ctx, `
			SELECT count(*) FROM executions
			WHERE webhook_id = $1 AND state = 'pending'`,
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
	var secrets []store.WebhookSecret
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, `
			SELECT id, secret FROM webhooks
			WHERE id > $1 AND secret IS NOT NULL
			ORDER BY id
			LIMIT $2`,
			afterID, limit)
		if err != nil {
			return err
		}

		secrets, err = pgx.CollectRows(rows,
			func(row pgx.CollectableRow) (store.WebhookSecret, error) {
				var ws store.WebhookSecret
				err := row.Scan(&ws.WebhookID, &ws.Secret)
				return ws, err
			})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list webhook secrets after %d: %w", afterID, err)
	}
	if secrets == nil {
		secrets = []store.WebhookSecret{}
	}
	return secrets, nil
}

// ReplaceWebhookSecret implements store.Store.
func (s *Store) ReplaceWebhookSecret(ctx context.Context, id int64, prev, next []byte) error {
	err := s.withTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE webhooks SET secret = $3
			WHERE id = $1 AND secret IS NOT DISTINCT FROM $2`,
			id, nullBytes(prev), nullBytes(next))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			return nil
		}

		var one int
		err = tx.QueryRow(ctx, `SELECT 1 FROM webhooks WHERE id = $1`, id).Scan(&one)
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

// nullBytes is b as a bytea parameter: NULL when empty, as webhooks store
// no secret.
func nullBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
