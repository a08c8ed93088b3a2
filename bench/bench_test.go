package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRunPrintsEveryFigure runs the whole benchmark with tiny loads against
// the test servers (REHOOK_TEST_REDIS_URL, REHOOK_TEST_DATABASE_URL) or the
// embedded defaults, and checks that the table has every figure with a
// measured value and a baseline. No timing is asserted: the figures are
// whatever this machine gives.
func TestRunPrintsEveryFigure(t *testing.T) {
	// The benchmark isolates itself as the tests do: it takes a free Redis
	// database of 1-15 under the tests' lock keys, and a schema of its own.
	o := options{
		redisURL: os.Getenv("REHOOK_TEST_REDIS_URL"),
		dbURL:    os.Getenv("REHOOK_TEST_DATABASE_URL"),
		// P4 builds and starts the rehook binary, which takes longer than the
		// rest together; .ci/run's `go run ./bench -short` runs it.
		rounds: 1, phases: "p1,p2,p3,p5",
		concurrency: 2, p1Execs: 10,
		p2Duration: 100 * time.Millisecond, p2Clients: 2, p2Rate: 100,
		p2RateFor: 100 * time.Millisecond,
		p3Samples: 2, p4Deliveries: 3, p4BodyMB: 1,
		p5Small: 5, p5Large: 20, p5Samples: 2,
	}
	want := []string{
		"P1 end-to-end throughput",
		"P2 retrigger API, sustained",
		"P2 retrigger API latency p50",
		"P2 retrigger API latency p99",
		"P3 idle latency, retrigger 200 to receiver hit, p50",
		"P3 idle latency, retrigger 200 to receiver hit, p99",
		"P5 retrigger p50, webhook of 20 executions",
		"P5 list-executions page p50, webhook of 20 executions",
		"P5 retrigger p50, webhook of 5, table of 25",
		"P5 list-executions page p50, webhook of 5, table of 25",
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, progress bytes.Buffer
	if err := run(ctx, o, &out, &progress); err != nil {
		t.Fatalf("run: %v\nprogress:\n%s", err, progress.String())
	}

	rows := map[string][]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		if !strings.HasPrefix(line, "P") {
			continue
		}
		cols := splitColumns(line)
		rows[cols[0]] = cols
	}
	for _, figure := range want {
		cols, ok := rowStarting(rows, figure)
		if !ok {
			t.Errorf("no row %q in the table:\n%s", figure, out.String())
			continue
		}
		if len(cols) < 4 {
			t.Errorf("row %q: got %d columns %q, want at least 4", figure, len(cols), cols)
			continue
		}
		if strings.HasPrefix(cols[1], "0 ") || strings.HasPrefix(cols[2], "0 ") {
			t.Errorf("row %q: got rehook %q, baseline %q; want both measured", figure,
				cols[1], cols[2])
		}
	}
	if len(rows) != len(want) {
		t.Errorf("got %d figures, want %d:\n%s", len(rows), len(want), out.String())
	}
}

// rowStarting finds the row whose figure starts with prefix; figures end
// with their parameters ("(10 callers, concurrency 10)", "at 500 req/s").
func rowStarting(rows map[string][]string, prefix string) ([]string, bool) {
	for figure, cols := range rows {
		if strings.HasPrefix(figure, prefix) {
			return cols, true
		}
	}
	return nil, false
}

// splitColumns splits a table line on runs of two or more spaces. Figure
// names may hold single spaces ("P1 end-to-end throughput (...)").
func splitColumns(line string) []string {
	var cols []string
	for _, c := range strings.Split(line, "  ") {
		if c = strings.TrimSpace(c); c != "" {
			cols = append(cols, c)
		}
	}
	return cols
}

func TestParseFlagsShort(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		wantRounds int
		wantExecs  int
	}{
		{"full defaults", nil, 5, 2000},
		{"short defaults", []string{"-short"}, 1, 200},
		{"short keeps an explicit flag", []string{"-short", "-rounds", "3"}, 3, 200},
	}
	for _, c := range cases {
		o, err := parseFlags(c.args, &bytes.Buffer{})
		if err != nil {
			t.Errorf("%s: parseFlags(%q): %v", c.name, c.args, err)
			continue
		}
		if o.rounds != c.wantRounds || o.p1Execs != c.wantExecs {
			t.Errorf("%s: got rounds %d, p1 executions %d; want %d, %d", c.name,
				o.rounds, o.p1Execs, c.wantRounds, c.wantExecs)
		}
	}

	for _, bad := range [][]string{{"-rounds", "0"}, {"-phases", "p9"}, {"extra"},
		{"-p5-small", "10", "-p5-large", "5"}} {
		if _, err := parseFlags(bad, &bytes.Buffer{}); err == nil {
			t.Errorf("parseFlags(%q): got no error, want one", bad)
		}
	}
}
