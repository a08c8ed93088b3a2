package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/rehook/rehook/admin"
	"github.com/rehook/rehook/internal/openapicheck"
	"github.com/rehook/rehook/internal/testenv"
	"github.com/rehook/rehook/metrics"
	"github.com/rehook/rehook/store"
)

const openAPIPath = Prefix + "/openapi.yaml"

// servedDocument fetches the document from base without an API key, checks
// the answer, and loads it.
func servedDocument(t *testing.T, base string) *openapicheck.Checker {
	t.Helper()
	resp, err := http.Get(base + openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}

	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s without a key: got %d, want 200: %s", openAPIPath, resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/yaml" {
		t.Errorf("Content-Type: got %q, want application/yaml", ct)
	}
	if !bytes.Equal(raw, OpenAPIDocument()) {
		t.Errorf("the served document (%d bytes) is not the embedded one (%d bytes)", len(raw),
			len(OpenAPIDocument()))
	}
	chk, err := openapicheck.Load(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	return chk
}

// docPath is the document's path of a dispatched route.
func docPath(rt route) string {
	p := Prefix + "/registry/{registry_ref}"
	names := []string{"webhook_identifier", "webhook_execution_id"}
	for _, seg := range rt.pattern {
		if seg == "" {
			seg, names = "{"+names[0]+"}", names[1:]
		}
		p += "/" + seg
	}
	return p
}

// TestOpenAPIDescribesEveryRoute checks both ways that the document and the
// router agree: every route has its operation, named by x-rehook-route as in
// metrics and logs, and every operation under the prefix has its route.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	chk, err := openapicheck.Load(context.Background(), OpenAPIDocument())
	if err != nil {
		t.Fatal(err)
	}
	doc := chk.Doc()

	// The routes, as "METHOD path" with their metric names.
	want := map[string]string{
		"POST " + Prefix + "/registry": "create_registry",
		"GET " + openAPIPath:           "openapi",
	}
	for _, rt := range routes {
		want[rt.method+" "+docPath(rt)] = rt.name
	}
	engine := New(nil, nil, zap.NewNop(), Config{}).handler.(*gin.Engine)
	for _, ri := range engine.Routes() {
		if strings.Contains(ri.Path, "*") {
			continue // dispatch's routes are in the table
		}
		if _, listed := want[ri.Method+" "+ri.Path]; !listed {
			t.Errorf("gin route %s %s is missing from this test's list", ri.Method, ri.Path)
		}
	}

	documented := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name, _ := op.Extensions["x-rehook-route"].(string)
			if name == "" {
				t.Errorf("%s %s (%s) has no x-rehook-route", method, path, op.OperationID)
			}
			if strings.HasPrefix(path, Prefix) {
				documented[method+" "+path] = name
			}
		}
	}
	for route, name := range want {
		got, found := documented[route]
		switch {
		case !found:
			t.Errorf("route %s (%s) is not in the document", route, name)
		case got != name:
			t.Errorf("%s: x-rehook-route got %q, want %q", route, got, name)
		}
	}
	for route := range documented {
		if _, found := want[route]; !found {
			t.Errorf("the document has %s, which no route serves", route)
		}
	}
}

// keyLookupFails is a store whose API key lookup fails with err, so that
// every authenticated request fails as the database does.
type keyLookupFails struct {
	store.Store
	err error
}

func (f keyLookupFails) GetAPIKeyByPrefix(context.Context, string) (store.APIKey, error) {
	return store.APIKey{}, f.err
}

// failingPing is a store whose Ping fails, for /readyz.
type failingPing struct{}

func (failingPing) Ping(context.Context) error { return errors.New("connection refused") }

// conformance sends requests and checks each answer's status and its match
// with the document.
type conformance struct {
	t    *testing.T
	chk  *openapicheck.Checker
	keys map[string]string
}

// exchange is one request of a conformance test.
type exchange struct {
	name   string
	key    string // a name of setup.keys; "" sends none
	method string
	target string // URL
	header http.Header
	body   string
	want   int
}

