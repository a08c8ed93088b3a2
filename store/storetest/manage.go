package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rehook/rehook/store"
)

// testWebhookManagement runs the contract of webhook updates and deletes,
// paged queries, idempotent and bulk retriggers, on one store. Each part
// works in a registry of its own.
func testWebhookManagement(t *testing.T, s store.Store) {
	for _, tt := range []struct {
		name string
		run  func(t *testing.T, s store.Store, r store.Registry)
	}{
		{"UpdateWebhook", testUpdateWebhook},
		{"DeleteWebhookTakesItsHistory", testDeleteWebhookTakesItsHistory},
		{"QueryWebhooksPages", testQueryWebhooksPages},
		{"QueryWebhooksSearch", testQueryWebhooksSearch},
		{"LatestResults", testLatestResults},
		{"FilterExecutionsPages", testFilterExecutionsPages},
		{"CreateRetriggerIdempotent", testCreateRetriggerIdempotent},
		{"CreateRetriggerConcurrent", testCreateRetriggerConcurrent},
		{"FindRetrigger", testFindRetrigger},
		{"RetriggerMatchingSelection", testRetriggerMatchingSelection},
		{"RetriggerMatchingCreates", testRetriggerMatchingCreates},
		{"RetriggerMatchingConcurrent", testRetriggerMatchingConcurrent},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRegistry(t, s, store.Scope{Account: "manage"}, strings.ToLower(tt.name))
			tt.run(t, s, r)
		})
	}
}

// finishWith records a final attempt with result on a pending execution and
// returns it as stored.
func finishWith(t *testing.T, s store.Store, id int64, result store.Result) store.Execution {
	t.Helper()
	rec := store.AttemptRecord{
		Attempt: store.Attempt{N: 1, Started: now(), Result: result, StatusCode: 500},
		Final:   true,
	}
	noErr(t, "record final attempt", s.RecordAttempt(t.Context(), id, rec))
	e, err := s.GetExecutionByID(t.Context(), id)
	noErr(t, "get execution", err)
	return e
}

// newKey stores an API key for idempotency keys to refer to.
func newKey(t *testing.T, s store.Store, prefix string) store.APIKey {
	t.Helper()
	k := store.APIKey{Prefix: prefix, Hash: []byte(prefix), Role: store.RoleEdit}
	noErr(t, "create api key", s.CreateAPIKey(t.Context(), &k))
	return k
}

func testUpdateWebhook(t *testing.T, s store.Store, r store.Registry) {
	ctx := t.Context()
	w := newWebhook(t, s, r.ID, "hook")
	taken := newWebhook(t, s, r.ID, "taken")

	changed := w
	changed.Identifier = "renamed"
	changed.Name = "Renamed"
	changed.Description = "about it"
	changed.URL = "https://example.invalid/new"
	changed.Enabled = false
	changed.Insecure = true
	changed.Triggers = []store.Trigger{store.TriggerArtifactDeletion}
	changed.ExtraHeaders = []store.ExtraHeader{{Key: "X-Token", Value: "v", Masked: true}}
	changed.Secret = []byte("0123456789abcdef")
	changed.SecretIdentifier = "vault-secret"
	changed.CreatedBy = "someone else"
	before := now()
	noErr(t, "update webhook", s.UpdateWebhook(ctx, &changed))

	if changed.Version != w.Version+1 {
		t.Errorf("version: got %d, want %d", changed.Version, w.Version+1)
	}
	if changed.Modified.Before(before) || !changed.Created.Equal(w.Created) {
		t.Errorf("times: got created %v modified %v, want created %v and modified from %v",
			changed.Created, changed.Modified, w.Created, before)
	}
	if changed.CreatedBy != "" {
		t.Errorf("CreatedBy: got %q, want the stored one (empty) kept", changed.CreatedBy)
	}
	got, err := s.GetWebhook(ctx, r.ID, "renamed")
	noErr(t, "get renamed webhook", err)
	same(t, "webhook after update", got, changed)
	_, err = s.GetWebhook(ctx, r.ID, "hook")
	wantErr(t, "get by the old identifier", err, store.ErrNotFound)

	stale := changed
	stale.Version = w.Version
	stale.Name = "lost update"
	err = s.UpdateWebhook(ctx, &stale)
	wantErr(t, "update with a stale version", err, store.ErrVersionMismatch)
	wantErr(t, "a version mismatch is a conflict", err, store.ErrConflict)

	clash := changed
	clash.Identifier = taken.Identifier
	err = s.UpdateWebhook(ctx, &clash)
	wantErr(t, "rename onto a taken identifier", err, store.ErrConflict)
	if errors.Is(err, store.ErrVersionMismatch) {
		t.Errorf("rename onto a taken identifier: got %v, want a plain conflict", err)
	}

	cleared := changed
	cleared.Version = 0 // no precondition
	cleared.Secret = nil
	noErr(t, "clear secret", s.UpdateWebhook(ctx, &cleared))
	if cleared.Secret != nil || cleared.Version != changed.Version+1 {
		t.Errorf("after clearing: secret %q version %d, want nil and %d",
			cleared.Secret, cleared.Version, changed.Version+1)
	}

	missing := changed
	missing.ID = taken.ID + 1000
	missing.Version = 0
	wantErr(t, "update missing webhook", s.UpdateWebhook(ctx, &missing), store.ErrNotFound)
}

