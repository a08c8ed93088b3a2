package postgres

import "github.com/jackc/pgx/v5"

// customPlan puts pgx.QueryExecModeExec before a query's arguments, so the
// query goes as an unnamed statement that Postgres plans for these very
// arguments every time, in the same single round trip.
//
// Statements pgx caches are prepared ones, and after five runs Postgres may
// keep a generic plan made for an average webhook. A connection that has
// counted the executions of a webhook with a million of them then counts a
// small webhook's with a parallel scan too: measured, 14 ms instead of 1 ms
// for 10,000 executions (see BENCHMARKS.md, P5). Queries whose best plan
// depends on how many rows a webhook has use this.
func customPlan(args ...any) []any {
	return append([]any{pgx.QueryExecModeExec}, args...)
}
