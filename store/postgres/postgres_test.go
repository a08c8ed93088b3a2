package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	neturl "net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rehook/rehook/store"
	"github.com/rehook/rehook/store/storetest"
)

// testDatabaseEnv names the variable that points the tests at a Postgres
// database. Each test works in a schema of its own, dropped afterwards, so
// the database may be shared.
const testDatabaseEnv = "REHOOK_TEST_DATABASE_URL"

// testSchemaURL creates a fresh schema in the test database, drops it when
// the test ends, and returns a URL whose connections use it. It skips the
// test when no test database is set.
func testSchemaURL(t *testing.T) string {
	t.Helper()
	url := testDatabaseURL(t)

	var b [6]byte
	rand.Read(b[:])
	schema := "rehook_test_" + hex.EncodeToString(b[:])
	admin := func(ctx context.Context, sql string) error {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)

		_, err = conn.Exec(ctx, sql)
		return err
	}

	if err := admin(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := admin(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})

	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatalf("parse %s: %v", testDatabaseEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// testDatabaseURL returns the test database's URL, or skips the test when
// none is set.
func testDatabaseURL(t *testing.T) string {
	t.Helper()
	url := os.Getenv(testDatabaseEnv)
	if url == "" {
		t.Skipf("set %s to a Postgres URL to run this test, e.g. "+
			"postgres://postgres@127.0.0.1:5432/test?sslmode=disable", testDatabaseEnv)
	}
	if !strings.HasPrefix(url, "postgres://") && !strings.HasPrefix(url, "postgresql://") {
		t.Fatalf("%s must be a postgres:// URL", testDatabaseEnv)
	}
	return url
}

// openTestStore opens a migrated store on a fresh schema.
func openTestStore(t *testing.T, opts Options) *Store {
	t.Helper()
	url := testSchemaURL(t)

	s, err := Open(t.Context(), url, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })

	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

func TestStore(t *testing.T) {
	testDatabaseURL(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTestStore(t, Options{MaxConns: 4})
	})
}

func TestOptions(t *testing.T) {
	s := openTestStore(t, Options{MaxConns: 3, StatementTimeout: 1500 * time.Millisecond})

	if got := s.pool.Config().MaxConns; got != 3 {
		t.Errorf("MaxConns: got %d, want 3", got)
	}
	var timeout string
	if err := s.pool.QueryRow(t.Context(), "SHOW statement_timeout").Scan(&timeout); err != nil {
		t.Fatalf("show statement_timeout: %v", err)
	}
	if timeout != "1500ms" {
		t.Errorf("statement_timeout: got %q, want %q", timeout, "1500ms")
	}

	for _, bad := range []Options{{MaxConns: -1}, {StatementTimeout: -time.Second}} {
		if _, err := Open(t.Context(), "postgres://127.0.0.1/x", bad); err == nil {
			t.Errorf("open with %+v: got no error", bad)
		}
	}
}

func TestMigrateConcurrently(t *testing.T) {
	url := testSchemaURL(t)

	const migrators = 3
	errs := make([]error, migrators)
	var wg sync.WaitGroup
	for i := range migrators {
		wg.Go(func() { errs[i] = Migrate(t.Context(), url) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrator %d: %v", i, err)
		}
	}

	if err := Migrate(t.Context(), url); err != nil {
		t.Errorf("migrate again: %v", err)
	}
}

func TestOpenUnreachableIsUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	l.Close()

	url := fmt.Sprintf("postgres://postgres@%s/test?sslmode=disable&connect_timeout=5", addr)
	s, err := Open(t.Context(), url, Options{})
	if err == nil {
		s.Close()
		t.Fatalf("open %s with nothing listening: got no error", addr)
	}
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("open %s with nothing listening: got %v, want %v", addr, err,
			store.ErrUnavailable)
	}

	err = Migrate(t.Context(), url)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("migrate %s with nothing listening: got %v, want %v", addr, err,
			store.ErrUnavailable)
	}
}

func TestMapError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error // nil: passed as it is
	}{
		{"no rows", fmt.Errorf("scan: %w", pgx.ErrNoRows), store.ErrNotFound},
		{"unique violation", &pgconn.PgError{Code: "23505"}, store.ErrConflict},
		{"foreign key violation", &pgconn.PgError{Code: "23503"}, store.ErrNotFound},
		{"eof", fmt.Errorf("read: %w", io.EOF), store.ErrUnavailable},
		{"unexpected eof", io.ErrUnexpectedEOF, store.ErrUnavailable},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET},
			store.ErrUnavailable},
		{"conn closed", fmt.Errorf("query: %w", pgconn.ErrConnClosed), store.ErrUnavailable},
		{"connection failure", &pgconn.PgError{Code: "08006"}, store.ErrUnavailable},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, store.ErrUnavailable},
		{"too many connections", &pgconn.PgError{Code: "53300"}, store.ErrUnavailable},
		{"statement deadline", context.DeadlineExceeded, nil},
		{"query cancelled", &pgconn.PgError{Code: "57014"}, nil},
		{"syntax error", &pgconn.PgError{Code: "42601"}, nil},
		{"sentinel", store.ErrNotClaimable, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mapError(tt.err)
			if tt.want == nil {
				if got != tt.err {
					t.Fatalf("mapError(%v): got %v, want it unchanged", tt.err, got)
				}
				return
			}
			if !errors.Is(got, tt.want) {
				t.Fatalf("mapError(%v): got %v, want %v", tt.err, got, tt.want)
			}
			if tt.want != store.ErrNotFound && !errors.Is(got, tt.err) {
				t.Fatalf("mapError(%v): got %v, which no longer wraps the cause", tt.err, got)
			}
		})
	}
}

func TestMapAcquireError(t *testing.T) {
	if err := mapAcquireError(context.Canceled); errors.Is(err, store.ErrUnavailable) {
		t.Errorf("cancelled acquire: got %v, want it not unavailable", err)
	}
	err := mapAcquireError(context.DeadlineExceeded)
	if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("acquire past the deadline: got %v, want unavailable wrapping the deadline", err)
	}
}
