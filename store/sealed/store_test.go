package sealed_test

import (
	"bytes"
	"context"
	"database/sql"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/rehook/rehook/internal/testenv"
	"github.com/rehook/rehook/store"
	"github.com/rehook/rehook/store/sealed"
	"github.com/rehook/rehook/store/storeopen"
	"github.com/rehook/rehook/store/storetest"
)

// key is test key n in base64.
func key(n byte) string {
	return strings.Repeat(string(rune('A'+n)), 43) + "="
}

// db is a fresh migrated store with the URL it was opened from.
func db(t *testing.T) (store.Store, string) {
	t.Helper()
	url := testenv.DatabaseURL(t)
	s, err := storeopen.Open(t.Context(), url, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, url
}

func ring(t *testing.T, current string, older ...string) *sealed.Keyring {
	t.Helper()
	k, err := sealed.NewKeyring(current, older)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rawSecret reads the secret column of a webhook row with SQL of its own,
// past any store.
func rawSecret(t *testing.T, url string, id int64) []byte {
	t.Helper()
	var secret []byte
	if path, ok := strings.CutPrefix(url, "sqlite:"); ok {
		conn, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		err = conn.QueryRow(`SELECT secret FROM webhooks WHERE id = ?`, id).Scan(&secret)
		if err != nil {
			t.Fatalf("read webhook %d: %v", id, err)
		}
		return secret
	}

	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	err = conn.QueryRow(t.Context(), `SELECT secret FROM webhooks WHERE id = $1`, id).Scan(&secret)
	if err != nil {
		t.Fatalf("read webhook %d: %v", id, err)
	}
	return secret
}

// TestContract runs the store contract through the wrapper, keys set.
func TestContract(t *testing.T) {
	keys := ring(t, key(1), key(2))
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := db(t)
		return sealed.Wrap(s, keys)
	})
}

// TestSecretsAreSealedAtRest writes webhooks with secrets through the
// wrapper and reads the rows with SQL: they hold the sealed form, and every
// method that returns a webhook gives the secret back.
func TestSecretsAreSealedAtRest(t *testing.T) {
	ctx := t.Context()
	inner, url := db(t)
	keys := ring(t, key(1))
	s := sealed.Wrap(inner, keys)
	secret := []byte("a-signing-secret-of-32-bytes-abc")

	reg := store.Registry{Scope: store.Scope{Account: "acct"}, Identifier: "reg"}
	if err := s.CreateRegistry(ctx, &reg); err != nil {
		t.Fatal(err)
	}
	w := store.Webhook{RegistryID: reg.ID, Identifier: "hook", Name: "hook",
		URL: "http://127.0.0.1:9/", Enabled: true, Secret: bytes.Clone(secret)}
	if err := s.CreateWebhook(ctx, &w); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.Secret, secret) {
		t.Errorf("CreateWebhook left w.Secret %q, want the secret", w.Secret)
	}
	checkSealed(t, rawSecret(t, url, w.ID), secret, keys.CurrentID())

	w.Name = "renamed"
	if err := s.UpdateWebhook(ctx, &w); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.Secret, secret) {
		t.Errorf("UpdateWebhook left w.Secret %q, want the secret", w.Secret)
	}
	checkSealed(t, rawSecret(t, url, w.ID), secret, keys.CurrentID())

	exec := &store.Execution{WebhookID: w.ID, RegistryID: reg.ID,
		TriggerType: store.TriggerArtifactCreation}
	if err := s.CreateExecutions(ctx, reg.ID, nil, []*store.Execution{exec}); err != nil {
		t.Fatal(err)
	}

	got := map[string]store.Webhook{}
	got["GetWebhook"], _ = s.GetWebhook(ctx, reg.ID, "hook")
	got["GetWebhookByID"], _ = s.GetWebhookByID(ctx, w.ID)
	if list, err := s.ListWebhooks(ctx, reg.ID); err == nil && len(list) == 1 {
		got["ListWebhooks"] = list[0]
	}
	page, _, err := s.QueryWebhooks(ctx, reg.ID, store.WebhookQuery{Page: store.Page{Size: 10}})
	if err == nil && len(page) == 1 {
		got["QueryWebhooks"] = page[0]
	}
	_, got["GetExecutionInRegistry"], _, _ = s.GetExecutionInRegistry(ctx, reg.Scope, "reg",
		"hook", exec.ID)
	for method, hook := range got {
		if !bytes.Equal(hook.Secret, secret) {
			t.Errorf("%s: got secret %q, want %q", method, hook.Secret, secret)
		}
	}
	if len(got) != 5 {
		t.Errorf("got webhooks from %d methods, want 5: %v", len(got), got)
	}

	plain, err := inner.GetWebhookByID(ctx, w.ID)
	if err != nil || bytes.Equal(plain.Secret, secret) {
		t.Errorf("the unwrapped store read secret %q, %v; want the sealed form", plain.Secret, err)
	}
	_, err = sealed.Wrap(inner, ring(t, key(3))).GetWebhookByID(ctx, w.ID)
	if err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Errorf("read with another key: got %v, want an error saying the key is missing", err)
	}
}

