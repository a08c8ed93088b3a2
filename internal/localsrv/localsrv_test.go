package localsrv

import (
	"errors"
	"net"
	"os"
	"strconv"
	"testing"
)

// skipIfMissing skips a test whose server binaries are not installed,
// except in CI, where they must be.
func skipIfMissing(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, ErrMissing) && os.Getenv("CI") == "" {
		t.Skipf("%v; install redis-server and postgresql to run this test", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func listening(port int) bool {
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func TestRedisStopStart(t *testing.T) {
	r, err := StartRedis(t.TempDir())
	skipIfMissing(t, err)
	t.Cleanup(r.Stop)

	for _, step := range []struct {
		name string
		do   func() error
		want bool
	}{
		{"started", func() error { return nil }, true},
		{"stopped", func() error { r.Stop(); return nil }, false},
		{"started again", r.Start, true},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := listening(r.Port); got != step.want {
			t.Fatalf("%s: listening %v, want %v", step.name, got, step.want)
		}
	}
}

func TestPostgresStopStart(t *testing.T) {
	p, err := StartPostgres("")
	skipIfMissing(t, err)
	t.Cleanup(p.Remove)

	for _, step := range []struct {
		name string
		do   func() error
		want bool
	}{
		{"started", func() error { return nil }, true},
		{"stopped", p.Stop, false},
		{"started again", p.Start, true},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := listening(p.Port); got != step.want {
			t.Fatalf("%s: listening %v, want %v", step.name, got, step.want)
		}
	}
}
