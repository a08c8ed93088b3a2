package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/rehook/rehook/store"
)

// claim leases execution id within tx, which holds the write lock: if it is
// pending and free at `now`, it records the attempt cut off under an expired
// lease as interrupted and sets the new lease.
func claim(ctx context.Context, tx *sql.Tx, id int64, now, until time.Time) (
	store.Execution, error) {
	var prevUntil, prevAt sql.NullInt64
	var attempts int
	err := tx.QueryRowContext(ctx, `
		SELECT claimed_until, claimed_at, attempts FROM executions
		WHERE id = ? AND state = 'pending' AND (claimed_until IS NULL OR claimed_until < ?)`,
		id, micros(now)).Scan(&prevUntil, &prevAt, &attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Execution{}, whyNotClaimable(ctx, tx, id)
	}
	if err != nil {
		return store.Execution{}, err
	}

	if prevUntil.Valid {
		started := prevUntil.Int64
		if prevAt.Valid {
			started = prevAt.Int64
		}
		err := insertInterruption(ctx, tx, id, attempts+1, started, micros(now),
			store.InterruptedLeaseExpired)
		if err != nil {
			return store.Execution{}, err
		}
	}

	row := tx.QueryRowContext(ctx, `
		UPDATE executions SET claimed_until = ?, claimed_at = ?
		WHERE id = ?
		RETURNING `+executionColumns,
		micros(until), micros(now), id)
	return scanExecution(row)
}

func insertInterruption(ctx context.Context, tx *sql.Tx, id int64, n int,
	started, detected int64, reason string) error {
	_, err := tx.ExecContext(ctx, `
		INSERT INTO attempt_interruptions (execution_id, n, started, detected, reason)
		VALUES (?, ?, ?, ?, ?)`,
		id, n, started, detected, reason)
	return err
}

// InterruptExecution implements store.Store.
func (s *Store) InterruptExecution(ctx context.Context, id int64, at time.Time,
	reason string) error {
	err := s.withTx(ctx, s.write, nil, func(tx *sql.Tx) error {
		var claimedAt sql.NullInt64
		var attempts int
		err := tx.QueryRowContext(ctx, `
			SELECT claimed_at, attempts FROM executions
			WHERE id = ? AND state = 'pending' AND claimed_until IS NOT NULL`,
			id).Scan(&claimedAt, &attempts)
		if errors.Is(err, sql.ErrNoRows) {
			return whyNotClaimable(ctx, tx, id)
		}
		if err != nil {
			return err
		}

		started := micros(at)
		if claimedAt.Valid {
			started = claimedAt.Int64
		}
		err = insertInterruption(ctx, tx, id, attempts+1, started, micros(at), reason)
		if err != nil {
			return err
		}

		_, err = tx.ExecContext(ctx, `UPDATE executions SET claimed_until = NULL WHERE id = ?`,
			id)
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

	err := s.withRead(ctx, func(c *sql.Conn) error {
		rows, err := c.QueryContext(ctx, `
			SELECT id FROM executions
			WHERE state = 'pending' AND claimed_until < ?
			ORDER BY claimed_until, id
			LIMIT ?`,
			micros(before), limit)
		if err != nil {
			return err
		}

		ids, err = collect(ids, rows, scanID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list expired leases: %w", err)
	}
	return ids, nil
}

// DeleteExecutionsBefore implements store.Store. Each call is one write
// transaction over at most limit rows chosen through the index on created,
// so other writers wait for one batch at most; attempts and interruptions go
// by cascade. A limit below 1 deletes none.
func (s *Store) DeleteExecutionsBefore(ctx context.Context, before, now time.Time,
	limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}

	var n int64
	err := s.withWrite(ctx, func(c *sql.Conn) error {
		res, err := c.ExecContext(ctx, `
			DELETE FROM executions WHERE id IN (
				SELECT id FROM executions
				WHERE created < ? AND (claimed_until IS NULL OR claimed_until < ?)
				ORDER BY created
				LIMIT ?)`,
			micros(before), micros(now), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
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
	err := s.withWrite(ctx, func(c *sql.Conn) error {
		res, err := c.ExecContext(ctx, `
			DELETE FROM event_keys WHERE rowid IN (
				SELECT rowid FROM event_keys
				WHERE created < ?
				ORDER BY created
				LIMIT ?)`,
			micros(before), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete event keys recorded before %s: %w", before, err)
	}
	return int(n), nil
}
