package storetest

import (
	"testing"
	"time"

	"github.com/rehook/rehook/store"
)

func testCreateAndGetRegistry(t *testing.T, s store.Store) {
	ctx := t.Context()
	before := now()
	r := store.Registry{
		Scope:       store.Scope{Account: "acct", Org: "org", Project: "proj"},
		Identifier:  "docker-local",
		PackageType: "DOCKER",
		Description: "images",
	}
	noErr(t, "create registry", s.CreateRegistry(ctx, &r))
	after := now()

	if r.ID == 0 {
		t.Fatalf("create registry did not set ID")
	}
	checkCreated(t, "registry", r.Created, before, after)

	got, err := s.GetRegistry(ctx, r.Scope, r.Identifier)
	noErr(t, "get registry", err)
	same(t, "get registry", got, r)

	dup := store.Registry{Scope: r.Scope, Identifier: r.Identifier, PackageType: "MAVEN"}
	wantErr(t, "create duplicate registry", s.CreateRegistry(ctx, &dup), store.ErrConflict)
}

func testRegistryScopeIsolation(t *testing.T, s store.Store) {
	ctx := t.Context()
	scopes := []store.Scope{
		{Account: "a"},
		{Account: "a", Org: "o"},
		{Account: "a", Org: "o", Project: "p"},
		{Account: "a", Org: "o2"},
		{Account: "a", Org: "o", Project: "p2"},
		{Account: "b"},
		{Account: "b", Org: "o", Project: "p"},
	}
	ids := map[store.Scope]int64{}
	for _, scope := range scopes {
		ids[scope] = newRegistry(t, s, scope, "reg").ID
	}

	for _, scope := range scopes {
		got, err := s.GetRegistry(ctx, scope, "reg")
		noErr(t, "get registry in "+scope.String(), err)
		if got.ID != ids[scope] || got.Scope != scope {
			t.Errorf("get registry in %s: got id %d in %s, want id %d", scope, got.ID, got.Scope,
				ids[scope])
		}
	}

	missing := []struct {
		scope      store.Scope
		identifier string
	}{
		{store.Scope{Account: "a", Org: "o", Project: "p3"}, "reg"},
		{store.Scope{Account: "a", Org: "o3"}, "reg"},
		{store.Scope{Account: "c"}, "reg"},
		{store.Scope{}, "reg"},
		{store.Scope{Account: "a", Project: "p"}, "reg"},
		{store.Scope{Account: "a"}, "other"},
	}
	for _, m := range missing {
		_, err := s.GetRegistry(ctx, m.scope, m.identifier)
		wantErr(t, "get registry "+m.identifier+" in "+m.scope.String(), err, store.ErrNotFound)
	}
}

func testDeleteRegistryCascades(t *testing.T, s store.Store) {
	ctx := t.Context()
	r, w := setup(t, s)
	e := newExecution(t, s, w)
	_, err := s.ClaimExecution(ctx, e.ID, now(), now().Add(time.Minute))
	noErr(t, "claim", err)
	finish(t, s, e.ID, 1)
	keyed := store.Execution{WebhookID: w.ID, TriggerType: store.TriggerArtifactDeletion}
	err = s.CreateExecutions(ctx, r.ID, []string{"event-1"}, []*store.Execution{&keyed})
	noErr(t, "create keyed execution", err)

	other := newRegistry(t, s, r.Scope, "other")
	otherHook := newWebhook(t, s, other.ID, "hook")
	otherExec := newExecution(t, s, otherHook)

	noErr(t, "delete registry", s.DeleteRegistry(ctx, r.ID))

	_, err = s.GetRegistry(ctx, r.Scope, r.Identifier)
	wantErr(t, "get deleted registry", err, store.ErrNotFound)
	_, err = s.GetWebhookByID(ctx, w.ID)
	wantErr(t, "get webhook of deleted registry", err, store.ErrNotFound)
	_, err = s.GetExecutionByID(ctx, e.ID)
	wantErr(t, "get execution of deleted registry", err, store.ErrNotFound)
	_, err = s.GetExecutionByID(ctx, keyed.ID)
	wantErr(t, "get keyed execution of deleted registry", err, store.ErrNotFound)
	attempts, err := s.ListAttempts(ctx, e.ID)
	noErr(t, "list attempts of deleted execution", err)
	if len(attempts) != 0 {
		t.Errorf("attempts of deleted execution: got %d, want 0", len(attempts))
	}
	hooks, err := s.ListWebhooks(ctx, r.ID)
	noErr(t, "list webhooks of deleted registry", err)
	if len(hooks) != 0 {
		t.Errorf("webhooks of deleted registry: got %d, want 0", len(hooks))
	}

	_, err = s.GetWebhookByID(ctx, otherHook.ID)
	noErr(t, "get webhook of other registry", err)
	_, err = s.GetExecutionByID(ctx, otherExec.ID)
	noErr(t, "get execution of other registry", err)

	wantErr(t, "delete registry again", s.DeleteRegistry(ctx, r.ID), store.ErrNotFound)

	again := newRegistry(t, s, r.Scope, r.Identifier)
	retry := store.Execution{WebhookID: newWebhook(t, s, again.ID, "hook").ID}
	err = s.CreateExecutions(ctx, again.ID, []string{"event-1"}, []*store.Execution{&retry})
	noErr(t, "reuse event key in a new registry of the same name", err)
}

