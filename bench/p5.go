package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the driver that seeds a SQLite store
)

// p5 measures how the retrigger and one page of list-executions scale with
// the stored executions. Rows are seeded with one bulk insert each:
//
//   - small: a webhook with p5Small executions, in a table of as many;
//   - large: a second webhook with p5Large executions;
//   - small again, now that the table holds both.
//
// The large webhook is compared with the small one (the webhook grows), and
// the small one again with itself (only the table grew). No worker runs and
// the retriggers stay pending, so the pending limit is off.
func (bn *bench) p5(ctx context.Context) error {
	r, err := startRig(ctx, bn.b, rigConfig{})
	if err != nil {
		return err
	}
	defer r.close()

	small, err := bn.p5Fixture(ctx, r, bn.o.p5Small)
	if err != nil {
		return err
	}
	smallFirst, err := bn.p5Rounds(ctx, r, small, count(bn.o.p5Small))
	if err != nil {
		return err
	}
	large, err := bn.p5Fixture(ctx, r, bn.o.p5Large)
	if err != nil {
		return err
	}
	largeRes, err := bn.p5Rounds(ctx, r, large, count(bn.o.p5Large))
	if err != nil {
		return err
	}
	smallAgain, err := bn.p5Rounds(ctx, r, small,
		count(bn.o.p5Small)+" of "+count(bn.o.p5Small+bn.o.p5Large))
	if err != nil {
		return err
	}

	webhook := fmt.Sprintf("webhook of %s executions", count(bn.o.p5Large))
	table := fmt.Sprintf("webhook of %s, table of %s", count(bn.o.p5Small),
		count(bn.o.p5Small+bn.o.p5Large))
	for _, x := range []struct {
		name, scale string
		got, base   p5Result
		baseName    string
	}{
		{"retrigger", webhook, largeRes, smallFirst, count(bn.o.p5Small)},
		{"list-executions page", webhook, largeRes, smallFirst, count(bn.o.p5Small)},
		{"retrigger", table, smallAgain, smallFirst, "table of " + count(bn.o.p5Small)},
		{"list-executions page", table, smallAgain, smallFirst,
			"table of " + count(bn.o.p5Small)},
	} {
		got, base := x.got.retrigger, x.base.retrigger
		if x.name != "retrigger" {
			got, base = x.got.list, x.base.list
		}
		q := ratio(float64(median(got)), float64(median(base)))
		bn.add(row{
			figure:   fmt.Sprintf("P5 %s p50, %s", x.name, x.scale),
			rehook:   ms(median(got)),
			baseline: fmt.Sprintf("%s (%s)", ms(median(base)), x.baseName),
			ratio:    q, goal: "ratio <= 1.5", met: met(q <= 1.5),
		})
	}
	return nil
}

// p5Result holds the p50 latencies of each round.
type p5Result struct{ retrigger, list []time.Duration }

// p5Fixture makes a webhook with n executions, the newest to retrigger.
func (bn *bench) p5Fixture(ctx context.Context, r *rig, n int) (fixture, error) {
	f, err := newFixture(ctx, r.apiStore, fmt.Sprintf("p5-%d", n), bn.rcv.url)
	if err != nil {
		return f, err
	}
	start := time.Now()
	newest, err := bn.seed(ctx, f, n-1)
	if err != nil {
		return f, fmt.Errorf("seed %d executions: %w", n, err)
	}
	f.execID = newest
	bn.logf("P5: seeded %d executions in %s", n, time.Since(start).Round(time.Millisecond))
	return f, nil
}

// p5Rounds times p5Samples retriggers and as many list-executions pages of
// the fixture, one call at a time, in every round.
func (bn *bench) p5Rounds(ctx context.Context, r *rig, f fixture, what string) (
	p5Result, error) {
	var res p5Result
	c := newCaller(r.apiURL, f.key, 1)
	defer c.close()
	listPath := f.executionsPath() + "?page=0&size=20"
	for round := 0; round < bn.o.rounds; round++ {
		rl, err := timeCalls(ctx, bn.o.p5Samples, func(ctx context.Context) error {
			_, err := c.retrigger(ctx, f)
			return err
		})
		if err != nil {
			return res, err
		}
		ll, err := timeCalls(ctx, bn.o.p5Samples, func(ctx context.Context) error {
			_, err := c.get(ctx, listPath)
			return err
		})
		if err != nil {
			return res, err
		}
		res.retrigger = append(res.retrigger, percentile(rl, 50))
		res.list = append(res.list, percentile(ll, 50))
		bn.logf("P5 %s executions, round %d/%d: retrigger p50 %s, list page p50 %s", what,
			round+1, bn.o.rounds, ms(percentile(rl, 50)), ms(percentile(ll, 50)))

		// No worker runs: drop the tasks the retriggers queued.
		if err := bn.b.flushRedis(ctx); err != nil {
			return res, err
		}
	}
	return res, nil
}