func testDeleteWebhookTakesItsHistory(t *testing.T, s store.Store, r store.Registry) {
	ctx := t.Context()
	w := newWebhook(t, s, r.ID, "doomed")
	kept := newWebhook(t, s, r.ID, "kept")
	key := newKey(t, s, "rh_delete01")

	execs := newExecutions(t, s, w, 3, time.Time{})
	finish(t, s, execs[0].ID, 1)
	retrigger := store.Execution{WebhookID: w.ID, RegistryID: r.ID, RetriggerOf: execs[0].ID,
		TriggerType: store.TriggerArtifactCreation}
	_, err := s.CreateRetrigger(ctx, store.IdempotencyKey{APIKeyID: key.ID,
		ExecutionID: execs[0].ID, Key: "k"}, &retrigger)
	noErr(t, "create keyed retrigger", err)
	other := newExecution(t, s, kept)

	noErr(t, "delete webhook", s.DeleteWebhook(ctx, w.ID))

	_, err = s.GetWebhookByID(ctx, w.ID)
	wantErr(t, "get deleted webhook", err, store.ErrNotFound)
	for _, e := range append(execs, retrigger) {
		_, err := s.GetExecutionByID(ctx, e.ID)
		wantErr(t, fmt.Sprintf("get execution %d of the deleted webhook", e.ID), err,
			store.ErrNotFound)
	}
	attempts, err := s.ListAttempts(ctx, execs[0].ID)
	noErr(t, "list attempts", err)
	if len(attempts) != 0 {
		t.Errorf("attempts of a deleted execution: got %d, want 0", len(attempts))
	}

	_, err = s.GetExecutionByID(ctx, other.ID)
	noErr(t, "another webhook's execution survives", err)
	wantErr(t, "delete again", s.DeleteWebhook(ctx, w.ID), store.ErrNotFound)
}

// walkWebhooks reads every page of size 10 of q and checks that together
// they hold each of want exactly once, in want's order.
func walkWebhooks(t *testing.T, s store.Store, r store.Registry, q store.WebhookQuery,
	want []store.Webhook) {
	t.Helper()
	var got []int64
	for q.Page = (store.Page{Size: 10}); ; q.Page.Index++ {
		page, total, err := s.QueryWebhooks(t.Context(), r.ID, q)
		noErr(t, "query webhooks", err)
		if total != len(want) {
			t.Fatalf("%+v: total %d, want %d", q, total, len(want))
		}
		if len(page) == 0 {
			break
		}
		for _, w := range page {
			got = append(got, w.ID)
		}
	}

	wantIDs := make([]int64, len(want))
	for i, w := range want {
		wantIDs[i] = w.ID
	}
	if !slices.Equal(got, wantIDs) {
		t.Fatalf("%s desc=%v: pages together:\ngot  %v\nwant %v", q.SortField, q.Descending,
			got, wantIDs)
	}
}

