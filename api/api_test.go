package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/rehook/rehook/internal/testenv"
	"github.com/rehook/rehook/store"
	"github.com/rehook/rehook/store/storeopen"
	"github.com/rehook/rehook/worker"
)

func init() { gin.SetMode(gin.TestMode) }

// fakeQueue records what the API enqueues; fail makes Enqueue fail.
type fakeQueue struct {
	mu     sync.Mutex
	queued []worker.Payload
	fail   bool
}

func (q *fakeQueue) Enqueue(_ context.Context, e store.Execution, p worker.Payload) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail {
		return errors.New("redis: connection refused")
	}
	p.ExecutionID = e.ID
	q.queued = append(q.queued, p)
	return nil
}

// faultyStore fails every call with err, to test how the API maps it.
type faultyStore struct {
	store.Store
	err error
}

func (f faultyStore) GetAPIKeyByPrefix(ctx context.Context, p string) (store.APIKey, error) {
	return f.Store.GetAPIKeyByPrefix(ctx, p)
}
func (f faultyStore) GetRegistry(context.Context, store.Scope, string) (store.Registry, error) {
	return store.Registry{}, f.err
}

// setup is what each API test needs: a server on a fresh store with keys.
type setup struct {
	t     *testing.T
	store store.Store
	queue *fakeQueue
	srv   *httptest.Server
	keys  map[string]string
}

