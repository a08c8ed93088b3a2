package migrations

import (
	"io/fs"
	"slices"
	"testing"
)

func TestDialectsHaveTheSameMigrations(t *testing.T) {
	names := map[string][]string{}
	for _, dialect := range []string{DialectPostgres, DialectSQLite} {
		fsys, err := FS(dialect)
		if err != nil {
			t.Fatalf("FS(%q): %v", dialect, err)
		}
		found, err := fs.Glob(fsys, "*.sql")
		if err != nil {
			t.Fatalf("glob %s: %v", dialect, err)
		}
		if len(found) == 0 {
			t.Fatalf("%s: no migrations", dialect)
		}
		names[dialect] = found
	}

	if !slices.Equal(names[DialectPostgres], names[DialectSQLite]) {
		t.Errorf("migrations differ:\npostgres %v\nsqlite   %v", names[DialectPostgres],
			names[DialectSQLite])
	}
}

func TestUnknownDialect(t *testing.T) {
	if _, err := FS("mysql"); err == nil {
		t.Errorf("FS(%q): got no error", "mysql")
	}
	if err := Migrate(t.Context(), nil, "mysql"); err == nil {
		t.Errorf("Migrate(%q): got no error", "mysql")
	}
}