func checkSealed(t *testing.T, raw, secret []byte, keyID string) {
	t.Helper()
	id, ok := sealed.SealedBy(raw)
	if !ok || id != keyID || bytes.Contains(raw, secret) {
		t.Errorf("stored secret %q: want it sealed by key %s, without the secret", raw, keyID)
	}
}

// TestWrapperCoversWebhookMethods fails when store.Store gains a method that
// takes or returns a webhook and the wrapper does not override it: the
// secret would then reach the database, or the caller, sealed wrongly.
func TestWrapperCoversWebhookMethods(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	overridden := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || len(fn.Recv.List) != 1 {
				continue
			}
			if star, ok := fn.Recv.List[0].Type.(*ast.StarExpr); ok {
				if id, ok := star.X.(*ast.Ident); ok && id.Name == "Store" {
					overridden[fn.Name.Name] = true
				}
			}
		}
	}

	webhook := reflect.TypeOf(store.Webhook{})
	iface := reflect.TypeOf((*store.Store)(nil)).Elem()
	checked := 0
	for i := range iface.NumMethod() {
		m := iface.Method(i)
		if !mentions(m.Type, webhook) {
			continue
		}
		checked++
		if !overridden[m.Name] {
			t.Errorf("store.Store.%s takes or returns a Webhook; sealed.Store must override it",
				m.Name)
		}
	}
	if checked < 7 {
		t.Errorf("found %d webhook methods in store.Store, want at least 7", checked)
	}
}

// mentions reports whether a function type has a parameter or result of
// type want, or a pointer or slice of it.
func mentions(fn, want reflect.Type) bool {
	var types []reflect.Type
	for i := range fn.NumIn() {
		types = append(types, fn.In(i))
	}
	for i := range fn.NumOut() {
		types = append(types, fn.Out(i))
	}
	for _, typ := range types {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ == want {
			return true
		}
	}
	return false
}

// TestRotate seals every stored secret under the current key: plaintext
// ones from before encryption, ones sealed under an older key, and leaves
// alone those already current and those no key opens.
func TestRotate(t *testing.T) {
	ctx := t.Context()
	inner, url := db(t)
	reg := store.Registry{Scope: store.Scope{Account: "acct"}, Identifier: "reg"}
	if err := inner.CreateRegistry(ctx, &reg); err != nil {
		t.Fatal(err)
	}

	hooks := map[string]*store.Webhook{}
	create := func(name string, s store.Store, secret string) {
		w := &store.Webhook{RegistryID: reg.ID, Identifier: name, Name: name,
			URL: "http://127.0.0.1:9/", Enabled: true, Secret: []byte(secret)}
		if err := s.CreateWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
		hooks[name] = w
	}
	create("plaintext", inner, "secret-written-in-plaintext-0001")
	create("older", sealed.Wrap(inner, ring(t, key(2))), "secret-sealed-by-the-older-key-02")
	create("current", sealed.Wrap(inner, ring(t, key(1))), "secret-sealed-by-the-current-key")
	create("unknown", sealed.Wrap(inner, ring(t, key(9))), "secret-sealed-by-a-lost-key-0009")
	create("none", inner, "")
	currentBefore := rawSecret(t, url, hooks["current"].ID)

	keys := ring(t, key(1), key(2))
	res, err := sealed.Rotate(ctx, inner, keys)
	if err != nil {
		t.Fatal(err)
	}
	want := sealed.RotateResult{Checked: 4, Resealed: 2, Failed: 1,
		FailedIDs: []int64{hooks["unknown"].ID}}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("Rotate: got %+v, want %+v", res, want)
	}

	current := sealed.Wrap(inner, ring(t, key(1)))
	for _, name := range []string{"plaintext", "older", "current"} {
		w := hooks[name]
		checkSealed(t, rawSecret(t, url, w.ID), w.Secret, keys.CurrentID())
		got, err := current.GetWebhookByID(ctx, w.ID)
		if err != nil || !bytes.Equal(got.Secret, w.Secret) {
			t.Errorf("%s after rotation, read with the current key alone: got %q, %v; want %q",
				name, got.Secret, err, w.Secret)
		}
		if got.Version != w.Version || !got.Modified.Equal(w.Modified) {
			t.Errorf("%s: rotation changed version or modified: got %d %v, want %d %v", name,
				got.Version, got.Modified, w.Version, w.Modified)
		}
	}
	if got := rawSecret(t, url, hooks["current"].ID); !bytes.Equal(got, currentBefore) {
		t.Errorf("a secret already sealed by the current key was sealed again")
	}

	res, err = sealed.Rotate(ctx, inner, keys)
	if err != nil || res.Resealed != 0 || res.Checked != 4 {
		t.Errorf("second Rotate: got %+v, %v; want 4 checked, none resealed", res, err)
	}
	if _, err := sealed.Rotate(ctx, inner, ring(t, "")); err == nil {
		t.Errorf("Rotate without a current key: got no error")
	}
}