func newSetup(t *testing.T) *setup {
	t.Helper()
	ctx := context.Background()
	s, err := storeopen.Open(ctx, testenv.DatabaseURL(t), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	st := &setup{t: t, store: s, queue: &fakeQueue{}, keys: map[string]string{}}
	st.srv = httptest.NewServer(New(s, st.queue, zap.NewNop(), Config{}))
	t.Cleanup(st.srv.Close)

	for name, k := range map[string]struct {
		scope string
		role  store.Role
	}{
		"admin":        {"acct", store.RoleAdmin},
		"edit":         {"acct/org/proj", store.RoleEdit},
		"view":         {"acct/org", store.RoleView},
		"other-acct":   {"other", store.RoleAdmin},
		"sibling-org":  {"acct/org2", store.RoleAdmin},
		"sibling-proj": {"acct/org/proj2", store.RoleAdmin},
	} {
		sc, err := ParseScope(k.scope)
		if err != nil {
			t.Fatal(err)
		}
		plain, key, err := NewAPIKey(sc, k.role)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAPIKey(ctx, &key); err != nil {
			t.Fatal(err)
		}
		st.keys[name] = plain
	}
	return st
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (st *setup) call(key, method, path, body string) response {
	st.t.Helper()
	req, err := http.NewRequest(method, st.srv.URL+path, strings.NewReader(body))
	if err != nil {
		st.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("x-api-key", st.keys[key])
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		st.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (st *setup) must(key, method, path, body string, want int) map[string]any {
	st.t.Helper()
	r := st.call(key, method, path, body)
	if r.status != want {
		st.t.Fatalf("%s %s: got %d, want %d: %s", method, path, r.status, want, r.raw)
	}
	return r.body
}

const ref = "/har/api/v1/registry/acct/org/proj/reg1/+"

// finished creates registry, webhook and one execution that is final.
func (st *setup) finished() (store.Webhook, store.Execution) {
	st.t.Helper()
	ctx := context.Background()
	st.must("admin", "POST", "/har/api/v1/registry?space_ref=acct/org/proj",
		`{"identifier":"reg1"}`, 201)
	st.must("edit", "POST", ref+"/webhooks", `{"identifier":"hook1","name":"h",
		"url":"http://127.0.0.1:1/x","enabled":true,"insecure":false}`, 201)
	reg, err := st.store.GetRegistry(ctx, store.Scope{Account: "acct", Org: "org", Project: "proj"}, "reg1")
	if err != nil {
		st.t.Fatal(err)
	}
	hook, err := st.store.GetWebhook(ctx, reg.ID, "hook1")
	if err != nil {
		st.t.Fatal(err)
	}
	e := &store.Execution{WebhookID: hook.ID, RegistryID: reg.ID,
		TriggerType: store.TriggerArtifactCreation, RequestBody: `{"a":1}`}
	if err := st.store.CreateExecutions(ctx, reg.ID, nil, []*store.Execution{e}); err != nil {
		st.t.Fatal(err)
	}
	st.finish(e.ID)
	exec, _ := st.store.GetExecutionByID(ctx, e.ID)
	return hook, exec
}

// finish records one final SUCCESS attempt on a pending execution.
func (st *setup) finish(id int64) {
	st.t.Helper()
	ctx := context.Background()
	now := testNow()
	if _, err := st.store.ClaimExecution(ctx, id, now, now.Add(60e9)); err != nil {
		st.t.Fatal(err)
	}
	err := st.store.RecordAttempt(ctx, id, store.AttemptRecord{
		Attempt: store.Attempt{ExecutionID: id, N: 1, Started: now, Result: store.ResultSuccess,
			StatusCode: 200},
		Final: true, ResponseStatusCode: 200, ResponseStatus: "200 OK",
	})
	if err != nil {
		st.t.Fatal(err)
	}
}

func TestRetriggerStatusCodes(t *testing.T) {
	st := newSetup(t)
	hook, exec := st.finished()
	execPath := fmt.Sprintf("%s/webhooks/hook1/executions/%d", ref, exec.ID)
	retrigger := execPath + "/retrigger"

	// A second registry and webhook, to try execution ids across them.
	st.must("admin", "POST", "/har/api/v1/registry?space_ref=acct/org/proj",
		`{"identifier":"reg2"}`, 201)
	st.must("edit", "POST", "/har/api/v1/registry/acct/org/proj/reg2/+/webhooks",
		`{"identifier":"hook1","name":"h","url":"http://127.0.0.1:1/x","enabled":true,"insecure":false}`, 201)
	st.must("edit", "POST", ref+"/webhooks",
		`{"identifier":"hook2","name":"h","url":"http://127.0.0.1:1/x","enabled":true,"insecure":false}`, 201)

	pendingExec := &store.Execution{WebhookID: hook.ID, RegistryID: hook.RegistryID,
		TriggerType: store.TriggerArtifactCreation, RequestBody: "{}"}
	if err := st.store.CreateExecutions(context.Background(), hook.RegistryID, nil,
		[]*store.Execution{pendingExec}); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, key, path string
		want            int
	}{
		{"ok", "edit", retrigger, 200},
		{"ok percent-encoded ref", "edit", fmt.Sprintf(
			"/har/api/v1/registry/acct%%2Forg%%2Fproj%%2Freg1%%2F%%2B/webhooks/hook1/executions/%d/retrigger",
			exec.ID), 200},
		{"ok percent-encoded ref without +", "edit", fmt.Sprintf(
			"/har/api/v1/registry/acct%%2Forg%%2Fproj%%2Freg1/webhooks/hook1/executions/%d/retrigger",
			exec.ID), 200},
		{"ok percent-encoded canonical id", "edit", fmt.Sprintf(
			"%s/webhooks/hook1/executions/%s/retrigger", ref, encodeDigits(exec.ID)), 200},
		{"ref half encoded", "edit", fmt.Sprintf(
			"/har/api/v1/registry/acct%%2Forg/proj/reg1/+/webhooks/hook1/executions/%d/retrigger",
			exec.ID), 400},
		{"ref ended twice", "edit", fmt.Sprintf(
			"/har/api/v1/registry/acct/org/proj/reg1/+/+/webhooks/hook1/executions/%d/retrigger",
			exec.ID), 400},
		{"ref without /+", "edit", fmt.Sprintf(
			"/har/api/v1/registry/acct/org/proj/reg1/webhooks/hook1/executions/%d/retrigger", exec.ID), 400},
		{"ref too deep", "edit", "/har/api/v1/registry/a/b/c/d/reg1/+/webhooks/hook1/executions/1/retrigger", 400},
		{"ref bad segment", "edit", "/har/api/v1/registry/acct/o%20rg/reg1/+/webhooks/hook1/executions/1/retrigger", 400},
		{"id not a number", "edit", ref + "/webhooks/hook1/executions/abc/retrigger", 400},
		{"id zero", "edit", ref + "/webhooks/hook1/executions/0/retrigger", 400},
		{"id negative", "edit", ref + "/webhooks/hook1/executions/-5/retrigger", 400},
		{"id overflow", "edit", ref + "/webhooks/hook1/executions/9223372036854775808/retrigger", 400},
		{"id with plus sign", "edit", fmt.Sprintf("%s/webhooks/hook1/executions/+%d/retrigger",
			ref, exec.ID), 400},
		{"id with leading zero", "edit", fmt.Sprintf("%s/webhooks/hook1/executions/0%d/retrigger",
			ref, exec.ID), 400},
		{"id with encoded plus sign", "edit", fmt.Sprintf(
			"%s/webhooks/hook1/executions/%%2B%d/retrigger", ref, exec.ID), 400},
		{"id with encoded leading zero", "edit", fmt.Sprintf(
			"%s/webhooks/hook1/executions/%%30%d/retrigger", ref, exec.ID), 400},
		{"no key", "", retrigger, 401},
		{"view role", "view", retrigger, 403},
		{"other account", "other-acct", retrigger, 403},
		{"sibling org", "sibling-org", retrigger, 403},
		{"sibling project", "sibling-proj", retrigger, 403},
		{"registry missing", "edit", "/har/api/v1/registry/acct/org/proj/nope/+/webhooks/hook1/executions/1/retrigger", 404},
		{"webhook missing", "edit", fmt.Sprintf("%s/webhooks/nope/executions/%d/retrigger", ref, exec.ID), 404},
		{"execution missing", "edit", ref + "/webhooks/hook1/executions/999999/retrigger", 404},
		{"execution of another webhook", "edit", fmt.Sprintf("%s/webhooks/hook2/executions/%d/retrigger", ref, exec.ID), 404},
		{"execution of another registry", "edit", fmt.Sprintf(
			"/har/api/v1/registry/acct/org/proj/reg2/+/webhooks/hook1/executions/%d/retrigger", exec.ID), 404},
		{"execution pending", "edit", fmt.Sprintf("%s/webhooks/hook1/executions/%d/retrigger", ref, pendingExec.ID), 409},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := st.call(tc.key, "GET", tc.path, "")
			if r.status != tc.want {
				t.Fatalf("got %d, want %d: %s", r.status, tc.want, r.raw)
			}
			if tc.want >= 400 {
				checkErrorShape(t, r)
			}
		})
	}

	// Each 400 above names what is wrong.
	for _, tc := range []struct{ path, field string }{
		{fmt.Sprintf("%s/webhooks/hook1/executions/+%d/retrigger", ref, exec.ID),
			"webhook_execution_id"},
		{fmt.Sprintf("%s/webhooks/hook1/executions/0%d", ref, exec.ID), "webhook_execution_id"},
		{fmt.Sprintf("%s/webhooks/hook1/executions/%%2B%d", ref, exec.ID),
			"webhook_execution_id"},
		{"/har/api/v1/registry/acct%2Forg/proj/reg1/+/webhooks", "registry_ref"},
		{"/har/api/v1/registry/acct/org/proj/reg1/+/+", "registry_ref"},
		{"/har/api/v1/registry/acct%2Forg%2Fproj%2Freg1%2F%2B/+/webhooks", "registry_ref"},
	} {
		r := st.call("edit", "GET", tc.path, "")
		if r.status != 400 || detailsField(r) != tc.field {
			t.Errorf("GET %s: got %d %s, want 400 naming %s", tc.path, r.status, r.raw, tc.field)
		}
	}

	t.Run("HEAD reaches reads only", func(t *testing.T) {
		ctx := context.Background()
		_, before, err := st.store.ListExecutions(ctx, hook.ID, store.Page{})
		if err != nil {
			t.Fatal(err)
		}
		queued := len(st.queue.queued)

		r := st.call("edit", "HEAD", retrigger, "")
		if r.status != 405 || r.header.Get("Allow") != "GET" {
			t.Errorf("HEAD retrigger: got %d Allow %q, want 405 Allow GET", r.status,
				r.header.Get("Allow"))
		}
		_, after, err := st.store.ListExecutions(ctx, hook.ID, store.Page{})
		if err != nil {
			t.Fatal(err)
		}
		if after != before || len(st.queue.queued) != queued {
			t.Errorf("HEAD retrigger: executions %d -> %d, queued %d -> %d; want nothing new",
				before, after, queued, len(st.queue.queued))
		}

		if r := st.call("view", "HEAD", execPath, ""); r.status != 200 {
			t.Errorf("HEAD execution: got %d, want 200", r.status)
		}
	})

	t.Run("unknown key", func(t *testing.T) {
		req, _ := http.NewRequest("GET", st.srv.URL+retrigger, nil)
		req.Header.Set("x-api-key", "rhk_not_a_key")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("got %d, want 401", resp.StatusCode)
		}
	})

	t.Run("webhook disabled", func(t *testing.T) {
		ctx := context.Background()
		h, _ := st.store.GetWebhook(ctx, hook.RegistryID, "hook1")
		h.Enabled = false
		disableWebhook(t, st, h)
		r := st.call("edit", "GET", retrigger, "")
		if r.status != 409 {
			t.Fatalf("got %d, want 409: %s", r.status, r.raw)
		}
		h.Enabled = true
		disableWebhook(t, st, h)
	})
}