func testQueryWebhooksPages(t *testing.T, s store.Store, r store.Registry) {
	ctx := t.Context()
	var all []store.Webhook
	for i := range 95 {
		w := store.Webhook{RegistryID: r.ID, Identifier: fmt.Sprintf("hook-%02d", (i*37)%95),
			Name: []string{"beta", "Alpha", "alpha", "gamma", "Beta"}[i%5],
			URL:  "http://127.0.0.1:9/", Enabled: true}
		noErr(t, "create webhook", s.CreateWebhook(ctx, &w))
		all = append(all, w)
	}
	// Some webhooks are modified later than others.
	for i := 0; i < len(all); i += 3 {
		noErr(t, "update webhook", s.UpdateWebhook(ctx, &all[i]))
	}

	byID := func(a, b store.Webhook) int { return int(a.ID - b.ID) }
	orders := map[store.WebhookSortField]func(a, b store.Webhook) int{
		store.SortByIdentifier: func(a, b store.Webhook) int {
			return strings.Compare(a.Identifier, b.Identifier)
		},
		store.SortByName: func(a, b store.Webhook) int { return strings.Compare(a.Name, b.Name) },
		store.SortByCreated: func(a, b store.Webhook) int {
			return a.Created.Compare(b.Created)
		},
		store.SortByModified: func(a, b store.Webhook) int {
			return a.Modified.Compare(b.Modified)
		},
	}
	for field, cmp := range orders {
		for _, desc := range []bool{false, true} {
			want := slices.Clone(all)
			slices.SortFunc(want, func(a, b store.Webhook) int {
				c := cmp(a, b)
				if c == 0 {
					c = byID(a, b)
				}
				if desc {
					return -c
				}
				return c
			})
			walkWebhooks(t, s, r, store.WebhookQuery{SortField: field, Descending: desc}, want)
		}
	}

	want := slices.Clone(all)
	slices.SortFunc(want, func(a, b store.Webhook) int {
		return strings.Compare(a.Identifier, b.Identifier)
	})
	walkWebhooks(t, s, r, store.WebhookQuery{}, want)

	_, _, err := s.QueryWebhooks(ctx, r.ID, store.WebhookQuery{SortField: "url"})
	if err == nil {
		t.Errorf("query sorted by an unknown field: got no error")
	}
}

func testQueryWebhooksSearch(t *testing.T, s store.Store, r store.Registry) {
	ctx := t.Context()
	for _, h := range []struct{ id, name string }{
		{"build_hook", "Builds"}, {"buildxhook", "other"}, {"deploy", "Deploy 50% off"},
		{"deploy-2", "Deploy 50 percent"}, {"audit", "BUILD audit"}, {"back\\slash", "b"},
	} {
		w := store.Webhook{RegistryID: r.ID, Identifier: h.id, Name: h.name,
			URL: "http://127.0.0.1:9/", Enabled: true}
		noErr(t, "create webhook", s.CreateWebhook(ctx, &w))
	}
	elsewhere := newRegistry(t, s, r.Scope, r.Identifier+"-other")
	newWebhook(t, s, elsewhere.ID, "build_hook")

	for _, tc := range []struct {
		search string
		want   []string
	}{
		{"build", []string{"audit", "build_hook", "buildxhook"}},
		{"BUILD", []string{"audit", "build_hook", "buildxhook"}},
		{"d_h", []string{"build_hook"}},
		{"50%", []string{"deploy"}},
		{"\\", []string{"back\\slash"}},
		{"nothing", nil},
	} {
		page, total, err := s.QueryWebhooks(ctx, r.ID, store.WebhookQuery{Search: tc.search,
			Page: store.Page{Size: 100}})
		noErr(t, "search webhooks", err)
		var got []string
		for _, w := range page {
			got = append(got, w.Identifier)
		}
		if !slices.Equal(got, tc.want) || total != len(tc.want) {
			t.Errorf("search %q: got %v (total %d), want %v", tc.search, got, total, tc.want)
		}
	}
}

func testLatestResults(t *testing.T, s store.Store, r store.Registry) {
	ctx := t.Context()
	busy := newWebhook(t, s, r.ID, "busy")
	pending := newWebhook(t, s, r.ID, "pending")
	idle := newWebhook(t, s, r.ID, "idle")

	execs := newExecutions(t, s, busy, 3, time.Time{})
	finishWith(t, s, execs[0].ID, store.ResultSuccess)
	finishWith(t, s, execs[1].ID, store.ResultFatalError)
	newExecution(t, s, pending)

	got, err := s.LatestResults(ctx, []int64{busy.ID, pending.ID, idle.ID, idle.ID + 1000})
	noErr(t, "latest results", err)
	same(t, "latest results", got, map[int64]store.Result{busy.ID: store.ResultFatalError})

	got, err = s.LatestResults(ctx, nil)
	noErr(t, "latest results of none", err)
	same(t, "latest results of none", got, map[int64]store.Result{})
}

