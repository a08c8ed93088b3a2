package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/rehook/rehook/store"
	"github.com/rehook/rehook/store/internal/rowprep"
)

// UpdateWebhook implements store.Store.
func (s *Store) UpdateWebhook(ctx context.Context, w *store.Webhook) error {
	triggers, err := rowprep.EncodeList(w.Triggers)
	if err != nil {
		return fmt.Errorf("update webhook %d: triggers: %w", w.ID, err)
	}
	headers, err := rowprep.EncodeList(w.ExtraHeaders)
	if err != nil {
		return fmt.Errorf("update webhook %d: extra headers: %w", w.ID, err)
	}

	var secret any // NULL when there is none
	if len(w.Secret) > 0 {
		secret = w.Secret
	}
	modified := rowprep.Now()

	var updated store.Webhook
	err = s.withTx(ctx, s.write, nil, func(tx *sql.Tx) error {
		var version int64
		err := tx.QueryRowContext(ctx, `SELECT version FROM webhooks WHERE id = ?`, w.ID).
			Scan(&version)
		if err != nil {
			return err
		}
		if w.Version != 0 && w.Version != version {
			return store.ErrVersionMismatch
		}

		row := tx.QueryRowContext(ctx, `
			UPDATE webhooks SET
				identifier = ?, name = ?, description = ?, url = ?, enabled = ?,
				insecure = ?, triggers = ?, extra_headers = ?, secret = ?,
				secret_identifier = ?, version = version + 1, modified = max(created, ?)
			WHERE id = ?
			RETURNING `+webhookColumns,
			w.Identifier, w.Name, w.Description, w.URL, w.Enabled, w.Insecure, triggers,
			headers, secret, w.SecretIdentifier, micros(modified), w.ID)
		updated, err = scanWebhook(row)
		return err
	})
	if err != nil {
		return fmt.Errorf("update webhook %d: %w", w.ID, err)
	}

	*w = updated
	return nil
}

// DeleteWebhook implements store.Store; the foreign keys cascade to the
// executions, attempts and idempotency keys.
func (s *Store) DeleteWebhook(ctx context.Context, id int64) error {
	err := s.withWrite(ctx, func(c *sql.Conn) error {
		res, err := c.ExecContext(ctx, `DELETE FROM webhooks WHERE id = ?`, id)
		return oneRow(res, err)
	})
	if err != nil {
		return fmt.Errorf("delete webhook %d: %w", id, err)
	}
	return nil
}

// webhookOrder maps a sort field to its column.
var webhookOrder = map[store.WebhookSortField]string{
	"":                     "identifier",
	store.SortByIdentifier: "identifier",
	store.SortByName:       "name",
	store.SortByCreated:    "created",
	store.SortByModified:   "modified",
}

