package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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

	var secret []byte // NULL when there is none
	if len(w.Secret) > 0 {
		secret = w.Secret
	}
	modified := rowprep.Now()

	var updated store.Webhook
	err = s.withTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var version int64
		err := tx.QueryRow(ctx, `SELECT version FROM webhooks WHERE id = $1 FOR UPDATE`, w.ID).
			Scan(&version)
		if err != nil {
			return err
		}
		if w.Version != 0 && w.Version != version {
			return store.ErrVersionMismatch
		}

		row := tx.QueryRow(ctx, `
			UPDATE webhooks SET
				identifier = $2, name = $3, description = $4, url = $5, enabled = $6,
				insecure = $7, triggers = $8, extra_headers = $9, secret = $10,
				secret_identifier = $11, version = version + 1,
				modified = greatest(created, $12)
			WHERE id = $1
			RETURNING `+webhookColumns,
			w.ID, w.Identifier, w.Name, w.Description, w.URL, w.Enabled, w.Insecure, triggers,
			headers, secret, w.SecretIdentifier, modified)
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
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		return oneRow(c.Exec(ctx, `DELETE FROM webhooks WHERE id = $1`, id))
	})
	if err != nil {
		return fmt.Errorf("delete webhook %d: %w", id, err)
	}
	return nil
}

// webhookOrder maps a sort field to its column, text in byte order so that
// both stores sort alike whatever the database's collation.
var webhookOrder = map[store.WebhookSortField]string{
	"":                     `identifier COLLATE "C"`,
	store.SortByIdentifier: `identifier COLLATE "C"`,
	store.SortByName:       `name COLLATE "C"`,
	store.SortByCreated:    "created",
	store.SortByModified:   "modified",
}

// args collects the arguments of a query built piece by piece and names
// their placeholders.
type args []any

// add appends v and returns its placeholder.
func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// QueryWebhooks implements store.Store. A page Size of 0 lists every
// match; the count and the page are read from one snapshot. Search ignores
// case as ILIKE does (beyond ASCII too).
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
	var limit *int // nil: no limit
	if q.Page.Size > 0 {
		limit = &q.Page.Size
	}

	var a args
	where := `registry_id = ` + a.add(registryID)
	if q.Search != "" {
		p := a.add(rowprep.ContainsPattern(q.Search))
		where += ` AND (identifier ILIKE ` + p + ` OR name ILIKE ` + p + `)`
	}
	filter := len(a)

	webhooks := []store.Webhook{}
	var total int
	opts := pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	err := s.withTx(ctx, opts, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT count(*) FROM webhooks WHERE `+where, a[:filter]...).
			Scan(&total)
		if err != nil {
			return err
		}

		rows, err := tx.Query(ctx, `
			SELECT `+webhookColumns+` FROM webhooks
			WHERE `+where+`
			ORDER BY `+column+` `+dir+`, id `+dir+`
			LIMIT `+a.add(limit)+` OFFSET `+a.add(q.Page.Offset()),
			a...)
		if err != nil {
			return err
		}
		webhooks, err = pgx.AppendRows(webhooks, rows, rowTo(scanWebhook))
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

	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, `
			SELECT w.id, (
				SELECT e.result FROM executions e
				WHERE e.webhook_id = w.id AND e.result <> ''
				ORDER BY e.id DESC
				LIMIT 1)
			FROM webhooks w
			WHERE w.id = ANY($1)`,
			webhookIDs)
		if err != nil {
			return err
		}

		var id int64
		var result *string
		_, err = pgx.ForEachRow(rows, []any{&id, &result}, func() error {
			if result != nil {
				results[id] = store.Result(*result)
			}
			return nil
		})
		return err
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
	var limit *int // nil: no limit
	if page.Size > 0 {
		limit = &page.Size
	}

	var a args
	where := `webhook_id = ` + a.add(webhookID)
	if len(f.Results) > 0 {
		where += ` AND result = ANY(` + a.add(textList(f.Results)) + `)`
	}
	if len(f.Triggers) > 0 {
		where += ` AND trigger_type = ANY(` + a.add(textList(f.Triggers)) + `)`
	}
	filter := len(a)

	execs := []store.Execution{}
	var total int
	opts := pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	err := s.withTx(ctx, opts, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT count(*) FROM executions WHERE `+where,
			customPlan(a[:filter]...)...).Scan(&total)
		if err != nil {
			return err
		}

		rows, err := tx.Query(ctx, `
			SELECT `+executionColumns+` FROM executions
			WHERE `+where+`
			ORDER BY id DESC
			LIMIT `+a.add(limit)+` OFFSET `+a.add(page.Offset()),
			customPlan(a...)...)
		if err != nil {
			return err
		}
		execs, err = pgx.AppendRows(execs, rows, rowTo(scanExecution))
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("filter executions of webhook %d: %w", webhookID, err)
	}
	return execs, total, nil
}

// textList converts a list of string-based values for an ANY($n) argument.
func textList[T ~string](list []T) []string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = string(v)
	}
	return out
}

// errKeyTaken: another transaction recorded the idempotency key first.
var errKeyTaken = errors.New("idempotency key taken")

// errKeyGone: the key another transaction recorded first is gone already.
var errKeyGone = errors.New("idempotency key gone")