// disableWebhook sets the enabled flag of a webhook of reg1 to h.Enabled,
// through the API.
func disableWebhook(t *testing.T, st *setup, h store.Webhook) {
	t.Helper()
	st.must("edit", "PUT", ref+"/webhooks/"+h.Identifier, fmt.Sprintf(
		`{"name":%q,"url":%q,"enabled":%t,"insecure":%t}`, h.Name, h.URL, h.Enabled, h.Insecure),
		200)
}

func checkErrorShape(t *testing.T, r response) {
	t.Helper()
	code, _ := r.body["code"].(string)
	msg, _ := r.body["message"].(string)
	if code != fmt.Sprint(r.status) || msg == "" {
		t.Errorf("error body %s: want code %q and a message", r.raw, fmt.Sprint(r.status))
	}
	for _, leak := range []string{"goroutine", "sql", "pgx", "sqlite", "panic", "redis"} {
		if strings.Contains(strings.ToLower(msg), leak) {
			t.Errorf("error message leaks %q: %s", leak, msg)
		}
	}
}

// encodeDigits is id with each digit percent-encoded: "8" is "%38".
func encodeDigits(id int64) string {
	var b strings.Builder
	for _, d := range strconv.FormatInt(id, 10) {
		fmt.Fprintf(&b, "%%%02X", d)
	}
	return b.String()
}