func testFilterExecutionsPages(t *testing.T, s store.Store, r store.Registry) {
	ctx := t.Context()
	w := newWebhook(t, s, r.ID, "hook")
	other := newWebhook(t, s, r.ID, "other")
	newExecution(t, s, other)

	results := []store.Result{store.ResultSuccess, store.ResultFatalError,
		store.ResultRetriableError, ""}
	var all []store.Execution
	for i := range 95 {
		trigger := store.TriggerArtifactCreation
		if i%3 == 0 {
			trigger = store.TriggerArtifactDeletion
		}
		e := &store.Execution{WebhookID: w.ID, TriggerType: trigger, RequestBody: "{}"}
		noErr(t, "create execution", s.CreateExecutions(ctx, r.ID, nil, []*store.Execution{e}))
		if res := results[i%4]; res != "" {
			*e = finishWith(t, s, e.ID, res)
		}
		all = append(all, *e)
	}
	slices.Reverse(all) // newest first

	for _, tc := range []struct {
		name string
		f    store.ExecutionFilter
	}{
		{"everything", store.ExecutionFilter{}},
		{"fatal", store.ExecutionFilter{Results: []store.Result{store.ResultFatalError}}},
		{"failures of deletions", store.ExecutionFilter{
			Results:  []store.Result{store.ResultFatalError, store.ResultRetriableError},
			Triggers: []store.Trigger{store.TriggerArtifactDeletion}}},
		{"creations", store.ExecutionFilter{
			Triggers: []store.Trigger{store.TriggerArtifactCreation}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want []int64
			for _, e := range all {
				if (len(tc.f.Results) == 0 || slices.Contains(tc.f.Results, e.Result)) &&
					(len(tc.f.Triggers) == 0 || slices.Contains(tc.f.Triggers, e.TriggerType)) {
					want = append(want, e.ID)
				}
			}

			var got []int64
			for i := 0; ; i++ {
				page, total, err := s.FilterExecutions(ctx, w.ID, tc.f, store.Page{Index: i, Size: 10})
				noErr(t, "filter executions", err)
				if total != len(want) {
					t.Fatalf("total: got %d, want %d", total, len(want))
				}
				if len(page) == 0 {
					break
				}
				for _, e := range page {
					got = append(got, e.ID)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("pages together:\ngot  %v\nwant %v", got, want)
			}
		})
	}
}

func testCreateRetriggerIdempotent(t *testing.T, s store.Store, r store.Registry) {
	ctx := t.Context()
	w := newWebhook(t, s, r.ID, "hook")
	origs := newExecutions(t, s, w, 2, time.Time{})
	finish(t, s, origs[0].ID, 1)
	finish(t, s, origs[1].ID, 1)
	alice, bob := newKey(t, s, "rh_alice01"), newKey(t, s, "rh_bob0001")
	window := now().Add(-24 * time.Hour)

	retrigger := func(k store.APIKey, orig store.Execution, key string,
		notBefore time.Time) (store.Execution, bool) {
		t.Helper()
		e := store.Execution{WebhookID: w.ID, RegistryID: r.ID, TriggerType: orig.TriggerType,
			RetriggerOf: orig.ID, DeliveryID: orig.DeliveryID, RequestBody: orig.RequestBody}
		created, err := s.CreateRetrigger(ctx, store.IdempotencyKey{APIKeyID: k.ID,
			ExecutionID: orig.ID, Key: key, NotBefore: notBefore}, &e)
		noErr(t, "create retrigger", err)
		return e, created
	}

	first, created := retrigger(alice, origs[0], "key-1", window)
	if !created || first.ID == 0 || first.RetriggerOf != origs[0].ID ||
		first.State != store.StatePending || first.DeliveryID != origs[0].DeliveryID {
		t.Fatalf("first retrigger: created %v, %+v", created, first)
	}
	stored, err := s.GetExecutionByID(ctx, first.ID)
	noErr(t, "get retrigger", err)
	same(t, "stored retrigger", stored, first)

	again, created := retrigger(alice, origs[0], "key-1", window)
	if created || again.ID != first.ID {
		t.Errorf("same key again: created %v id %d, want the first (%d)", created, again.ID,
			first.ID)
	}

	for _, tc := range []struct {
		name string
		k    store.APIKey
		orig store.Execution
		key  string
	}{
		{"another key", alice, origs[0], "key-2"},
		{"another API key", bob, origs[0], "key-1"},
		{"another execution", alice, origs[1], "key-1"},
	} {
		e, created := retrigger(tc.k, tc.orig, tc.key, window)
		if !created || e.ID == first.ID {
			t.Errorf("%s: created %v id %d, want a new execution", tc.name, created, e.ID)
		}
	}

	// Once the window has moved past the key, it is used afresh.
	later, created := retrigger(alice, origs[0], "key-1", first.Created.Add(time.Millisecond))
	if !created || later.ID == first.ID {
		t.Errorf("expired key: created %v id %d, want a new execution", created, later.ID)
	}
	again, created = retrigger(alice, origs[0], "key-1", window)
	if created || again.ID != later.ID {
		t.Errorf("renewed key: created %v id %d, want %d", created, again.ID, later.ID)
	}
}

// testFindRetrigger runs the contract of FindRetrigger.
func testFindRetrigger(t *testing.T, s store.Store, r store.Registry) {
	finder := s
	ctx := t.Context()
	w := newWebhook(t, s, r.ID, "hook")
	origs := newExecutions(t, s, w, 2, time.Time{})
	finish(t, s, origs[0].ID, 1)
	finish(t, s, origs[1].ID, 1)
	alice, bob := newKey(t, s, "rh_find0001"), newKey(t, s, "rh_find0002")
	key := store.IdempotencyKey{APIKeyID: alice.ID, ExecutionID: origs[0].ID, Key: "key-1",
		NotBefore: now().Add(-24 * time.Hour)}

	_, err := finder.FindRetrigger(ctx, key)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("the store cannot look idempotency keys up")
	}
	wantErr(t, "key not used yet", err, store.ErrNotFound)

	e := store.Execution{WebhookID: w.ID, RegistryID: r.ID, TriggerType: origs[0].TriggerType,
		RetriggerOf: origs[0].ID, DeliveryID: origs[0].DeliveryID,
		RequestBody: origs[0].RequestBody}
	created, err := s.CreateRetrigger(ctx, key, &e)
	noErr(t, "create retrigger", err)
	if !created {
		t.Fatal("create retrigger: created nothing under a new key")
	}
	got, err := finder.FindRetrigger(ctx, key)
	noErr(t, "find retrigger", err)
	same(t, "found retrigger", got, e)

	// The execution is found as it is now, not as it was created.
	finish(t, s, e.ID, 1)
	got, err = finder.FindRetrigger(ctx, key)
	noErr(t, "find finished retrigger", err)
	if got.ID != e.ID || got.State != store.StateFinal {
		t.Errorf("finished retrigger: got id %d state %s, want %d %s", got.ID, got.State,
			e.ID, store.StateFinal)
	}

	for _, tc := range []struct {
		name   string
		modify func(k *store.IdempotencyKey)
	}{
		{"another key", func(k *store.IdempotencyKey) { k.Key = "key-2" }},
		{"another API key", func(k *store.IdempotencyKey) { k.APIKeyID = bob.ID }},
		{"another execution", func(k *store.IdempotencyKey) { k.ExecutionID = origs[1].ID }},
		{"expired", func(k *store.IdempotencyKey) {
			k.NotBefore = e.Created.Add(time.Millisecond)
		}},
	} {
		other := key
		tc.modify(&other)
		_, err := finder.FindRetrigger(ctx, other)
		wantErr(t, tc.name, err, store.ErrNotFound)
	}

	// Looking up writes nothing: an expired key is still there for
	// CreateRetrigger to replay within its window.
	again := e
	created, err = s.CreateRetrigger(ctx, key, &again)
	noErr(t, "create retrigger again", err)
	if created || again.ID != e.ID {
		t.Errorf("same key after the look-ups: created %v id %d, want the first (%d)",
			created, again.ID, e.ID)
	}
}

