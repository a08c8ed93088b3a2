package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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

	if len(eventKeys) == 0 && len(rows) == 1 {
		// One row and no event keys (a retrigger) is one statement, atomic by
		// itself: a transaction would only add the round trips of BEGIN and
		// COMMIT.
		err = s.withConn(ctx, func(c *pgxpool.Conn) error {
			return insertExecution(ctx, c, &rows[0])
		})
	} else {
		err = s.withTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
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
	}
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
	ctx context.Context, tx pgx.Tx, registryID int64, keys []string, created time.Time,
) error {
	seen := make(map[string]bool, len(keys))
	for _, key := range keys {
		if seen[key] {
			continue
		}
		seen[key] = true

		tag, err := tx.Exec(ctx, `
			INSERT INTO event_keys (registry_id, key, created) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING`,
			registryID, key, created)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrDuplicateEvent
		}
	}
	return nil
}

// insertExecution inserts e and sets its ID.
func insertExecution(ctx context.Context, tx querier, e *store.Execution) error {
	var retriggerOf *int64
	if e.RetriggerOf != 0 {
		retriggerOf = &e.RetriggerOf
	}

	return tx.QueryRow(ctx, `
		INSERT INTO executions
			(webhook_id, registry_id, trigger_type, retrigger_of, delivery_id, state, result,
			attempts, next_attempt_at, claimed_until, created, duration, error,
			request_url, request_headers, request_body,
			response_status_code, response_status, response_headers, response_body)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
			$18, $19, $20)
		RETURNING id`,
		e.WebhookID, e.RegistryID, string(e.TriggerType), retriggerOf, e.DeliveryID,
		string(e.State), string(e.Result), e.Attempts, dbNullTime(e.NextAttemptAt),
		dbNullTime(e.ClaimedUntil), e.Created, int64(e.Duration), e.Error,
		e.RequestURL, e.RequestHeaders, e.RequestBody,
		e.ResponseStatusCode, e.ResponseStatus, e.ResponseHeaders, e.ResponseBody,
	).Scan(&e.ID)
}