// CreateRetrigger implements store.Store. e.RegistryID must be set. Keys
// recorded before key.NotBefore, of any execution, are deleted on the way.
// When two transactions race on one key, the key's primary key makes the
// second wait for the first and, once it commits, roll back and answer
// with the first one's execution.
func (s *Store) CreateRetrigger(
	ctx context.Context, key store.IdempotencyKey, e *store.Execution,
) (bool, error) {
	if e.RegistryID == 0 {
		return false, fmt.Errorf("create retrigger of execution %d: no registry", key.ExecutionID)
	}

	// A lost race is followed by a read of the winner's key; should that key
	// have gone meanwhile (expired, execution deleted), try again.
	for range 3 {
		created, err := s.createRetrigger(ctx, key, e)
		if errors.Is(err, errKeyGone) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("create retrigger of execution %d: %w", key.ExecutionID, err)
		}
		return created, nil
	}
	return false, fmt.Errorf("create retrigger of execution %d: idempotency key %q kept "+
		"changing: %w", key.ExecutionID, key.Key, store.ErrConflict)
}

func (s *Store) createRetrigger(
	ctx context.Context, key store.IdempotencyKey, e *store.Execution,
) (bool, error) {
	created := rowprep.Now()
	rows, err := rowprep.Executions(e.RegistryID, []*store.Execution{e}, created)
	if err != nil {
		return false, err
	}
	row := rows[0]

	var earlier int64
	err = s.withTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM idempotency_keys WHERE created < $1`,
			dbTime(key.NotBefore))
		if err != nil {
			return err
		}

		err = tx.QueryRow(ctx, `
			SELECT new_execution_id FROM idempotency_keys
			WHERE execution_id = $1 AND api_key_id = $2 AND key = $3`,
			key.ExecutionID, key.APIKeyID, key.Key).Scan(&earlier)
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}

		if err := insertExecution(ctx, tx, &row); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO idempotency_keys (execution_id, api_key_id, key, new_execution_id, created)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT DO NOTHING`,
			key.ExecutionID, key.APIKeyID, key.Key, row.ID, created)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errKeyTaken
		}
		return nil
	})
	if errors.Is(err, errKeyTaken) {
		err = s.withConn(ctx, func(c *pgxpool.Conn) error {
			return c.QueryRow(ctx, `
				SELECT new_execution_id FROM idempotency_keys
				WHERE execution_id = $1 AND api_key_id = $2 AND key = $3`,
				key.ExecutionID, key.APIKeyID, key.Key).Scan(&earlier)
		})
		if errors.Is(err, store.ErrNotFound) {
			return false, errKeyGone
		}
	}
	if err != nil {
		return false, err
	}

	if earlier != 0 {
		got, err := s.GetExecutionByID(ctx, earlier)
		if err != nil {
			return false, err
		}
		*e = got
		return false, nil
	}
	*e = row
	return true, nil
}

// RetriggerMatching implements store.Store. The transaction takes a lock on
// the webhook's row that excludes other bulk retriggers and updates of the
// webhook, not the inserts of its executions; the selection that follows
// sees every retrigger committed before it.
func (s *Store) RetriggerMatching(
	ctx context.Context, webhookID int64, sel store.RetriggerSelection,
) (int, []store.Execution, error) {
	limit := sel.EffectiveLimit()
	if limit < 1 || limit > store.MaxBulkLimit {
		return 0, nil, fmt.Errorf("retrigger executions of webhook %d: limit %d not in 1..%d",
			webhookID, sel.Limit, store.MaxBulkLimit)
	}

	var a args
	where := `webhook_id = ` + a.add(webhookID) + ` AND state = 'final'`
	if len(sel.Results) > 0 {
		where += ` AND result = ANY(` + a.add(textList(sel.Results)) + `)`
	}
	if sel.Trigger != "" {
		where += ` AND trigger_type = ` + a.add(string(sel.Trigger))
	}
	if !sel.Since.IsZero() {
		where += ` AND created >= ` + a.add(dbTime(sel.Since))
	}
	if !sel.Until.IsZero() {
		where += ` AND created < ` + a.add(dbTime(sel.Until))
	}

	var selected []store.Execution
	var rows []store.Execution
	err := s.withTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var exists int
		err := tx.QueryRow(ctx, `SELECT 1 FROM webhooks WHERE id = $1 FOR NO KEY UPDATE`,
			webhookID).Scan(&exists)
		if err != nil {
			return err
		}

		found, err := tx.Query(ctx, `
			SELECT `+executionColumns+` FROM executions AS original
			WHERE `+where+`
				AND NOT EXISTS (
					SELECT 1 FROM executions AS later
					WHERE later.delivery_id = original.delivery_id AND later.id > original.id)
			ORDER BY id
			LIMIT `+a.add(limit),
			a...)
		if err != nil {
			return err
		}
		selected, err = pgx.AppendRows(selected, found, rowTo(scanExecution))
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

// FindRetrigger implements store.Store.
func (s *Store) FindRetrigger(ctx context.Context, key store.IdempotencyKey) (
	store.Execution, error) {
	var e store.Execution
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		row := c.QueryRow(ctx, `
			SELECT `+executionColumns+` FROM executions
			WHERE id = (
				SELECT new_execution_id FROM idempotency_keys
				WHERE execution_id = $1 AND api_key_id = $2 AND key = $3 AND created >= $4)`,
			key.ExecutionID, key.APIKeyID, key.Key, dbTime(key.NotBefore))
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