func TestRetriggerCreatesPendingExecution(t *testing.T) {
	st := newSetup(t)
	_, exec := st.finished()
	path := fmt.Sprintf("%s/webhooks/hook1/executions/%d/retrigger", ref, exec.ID)

	data := st.must("edit", "GET", path, "", 200)["data"].(map[string]any)
	if int64(data["retriggerOf"].(float64)) != exec.ID || data["retriggerable"] != false {
		t.Fatalf("retrigger answer %v", data)
	}
	if _, has := data["result"]; has {
		t.Errorf("a pending execution has no result: %v", data)
	}
	if data["request"].(map[string]any)["body"] != exec.RequestBody {
		t.Errorf("request body %v, want the original's %q", data["request"], exec.RequestBody)
	}
	newID := int64(data["id"].(float64))
	if len(st.queue.queued) != 1 || st.queue.queued[0].ExecutionID != newID {
		t.Fatalf("queued %v, want one task for execution %d", st.queue.queued, newID)
	}
	p := st.queue.queued[0]
	if p.Webhook != "hook1" || p.Registry != "acct/org/proj/reg1/+" {
		t.Errorf("payload %+v should name webhook and registry", p)
	}

	// A retrigger of a retrigger, once that is final.
	st.finish(newID)
	data = st.must("edit", "GET", fmt.Sprintf("%s/webhooks/hook1/executions/%d/retrigger",
		ref, newID), "", 200)["data"].(map[string]any)
	if int64(data["retriggerOf"].(float64)) != newID {
		t.Errorf("retrigger of retrigger: retriggerOf %v, want %d", data["retriggerOf"], newID)
	}
	got, err := st.store.GetExecutionByID(context.Background(), int64(data["id"].(float64)))
	if err != nil || got.DeliveryID != exec.DeliveryID {
		t.Errorf("delivery id %q, want the original's %q (err %v)", got.DeliveryID, exec.DeliveryID, err)
	}
}

func TestRetriggerWhileQueueDown(t *testing.T) {
	st := newSetup(t)
	_, exec := st.finished()
	st.queue.fail = true
	data := st.must("edit", "GET", fmt.Sprintf("%s/webhooks/hook1/executions/%d/retrigger",
		ref, exec.ID), "", 200)["data"].(map[string]any)
	got, err := st.store.GetExecutionByID(context.Background(), int64(data["id"].(float64)))
	if err != nil || got.State != store.StatePending {
		t.Fatalf("the accepted execution must be stored pending for the sweeper: %+v, %v", got, err)
	}
}