func testCreateRetriggerConcurrent(t *testing.T, s store.Store, r store.Registry) {
	ctx := ctxTimeout(t)
	w := newWebhook(t, s, r.ID, "hook")
	orig := newExecution(t, s, w)
	finish(t, s, orig.ID, 1)
	k := newKey(t, s, "rh_race001")

	const callers = 8
	var wg sync.WaitGroup
	ids := make([]int64, callers)
	createdBy := make([]bool, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := store.Execution{WebhookID: w.ID, RegistryID: r.ID, RetriggerOf: orig.ID,
				TriggerType: orig.TriggerType}
			createdBy[i], errs[i] = s.CreateRetrigger(ctx, store.IdempotencyKey{APIKeyID: k.ID,
				ExecutionID: orig.ID, Key: "same", NotBefore: now().Add(-time.Hour)}, &e)
			ids[i] = e.ID
		}()
	}
	wg.Wait()

	creators := 0
	for i := range callers {
		noErr(t, fmt.Sprintf("caller %d", i), errs[i])
		if createdBy[i] {
			creators++
		}
		if ids[i] != ids[0] {
			t.Errorf("caller %d got execution %d, caller 0 got %d", i, ids[i], ids[0])
		}
	}
	if creators != 1 {
		t.Errorf("callers that created: got %d, want 1", creators)
	}
	_, total, err := s.ListExecutions(ctx, w.ID, store.Page{})
	noErr(t, "list executions", err)
	if total != 2 {
		t.Errorf("executions: got %d, want the original and one retrigger", total)
	}
}

