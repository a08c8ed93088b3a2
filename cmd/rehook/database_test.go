package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rehook/rehook/internal/testenv"
)

func TestPostgresOptionsFromEnvironment(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		wantConns int32
		wantStmt  time.Duration
		wantErr   string
	}{
		{"defaults", nil, 10, 30 * time.Second, ""},
		{"set", map[string]string{"REHOOK_DB_MAX_CONNS": "25",
			"REHOOK_DB_STATEMENT_TIMEOUT": "1500ms"}, 25, 1500 * time.Millisecond, ""},
		{"no connections", map[string]string{"REHOOK_DB_MAX_CONNS": "0"}, 0, 0,
			"REHOOK_DB_MAX_CONNS=0: must be at least 1"},
		{"no timeout", map[string]string{"REHOOK_DB_STATEMENT_TIMEOUT": "0s"}, 0, 0,
			"REHOOK_DB_STATEMENT_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(func(k string) string { return tt.env[k] }, "api")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.postgresOptions()
			if got.MaxConns != tt.wantConns || got.StatementTimeout != tt.wantStmt {
				t.Errorf("got %d connections, statement timeout %s; want %d, %s",
					got.MaxConns, got.StatementTimeout, tt.wantConns, tt.wantStmt)
			}
		})
	}
}

var databasePoolLog = regexp.MustCompile(`"msg":"database pool".*`)

// TestDatabasePoolSettingsReachPostgres starts rehook api with the pool
// settings and reads back what Postgres applies, as the API logs it at start.
func TestDatabasePoolSettingsReachPostgres(t *testing.T) {
	if !testenv.UsingPostgres() {
		t.Skip("set REHOOK_TEST_DATABASE_URL to a Postgres URL to run this test")
	}
	env := append(splitEnv(testenv.DatabaseURL(t), testenv.Redis(t)),
		"REHOOK_DB_MAX_CONNS=4", "REHOOK_DB_STATEMENT_TIMEOUT=2500ms")
	prepareDatabase(t, env)

	p := start(t, env, "api")
	line := p.stderr.wait(t, databasePoolLog, 60*time.Second)
	for _, want := range []string{`"max_conns":4`, `"statement_timeout":"2500ms"`} {
		if !strings.Contains(line, want) {
			t.Errorf("start log %s: want %s", line, want)
		}
	}
}