func TestStoreFailures(t *testing.T) {
	st := newSetup(t)
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"unavailable", fmt.Errorf("%w: dial tcp 127.0.0.1:5432: connect: connection refused",
			store.ErrUnavailable), 503},
		{"internal", errors.New(`pq: relation "registries" does not exist`), 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(New(faultyStore{st.store, tc.err}, st.queue,
				zap.NewNop(), Config{}))
			defer srv.Close()
			req, _ := http.NewRequest("GET", srv.URL+ref+"/webhooks/hook1/executions/1/retrigger", nil)
			req.Header.Set("x-api-key", st.keys["edit"])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			r := response{status: resp.StatusCode, raw: string(raw)}
			_ = json.Unmarshal(raw, &r.body)
			if r.status != tc.want {
				t.Fatalf("got %d, want %d: %s", r.status, tc.want, raw)
			}
			checkErrorShape(t, r)
			if strings.Contains(string(raw), "5432") || strings.Contains(string(raw), "relation") {
				t.Errorf("internal text leaked: %s", raw)
			}
			if tc.want == 503 && resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	st := newSetup(t)
	st.finished()
	big := `{"trigger":"ARTIFACT_CREATION","artifact":{"name":"` + strings.Repeat("a", 2<<20) + `"}}`
	r := st.call("edit", "POST", ref+"/artifact-events", big)
	if r.status != 413 {
		t.Fatalf("got %d, want 413", r.status)
	}
	checkErrorShape(t, r)
}

func TestArtifactEvent(t *testing.T) {
	st := newSetup(t)
	st.finished()
	st.must("edit", "POST", ref+"/webhooks", `{"identifier":"deletions","name":"d",
		"url":"http://127.0.0.1:1/d","enabled":true,"insecure":false,
		"triggers":["ARTIFACT_DELETION"]}`, 201)
	st.must("edit", "POST", ref+"/webhooks", `{"identifier":"off","name":"d",
		"url":"http://127.0.0.1:1/d","enabled":false,"insecure":false}`, 201)

	data := st.must("edit", "POST", ref+"/artifact-events", `{"trigger":"ARTIFACT_CREATION",
		"artifact":{"name":"app","version":"1.0"},"principal":{"userName":"alice"}}`, 202)["data"]
	execs := data.(map[string]any)["executions"].([]any)
	if len(execs) != 1 {
		t.Fatalf("creation event made %d executions, want 1 (hook1 only): %v", len(execs), data)
	}

	for _, tc := range []struct{ name, body, field string }{
		{"bad trigger", `{"trigger":"ARTIFACT_UPDATE","artifact":{"name":"a"}}`, "trigger"},
		{"no name", `{"trigger":"ARTIFACT_CREATION","artifact":{}}`, "artifact.name"},
		{"unknown field", `{"trigger":"ARTIFACT_CREATION","artifact":{"name":"a"},"x":1}`, "x"},
		{"wrong type", `{"trigger":"ARTIFACT_CREATION","artifact":{"name":5}}`, "artifact.name"},
		{"not json", `{"trigger":`, "body"},
		{"empty", ``, "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := st.call("edit", "POST", ref+"/artifact-events", tc.body)
			if r.status != 400 {
				t.Fatalf("got %d, want 400: %s", r.status, r.raw)
			}
			checkErrorShape(t, r)
			if d, _ := r.body["details"].(map[string]any); d["field"] != tc.field {
				t.Errorf("details %v, want field %q", d, tc.field)
			}
		})
	}
}

// fixture is the captured Distribution notification sequence.
type fixture struct {
	Posts []struct {
		ContentType string          `json:"contentType"`
		Envelope    json.RawMessage `json:"envelope"`
	} `json:"posts"`
}