// GetExecution returns an execution if it belongs to webhookID.
func (s *Store) GetExecution(ctx context.Context, webhookID, id int64) (store.Execution, error) {
	var e store.Execution
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		row := c.QueryRow(ctx, `
			SELECT `+executionColumns+` FROM executions
			WHERE id = $1 AND webhook_id = $2`,
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
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		row := c.QueryRow(ctx, `SELECT `+executionColumns+` FROM executions WHERE id = $1`, id)

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
	var limit *int // nil: no limit
	if page.Size > 0 {
		limit = &page.Size
	}

	execs := []store.Execution{}
	var total int
	opts := pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	err := s.withTx(ctx, opts, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT count(*) FROM executions WHERE webhook_id = $1`,
			customPlan(webhookID)...).Scan(&total)
		if err != nil {
			return err
		}

		rows, err := tx.Query(ctx, `
			SELECT `+executionColumns+` FROM executions
			WHERE webhook_id = $1
			ORDER BY id DESC
			LIMIT $2 OFFSET $3`,
			customPlan(webhookID, limit, page.Offset())...)
		if err != nil {
			return err
		}
		execs, err = pgx.AppendRows(execs, rows, rowTo(scanExecution))
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
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, `
			SELECT execution_id, n, started, duration, result, status_code, error,
				response_excerpt, false AS interrupted
			FROM attempts
			WHERE execution_id = $1
			UNION ALL
			SELECT execution_id, n, started, 0, '', 0, reason, '', true
			FROM attempt_interruptions
			WHERE execution_id = $1
			ORDER BY n, interrupted DESC, started`,
			executionID)
		if err != nil {
			return err
		}

		attempts, err = pgx.AppendRows(attempts, rows, rowTo(scanAttempt))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list attempts of execution %d: %w", executionID, err)
	}
	return attempts, nil
}

// ClaimExecution implements store.Store in one statement (see claim). A
// lease that ends at exactly `now` counts as expired only after `now`. An
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
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		var err error
		e, err = claim(ctx, c, id, now, until)
		return err
	})
	if err != nil {
		return store.Execution{}, fmt.Errorf("claim execution %d: %w", id, err)
	}
	return e, nil
}

// whyNotClaimable tells, after a conditional update touched no row, whether
// the execution is missing (store.ErrNotFound) or not claimable
// (store.ErrNotClaimable).
func whyNotClaimable(ctx context.Context, q querier, id int64) error {
	var exists bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM executions WHERE id = $1)`, id).
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

	// One statement, atomic by itself, in one round trip: the attempt row is
	// inserted only if the update found the execution pending, and a repeated
	// attempt number fails the whole statement, update included.
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		tag, err := c.Exec(ctx, `
			WITH updated AS (
				UPDATE executions SET
					attempts = $2, result = $3, duration = $4, error = $5,
					request_url = $6, request_headers = $7,
					response_status_code = $8, response_status = $9, response_headers = $10,
					response_body = $11,
					state = $12, next_attempt_at = $13, claimed_until = NULL
				WHERE id = $1 AND state = 'pending'
				RETURNING id
			)
			INSERT INTO attempts
				(execution_id, n, started, duration, result, status_code, error,
				response_excerpt)
			SELECT id, $2, $14, $4, $3, $15, $5, $16 FROM updated`,
			executionID, a.N, string(a.Result), int64(a.Duration), rowprep.Text(a.Error),
			rowprep.Text(rec.RequestURL), rowprep.Text(rec.RequestHeaders),
			rec.ResponseStatusCode, rowprep.Text(rec.ResponseStatus),
			rowprep.Text(rec.ResponseHeaders), rowprep.Text(rec.ResponseBody),
			string(state), dbNullTime(next),
			dbTime(a.Started), a.StatusCode, rowprep.Text(a.ResponseExcerpt))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return whyNotClaimable(ctx, c, executionID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record attempt %d of execution %d: %w", a.N, executionID, err)
	}
	return nil
}

// ReleaseExecution implements store.Store; a missing execution gives
// store.ErrNotFound.
func (s *Store) ReleaseExecution(ctx context.Context, id int64) error {
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		return oneRow(c.Exec(ctx, `UPDATE executions SET claimed_until = NULL WHERE id = $1`, id))
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

	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, `
			SELECT id FROM executions
			WHERE state = 'pending' AND next_attempt_at <= $1
				AND (claimed_until IS NULL OR claimed_until < $1)
			ORDER BY id
			LIMIT $2`,
			dbTime(before), limit)
		if err != nil {
			return err
		}

		ids, err = pgx.AppendRows(ids, rows, pgx.RowTo[int64])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list due pending executions: %w", err)
	}
	return ids, nil
}

func scanExecution(row pgx.Row) (store.Execution, error) {
	var e store.Execution
	var trigger, state, result string
	var retriggerOf *int64
	var next, claimed *time.Time
	var duration int64
	err := row.Scan(&e.ID, &e.WebhookID, &e.RegistryID, &trigger, &retriggerOf, &e.DeliveryID,
		&state, &result, &e.Attempts, &next, &claimed, &e.Created, &duration, &e.Error,
		&e.RequestURL, &e.RequestHeaders, &e.RequestBody,
		&e.ResponseStatusCode, &e.ResponseStatus, &e.ResponseHeaders, &e.ResponseBody)
	if err != nil {
		return store.Execution{}, err
	}

	e.TriggerType = store.Trigger(trigger)
	if retriggerOf != nil {
		e.RetriggerOf = *retriggerOf
	}
	e.State = store.State(state)
	e.Result = store.Result(result)
	e.NextAttemptAt = fromNullTime(next)
	e.ClaimedUntil = fromNullTime(claimed)
	e.Created = e.Created.UTC()
	e.Duration = time.Duration(duration)
	return e, nil
}

func scanAttempt(row pgx.Row) (store.Attempt, error) {
	var a store.Attempt
	var result string
	var duration int64
	err := row.Scan(&a.ExecutionID, &a.N, &a.Started, &duration, &result, &a.StatusCode,
		&a.Error, &a.ResponseExcerpt, &a.Interrupted)
	if err != nil {
		return store.Attempt{}, err
	}

	a.Started = a.Started.UTC()
	a.Duration = time.Duration(duration)
	a.Result = store.Result(result)
	return a, nil
}