func testCreateAndGetWebhook(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := newRegistry(t, s, store.Scope{Account: "acct"}, "registry")
	before := now()
	w := store.Webhook{
		RegistryID:  r.ID,
		Identifier:  "notify",
		Name:        "Notify",
		Description: "tells the build farm",
		URL:         "https://builds.example/hook",
		Enabled:     true,
		Insecure:    true,
		Triggers:    []store.Trigger{store.TriggerArtifactCreation},
		ExtraHeaders: []store.ExtraHeader{
			{Key: "X-Team", Value: "platform"},
			{Key: "X-Token", Value: "t0k3n", Masked: true},
		},
		Secret:           []byte("s3cret\x00\xff"),
		SecretIdentifier: "hook-secret",
		CreatedBy:        "alice",
	}
	noErr(t, "create webhook", s.CreateWebhook(ctx, &w))
	after := now()

	if w.ID == 0 {
		t.Fatalf("create webhook did not set ID")
	}
	if w.Version != 1 {
		t.Errorf("Version: got %d, want 1", w.Version)
	}
	checkCreated(t, "webhook", w.Created, before, after)
	if !w.Modified.Equal(w.Created) {
		t.Errorf("Modified: got %v, want Created %v", w.Modified, w.Created)
	}

	got, err := s.GetWebhook(ctx, r.ID, "notify")
	noErr(t, "get webhook", err)
	same(t, "get webhook", got, w)

	got, err = s.GetWebhookByID(ctx, w.ID)
	noErr(t, "get webhook by id", err)
	same(t, "get webhook by id", got, w)
}

func testMinimalWebhookRoundTrips(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := newRegistry(t, s, store.Scope{Account: "acct"}, "registry")
	w := store.Webhook{
		RegistryID:   r.ID,
		Identifier:   "bare",
		URL:          "http://127.0.0.1:9/",
		Triggers:     []store.Trigger{},
		ExtraHeaders: []store.ExtraHeader{},
		Secret:       []byte{},
	}
	noErr(t, "create webhook", s.CreateWebhook(ctx, &w))

	want := w
	want.Triggers, want.ExtraHeaders, want.Secret = nil, nil, nil
	got, err := s.GetWebhookByID(ctx, w.ID)
	noErr(t, "get webhook", err)
	same(t, "empty lists and secret come back nil", got, want)
	if !got.Fires(store.TriggerArtifactDeletion) {
		t.Errorf("a webhook without triggers should fire on every trigger")
	}
}