// bulkFixture is a webhook whose executions cover every case of the
// selection, and their ids by name.
func bulkFixture(t *testing.T, s store.Store, r store.Registry) (store.Webhook,
	map[string]store.Execution) {
	t.Helper()
	ctx := t.Context()
	w := newWebhook(t, s, r.ID, "hook")
	other := newWebhook(t, s, r.ID, "other")
	x := map[string]store.Execution{}

	create := func(name string, hook store.Webhook, trigger store.Trigger, retriggerOf int64,
		result store.Result) {
		e := &store.Execution{WebhookID: hook.ID, TriggerType: trigger, RetriggerOf: retriggerOf,
			RequestBody: `{"name":"` + name + `"}`}
		for _, orig := range x {
			if orig.ID == retriggerOf {
				e.DeliveryID = orig.DeliveryID
			}
		}
		noErr(t, "create execution", s.CreateExecutions(ctx, r.ID, nil, []*store.Execution{e}))
		if result != "" {
			*e = finishWith(t, s, e.ID, result)
		}
		x[name] = *e
	}
	creation, deletion := store.TriggerArtifactCreation, store.TriggerArtifactDeletion
	create("fatal", w, creation, 0, store.ResultFatalError)
	create("success", w, creation, 0, store.ResultSuccess)
	create("fatal deletion", w, deletion, 0, store.ResultFatalError)
	create("pending", w, creation, 0, "")
	create("retriggered, retrigger pending", w, creation, 0, store.ResultFatalError)
	create("its pending retrigger", w, creation, x["retriggered, retrigger pending"].ID, "")
	create("retriggered, retrigger final", w, creation, 0, store.ResultRetriableError)
	create("its final retrigger", w, creation, x["retriggered, retrigger final"].ID,
		store.ResultFatalError)
	create("other webhook's", other, creation, 0, store.ResultFatalError)
	return w, x
}

