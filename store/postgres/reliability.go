package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rehook/rehook/store"
)

// claim leases execution id in one statement: it locks the row if it is
// pending and free at `now`, records the attempt cut off under an expired
// lease as interrupted, and sets the new lease. A second claimer blocks on
// the row lock, then finds the row leased.
func claim(ctx context.Context, q querier, id int64, now, until time.Time) (
	store.Execution, error) {
	row := q.QueryRow(ctx, `
		WITH prev AS (
			SELECT id AS prev_id, claimed_until AS prev_until, claimed_at AS prev_at,
				attempts AS prev_attempts
			FROM executions
			WHERE id = $1 AND state = 'pending'
				AND (claimed_until IS NULL OR claimed_until < $2)
			FOR UPDATE
		), cut AS (
			INSERT INTO attempt_interruptions (execution_id, n, started, detected, reason)
			SELECT prev_id, prev_attempts + 1, coalesce(prev_at, prev_until), $2, $4
			FROM prev
			WHERE prev_until IS NOT NULL
		)
		UPDATE executions SET claimed_until = $3, claimed_at = $2
		FROM prev
		WHERE id = prev.prev_id
		RETURNING `+executionColumns,
		id, dbTime(now), dbTime(until), store.InterruptedLeaseExpired)

	e, err := scanExecution(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Execution{}, whyNotClaimable(ctx, q, id)
	}
	return e, err
}

func insertInterruption(ctx context.Context, tx pgx.Tx, id int64, n int,
	started, detected time.Time, reason string) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO attempt_interruptions (execution_id, n, started, detected, reason)
		VALUES ($1, $2, $3, $4, $5)`,
		id, n, dbTime(started), dbTime(detected), reason)
	return err
}

// InterruptExecution implements store.Store.
func (s *Store) InterruptExecution(ctx context.Context, id int64, at time.Time,
	reason string) error {
	err := s.withTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var claimedAt *time.Time
		var claimedUntil time.Time
		var attempts int
		err := tx.QueryRow(ctx, `
			SELECT claimed_at, claimed_until, attempts FROM executions
			WHERE id = $1 AND state = 'pending' AND claimed_until IS NOT NULL
			FOR UPDATE`,
			id).Scan(&claimedAt, &claimedUntil, &attempts)
		if errors.Is(err, pgx.ErrNoRows) {
			return whyNotClaimable(ctx, tx, id)
		}
		if err != nil {
			return err
		}

		started := at
		if claimedAt != nil {
			started = *claimedAt
		}
		if err := insertInterruption(ctx, tx, id, attempts+1, started, at, reason); err != nil {
			return err
		}

		_, err = tx.Exec(ctx, `UPDATE executions SET claimed_until = NULL WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("interrupt execution %d: %w", id, err)
	}
	return nil
}

// ListExpiredLeases implements store.Store. A limit below 1 lists none.
func (s *Store) ListExpiredLeases(ctx context.Context, before time.Time, limit int) (
	[]int64, error) {
	ids := []int64{}
	if limit < 1 {
		return ids, nil
	}

	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, `
			SELECT id FROM executions
			WHERE state = 'pending' AND claimed_until < $1
			ORDER BY claimed_until, id
			LIMIT $2`,
			dbTime(before), limit)
		if err != nil {
			return err
		}

		ids, err = pgx.AppendRows(ids, rows, pgx.RowTo[int64])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list expired leases: %w", err)
	}
	return ids, nil
}

// DeleteExecutionsBefore implements store.Store. It deletes by primary key
// a batch chosen through the index on created, so it takes row locks on the
// batch only; attempts and interruptions go by cascade. A limit below 1
// deletes none.
func (s *Store) DeleteExecutionsBefore(ctx context.Context, before, now time.Time,
	limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}

	var n int64
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		tag, err := c.Exec(ctx, `
			DELETE FROM executions WHERE id IN (
				SELECT id FROM executions
				WHERE created < $1 AND (claimed_until IS NULL OR claimed_until < $2)
				ORDER BY created
				LIMIT $3
				FOR UPDATE SKIP LOCKED)`,
			dbTime(before), dbTime(now), limit)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete executions created before %s: %w", before, err)
	}
	return int(n), nil
}

// DeleteEventKeysBefore implements store.Store, a batch at a time as
// DeleteExecutionsBefore does. A limit below 1 deletes none.
func (s *Store) DeleteEventKeysBefore(ctx context.Context, before time.Time, limit int) (
	int, error) {
	if limit < 1 {
		return 0, nil
	}

	var n int64
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		tag, err := c.Exec(ctx, `
			DELETE FROM event_keys WHERE (registry_id, key) IN (
				SELECT registry_id, key FROM event_keys
				WHERE created < $1
				ORDER BY created
				LIMIT $2
				FOR UPDATE SKIP LOCKED)`,
			dbTime(before), limit)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete event keys recorded before %s: %w", before, err)
	}
	return int(n), nil
}