func testWebhookConflictsAndMissing(t *testing.T, s store.Store) {
	ctx := t.Context()
	r, w := setup(t, s)
	other := newRegistry(t, s, r.Scope, "other")

	dup := store.Webhook{RegistryID: r.ID, Identifier: w.Identifier, URL: "http://127.0.0.1:9/"}
	wantErr(t, "create duplicate webhook", s.CreateWebhook(ctx, &dup), store.ErrConflict)

	newWebhook(t, s, other.ID, w.Identifier)

	orphan := store.Webhook{RegistryID: r.ID + other.ID + 1000, Identifier: "x", URL: "http://x/"}
	wantErr(t, "create webhook in missing registry", s.CreateWebhook(ctx, &orphan),
		store.ErrNotFound)

	_, err := s.GetWebhook(ctx, r.ID, "missing")
	wantErr(t, "get missing webhook", err, store.ErrNotFound)
	_, err = s.GetWebhook(ctx, r.ID+other.ID+1000, w.Identifier)
	wantErr(t, "get webhook of missing registry", err, store.ErrNotFound)
	_, err = s.GetWebhookByID(ctx, w.ID+1000)
	wantErr(t, "get missing webhook by id", err, store.ErrNotFound)
}

func testListWebhooks(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := newRegistry(t, s, store.Scope{Account: "acct"}, "registry")
	other := newRegistry(t, s, store.Scope{Account: "acct"}, "other")
	empty := newRegistry(t, s, store.Scope{Account: "acct"}, "empty")
	var want []store.Webhook
	for _, id := range []string{"charlie", "alpha", "bravo"} {
		want = append(want, newWebhook(t, s, r.ID, id))
	}
	want = []store.Webhook{want[1], want[2], want[0]}
	newWebhook(t, s, other.ID, "aardvark")

	got, err := s.ListWebhooks(ctx, r.ID)
	noErr(t, "list webhooks", err)
	same(t, "list webhooks", got, want)

	got, err = s.ListWebhooks(ctx, empty.ID)
	noErr(t, "list webhooks of empty registry", err)
	if len(got) != 0 {
		t.Errorf("webhooks of empty registry: got %+v, want none", got)
	}
}

func testAPIKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	before := now()
	admin := store.APIKey{
		Prefix: "rh_admin01",
		Hash:   []byte{0x00, 0x01, 0xfe, 0xff},
		Scope:  store.Scope{Account: "acct", Org: "org"},
		Role:   store.RoleAdmin,
	}
	noErr(t, "create key", s.CreateAPIKey(ctx, &admin))
	after := now()
	if admin.ID == 0 {
		t.Fatalf("create key did not set ID")
	}
	checkCreated(t, "api key", admin.Created, before, after)

	global := store.APIKey{Prefix: "rh_global1", Hash: []byte("hash"), Role: store.RoleView}
	noErr(t, "create global key", s.CreateAPIKey(ctx, &global))

	dup := store.APIKey{Prefix: admin.Prefix, Hash: []byte("other"), Role: store.RoleView}
	wantErr(t, "create key with a taken prefix", s.CreateAPIKey(ctx, &dup), store.ErrConflict)

	got, err := s.GetAPIKeyByPrefix(ctx, admin.Prefix)
	noErr(t, "get key", err)
	same(t, "get key", got, admin)
	got, err = s.GetAPIKeyByPrefix(ctx, global.Prefix)
	noErr(t, "get global key", err)
	same(t, "get global key", got, global)
	_, err = s.GetAPIKeyByPrefix(ctx, "rh_missing")
	wantErr(t, "get missing key", err, store.ErrNotFound)

	keys, err := s.ListAPIKeys(ctx)
	noErr(t, "list keys", err)
	same(t, "list keys", keys, []store.APIKey{admin, global})

	revoked := now().Add(-time.Hour)
	noErr(t, "revoke key", s.RevokeAPIKey(ctx, admin.ID, revoked))
	noErr(t, "revoke key again", s.RevokeAPIKey(ctx, admin.ID, now()))
	got, err = s.GetAPIKeyByPrefix(ctx, admin.Prefix)
	noErr(t, "get revoked key", err)
	if !got.Revoked.Equal(revoked) {
		t.Errorf("Revoked: got %v, want the first revocation %v", got.Revoked, revoked)
	}
	got, err = s.GetAPIKeyByPrefix(ctx, global.Prefix)
	noErr(t, "get global key", err)
	if !got.Revoked.IsZero() {
		t.Errorf("Revoked of a key never revoked: got %v, want zero", got.Revoked)
	}

	wantErr(t, "revoke missing key", s.RevokeAPIKey(ctx, global.ID+1000, now()),
		store.ErrNotFound)
}
