package storetest

import (
	"testing"

	"github.com/rehook/rehook/store"
)

// testGetExecutionInRegistry checks that the one-call lookup answers what
// GetRegistry, GetWebhook and GetExecution answer, and ErrNotFound when
// any part of the path is missing or belongs elsewhere.
func testGetExecutionInRegistry(t *testing.T, s store.Store) {
	ctx := t.Context()
	r, w := setup(t, s)
	other := newWebhook(t, s, r.ID, "other")
	elsewhere := newRegistry(t, s, store.Scope{Account: "acct", Org: "org2"}, "registry")
	elsewhereHook := newWebhook(t, s, elsewhere.ID, "hook")

	e := store.Execution{WebhookID: w.ID, TriggerType: store.TriggerArtifactCreation,
		RequestBody: `{"artifact":"app:1.0"}`}
	o := store.Execution{WebhookID: other.ID, TriggerType: store.TriggerArtifactCreation}
	noErr(t, "create executions", s.CreateExecutions(ctx, r.ID, nil, []*store.Execution{&e, &o}))
	x := store.Execution{WebhookID: elsewhereHook.ID, TriggerType: store.TriggerArtifactCreation}
	noErr(t, "create execution elsewhere",
		s.CreateExecutions(ctx, elsewhere.ID, nil, []*store.Execution{&x}))

	gotReg, gotHook, gotExec, err := s.GetExecutionInRegistry(ctx, r.Scope, r.Identifier,
		w.Identifier, e.ID)
	noErr(t, "get execution in registry", err)
	wantReg, err := s.GetRegistry(ctx, r.Scope, r.Identifier)
	noErr(t, "get registry", err)
	wantHook, err := s.GetWebhook(ctx, r.ID, w.Identifier)
	noErr(t, "get webhook", err)
	wantExec, err := s.GetExecution(ctx, w.ID, e.ID)
	noErr(t, "get execution", err)
	same(t, "registry", gotReg, wantReg)
	same(t, "webhook", gotHook, wantHook)
	same(t, "execution", gotExec, wantExec)

	missing := []struct {
		name              string
		scope             store.Scope
		registry, webhook string
		id                int64
	}{
		{"no such registry", r.Scope, "nope", w.Identifier, e.ID},
		{"registry in another scope", store.Scope{Account: "acct"}, r.Identifier,
			w.Identifier, e.ID},
		{"no such webhook", r.Scope, r.Identifier, "nope", e.ID},
		{"no such execution", r.Scope, r.Identifier, w.Identifier, x.ID + 1000},
		{"execution of another webhook", r.Scope, r.Identifier, w.Identifier, o.ID},
		{"execution of another registry", r.Scope, r.Identifier, w.Identifier, x.ID},
	}
	for _, m := range missing {
		_, _, _, err := s.GetExecutionInRegistry(ctx, m.scope, m.registry, m.webhook, m.id)
		wantErr(t, m.name, err, store.ErrNotFound)
	}
}
