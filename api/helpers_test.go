package api

import (
	"os"
	"path/filepath"
	"time"
)

func readTestdata(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("testdata", name))
}

func testNow() time.Time { return time.Now() }