func TestDistributionFixture(t *testing.T) {
	st := newSetup(t)
	st.finished()
	st.must("edit", "POST", ref+"/webhooks", `{"identifier":"deletions","name":"d",
		"url":"http://127.0.0.1:1/d","enabled":true,"insecure":false,
		"triggers":["ARTIFACT_DELETION"]}`, 201)

	var fx fixture
	raw, err := readTestdata("distribution-v3.1.2-push.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}

	post := func(contentType string, body []byte) map[string]any {
		req, _ := http.NewRequest("POST", st.srv.URL+ref+"/artifact-events/distribution",
			strings.NewReader(string(body)))
		req.Header.Set("x-api-key", st.keys["edit"])
		req.Header.Set("Content-Type", contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 202 {
			t.Fatalf("distribution post: %d %s", resp.StatusCode, b)
		}
		var out map[string]any
		_ = json.Unmarshal(b, &out)
		return out["data"].(map[string]any)
	}

	var triggers []string
	for _, p := range fx.Posts {
		data := post(p.ContentType, p.Envelope)
		for _, e := range data["executions"].([]any) {
			triggers = append(triggers, e.(map[string]any)["triggerType"].(string))
		}
	}
	want := []string{"ARTIFACT_CREATION", "ARTIFACT_DELETION", "ARTIFACT_DELETION"}
	if fmt.Sprint(triggers) != fmt.Sprint(want) {
		t.Fatalf("executions by trigger %v, want %v (blobs and pulls ignored; one deletion for each of the two webhooks)",
			triggers, want)
	}

	// A blob delete looks like a manifest delete by digest; a digest that
	// was never pushed as a manifest is taken for a blob and ignored.
	blobDelete := `{"events":[{"id":"blob-delete-1","action":"delete","target":{
		"digest":"sha256:ada89625fa67f4db057627dc8a166a153c37aef667f8f883fc07d392cfcb6d2e",
		"repository":"app"},"request":{"id":"req-blob-1","method":"DELETE"}}]}`
	data := post("application/vnd.docker.distribution.events.v2+json", []byte(blobDelete))
	if n := len(data["executions"].([]any)); n != 0 || data["ignored"].(float64) != 1 {
		t.Fatalf("blob delete: %v, want it ignored", data)
	}

	// The registry re-sends on failure: the same events again fire nothing.
	for _, p := range fx.Posts {
		data := post("application/vnd.docker.distribution.events.v1+json", p.Envelope)
		if n := len(data["executions"].([]any)); n != 0 {
			t.Fatalf("re-sent envelope made %d executions, want 0: %v", n, data)
		}
	}

	req, _ := http.NewRequest("POST", st.srv.URL+ref+"/artifact-events/distribution",
		strings.NewReader(`{"events":[]}`))
	req.Header.Set("x-api-key", st.keys["edit"])
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 415 {
		t.Errorf("text/plain envelope: got %d, want 415", resp.StatusCode)
	}
}

func TestRegistryAndWebhookValidation(t *testing.T) {
	st := newSetup(t)
	st.finished()
	for _, tc := range []struct {
		name, key, method, path, body string
		want                          int
	}{
		{"registry duplicate", "admin", "POST", "/har/api/v1/registry?space_ref=acct/org/proj", `{"identifier":"reg1"}`, 409},
		{"registry bad space", "admin", "POST", "/har/api/v1/registry?space_ref=a/b/c/d", `{"identifier":"r"}`, 400},
		{"registry needs admin", "edit", "POST", "/har/api/v1/registry?space_ref=acct/org/proj", `{"identifier":"r"}`, 403},
		{"registry other scope", "admin", "POST", "/har/api/v1/registry?space_ref=other2", `{"identifier":"r"}`, 403},
		{"registry get", "view", "GET", ref, "", 200},
		{"registry get missing", "view", "GET", "/har/api/v1/registry/acct/org/proj/zzz/+", "", 404},
		{"webhook duplicate", "edit", "POST", ref + "/webhooks", `{"identifier":"hook1","name":"h","url":"http://x.example/","enabled":true,"insecure":false}`, 409},
		{"webhook ftp url", "edit", "POST", ref + "/webhooks", `{"identifier":"h2","name":"h","url":"ftp://x.example/","enabled":true,"insecure":false}`, 400},
		{"webhook bad trigger", "edit", "POST", ref + "/webhooks", `{"identifier":"h2","name":"h","url":"http://x.example/","enabled":true,"insecure":false,"triggers":["X"]}`, 400},
		{"webhook no enabled", "edit", "POST", ref + "/webhooks", `{"identifier":"h2","name":"h","url":"http://x.example/","insecure":false}`, 400},
		{"webhook reserved header", "edit", "POST", ref + "/webhooks", `{"identifier":"h2","name":"h","url":"http://x.example/","enabled":true,"insecure":false,"extraHeaders":[{"key":"Host","value":"x"}]}`, 400},
		{"webhook get", "view", "GET", ref + "/webhooks/hook1", "", 200},
		{"webhook list", "view", "GET", ref + "/webhooks?page=0&size=5", "", 200},
		{"webhook list bad size", "view", "GET", ref + "/webhooks?size=0", "", 400},
		{"webhooks wrong method", "edit", "PATCH", ref + "/webhooks", "", 405},
		{"webhook url highest port", "edit", "POST", ref + "/webhooks", `{"identifier":"h3","name":"h","url":"http://[::1]:65535/x","enabled":true,"insecure":false}`, 201},
		{"registry create", "admin", "POST", "/har/api/v1/registry?space_ref=acct/org/proj", `{"identifier":"reg3"}`, 201},
		{"registry list is no route", "view", "GET", "/har/api/v1/registry", "", 405},
		{"registry create with slash", "admin", "POST", "/har/api/v1/registry/?space_ref=acct/org/proj", `{"identifier":"reg4"}`, 400},
		{"registry path with slash", "view", "GET", ref + "/", "", 200},
		{"no such route", "edit", "GET", ref + "/nothing", "", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := st.call(tc.key, tc.method, tc.path, tc.body)
			if r.status != tc.want {
				t.Fatalf("got %d, want %d: %s", r.status, tc.want, r.raw)
			}
			if tc.want >= 400 {
				checkErrorShape(t, r)
			}
		})
	}

	masked := st.must("edit", "POST", ref+"/webhooks", `{"identifier":"m","name":"m",
		"url":"http://x.example/","enabled":true,"insecure":false,
		"extraHeaders":[{"key":"Authorization","value":"Bearer top-secret","masked":true}]}`, 201)
	if strings.Contains(fmt.Sprint(masked), "top-secret") {
		t.Errorf("masked header value returned: %v", masked)
	}
}

// TestMethodsAndSlashes: a method a path does not take is a 405 in the error
// shape with Allow, and a path one slash off is an error in the error shape,
// never a redirect.
func TestMethodsAndSlashes(t *testing.T) {
	st := newSetup(t)
	_, exec := st.finished()
	retrigger := fmt.Sprintf("%s/webhooks/hook1/executions/%d/retrigger", ref, exec.ID)

	for _, tc := range []struct {
		name, key, method, path string
		want                    int
		allow                   string
	}{
		{"registry takes GET, HEAD, DELETE", "admin", "PUT", ref, 405, "GET, HEAD, DELETE"},
		{"webhooks take POST, GET, HEAD", "edit", "PATCH", ref + "/webhooks", 405,
			"POST, GET, HEAD"},
		{"webhook takes GET, HEAD, PUT, DELETE", "edit", "POST", ref + "/webhooks/hook1", 405,
			"GET, HEAD, PUT, DELETE"},
		{"retrigger takes GET only", "edit", "POST", retrigger, 405, "GET"},
		{"retrigger HEAD", "edit", "HEAD", retrigger, 405, "GET"},
		{"registry collection takes POST", "view", "GET", "/har/api/v1/registry", 405, "POST"},
		{"registry collection DELETE", "admin", "DELETE", "/har/api/v1/registry", 405, "POST"},
		{"openapi document takes GET", "", "POST", "/har/api/v1/openapi.yaml", 405, "GET"},
		{"openapi document with slash", "", "GET", "/har/api/v1/openapi.yaml/", 404, ""},
		{"path in another case", "", "GET", "/har/api/v1/OpenAPI.yaml", 404, ""},
		{"registry collection with slash", "view", "GET", "/har/api/v1/registry/", 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := st.call(tc.key, tc.method, tc.path, "")
			if r.status != tc.want || r.header.Get("Allow") != tc.allow {
				t.Fatalf("got %d Allow %q, want %d Allow %q: %s", r.status,
					r.header.Get("Allow"), tc.want, tc.allow, r.raw)
			}
			if loc := r.header.Get("Location"); loc != "" {
				t.Errorf("Location %q: want no redirect", loc)
			}
			if tc.method != "HEAD" {
				checkErrorShape(t, r)
			}
		})
	}
}