// do sends ex, checks its status and its match with the document, and
// returns the answer's JSON body and headers.
func (c conformance) do(ex exchange) (map[string]any, http.Header) {
	c.t.Helper()
	header := http.Header{}
	for k, vs := range ex.header {
		header[k] = vs
	}
	if ex.key != "" {
		header.Set("x-api-key", c.keys[ex.key])
	}
	if ex.body != "" && header.Get("Content-Type") == "" {
		header.Set("Content-Type", "application/json")
	}

	got, err := openapicheck.Send(http.DefaultClient, ex.method, ex.target, header,
		[]byte(ex.body))
	if err != nil {
		c.t.Fatalf("%s: %v", ex.name, err)
	}
	if got.Status != ex.want {
		c.t.Errorf("%s: %s %s: got %d, want %d: %.300s", ex.name, ex.method, ex.target,
			got.Status, ex.want, got.Body)
	}
	if err := c.chk.Check(context.Background(), got); err != nil {
		c.t.Errorf("%s: %v", ex.name, err)
	}
	var out map[string]any
	_ = json.Unmarshal(got.Body, &out)
	return out, got.Header
}

// TestResponsesMatchOpenAPI drives a real server through every operation of
// the document, its successes and its errors, and checks every answer
// (status, headers, body) against the document, and every request that
// succeeded too. It fails when an operation, or a status an operation
// documents, was never seen.
func TestResponsesMatchOpenAPI(t *testing.T) {
	t.Logf("backends: %s", testenv.Describe())
	st := newSetup(t)
	chk := servedDocument(t, st.srv.URL)
	c := conformance{t: t, chk: chk, keys: st.keys}
	base := st.srv.URL
	big := strings.Repeat("a", 1<<20)
	tooLarge := `{"identifier":"` + big + `"}`

	// Registries.
	create := base + Prefix + "/registry?space_ref=acct/org/proj"
	reg2 := base + Prefix + "/registry/acct/org/proj/reg2/+"
	for _, ex := range []exchange{
		{"create registry", "admin", "POST", create, nil,
			`{"identifier":"reg1","packageType":"DOCKER","description":"images"}`, 201},
		{"create registry 2", "admin", "POST", create, nil, `{"identifier":"reg2"}`, 201},
		{"create registry taken", "admin", "POST", create, nil, `{"identifier":"reg1"}`, 409},
		{"create registry bad space_ref", "admin", "POST",
			base + Prefix + "/registry?space_ref=a/b/c/d", nil, `{"identifier":"r"}`, 400},
		{"create registry without key", "", "POST", create, nil, `{"identifier":"r"}`, 401},
		{"create registry below admin", "edit", "POST", create, nil, `{"identifier":"r"}`, 403},
		{"create registry too large", "admin", "POST", create, nil, tooLarge, 413},

		{"get registry", "view", "GET", base + ref, http.Header{"X-Request-Id": {"req-1"}}, "",
			200},
		{"get registry percent-encoded", "view", "GET",
			base + Prefix + "/registry/acct%2Forg%2Fproj%2Freg1%2F%2B", nil, "", 200},
		{"get registry ref too deep", "view", "GET", base + Prefix + "/registry/a/b/c/d/reg1/+",
			nil, "", 400},
		{"get registry without key", "", "GET", base + ref, nil, "", 401},
		{"get registry other account", "other-acct", "GET", base + ref, nil, "", 403},
		{"get registry missing", "view", "GET", base + Prefix + "/registry/acct/org/proj/nope/+",
			nil, "", 404},

		{"delete registry", "admin", "DELETE", reg2, nil, "", 200},
		{"delete registry again", "admin", "DELETE", reg2, nil, "", 404},
		{"delete registry bad segment", "admin", "DELETE",
			base + Prefix + "/registry/acct/o%20rg/reg2/+", nil, "", 400},
		{"delete registry without key", "", "DELETE", reg2, nil, "", 401},
		{"delete registry below admin", "edit", "DELETE", reg2, nil, "", 403},
	} {
		c.do(ex)
	}

	// Webhooks.
	hooks := base + ref + "/webhooks"
	missingReg := base + Prefix + "/registry/acct/org/proj/nope/+"
	badRef := base + Prefix + "/registry/acct/o%20rg/reg1/+"
	webhook := func(identifier string, enabled bool) string {
		return fmt.Sprintf(`{"identifier":%q,"name":"Hook %s","description":"d",
			"url":"http://127.0.0.1:1/hook","enabled":%t,"insecure":false,
			"triggers":["ARTIFACT_CREATION"],
			"extraHeaders":[{"key":"X-Token","value":"s3cret","masked":true}],
			"secretIdentifier":"sid","secret":"0123456789abcdef0123"}`,
			identifier, identifier, enabled)
	}
	update := `{"name":"Hook one","url":"http://127.0.0.1:1/hook","enabled":true,
		"insecure":false,"extraHeaders":[{"key":"X-Token","value":"******","masked":true}]}`
	for _, ex := range []exchange{
		{"create webhook", "edit", "POST", hooks, nil, webhook("hook1", true), 201},
		{"create webhook disabled", "edit", "POST", hooks, nil, webhook("hook2", false), 201},
		{"create webhook 3", "edit", "POST", hooks, nil, webhook("hook3", true), 201},
		{"create webhook to delete", "edit", "POST", hooks, nil, webhook("gone", true), 201},
		{"create webhook taken", "edit", "POST", hooks, nil, webhook("hook1", true), 409},
		{"create webhook ftp url", "edit", "POST", hooks, nil,
			strings.Replace(webhook("h", true), "http:", "ftp:", 1), 400},
		{"create webhook without key", "", "POST", hooks, nil, webhook("h", true), 401},
		{"create webhook view role", "view", "POST", hooks, nil, webhook("h", true), 403},
		{"create webhook no registry", "edit", "POST", missingReg + "/webhooks", nil,
			webhook("h", true), 404},
		{"create webhook too large", "edit", "POST", hooks, nil, tooLarge, 413},

		{"list webhooks", "view", "GET",
			hooks + "?page=0&size=2&sort_field=name&sort_order=DESC&search_term=hook", nil, "", 200},
		{"list webhooks size 0", "view", "GET", hooks + "?size=0", nil, "", 400},
		{"list webhooks without key", "", "GET", hooks, nil, "", 401},
		{"list webhooks other account", "other-acct", "GET", hooks, nil, "", 403},
		{"list webhooks no registry", "view", "GET", missingReg + "/webhooks", nil, "", 404},

		{"get webhook", "view", "GET", hooks + "/hook1", nil, "", 200},
		{"get webhook bad ref", "view", "GET", badRef + "/webhooks/hook1", nil, "", 400},
		{"get webhook without key", "", "GET", hooks + "/hook1", nil, "", 401},
		{"get webhook sibling project", "sibling-proj", "GET", hooks + "/hook1", nil, "", 403},
		{"get webhook missing", "view", "GET", hooks + "/nope", nil, "", 404},

		{"update webhook", "edit", "PUT", hooks + "/hook1", nil, update, 200},
		{"update webhook onto a taken identifier", "edit", "PUT", hooks + "/hook1", nil,
			`{"identifier":"hook3","name":"n","url":"http://127.0.0.1:1/h","enabled":true,
			"insecure":false}`, 409},
		{"update webhook without url", "edit", "PUT", hooks + "/hook1", nil,
			`{"name":"n","enabled":true,"insecure":false}`, 400},
		{"update webhook without key", "", "PUT", hooks + "/hook1", nil, update, 401},
		{"update webhook view role", "view", "PUT", hooks + "/hook1", nil, update, 403},
		{"update webhook missing", "edit", "PUT", hooks + "/nope", nil, update, 404},
		{"update webhook too large", "edit", "PUT", hooks + "/hook1", nil, tooLarge, 413},

		{"delete webhook", "edit", "DELETE", hooks + "/gone", nil, "", 200},
		{"delete webhook again", "edit", "DELETE", hooks + "/gone", nil, "", 404},
		{"delete webhook bad ref", "edit", "DELETE", badRef + "/webhooks/hook3", nil, "", 400},
		{"delete webhook without key", "", "DELETE", hooks + "/hook3", nil, "", 401},
		{"delete webhook view role", "view", "DELETE", hooks + "/hook3", nil, "", 403},
	} {
		c.do(ex)
	}

	// Events.
	events := base + ref + "/artifact-events"
	event := `{"trigger":"ARTIFACT_CREATION","artifact":{"name":"app","version":"1.0",
		"tag":"1.0","digest":"sha256:4f3a"},"principal":{"id":7,"userName":"alice"}}`
	distribution := events + "/distribution"
	v2 := http.Header{"Content-Type": {"application/vnd.docker.distribution.events.v2+json"}}
	v1 := http.Header{"Content-Type": {"application/vnd.docker.distribution.events.v1+json"}}
	push := `{"events":[{"id":"ev-1","timestamp":"2024-06-01T00:00:00Z","action":"push",
		"target":{"mediaType":"application/vnd.oci.image.manifest.v1+json",
		"digest":"sha256:9c1e","size":512,"repository":"app","tag":"2.0",
		"url":"http://127.0.0.1:5000/v2/app/manifests/sha256:9c1e"},
		"request":{"id":"req-1","method":"PUT"},"actor":{"name":"alice"}}]}`
	pull := `{"events":[{"id":"ev-2","action":"pull","target":{"repository":"app",
		"digest":"sha256:9c1e"}}]}`
	for _, ex := range []exchange{
		{"artifact event", "edit", "POST", events, nil, event, 202},
		{"artifact event bad trigger", "edit", "POST", events, nil,
			`{"trigger":"ARTIFACT_UPDATE","artifact":{"name":"a"}}`, 400},
		{"artifact event without key", "", "POST", events, nil, event, 401},
		{"artifact event view role", "view", "POST", events, nil, event, 403},
		{"artifact event no registry", "edit", "POST", missingReg + "/artifact-events", nil,
			event, 404},
		{"artifact event too large", "edit", "POST", events, nil, tooLarge, 413},

		{"distribution push", "edit", "POST", distribution, v2, push, 202},
		{"distribution pull v1", "edit", "POST", distribution, v1, pull, 202},
		{"distribution push again as json", "edit", "POST", distribution, nil, push, 202},
		{"distribution not an envelope", "edit", "POST", distribution, v2, `[1,2`, 400},
		{"distribution text/plain", "edit", "POST", distribution,
			http.Header{"Content-Type": {"text/plain"}}, push, 415},
		{"distribution without key", "", "POST", distribution, v2, push, 401},
		{"distribution view role", "view", "POST", distribution, v2, push, 403},
		{"distribution no registry", "edit", "POST", missingReg + "/artifact-events/distribution",
			v2, push, 404},
		{"distribution too large", "edit", "POST", distribution, v2, tooLarge, 413},
	} {
		c.do(ex)
	}

	// Executions: the event and the push made two of hook1 and two of hook3.
	execs := hooks + "/hook1/executions"
	listed, _ := c.do(exchange{"list executions", "view", "GET", execs + "?page=0&size=5",
		nil, "", 200})
	items, _ := listed["data"].(map[string]any)["executions"].([]any)
	if len(items) != 2 {
		t.Fatalf("hook1 has %d executions, want 2: %v", len(items), listed)
	}
	id := int64(items[0].(map[string]any)["id"].(float64))
	st.finish(id)
	for _, e := range st.executionsOf(st.webhook("hook3")) {
		st.finishWith(e.ID, store.ResultFatalError)
	}
	exec := fmt.Sprintf("%s/%d", execs, id)

	for _, ex := range []exchange{
		{"list executions filtered", "view", "GET",
			execs + "?result=SUCCESS&result=FATAL_ERROR&trigger=ARTIFACT_CREATION", nil, "", 200},
		{"list executions bad result", "view", "GET", execs + "?result=BAD", nil, "", 400},
		{"list executions without key", "", "GET", execs, nil, "", 401},
		{"list executions other account", "other-acct", "GET", execs, nil, "", 403},
		{"list executions no webhook", "view", "GET", hooks + "/nope/executions", nil, "", 404},

		{"get execution", "view", "GET", exec, nil, "", 200},
		{"get execution id not a number", "view", "GET", execs + "/abc", nil, "", 400},
		{"get execution without key", "", "GET", exec, nil, "", 401},
		{"get execution sibling org", "sibling-org", "GET", exec, nil, "", 403},
		{"get execution missing", "view", "GET", execs + "/999999", nil, "", 404},
	} {
		c.do(ex)
	}

	// Retrigger.
	retrigger := exec + "/retrigger"
	again, _ := c.do(exchange{"retrigger", "edit", "GET", retrigger, nil, "", 200})
	pending := int64(again["data"].(map[string]any)["id"].(float64))
	idem := http.Header{"Idempotency-Key": {"deploy-2024-06-01 app/1.0"}}
	c.do(exchange{"retrigger with a key", "edit", "GET", retrigger, idem, "", 200})
	_, header := c.do(exchange{"retrigger with the key again", "edit", "GET", retrigger, idem,
		"", 200})
	if got := header.Get("Idempotent-Replayed"); got != "true" {
		t.Errorf("repeated Idempotency-Key: Idempotent-Replayed got %q, want true", got)
	}
	for _, ex := range []exchange{
		{"retrigger waiting", "edit", "GET", retrigger + "?wait=20ms", nil, "", 200},
		{"retrigger wait too long", "edit", "GET", retrigger + "?wait=2m", nil, "", 400},
		{"retrigger without key", "", "GET", retrigger, nil, "", 401},
		{"retrigger view role", "view", "GET", retrigger, nil, "", 403},
		{"retrigger missing", "edit", "GET", execs + "/999999/retrigger", nil, "", 404},
		{"retrigger pending", "edit", "GET", fmt.Sprintf("%s/%d/retrigger", execs, pending),
			nil, "", 409},
	} {
		c.do(ex)
	}

	// Bulk retrigger.
	bulk := execs + "/retrigger"
	bulk3 := hooks + "/hook3/executions/retrigger"
	for _, ex := range []exchange{
		{"bulk retrigger dry run", "edit", "POST", bulk, nil, `{"dryRun":true}`, 200},
		{"bulk retrigger", "edit", "POST", bulk3, nil, `{"results":["FATAL_ERROR"],
			"trigger":"ARTIFACT_CREATION","since":0,"until":4102444800000,"limit":10}`, 200},
		{"bulk retrigger empty body", "edit", "POST", bulk, nil, "", 200},
		{"bulk retrigger limit 0", "edit", "POST", bulk, nil, `{"limit":0}`, 400},
		{"bulk retrigger without key", "", "POST", bulk, nil, "", 401},
		{"bulk retrigger view role", "view", "POST", bulk, nil, "", 403},
		{"bulk retrigger no webhook", "edit", "POST", hooks + "/nope/executions/retrigger", nil,
			"", 404},
		{"bulk retrigger disabled", "edit", "POST", hooks + "/hook2/executions/retrigger", nil,
			"", 409},
		{"bulk retrigger too large", "edit", "POST", bulk, nil, tooLarge, 413},
	} {
		c.do(ex)
	}

	// Requests that match no operation, and the document itself.
	for _, ex := range []exchange{
		{"no such path under a registry", "edit", "GET", base + ref + "/nothing", nil, "", 404},
		{"no such path", "", "GET", base + Prefix + "/nothing", nil, "", 404},
		{"method not allowed", "edit", "PATCH", hooks, nil, "", 405},
		{"document method not allowed", "", "POST", base + openAPIPath, nil, "", 405},
		{"ref without /+", "edit", "GET", base + Prefix + "/registry/acct/org/proj/reg1", nil,
			"", 400},
		{"document", "", "GET", base + openAPIPath, nil, "", 200},
	} {
		c.do(ex)
	}

	// 503 and 500 on every operation, from servers whose database fails.
	every := []exchange{
		{"create registry", "admin", "POST", create, nil, `{"identifier":"r"}`, 0},
		{"get registry", "view", "GET", ref, nil, "", 0},
		{"delete registry", "admin", "DELETE", ref, nil, "", 0},
		{"create webhook", "edit", "POST", ref + "/webhooks", nil, webhook("h", true), 0},
		{"list webhooks", "view", "GET", ref + "/webhooks", nil, "", 0},
		{"get webhook", "view", "GET", ref + "/webhooks/hook1", nil, "", 0},
		{"update webhook", "edit", "PUT", ref + "/webhooks/hook1", nil, update, 0},
		{"delete webhook", "edit", "DELETE", ref + "/webhooks/hook1", nil, "", 0},
		{"list executions", "view", "GET", ref + "/webhooks/hook1/executions", nil, "", 0},
		{"get execution", "view", "GET", ref + "/webhooks/hook1/executions/1", nil, "", 0},
		{"retrigger", "edit", "GET", ref + "/webhooks/hook1/executions/1/retrigger", nil, "", 0},
		{"bulk retrigger", "edit", "POST", ref + "/webhooks/hook1/executions/retrigger", nil,
			"", 0},
		{"artifact event", "edit", "POST", ref + "/artifact-events", nil, event, 0},
		{"distribution", "edit", "POST", ref + "/artifact-events/distribution", v2, push, 0},
	}
	// againstServer sends every request to another server of the same store.
	againstServer := func(srv *httptest.Server, suffix string, want int) {
		for _, ex := range every {
			ex.name = fmt.Sprintf("%s, %s", ex.name, suffix)
			ex.want = want
			if strings.HasPrefix(ex.target, base) {
				ex.target = srv.URL + strings.TrimPrefix(ex.target, base)
			} else {
				ex.target = srv.URL + ex.target
			}
			c.do(ex)
		}
	}
	for _, fault := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("%w: dial tcp 127.0.0.1:5432: connect: connection refused",
			store.ErrUnavailable), 503},
		{errors.New(`relation "api_keys" does not exist`), 500},
	} {
		srv := httptest.NewServer(New(keyLookupFails{st.store, fault.err}, st.queue,
			zap.NewNop(), Config{}))
		againstServer(srv, fmt.Sprintf("database failing (%d)", fault.want), fault.want)
		srv.Close()
	}

	// 429 on every operation, from a server whose rate limit each key has
	// used up, and from the pending executions' limit.
	limited := httptest.NewServer(New(st.store, st.queue, zap.NewNop(),
		Config{RateLimit: 0.001, RateBurst: 1}))
	defer limited.Close()
	for _, key := range []string{"admin", "edit", "view"} {
		c.do(exchange{"use up the rate limit of " + key, key, "GET", limited.URL + ref, nil,
			"", 200})
	}
	againstServer(limited, "over the rate limit", http.StatusTooManyRequests)
	c.do(exchange{"no such path, over the rate limit", "edit", "PATCH",
		limited.URL + ref + "/webhooks", nil, "", http.StatusTooManyRequests})

	full := httptest.NewServer(New(st.store, st.queue, zap.NewNop(),
		Config{MaxPendingPerWebhook: 1}))
	defer full.Close()
	for _, ex := range []exchange{
		{"retrigger, too many pending", "edit", "GET", full.URL + strings.TrimPrefix(retrigger,
			base), nil, "", http.StatusTooManyRequests},
		{"bulk retrigger, too many pending", "edit", "POST", full.URL + strings.TrimPrefix(bulk,
			base), nil, "", http.StatusTooManyRequests},
	} {
		c.do(ex)
	}

	// The admin listener.
	adminURL := adminServer(t, st.store)
	downURL := adminServer(t, failingPing{})
	for _, ex := range []exchange{
		{"admin index", "", "GET", adminURL + "/", nil, "", 200},
		{"healthz", "", "GET", adminURL + "/healthz", nil, "", 200},
		{"readyz", "", "GET", adminURL + "/readyz", nil, "", 200},
		{"readyz store down", "", "GET", downURL + "/readyz", nil, "", 503},
		{"metrics", "", "GET", adminURL + "/metrics", nil, "", 200},
		{"dashboard", "", "GET", adminURL + "/monitoring/", nil, "", 200},
		{"pprof", "", "GET", adminURL + "/debug/pprof/", nil, "", 200},
	} {
		c.do(ex)
	}

	// Every documented status of every operation was seen.
	unseen := chk.Unseen(func(string, string, int) bool { return true })
	for _, u := range unseen {
		t.Errorf("never exercised: %s", u)
	}
	for _, u := range []struct {
		method string
		status int
	}{{"GET", 404}, {"GET", 400}, {"PATCH", 405}, {"POST", 405}} {
		if !chk.Seen(u.method, openapicheck.Unmatched, u.status) {
			t.Errorf("never exercised: %s matching no operation, answered %d", u.method, u.status)
		}
	}
}

// executionsOf lists hook's executions through the store.
func (st *setup) executionsOf(hook store.Webhook) []store.Execution {
	st.t.Helper()
	execs, _, err := st.store.FilterExecutions(context.Background(), hook.ID,
		store.ExecutionFilter{}, store.Page{Size: 100})
	if err != nil {
		st.t.Fatal(err)
	}
	return execs
}

// adminServer serves an admin handler on a Redis of the test's own, with
// the given store, and returns its URL.
func adminServer(t *testing.T, s admin.Pinger) string {
	t.Helper()
	opt, err := asynq.ParseRedisURI(testenv.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	h, err := admin.New(admin.Config{Store: s, Redis: opt, Metrics: metrics.New(),
		Log: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
