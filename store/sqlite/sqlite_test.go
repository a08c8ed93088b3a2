package sqlite_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rehook/rehook/store"
	"github.com/rehook/rehook/store/sqlite"
	"github.com/rehook/rehook/store/storetest"
)

func openTestStore(t *testing.T) store.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rehook.db"))
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
	storetest.Run(t, openTestStore)
}

func TestMigrateTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rehook.db")
	for i := range 2 {
		s, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("migrate %d: %v", i, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close %d: %v", i, err)
		}
	}
}

func TestOpenRefusesPaths(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		path    string
		wantErr error
	}{
		{"empty", "", nil},
		{"memory", ":memory:", nil},
		{"uri", "file:" + filepath.Join(dir, "x.db"), nil},
		{"query", filepath.Join(dir, "x.db?mode=ro"), nil},
		{"missing directory", filepath.Join(dir, "missing", "x.db"), store.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := sqlite.Open(t.Context(), tt.path)
			if err == nil {
				s.Close()
				t.Fatalf("open %q: got no error", tt.path)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("open %q: got error %v, want %v", tt.path, err, tt.wantErr)
			}
		})
	}
}

func TestWALMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rehook.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate: %v", err)
	}

	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Errorf("no write-ahead log beside the database: %v", err)
	}
}
