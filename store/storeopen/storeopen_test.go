package storeopen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rehook/rehook/store"
)

// useStore fails the test unless s can write and read a registry.
func useStore(t *testing.T, s store.Store) {
	t.Helper()
	r := store.Registry{Scope: store.Scope{Account: "acct"}, Identifier: "reg"}
	if err := s.CreateRegistry(t.Context(), &r); err != nil {
		t.Fatalf("create registry: %v", err)
	}
	if _, err := s.GetRegistry(t.Context(), r.Scope, r.Identifier); err != nil {
		t.Fatalf("get registry: %v", err)
	}
}

func TestOpenSQLite(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	tests := []struct {
		url  string
		file string
	}{
		{"sqlite:" + filepath.Join(dir, "abs.db"), filepath.Join(dir, "abs.db")},
		{"sqlite://" + filepath.Join(dir, "abs2.db"), filepath.Join(dir, "abs2.db")},
		{"sqlite:rel.db", filepath.Join(dir, "rel.db")},
		{"sqlite://rel2.db", filepath.Join(dir, "rel2.db")},
		{"SQLite:upper.db", filepath.Join(dir, "upper.db")},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			s, err := Open(t.Context(), tt.url, true)
			if err != nil {
				t.Fatalf("open %q: %v", tt.url, err)
			}
			defer s.Close()

			useStore(t, s)
			if _, err := os.Stat(tt.file); err != nil {
				t.Errorf("open %q: want the database at %s: %v", tt.url, tt.file, err)
			}
		})
	}
}

func TestOpenWithoutMigrating(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "bare.db")
	s, err := Open(t.Context(), url, false)
	if err != nil {
		t.Fatalf("open %q: %v", url, err)
	}
	defer s.Close()

	r := store.Registry{Scope: store.Scope{Account: "acct"}, Identifier: "reg"}
	if err := s.CreateRegistry(t.Context(), &r); err == nil {
		t.Errorf("create registry in a database never migrated: got no error")
	}
}

func TestOpenRefusesURLs(t *testing.T) {
	tests := []struct {
		name string
		url  string
	}{
		{"empty", ""},
		{"no scheme", "rehook.db"},
		{"mysql", "mysql://rehook:hunter2@127.0.0.1/rehook"},
		{"file", "file:rehook.db"},
		{"sqlite without path", "sqlite:"},
		{"sqlite memory", "sqlite::memory:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.Context(), tt.url, true)
			if err == nil {
				s.Close()
				t.Fatalf("open %q: got no error", tt.url)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("open %q: error %q shows the password", tt.url, err)
			}
		})
	}
}

func TestOpenPostgresUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	l.Close()

	for _, scheme := range []string{"postgres", "postgresql"} {
		url := scheme + "://postgres@" + addr + "/test?sslmode=disable&connect_timeout=5"
		_, err := Open(t.Context(), url, true)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("open %s with nothing listening: got %v, want %v", url, err,
				store.ErrUnavailable)
		}
	}
}

func TestOpenPostgres(t *testing.T) {
	base := os.Getenv("REHOOK_TEST_DATABASE_URL")
	if base == "" {
		t.Skip("set REHOOK_TEST_DATABASE_URL to a Postgres URL to run this test, e.g. " +
			"postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}

	var b [6]byte
	rand.Read(b[:])
	schema := "rehook_test_" + hex.EncodeToString(b[:])
	admin(t, t.Context(), base, "CREATE SCHEMA "+schema)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin(t, ctx, base, "DROP SCHEMA "+schema+" CASCADE")
	})

	u, err := neturl.Parse(base)
	if err != nil {
		t.Fatalf("parse REHOOK_TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()

	for _, scheme := range []string{"postgres", "postgresql"} {
		u.Scheme = scheme
		s, err := Open(t.Context(), u.String(), true)
		if err != nil {
			t.Fatalf("open %s: %v", scheme, err)
		}
		if scheme == "postgres" {
			useStore(t, s)
		}
		s.Close()
	}
}

func admin(t *testing.T, ctx context.Context, url, sql string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Errorf("%s: %v", sql, err)
		return
	}
	defer conn.Close(ctx)

	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Errorf("%s: %v", sql, err)
	}
}
