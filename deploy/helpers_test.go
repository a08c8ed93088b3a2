package deploy

import (
	"net"
	"os"
	"regexp"
	"strconv"
	"testing"
)

// settingRow is a row of the README's configuration table.
var settingRow = regexp.MustCompile("(?m)^\\| `(REHOOK_[A-Z0-9_]+)` \\|")

// documentedSettings are the REHOOK_* variables the README's configuration
// table lists: the ones rehook reads (cmd/rehook's README test keeps the
// table complete).
func documentedSettings(t *testing.T) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range settingRow.FindAllStringSubmatch(string(raw), -1) {
		out[m[1]] = true
	}
	if len(out) < 10 {
		t.Fatalf("found %d settings in README.md's configuration table, want more", len(out))
	}
	return out
}

// portOf is the port of a HOST:PORT listen address.
func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("listen address %q: port: %v", addr, err)
	}
	return n
}
