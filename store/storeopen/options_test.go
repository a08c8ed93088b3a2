package storeopen

import (
	"strings"
	"testing"
	"time"

	"github.com/rehook/rehook/internal/testenv"
	"github.com/rehook/rehook/store/postgres"
)

// TestOpenWithPostgresOptions checks that the pool size and statement
// timeout given to OpenWith are what Postgres applies, and that they win
// over the URL's own parameters.
func TestOpenWithPostgresOptions(t *testing.T) {
	if !testenv.UsingPostgres() {
		t.Skip("set REHOOK_TEST_DATABASE_URL to a Postgres URL to run this test")
	}
	const urlParams = "pool_max_conns=7&statement_timeout=5000"
	tests := []struct {
		name         string
		urlParams    bool
		opts         postgres.Options
		wantConns    int32
		wantStmtTime string
	}{
		{"options", false,
			postgres.Options{MaxConns: 3, StatementTimeout: 1500 * time.Millisecond}, 3, "1500ms"},
		{"options win over the URL", true,
			postgres.Options{MaxConns: 2, StatementTimeout: 2 * time.Second}, 2, "2s"},
		{"zero options keep the URL's", true, postgres.Options{}, 7, "5s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := testenv.DatabaseURL(t)
			if tt.urlParams {
				sep := "?"
				if strings.Contains(url, "?") {
					sep = "&"
				}
				url += sep + urlParams
			}
			s, err := OpenWith(t.Context(), url, true, tt.opts)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer s.Close()

			pg, ok := s.(*postgres.Store)
			if !ok {
				t.Fatalf("OpenWith gave a %T, want *postgres.Store", s)
			}
			got, err := pg.Settings(t.Context())
			if err != nil {
				t.Fatalf("settings: %v", err)
			}
			if got.MaxConns != tt.wantConns || got.StatementTimeout != tt.wantStmtTime {
				t.Errorf("settings: got max_conns %d, statement_timeout %q; want %d, %q",
					got.MaxConns, got.StatementTimeout, tt.wantConns, tt.wantStmtTime)
			}
			useStore(t, s)
		})
	}
}