// QueryWebhooks implements store.Store. A page Size of 0 lists every
// match; the count and the page are read from one snapshot. Text sorts by
// bytes, as the Postgres store does.
func (s *Store) QueryWebhooks(
	ctx context.Context, registryID int64, q store.WebhookQuery,
) ([]store.Webhook, int, error) {
	column, known := webhookOrder[q.SortField]
	if !known || q.Page.Index < 0 || q.Page.Size < 0 {
		return nil, 0, fmt.Errorf("query webhooks of registry %d: invalid query %+v",
			registryID, q)
	}
	dir := "ASC"
	if q.Descending {
		dir = "DESC"
	}
	limit := -1 // no limit
	if q.Page.Size > 0 {
		limit = q.Page.Size
	}

	where := `registry_id = ?`
	args := []any{registryID}
	if q.Search != "" {
		where += ` AND (identifier LIKE ? ESCAPE '\' OR name LIKE ? ESCAPE '\')`
		pattern := rowprep.ContainsPattern(q.Search)
		args = append(args, pattern, pattern)
	}

	webhooks := []store.Webhook{}
	var total int
	opts := &sql.TxOptions{ReadOnly: true}
	err := s.withTx(ctx, s.read, opts, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT count(*) FROM webhooks WHERE `+where, args...).
			Scan(&total)
		if err != nil {
			return err
		}

		rows, err := tx.QueryContext(ctx, `
			SELECT `+webhookColumns+` FROM webhooks
			WHERE `+where+`
			ORDER BY `+column+` `+dir+`, id `+dir+`
			LIMIT ? OFFSET ?`,
			append(args, limit, q.Page.Offset())...)
		if err != nil {
			return err
		}
		webhooks, err = collect(webhooks, rows, scanWebhook)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("query webhooks of registry %d: %w", registryID, err)
	}
	return webhooks, total, nil
}

// LatestResults implements store.Store.
func (s *Store) LatestResults(
	ctx context.Context, webhookIDs []int64,
) (map[int64]store.Result, error) {
	results := map[int64]store.Result{}
	if len(webhookIDs) == 0 {
		return results, nil
	}

	args := make([]any, len(webhookIDs))
	for i, id := range webhookIDs {
		args[i] = id
	}
	err := s.withRead(ctx, func(c *sql.Conn) error {
		rows, err := c.QueryContext(ctx, `
			SELECT w.id, (
				SELECT e.result FROM executions e
				WHERE e.webhook_id = w.id AND e.result <> ''
				ORDER BY e.id DESC
				LIMIT 1)
			FROM webhooks w
			WHERE w.id IN (`+placeholders(len(args))+`)`,
			args...)
		if err != nil {
			return err
		}
		defer rows.Close()

		for rows.Next() {
			var id int64
			var result sql.NullString
			if err := rows.Scan(&id, &result); err != nil {
				return err
			}
			if result.Valid {
				results[id] = store.Result(result.String)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("latest results of %d webhooks: %w", len(webhookIDs), err)
	}
	return results, nil
}

// FilterExecutions implements store.Store, with ListExecutions' rules on
// pages.
func (s *Store) FilterExecutions(
	ctx context.Context, webhookID int64, f store.ExecutionFilter, page store.Page,
) ([]store.Execution, int, error) {
	if page.Index < 0 || page.Size < 0 {
		return nil, 0, fmt.Errorf("filter executions of webhook %d: invalid page %+v",
			webhookID, page)
	}
	limit := -1 // no limit
	if page.Size > 0 {
		limit = page.Size
	}

	where := `webhook_id = ?`
	args := []any{webhookID}
	if len(f.Results) > 0 {
		where += ` AND result IN (` + placeholders(len(f.Results)) + `)`
		for _, r := range f.Results {
			args = append(args, string(r))
		}
	}
	if len(f.Triggers) > 0 {
		where += ` AND trigger_type IN (` + placeholders(len(f.Triggers)) + `)`
		for _, t := range f.Triggers {
			args = append(args, string(t))
		}
	}

	execs := []store.Execution{}
	var total int
	opts := &sql.TxOptions{ReadOnly: true}
	err := s.withTx(ctx, s.read, opts, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT count(*) FROM executions WHERE `+where, args...).
			Scan(&total)
		if err != nil {
			return err
		}

		rows, err := tx.QueryContext(ctx, `
			SELECT `+executionColumns+` FROM executions
			WHERE `+where+`
			ORDER BY id DESC
			LIMIT ? OFFSET ?`,
			append(args, limit, page.Offset())...)
		if err != nil {
			return err
		}
		execs, err = collect(execs, rows, scanExecution)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("filter executions of webhook %d: %w", webhookID, err)
	}
	return execs, total, nil
}