// timeCalls makes n calls one after the other and returns their latencies.
func timeCalls(ctx context.Context, n int, call func(context.Context) error) (
	[]time.Duration, error) {
	lat := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if err := call(ctx); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(start))
	}
	return lat, nil
}

// count writes n as 10k, 1M and so on where it is round.
func count(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1_000_000 && n%10_000 == 0:
		return fmt.Sprintf("%.2fM", float64(n)/1_000_000)
	case n >= 1_000 && n%1_000 == 0:
		return fmt.Sprintf("%dk", n/1_000)
	}
	return fmt.Sprint(n)
}

// seed adds n final executions of the fixture's webhook, older than its
// own, in one statement, refreshes the planner's statistics, and returns
// the newest execution's id.
func (bn *bench) seed(ctx context.Context, f fixture, n int) (int64, error) {
	if bn.b.postgres {
		return seedPostgres(ctx, bn.b.dbURL, f, n)
	}
	return seedSQLite(ctx, strings.TrimPrefix(bn.b.dbURL, "sqlite:"), f, n)
}

func seedPostgres(ctx context.Context, url string, f fixture, n int) (int64, error) {
	conn, err := pgx.Connect(ctx, plainConnURL(url))
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)

	_, err = conn.Exec(ctx, `
		INSERT INTO executions
			(webhook_id, registry_id, trigger_type, delivery_id, state, result, attempts,
			created, duration, request_url, request_headers, request_body,
			response_status_code, response_status, response_headers, response_body)
		SELECT $1, $2, 'ARTIFACT_CREATION', md5(random()::text || g::text), 'final',
			'SUCCESS', 1, now() - ($3 - g) * interval '1 millisecond', 1000000, $4,
			'Content-Type: application/json', $5, 200, '200 OK',
			'Content-Type: text/plain', 'ok'
		FROM generate_series(1, $3::bigint) AS g`,
		f.hook.ID, f.registry.ID, n, f.hook.URL, sampleBody)
	if err != nil {
		return 0, err
	}
	if _, err := conn.Exec(ctx, `VACUUM ANALYZE executions`); err != nil {
		return 0, err
	}
	// Write the seeded pages out now, so that the checkpoint they call for
	// does not run during the measurements. Without the right to, the
	// measurements may pay for it.
	_, _ = conn.Exec(ctx, `CHECKPOINT`)

	var newest int64
	err = conn.QueryRow(ctx, `SELECT max(id) FROM executions WHERE webhook_id = $1`,
		f.hook.ID).Scan(&newest)
	return newest, err
}

func seedSQLite(ctx context.Context, path string, f fixture, n int) (int64, error) {
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)")
	if err != nil {
		return 0, err
	}
	defer db.Close()

	nowMicros := time.Now().UnixMicro()
	_, err = db.ExecContext(ctx, `
		INSERT INTO executions
			(webhook_id, registry_id, trigger_type, delivery_id, state, result, attempts,
			created, duration, request_url, request_headers, request_body,
			response_status_code, response_status, response_headers, response_body)
		WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?)
		SELECT ?, ?, 'ARTIFACT_CREATION', lower(hex(randomblob(16))), 'final',
			'SUCCESS', 1, ? - (? - n) * 1000, 1000000, ?,
			'Content-Type: application/json', ?, 200, '200 OK',
			'Content-Type: text/plain', 'ok'
		FROM g`,
		n, f.hook.ID, f.registry.ID, nowMicros, n, f.hook.URL, sampleBody)
	if err != nil {
		return 0, err
	}
	if _, err := db.ExecContext(ctx, `ANALYZE`); err != nil {
		return 0, err
	}

	var newest int64
	err = db.QueryRowContext(ctx, `SELECT max(id) FROM executions WHERE webhook_id = ?`,
		f.hook.ID).Scan(&newest)
	return newest, err
}
