package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/rehook/rehook/store"
	"github.com/rehook/rehook/store/internal/rowprep"
)

const executionColumns = `id, webhook_id, registry_id, trigger_type, retrigger_of, delivery_id,
	state, result, attempts, next_attempt_at, claimed_until, created, duration, error,
	request_url, request_headers, request_body,
	response_status_code, response_status, response_headers, response_body`

// CreateExecutions implements store.Store. Besides what the interface says,
// it sets each execution's RegistryID to registryID (one that names another
// registry is an error), its State to pending and a zero NextAttemptAt to
// Created; the executions are changed only when the transaction commits.
// An event key repeated within one call counts once. A webhook or registry
// that does not exist gives store.ErrNotFound.
func (s *Store) CreateExecutions(
	ctx context.Context, registryID int64, eventKeys []string, execs []*store.Execution,
) error {
	created := rowprep.Now()
	rows, err := rowprep.Executions(registryID, execs, created)
	if err != nil {
		return fmt.Errorf("create executions in registry %d: %w", registryID, err)
	}

	err = s.withTx(ctx, s.write, nil, func(tx *sql.Tx) error {
		if err := recordEventKeys(ctx, tx, registryID, eventKeys, created); err != nil {
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
		return fmt.Errorf("create executions in registry %d: %w", registryID, err)
	}

	for i, e := range execs {
		*e = rows[i]
	}
	return nil
}

// recordEventKeys records the event keys of a registry, or returns
// store.ErrDuplicateEvent if one was recorded before.
func recordEventKeys(
	ctx context.Context, tx *sql.Tx, registryID int64, keys []string, created time.Time,
) error {
	seen := make(map[string]bool, len(keys))
	for _, key := range keys {
		if seen[key] {
			continue
		}
		seen[key] = true

		res, err := tx.ExecContext(ctx, `
			INSERT INTO event_keys (registry_id, key, created) VALUES (?, ?, ?)
			ON CONFLICT DO NOTHING`,
			registryID, key, micros(created))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrDuplicateEvent
		}
	}
	return nil
}

// insertExecution inserts e and sets its ID.
func insertExecution(ctx context.Context, tx *sql.Tx, e *store.Execution) error {
	retriggerOf := sql.NullInt64{Int64: e.RetriggerOf, Valid: e.RetriggerOf != 0}

	return tx.QueryRowContext(ctx, `
		INSERT INTO executions
			(webhook_id, registry_id, trigger_type, retrigger_of, delivery_id, state, result,
			attempts, next_attempt_at, claimed_until, created, duration, error,
			request_url, request_headers, request_body,
			response_status_code, response_status, response_headers, response_body)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id`,
		e.WebhookID, e.RegistryID, string(e.TriggerType), retriggerOf, e.DeliveryID,
		string(e.State), string(e.Result), e.Attempts, nullMicros(e.NextAttemptAt),
		nullMicros(e.ClaimedUntil), micros(e.Created), int64(e.Duration), e.Error,
		e.RequestURL, e.RequestHeaders, e.RequestBody,
		e.ResponseStatusCode, e.ResponseStatus, e.ResponseHeaders, e.ResponseBody,
	).Scan(&e.ID)
}

// GetExecution returns an execution if it belongs to webhookID.
func (s *Store) GetExecution(ctx context.Context, webhookID, id int64) (store.Execution, error) {
	var e store.Execution
	err := s.withRead(ctx, func(c *sql.Conn) error {
		row := c.QueryRowContext(ctx, `
			SELECT `+executionColumns+` FROM executions
			WHERE id = ? AND webhook_id = ?`,
			id, webhookID)

		var err error
		e, err = scanExecution(row)
		return err
	})
	if err != nil {
		return store.Execution{}, fmt.Errorf("get execution %d of webhook %d: %w",
			id, webhookID, err)
	}
	return e, nil
}

// GetExecutionByID returns an execution by its id.
func (s *Store) GetExecutionByID(ctx context.Context, id int64) (store.Execution, error) {
	var e store.Execution
	err := s.withRead(ctx, func(c *sql.Conn) error {
		row := c.QueryRowContext(ctx, `SELECT `+executionColumns+` FROM executions WHERE id = ?`,
			id)

		var err error
		e, err = scanExecution(row)
		return err
	})
	if err != nil {
		return store.Execution{}, fmt.Errorf("get execution %d: %w", id, err)
	}
	return e, nil
}

// ListExecutions implements store.Store. A page Size of 0 lists every
// execution; a negative Index or Size is an error. The count and the page
// are read from one snapshot.
func (s *Store) ListExecutions(
	ctx context.Context, webhookID int64, page store.Page,
) ([]store.Execution, int, error) {
	if page.Index < 0 || page.Size < 0 {
		return nil, 0, fmt.Errorf("list executions of webhook %d: invalid page %+v",
			webhookID, page)
	}
	limit := -1 // no limit
	if page.Size > 0 {
		limit = page.Size
	}

	execs := []store.Execution{}
	var total int
	opts := &sql.TxOptions{ReadOnly: true}
	err := s.withTx(ctx, s.read, opts, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT count(*) FROM executions WHERE webhook_id = ?`,
			webhookID).Scan(&total)
		if err != nil {
			return err
		}

		rows, err := tx.QueryContext(ctx, `
			SELECT `+executionColumns+` FROM executions
			WHERE webhook_id = ?
			ORDER BY id DESC
			LIMIT ? OFFSET ?`,
			webhookID, limit, page.Offset())
		if err != nil {
			return err
		}
		execs, err = collect(execs, rows, scanExecution)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list executions of webhook %d: %w", webhookID, err)
	}
	return execs, total, nil
}

// ListAttempts returns an execution's attempts in order, interrupted ones
// among them (before the attempt of the same number that followed them);
// none (or no such execution) is an empty list.
func (s *Store) ListAttempts(ctx context.Context, executionID int64) ([]store.Attempt, error) {
	attempts := []store.Attempt{}
	err := s.withRead(ctx, func(c *sql.Conn) error {
		rows, err := c.QueryContext(ctx, `
			SELECT execution_id, n, started, duration, result, status_code, error,
				response_excerpt, 0 AS interrupted
			FROM attempts
			WHERE execution_id = ?1
			UNION ALL
			SELECT execution_id, n, started, 0, '', 0, reason, '', 1
			FROM attempt_interruptions
			WHERE execution_id = ?1
			ORDER BY n, interrupted DESC, started`,
			executionID)
		if err != nil {
			return err
		}

		attempts, err = collect(attempts, rows, scanAttempt)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list attempts of execution %d: %w", executionID, err)
	}
	return attempts, nil
}

// ClaimExecution implements store.Store in one write transaction (see
// claim). A lease that ends at exactly `now` counts as expired only after
// `now`. An
// execution that does not exist gives store.ErrNotFound; `until` must be
// after `now`.
func (s *Store) ClaimExecution(
	ctx context.Context, id int64, now, until time.Time,
) (store.Execution, error) {
	if !until.After(now) {
		return store.Execution{}, fmt.Errorf("claim execution %d: lease end %s is not after %s",
			id, until, now)
	}

	var e store.Execution
	err := s.withTx(ctx, s.write, nil, func(tx *sql.Tx) error {
		var err error
		e, err = claim(ctx, tx, id, now, until)
		return err
	})
	if err != nil {
		return store.Execution{}, fmt.Errorf("claim execution %d: %w", id, err)
	}
	return e, nil
}

// querier is what a connection and a transaction have in common.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// whyNotClaimable tells, after a conditional update touched no row, whether
// the execution is missing (store.ErrNotFound) or not claimable
// (store.ErrNotClaimable).
func whyNotClaimable(ctx context.Context, q querier, id int64) error {
	var exists bool
	err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM executions WHERE id = ?)`, id).
		Scan(&exists)
	switch {
	case err != nil:
		return err
	case !exists:
		return store.ErrNotFound
	}
	return store.ErrNotClaimable
}

// RecordAttempt implements store.Store. The execution's attempt count
// becomes rec.Attempt.N, which must be positive and new for the execution
// (a repeated one gives store.ErrConflict). A pending record with a zero
// NextAttemptAt is due at once. A final execution gives
// store.ErrNotClaimable, a missing one store.ErrNotFound; either way nothing
// is written.
func (s *Store) RecordAttempt(
	ctx context.Context, executionID int64, rec store.AttemptRecord,
) error {
	a := rec.Attempt
	if a.N < 1 {
		return fmt.Errorf("record attempt of execution %d: attempt number %d is not positive",
			executionID, a.N)
	}

	state := store.StatePending
	next := rec.NextAttemptAt
	if rec.Final {
		state = store.StateFinal
	} else if next.IsZero() {
		next = rowprep.Now()
	}

	err := s.withTx(ctx, s.write, nil, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
			UPDATE executions SET
				attempts = ?, result = ?, duration = ?, error = ?,
				request_url = ?, request_headers = ?,
				response_status_code = ?, response_status = ?, response_headers = ?,
				response_body = ?,
				state = ?, next_attempt_at = ?, claimed_until = NULL
			WHERE id = ? AND state = 'pending'`,
			a.N, string(a.Result), int64(a.Duration), rowprep.Text(a.Error),
			rowprep.Text(rec.RequestURL), rowprep.Text(rec.RequestHeaders),
			rec.ResponseStatusCode, rowprep.Text(rec.ResponseStatus),
			rowprep.Text(rec.ResponseHeaders), rowprep.Text(rec.ResponseBody),
			string(state), nullMicros(next), executionID)
		if err := oneRow(res, err); errors.Is(err, store.ErrNotFound) {
			return whyNotClaimable(ctx, tx, executionID)
		} else if err != nil {
			return err
		}

		_, err = tx.ExecContext(ctx, `
			INSERT INTO attempts
				(execution_id, n, started, duration, result, status_code, error,
				response_excerpt)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			executionID, a.N, micros(a.Started), int64(a.Duration), string(a.Result),
			a.StatusCode, rowprep.Text(a.Error), rowprep.Text(a.ResponseExcerpt))
		return err
	})
	if err != nil {
		return fmt.Errorf("record attempt %d of execution %d: %w", a.N, executionID, err)
	}
	return nil
}

