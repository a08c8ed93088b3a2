package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// splitEnv is the environment of rehook api and worker processes on the
// given database and Redis, each listening on a port of its own choosing.
func splitEnv(dbURL, redisURL string) []string {
	return []string{
		"REHOOK_DATABASE_URL=" + dbURL,
		"REHOOK_REDIS_URL=" + redisURL,
		"REHOOK_HTTP_ADDR=127.0.0.1:0",
		"REHOOK_ADMIN_ADDR=127.0.0.1:0",
		"REHOOK_ALLOW_LOOPBACK=true",
		"REHOOK_LOG_FORMAT=json",
	}
}

// prepareDatabase runs rehook migrate and rehook apikey create on env's
// database, as an operator would, and returns the admin key of account acct.
func prepareDatabase(t *testing.T, env []string) string {
	t.Helper()
	migrate := exec.Command(rehookBinary(t), "migrate")
	migrate.Env = append(os.Environ(), env...)
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("rehook migrate: %v\n%s", err, out)
	}

	create := exec.Command(rehookBinary(t), "apikey", "create", "--scope", "acct", "--role", "admin")
	create.Env = append(os.Environ(), env...)
	out, err := create.Output()
	if err != nil {
		t.Fatalf("rehook apikey create: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}
