// Package storetest is the contract every store.Store implementation must
// pass: each method's behaviour, every sentinel error, leases, transactions
// and concurrent claims. An implementation's tests call Run with a function
// that opens a fresh, migrated store.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/rehook/rehook/store"
)

// Run runs the suite. open is called once per subtest, possibly from
// parallel subtests; it must return a new, empty, migrated store and close it
// in t.Cleanup. Close may be called more than once on a store: some
// subtests close it themselves.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s store.Store)
	}{
		{"Ping", testPing},
		{"ClosedStoreIsUnavailable", testClosedStoreIsUnavailable},
		{"CreateAndGetRegistry", testCreateAndGetRegistry},
		{"RegistryScopeIsolation", testRegistryScopeIsolation},
		{"DeleteRegistryCascades", testDeleteRegistryCascades},
		{"CreateAndGetWebhook", testCreateAndGetWebhook},
		{"MinimalWebhookRoundTrips", testMinimalWebhookRoundTrips},
		{"WebhookConflictsAndMissing", testWebhookConflictsAndMissing},
		{"ListWebhooks", testListWebhooks},
		{"CreateExecutions", testCreateExecutions},
		{"CreateExecutionsErrors", testCreateExecutionsErrors},
		{"DuplicateEventKeysWriteNothing", testDuplicateEventKeysWriteNothing},
		{"ListExecutionsPages", testListExecutionsPages},
		{"ClaimLease", testClaimLease},
		{"ClaimFinalExecution", testClaimFinalExecution},
		{"ReleaseExecution", testReleaseExecution},
		{"RecordAttempts", testRecordAttempts},
		{"RecordAttemptOnFinalExecution", testRecordAttemptOnFinalExecution},
		{"RecordAttemptRepeatedNumber", testRecordAttemptRepeatedNumber},
		{"RecordAttemptCleansText", testRecordAttemptCleansText},
		{"ListDuePending", testListDuePending},
		{"ConcurrentClaimsOneWins", testConcurrentClaimsOneWins},
		{"ConcurrentWorkers", testConcurrentWorkers},
		{"APIKeys", testAPIKeys},
		{"EventKeys", testEventKeys},
		{"BulkSendsEachDeliveryOnce", testBulkSendsEachDeliveryOnce},
		{"Reliability", testReliability},
		{"Operations", testOperations},
		{"WebhookManagement", testWebhookManagement},
		{"GetExecutionInRegistry", testGetExecutionInRegistry},
		{"Security", testSecurity},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, open(t))
		})
	}
}

// wantErr fails the test unless err is (or wraps) want.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// noErr fails the test if err is not nil.
func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// same fails the test unless got and want are deeply equal.
func same[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\ngot  %+v\nwant %+v", what, got, want)
	}
}

// now is the current time in UTC whole milliseconds, which both stores keep
// exactly.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Millisecond)
}

// checkCreated fails the test unless created is a UTC time in whole
// milliseconds between before and after.
func checkCreated(t *testing.T, what string, created, before, after time.Time) {
	t.Helper()
	if created.Location() != time.UTC {
		t.Errorf("%s: Created %v is not in UTC", what, created)
	}
	if created.Nanosecond()%int(time.Millisecond) != 0 {
		t.Errorf("%s: Created %v is not in whole milliseconds", what, created)
	}
	if created.Before(before) || created.After(after) {
		t.Errorf("%s: Created %v is not between %v and %v", what, created, before, after)
	}
}

func newRegistry(t *testing.T, s store.Store, scope store.Scope, identifier string) store.Registry {
	t.Helper()
	r := store.Registry{Scope: scope, Identifier: identifier, PackageType: "DOCKER"}
	noErr(t, "create registry", s.CreateRegistry(t.Context(), &r))
	return r
}

func newWebhook(t *testing.T, s store.Store, registryID int64, identifier string) store.Webhook {
	t.Helper()
	w := store.Webhook{
		RegistryID: registryID,
		Identifier: identifier,
		Name:       identifier,
		URL:        "http://127.0.0.1:9/" + identifier,
		Enabled:    true,
	}
	noErr(t, "create webhook", s.CreateWebhook(t.Context(), &w))
	return w
}

// newExecutions creates n pending executions of w, due at next (at once when
// zero), and returns them in id order.
func newExecutions(
	t *testing.T, s store.Store, w store.Webhook, n int, next time.Time,
) []store.Execution {
	t.Helper()
	ptrs := make([]*store.Execution, n)
	for i := range ptrs {
		ptrs[i] = &store.Execution{
			WebhookID:     w.ID,
			RegistryID:    w.RegistryID,
			TriggerType:   store.TriggerArtifactCreation,
			NextAttemptAt: next,
			RequestBody:   fmt.Sprintf(`{"n":%d}`, i),
		}
	}
	noErr(t, "create executions", s.CreateExecutions(t.Context(), w.RegistryID, nil, ptrs))

	execs := make([]store.Execution, n)
	for i, p := range ptrs {
		execs[i] = *p
	}
	return execs
}

// newExecution creates one pending execution of w, due at once.
func newExecution(t *testing.T, s store.Store, w store.Webhook) store.Execution {
	t.Helper()
	return newExecutions(t, s, w, 1, time.Time{})[0]
}

// setup is a registry with one webhook, the start of most tests.
func setup(t *testing.T, s store.Store) (store.Registry, store.Webhook) {
	t.Helper()
	r := newRegistry(t, s, store.Scope{Account: "acct", Org: "org"}, "registry")
	return r, newWebhook(t, s, r.ID, "hook")
}

// finish records a final successful attempt n on execution id.
func finish(t *testing.T, s store.Store, id int64, n int) {
	t.Helper()
	rec := store.AttemptRecord{
		Attempt: store.Attempt{N: n, Started: now(), Result: store.ResultSuccess, StatusCode: 200},
		Final:   true,
	}
	noErr(t, "record final attempt", s.RecordAttempt(t.Context(), id, rec))
}

func testPing(t *testing.T, s store.Store) {
	noErr(t, "ping", s.Ping(t.Context()))
}

func testClosedStoreIsUnavailable(t *testing.T, s store.Store) {
	ctx := t.Context()
	noErr(t, "close", s.Close())

	wantErr(t, "ping", s.Ping(ctx), store.ErrUnavailable)
	_, err := s.GetRegistry(ctx, store.Scope{Account: "a"}, "r")
	wantErr(t, "get registry", err, store.ErrUnavailable)
	err = s.CreateRegistry(ctx, &store.Registry{Scope: store.Scope{Account: "a"}, Identifier: "r"})
	wantErr(t, "create registry", err, store.ErrUnavailable)
	_, err = s.ClaimExecution(ctx, 1, now(), now().Add(time.Minute))
	wantErr(t, "claim execution", err, store.ErrUnavailable)
}

// ctxTimeout is a context for the few tests that wait on each other.
func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