// ReleaseExecution implements store.Store; a missing execution gives
// store.ErrNotFound.
func (s *Store) ReleaseExecution(ctx context.Context, id int64) error {
	err := s.withWrite(ctx, func(c *sql.Conn) error {
		res, err := c.ExecContext(ctx, `UPDATE executions SET claimed_until = NULL WHERE id = ?`,
			id)
		return oneRow(res, err)
	})
	if err != nil {
		return fmt.Errorf("release execution %d: %w", id, err)
	}
	return nil
}

// ListDuePending implements store.Store: pending executions whose
// NextAttemptAt is not after `before` and whose lease, if any, ended before
// it, in id order. A limit below 1 lists none.
func (s *Store) ListDuePending(ctx context.Context, before time.Time, limit int) ([]int64, error) {
	ids := []int64{}
	if limit < 1 {
		return ids, nil
	}

	err := s.withRead(ctx, func(c *sql.Conn) error {
		rows, err := c.QueryContext(ctx, `
			SELECT id FROM executions
			WHERE state = 'pending' AND next_attempt_at <= ?1
				AND (claimed_until IS NULL OR claimed_until < ?1)
			ORDER BY id
			LIMIT ?2`,
			micros(before), limit)
		if err != nil {
			return err
		}

		ids, err = collect(ids, rows, scanID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list due pending executions: %w", err)
	}
	return ids, nil
}

func scanExecution(row scanner) (store.Execution, error) {
	var e store.Execution
	var trigger, state, result string
	var retriggerOf, next, claimed sql.NullInt64
	var created, duration int64
	err := row.Scan(&e.ID, &e.WebhookID, &e.RegistryID, &trigger, &retriggerOf, &e.DeliveryID,
		&state, &result, &e.Attempts, &next, &claimed, &created, &duration, &e.Error,
		&e.RequestURL, &e.RequestHeaders, &e.RequestBody,
		&e.ResponseStatusCode, &e.ResponseStatus, &e.ResponseHeaders, &e.ResponseBody)
	if err != nil {
		return store.Execution{}, err
	}

	e.TriggerType = store.Trigger(trigger)
	e.RetriggerOf = retriggerOf.Int64
	e.State = store.State(state)
	e.Result = store.Result(result)
	e.NextAttemptAt = fromNullMicros(next)
	e.ClaimedUntil = fromNullMicros(claimed)
	e.Created = fromMicros(created)
	e.Duration = time.Duration(duration)
	return e, nil
}

func scanAttempt(row scanner) (store.Attempt, error) {
	var a store.Attempt
	var result string
	var started, duration int64
	err := row.Scan(&a.ExecutionID, &a.N, &started, &duration, &result, &a.StatusCode,
		&a.Error, &a.ResponseExcerpt, &a.Interrupted)
	if err != nil {
		return store.Attempt{}, err
	}

	a.Started = fromMicros(started)
	a.Duration = time.Duration(duration)
	a.Result = store.Result(result)
	return a, nil
}