func testRetriggerMatchingSelection(t *testing.T, s store.Store, r store.Registry) {
	ctx := t.Context()
	w, x := bulkFixture(t, s, r)
	fatal := []store.Result{store.ResultFatalError}
	first := x["fatal"]

	for _, tc := range []struct {
		name string
		sel  store.RetriggerSelection
		want []string
	}{
		{"every final, unsuperseded", store.RetriggerSelection{},
			[]string{"fatal", "success", "fatal deletion", "its final retrigger"}},
		{"fatal", store.RetriggerSelection{Results: fatal},
			[]string{"fatal", "fatal deletion", "its final retrigger"}},
		{"fatal creations", store.RetriggerSelection{Results: fatal,
			Trigger: store.TriggerArtifactCreation},
			[]string{"fatal", "its final retrigger"}},
		{"two results", store.RetriggerSelection{Results: []store.Result{store.ResultSuccess,
			store.ResultRetriableError}}, []string{"success"}},
		{"limit keeps the oldest", store.RetriggerSelection{Results: fatal, Limit: 2},
			[]string{"fatal", "fatal deletion"}},
		{"since is inclusive", store.RetriggerSelection{Results: fatal, Since: first.Created},
			[]string{"fatal", "fatal deletion", "its final retrigger"}},
		{"until is exclusive", store.RetriggerSelection{Results: fatal, Until: first.Created},
			nil},
		{"since the future", store.RetriggerSelection{Since: now().Add(time.Hour)}, nil},
		{"until the future", store.RetriggerSelection{Results: fatal,
			Until: now().Add(time.Hour)},
			[]string{"fatal", "fatal deletion", "its final retrigger"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.sel.DryRun = true
			n, created, err := s.RetriggerMatching(ctx, w.ID, tc.sel)
			noErr(t, "dry run", err)
			if n != len(tc.want) || len(created) != 0 {
				var names []string
				for name := range x {
					names = append(names, fmt.Sprintf("%s=%d", name, x[name].ID))
				}
				t.Errorf("selected %d and created %d, want %d (%v) and none; fixture %v",
					n, len(created), len(tc.want), tc.want, names)
			}
		})
	}

	_, total, err := s.ListExecutions(ctx, w.ID, store.Page{})
	noErr(t, "list executions", err)
	if total != 8 {
		t.Errorf("a dry run created executions: %d, want the fixture's 8", total)
	}

	_, _, err = s.RetriggerMatching(ctx, w.ID+1000, store.RetriggerSelection{})
	wantErr(t, "missing webhook", err, store.ErrNotFound)
	_, _, err = s.RetriggerMatching(ctx, w.ID, store.RetriggerSelection{
		Limit: store.MaxBulkLimit + 1})
	if err == nil {
		t.Errorf("limit %d: got no error", store.MaxBulkLimit+1)
	}
}

func testRetriggerMatchingCreates(t *testing.T, s store.Store, r store.Registry) {
	ctx := t.Context()
	w, x := bulkFixture(t, s, r)
	sel := store.RetriggerSelection{Results: []store.Result{store.ResultFatalError},
		RequestURL: "http://127.0.0.1:9/now"}

	before := now()
	n, created, err := s.RetriggerMatching(ctx, w.ID, sel)
	noErr(t, "bulk retrigger", err)
	after := now()

	wantOf := []store.Execution{x["fatal"], x["fatal deletion"], x["its final retrigger"]}
	if n != len(wantOf) || len(created) != len(wantOf) {
		t.Fatalf("selected %d, created %d; want %d each", n, len(created), len(wantOf))
	}
	for i, e := range created {
		orig := wantOf[i]
		want := store.Execution{ID: e.ID, WebhookID: w.ID, RegistryID: r.ID,
			TriggerType: orig.TriggerType, RetriggerOf: orig.ID, DeliveryID: orig.DeliveryID,
			State: store.StatePending, NextAttemptAt: e.Created, Created: e.Created,
			RequestURL: sel.RequestURL, RequestBody: orig.RequestBody}
		same(t, fmt.Sprintf("retrigger %d", i), e, want)
		checkCreated(t, "retrigger", e.Created, before, after)
		stored, err := s.GetExecutionByID(ctx, e.ID)
		noErr(t, "get retrigger", err)
		same(t, "stored retrigger", stored, e)
	}

	// Everything selected is superseded now, and the new retriggers are
	// pending: a second run finds nothing.
	n, created, err = s.RetriggerMatching(ctx, w.ID, sel)
	noErr(t, "bulk retrigger again", err)
	if n != 0 || len(created) != 0 {
		t.Errorf("second run: selected %d, created %d; want none", n, len(created))
	}
}

func testRetriggerMatchingConcurrent(t *testing.T, s store.Store, r store.Registry) {
	ctx := ctxTimeout(t)
	w := newWebhook(t, s, r.ID, "hook")
	execs := newExecutions(t, s, w, 20, time.Time{})
	for _, e := range execs {
		finishWith(t, s, e.ID, store.ResultFatalError)
	}

	const callers = 4
	var wg sync.WaitGroup
	counts := make([]int, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var created []store.Execution
			_, created, errs[i] = s.RetriggerMatching(ctx, w.ID, store.RetriggerSelection{})
			counts[i] = len(created)
		}()
	}
	wg.Wait()

	sum := 0
	for i := range callers {
		noErr(t, fmt.Sprintf("caller %d", i), errs[i])
		sum += counts[i]
	}
	if sum != len(execs) {
		t.Errorf("retriggers created by %d concurrent bulk runs: got %d (%v), want %d",
			callers, sum, counts, len(execs))
	}
}
