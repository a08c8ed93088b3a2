package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/rehook/rehook/store"
)

// tenant is a registry with a webhook and a final execution, in a scope.
type tenant struct {
	scope    store.Scope
	registry store.Registry
	webhook  store.Webhook
	exec     store.Execution
}

func (tn tenant) ref() string {
	return RegistryRef{Scope: tn.scope, Identifier: tn.registry.Identifier}.String()
}

// newTenant stores a registry, a webhook with a secret and a masked
// header, and a final execution of it.
func newTenant(t *testing.T, s store.Store, scope store.Scope, registry, webhook string) tenant {
	t.Helper()
	ctx := context.Background()
	tn := tenant{scope: scope}
	tn.registry = store.Registry{Scope: scope, Identifier: registry, PackageType: "DOCKER"}
	if err := s.CreateRegistry(ctx, &tn.registry); err != nil {
		t.Fatal(err)
	}
	tn.webhook = store.Webhook{RegistryID: tn.registry.ID, Identifier: webhook, Name: webhook,
		URL: "http://127.0.0.1:1/" + webhook, Enabled: true,
		Secret:       []byte("tenant-secret-0123456789abcdef"),
		ExtraHeaders: []store.ExtraHeader{{Key: "X-Token", Value: "tenant-token", Masked: true}}}
	if err := s.CreateWebhook(ctx, &tn.webhook); err != nil {
		t.Fatal(err)
	}
	e := &store.Execution{WebhookID: tn.webhook.ID, RegistryID: tn.registry.ID,
		TriggerType: store.TriggerArtifactCreation, RequestBody: `{"tenant":true}`}
	if err := s.CreateExecutions(ctx, tn.registry.ID, nil, []*store.Execution{e}); err != nil {
		t.Fatal(err)
	}
	err := s.RecordAttempt(ctx, e.ID, store.AttemptRecord{
		Attempt: store.Attempt{N: 1, Started: testNow(), Result: store.ResultSuccess,
			StatusCode: 200},
		Final: true, ResponseStatusCode: 200, ResponseStatus: "200 OK",
	})
	if err != nil {
		t.Fatal(err)
	}
	tn.exec, err = s.GetExecutionByID(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

// routeBodies are valid bodies of the routes that take one, so that only
// the target decides the answer.
var routeBodies = map[string]string{
	"create_registry": `{"identifier":"reg1"}`,
	"create_webhook": `{"identifier":"newhook","name":"n","url":"http://127.0.0.1:1/x",
		"enabled":true,"insecure":false}`,
	"update_webhook": `{"name":"n","url":"http://127.0.0.1:1/x","enabled":true,
		"insecure":false}`,
	"bulk_retrigger":     `{}`,
	"artifact_event":     `{"trigger":"ARTIFACT_CREATION","artifact":{"name":"app"}}`,
	"distribution_event": `{"events":[]}`,
}

// attempt is one request of the matrix and what it must be answered.
type attempt struct {
	name, key, method, path, body string
	want                          int
}

// target names objects in a path: a registry ref, a webhook identifier and
// an execution id.
type target struct {
	ref, webhook string
	exec         int64
}

// path fills rt's pattern with the target; ok is false when the route
// takes none of the parts named in needs ("webhook", "exec"), so that the
// attempt would not be about them.
func (tg target) path(rt route, needs ...string) (string, bool) {
	var segs []string
	params, used := 0, map[string]bool{}
	for _, p := range rt.pattern {
		if p != "" {
			segs = append(segs, p)
			continue
		}
		if params == 0 {
			segs = append(segs, tg.webhook)
			used["webhook"] = true
		} else {
			segs = append(segs, strconv.FormatInt(tg.exec, 10))
			used["exec"] = true
		}
		params++
	}
	for _, n := range needs {
		if !used[n] {
			return "", false
		}
	}
	path := Prefix + "/registry/" + tg.ref
	if len(segs) > 0 {
		path += "/" + strings.Join(segs, "/")
	}
	return path, true
}

// TestTenantIsolation tries every route with the keys of one tenant on the
// objects of others: another account, a sibling org, a sibling project, and
// within the key's own scope the execution of another webhook or registry,
// the webhook of another registry and the registry of another scope. Each
// attempt is refused with 401, 403 or 404 and changes nothing; then the
// other tenants' objects are deleted and every attempt is made again: the
// answers must be the same, byte for byte, so that none tells whether an
// object exists.
func TestTenantIsolation(t *testing.T) {
	st := newSetup(t)
	ctx := context.Background()
	s := st.store

	proj := store.Scope{Account: "acct", Org: "org", Project: "proj"}
	own := newTenant(t, s, proj, "reg1", "hook1")
	sibling := newTenant(t, s, proj, "reg2", "hook2")
	victims := map[string]tenant{
		"sibling project": newTenant(t, s,
			store.Scope{Account: "acct", Org: "org", Project: "proj2"}, "reg1", "hook1"),
		"sibling org": newTenant(t, s,
			store.Scope{Account: "acct", Org: "org2", Project: "proj"}, "reg1", "hook1"),
		"other account": newTenant(t, s,
			store.Scope{Account: "other", Org: "org", Project: "proj"}, "reg1", "hook1"),
		"registry only in a sibling project": newTenant(t, s,
			store.Scope{Account: "acct", Org: "org", Project: "proj2"}, "regx", "hookx"),
	}

	// Keys of the own tenant at every level and role, and keys that are
	// not valid at all.
	type keySpec struct {
		scope store.Scope
		role  store.Role
	}
	attackers := map[string]keySpec{
		"project view":  {proj, store.RoleView},
		"project edit":  {proj, store.RoleEdit},
		"project admin": {proj, store.RoleAdmin},
		"org admin":     {store.Scope{Account: "acct", Org: "org"}, store.RoleAdmin},
		"account admin": {store.Scope{Account: "acct"}, store.RoleAdmin},
	}
	for name, k := range attackers {
		plain, key, err := NewAPIKey(k.scope, k.role)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAPIKey(ctx, &key); err != nil {
			t.Fatal(err)
		}
		st.keys[name] = plain
	}
	plain, revoked, _ := NewAPIKey(proj, store.RoleAdmin)
	if err := s.CreateAPIKey(ctx, &revoked); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAPIKey(ctx, revoked.ID, testNow()); err != nil {
		t.Fatal(err)
	}
	st.keys["revoked"] = plain
	st.keys["unknown"] = "rhk_" + strings.Repeat("0", 48)

	allRoutes := append([]route{{method: "POST", name: "create_registry",
		role: store.RoleAdmin}}, routes...)
	var attempts []attempt
	add := func(name, key string, rt route, path string, want int) {
		if rt.name == "create_registry" {
			path = Prefix + "/registry?space_ref=" + strings.SplitN(
				strings.TrimPrefix(path, Prefix+"/registry/"), "/+", 2)[0]
			path = path[:strings.LastIndex(path, "/")]
		}
		attempts = append(attempts, attempt{name: name + " " + rt.name + " (" + key + ")",
			key: key, method: rt.method, path: path, body: routeBodies[rt.name], want: want})
	}
	covered := map[string]bool{}

	for key, spec := range attackers {
		for victimName, v := range victims {
			if spec.scope.Covers(v.scope) {
				continue
			}
			tg := target{ref: v.ref(), webhook: v.webhook.Identifier, exec: v.exec.ID}
			for _, rt := range allRoutes {
				path, _ := tg.path(rt)
				add(victimName, key, rt, path, http.StatusForbidden)
				covered[rt.name] = true
			}
		}

		// Within the key's own scope: the answer is 403 for a role too
		// low, else 404, whatever exists elsewhere.
		inScope := func(rt route) int {
			if !spec.role.Allows(rt.role) {
				return http.StatusForbidden
			}
			return http.StatusNotFound
		}
		otherRegistryRef := RegistryRef{Scope: proj, Identifier: "regx"}.String()
		cases := []struct {
			name  string
			tg    target
			needs []string
		}{
			{"execution of another webhook's registry",
				target{own.ref(), own.webhook.Identifier, sibling.exec.ID}, []string{"exec"}},
			{"execution of another tenant",
				target{own.ref(), own.webhook.Identifier, victims["other account"].exec.ID},
				[]string{"exec"}},
			{"webhook of another registry",
				target{own.ref(), sibling.webhook.Identifier, sibling.exec.ID},
				[]string{"webhook"}},
			{"registry of another scope under this one",
				target{otherRegistryRef, "hookx",
					victims["registry only in a sibling project"].exec.ID},
				nil},
		}
		for _, c := range cases {
			for _, rt := range routes {
				if path, ok := c.tg.path(rt, c.needs...); ok {
					add(c.name, key, rt, path, inScope(rt))
				}
			}
		}
	}
	for _, key := range []string{"revoked", "unknown"} {
		for _, v := range []tenant{own, victims["other account"]} {
			tg := target{ref: v.ref(), webhook: v.webhook.Identifier, exec: v.exec.ID}
			for _, rt := range allRoutes {
				path, _ := tg.path(rt)
				add("invalid key", key, rt, path, http.StatusUnauthorized)
			}
		}
	}
	for _, rt := range allRoutes {
		if !covered[rt.name] {
			t.Errorf("route %s is not tried across tenants", rt.name)
		}
	}

	first := make([]string, len(attempts))
	for i, at := range attempts {
		r := st.call(at.key, at.method, at.path, at.body)
		if r.status != at.want {
			t.Errorf("%s: %s %s: got %d %s, want %d", at.name, at.method, at.path, r.status,
				r.raw, at.want)
			continue
		}
		checkErrorShape(t, r)
		first[i] = fmt.Sprintf("%d %s", r.status, r.raw)
	}
	t.Logf("%d attempts across tenants", len(attempts))

	// Nothing was queued, and the other tenants' objects are as they were.
	if len(st.queue.queued) != 0 {
		t.Errorf("refused attempts queued %d deliveries", len(st.queue.queued))
	}
	for name, v := range append(mapValues(victims), sibling) {
		hook, err := s.GetWebhookByID(ctx, v.webhook.ID)
		if err != nil || hook.Version != v.webhook.Version || hook.Name != v.webhook.Name {
			t.Errorf("%v: webhook after the attempts: %+v, %v; want it unchanged", name, hook, err)
		}
		_, n, err := s.ListExecutions(ctx, v.webhook.ID, store.Page{Size: 10})
		if err != nil || n != 1 {
			t.Errorf("%v: %d executions after the attempts, %v; want 1", name, n, err)
		}
	}

	for _, v := range append(mapValues(victims), sibling) {
		if err := s.DeleteRegistry(ctx, v.registry.ID); err != nil {
			t.Fatal(err)
		}
	}
	for i, at := range attempts {
		if first[i] == "" {
			continue
		}
		r := st.call(at.key, at.method, at.path, at.body)
		if again := fmt.Sprintf("%d %s", r.status, r.raw); again != first[i] {
			t.Errorf("%s: %s %s answers differently once the target is gone:\n"+
				"exists:  %s\nmissing: %s", at.name, at.method, at.path, first[i], again)
		}
	}
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestRevokedKeyRefusedAtOnce: a key revoked while in use is refused from
// its next request on, and a revoked key is answered like an unknown one.
func TestRevokedKeyRefusedAtOnce(t *testing.T) {
	st := newSetup(t)
	st.finished()
	if r := st.call("admin", "GET", ref, ""); r.status != http.StatusOK {
		t.Fatalf("before revocation: got %d %s, want 200", r.status, r.raw)
	}

	key, err := st.store.GetAPIKeyByPrefix(context.Background(),
		StoredKey(st.keys["admin"], store.Scope{}, "").Prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.store.RevokeAPIKey(context.Background(), key.ID, testNow()); err != nil {
		t.Fatal(err)
	}
	revoked := st.call("admin", "GET", ref, "")
	st.keys["unknown"] = "rhk_unknown"
	unknown := st.call("unknown", "GET", ref, "")
	if revoked.status != http.StatusUnauthorized || revoked.raw != unknown.raw {
		t.Errorf("revoked key: got %d %s; want 401 and the answer of an unknown key, %s",
			revoked.status, revoked.raw, unknown.raw)
	}
}