// CreateRetrigger implements store.Store. e.RegistryID must be set. Keys
// recorded before key.NotBefore, of any execution, are deleted on the way.
// The write connection serializes the check and the insert.
func (s *Store) CreateRetrigger(
	ctx context.Context, key store.IdempotencyKey, e *store.Execution,
) (bool, error) {
	if e.RegistryID == 0 {
		return false, fmt.Errorf("create retrigger of execution %d: no registry", key.ExecutionID)
	}
	created := rowprep.Now()
	rows, err := rowprep.Executions(e.RegistryID, []*store.Execution{e}, created)
	if err != nil {
		return false, fmt.Errorf("create retrigger of execution %d: %w", key.ExecutionID, err)
	}
	row := rows[0]

	var earlier int64
	err = s.withTx(ctx, s.write, nil, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE created < ?`,
			micros(key.NotBefore))
		if err != nil {
			return err
		}

		err = tx.QueryRowContext(ctx, `
			SELECT new_execution_id FROM idempotency_keys
			WHERE execution_id = ? AND api_key_id = ? AND key = ?`,
			key.ExecutionID, key.APIKeyID, key.Key).Scan(&earlier)
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}

		if err := insertExecution(ctx, tx, &row); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `
			INSERT INTO idempotency_keys (execution_id, api_key_id, key, new_execution_id, created)
			VALUES (?, ?, ?, ?, ?)`,
			key.ExecutionID, key.APIKeyID, key.Key, row.ID, micros(created))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("create retrigger of execution %d: %w", key.ExecutionID, err)
	}

	if earlier != 0 {
		got, err := s.GetExecutionByID(ctx, earlier)
		if err != nil {
			return false, fmt.Errorf("create retrigger of execution %d: %w", key.ExecutionID, err)
		}
		*e = got
		return false, nil
	}
	*e = row
	return true, nil
}

// FindRetrigger implements store.Store.
func (s *Store) FindRetrigger(
	ctx context.Context, key store.IdempotencyKey,
) (store.Execution, error) {
	var e store.Execution
	err := s.withRead(ctx, func(c *sql.Conn) error {
		row := c.QueryRowContext(ctx, `
			SELECT `+executionColumns+` FROM executions
			WHERE id = (
				SELECT new_execution_id FROM idempotency_keys
				WHERE execution_id = ? AND api_key_id = ? AND key = ? AND created >= ?)`,
			key.ExecutionID, key.APIKeyID, key.Key, micros(key.NotBefore))

		var err error
		e, err = scanExecution(row)
		return err
	})
	if err != nil {
		return store.Execution{}, fmt.Errorf("find retrigger of execution %d: %w",
			key.ExecutionID, err)
	}
	return e, nil
}

// RetriggerMatching implements store.Store. The selection and the inserts
// run in one write transaction, which the write connection serializes with
// every other write.
func (s *Store) RetriggerMatching(
	ctx context.Context, webhookID int64, sel store.RetriggerSelection,
) (int, []store.Execution, error) {
	limit := sel.EffectiveLimit()
	if limit < 1 || limit > store.MaxBulkLimit {
		return 0, nil, fmt.Errorf("retrigger executions of webhook %d: limit %d not in 1..%d",
			webhookID, sel.Limit, store.MaxBulkLimit)
	}

	where := `webhook_id = ? AND state = 'final'`
	args := []any{webhookID}
	if len(sel.Results) > 0 {
		where += ` AND result IN (` + placeholders(len(sel.Results)) + `)`
		for _, r := range sel.Results {
			args = append(args, string(r))
		}
	}
	if sel.Trigger != "" {
		where += ` AND trigger_type = ?`
		args = append(args, string(sel.Trigger))
	}
	if !sel.Since.IsZero() {
		where += ` AND created >= ?`
		args = append(args, micros(sel.Since))
	}
	if !sel.Until.IsZero() {
		where += ` AND created < ?`
		args = append(args, micros(sel.Until))
	}

	var selected []store.Execution
	var rows []store.Execution
	err := s.withTx(ctx, s.write, nil, func(tx *sql.Tx) error {
		var exists int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM webhooks WHERE id = ?`, webhookID).
			Scan(&exists)
		if err != nil {
			return err
		}

		found, err := tx.QueryContext(ctx, `
			SELECT `+executionColumns+` FROM executions AS original
			WHERE `+where+`
				AND NOT EXISTS (
					SELECT 1 FROM executions AS later
					WHERE later.delivery_id = original.delivery_id AND later.id > original.id)
			ORDER BY id
			LIMIT ?`,
			append(args, limit)...)
		if err != nil {
			return err
		}
		selected, err = collect(selected, found, scanExecution)
		if err != nil || sel.DryRun || len(selected) == 0 {
			return err
		}

		rows, err = rowprep.Executions(selected[0].RegistryID,
			rowprep.Retriggers(selected, sel.RequestURL), rowprep.Now())
		if err != nil {
			return err
		}
		for i := range rows {
			if err := insertExecution(ctx, tx, &rows[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("retrigger executions of webhook %d: %w", webhookID, err)
	}

	if rows == nil {
		rows = []store.Execution{}
	}
	return len(selected), rows, nil
}

// placeholders is n comma-separated question marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
