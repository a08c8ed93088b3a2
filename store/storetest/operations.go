package storetest

import (
	"testing"
	"time"

	"github.com/rehook/rehook/store"
)

// testOperations runs the contract of the methods that metrics and delivery
// logs use, on one store.
func testOperations(t *testing.T, s store.Store) {
	t.Run("CountPending", func(t *testing.T) { testCountPending(t, s) })
	t.Run("GetRegistryByID", func(t *testing.T) { testGetRegistryByID(t, s) })
}

// testCountPending counts pending executions, leased or not, across
// webhooks, and stops counting one once it is final.
func testCountPending(t *testing.T, s store.Store) {
	ctx := t.Context()
	count := func(what string, want int) {
		t.Helper()
		got, err := s.CountPending(ctx)
		noErr(t, what, err)
		if got != want {
			t.Fatalf("%s: CountPending = %d, want %d", what, got, want)
		}
	}

	count("empty store", 0)
	r, w := setup(t, s)
	other := newWebhook(t, s, r.ID, "other")
	a := newExecution(t, s, w)
	newExecution(t, s, w)
	newExecution(t, s, other)
	count("three pending", 3)

	_, err := s.ClaimExecution(ctx, a.ID, now(), now().Add(time.Minute))
	noErr(t, "claim", err)
	count("one of them leased", 3)

	finish(t, s, a.ID, 1)
	count("one of them final", 2)
}

// testGetRegistryByID finds a registry by id alone, and reports a missing
// one as ErrNotFound.
func testGetRegistryByID(t *testing.T, s store.Store) {
	ctx := t.Context()
	want := newRegistry(t, s, store.Scope{Account: "acct", Org: "org", Project: "proj"}, "reg")
	newRegistry(t, s, store.Scope{Account: "acct"}, "reg")

	got, err := s.GetRegistryByID(ctx, want.ID)
	noErr(t, "get registry by id", err)
	same(t, "registry", got, want)

	_, err = s.GetRegistryByID(ctx, want.ID+1000)
	wantErr(t, "missing registry", err, store.ErrNotFound)
}
