package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/rehook/rehook/store"
	"github.com/rehook/rehook/worker"
)

// callWith is setup.call with extra request headers, against srv.
func (st *setup) callWith(srv *httptest.Server, key, method, path, body string,
	header http.Header) response {
	st.t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		st.t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("x-api-key", st.keys[key])
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

// detailsField is the field an error answer names, or "".
func detailsField(r response) string {
	d, _ := r.body["details"].(map[string]any)
	f, _ := d["field"].(string)
	return f
}

// data is the data object of a success body.
func data(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	d, found := body["data"].(map[string]any)
	if !found {
		t.Fatalf("no data object in %v", body)
	}
	return d
}

func (st *setup) registry() store.Registry {
	st.t.Helper()
	reg, err := st.store.GetRegistry(context.Background(),
		store.Scope{Account: "acct", Org: "org", Project: "proj"}, "reg1")
	if err != nil {
		st.t.Fatal(err)
	}
	return reg
}

func (st *setup) webhook(identifier string) store.Webhook {
	st.t.Helper()
	h, err := st.store.GetWebhook(context.Background(), st.registry().ID, identifier)
	if err != nil {
		st.t.Fatal(err)
	}
	return h
}

// executions stores n executions of hook, finished with the results given
// in turn ("" leaves one pending), triggers alternating as given.
func (st *setup) executions(hook store.Webhook, n int, results []store.Result,
	triggers []store.Trigger) []store.Execution {
	st.t.Helper()
	ctx := context.Background()
	var out []store.Execution
	for i := range n {
		e := &store.Execution{WebhookID: hook.ID, RegistryID: hook.RegistryID,
			TriggerType: triggers[i%len(triggers)], RequestBody: fmt.Sprintf(`{"n":%d}`, i)}
		if err := st.store.CreateExecutions(ctx, hook.RegistryID, nil,
			[]*store.Execution{e}); err != nil {
			st.t.Fatal(err)
		}
		if r := results[i%len(results)]; r != "" {
			st.finishWith(e.ID, r)
		}
		got, err := st.store.GetExecutionByID(ctx, e.ID)
		if err != nil {
			st.t.Fatal(err)
		}
		out = append(out, got)
	}
	return out
}

// finishWith records one final attempt with result on a pending execution.
func (st *setup) finishWith(id int64, result store.Result) {
	st.t.Helper()
	err := st.store.RecordAttempt(context.Background(), id, store.AttemptRecord{
		Attempt: store.Attempt{N: 1, Started: time.Now(), Result: result, StatusCode: 500},
		Final:   true, ResponseStatusCode: 500, ResponseStatus: "500 Internal Server Error",
	})
	if err != nil {
		st.t.Fatal(err)
	}
}

const hookBody = `{"identifier":"h2","name":"Hook two","url":"http://127.0.0.1:1/x",
	"enabled":true,"insecure":false%s}`

func TestWebhookLifecycle(t *testing.T) {
	st := newSetup(t)
	st.finished()
	key := []byte("0123456789abcdef0123")
	whsec := "whsec_" + base64.StdEncoding.EncodeToString(key)

	r := st.call("edit", "POST", ref+"/webhooks", fmt.Sprintf(hookBody, `,"secret":"`+whsec+
		`","extraHeaders":[{"key":"X-Token","value":"tok-secret","masked":true},
		{"key":"X-Plain","value":"plain"}]`))
	if r.status != 201 {
		t.Fatalf("create: got %d, want 201: %s", r.status, r.raw)
	}
	created := data(t, r.body)
	if created["secretSet"] != true || created["version"] != 1.0 {
		t.Errorf("created webhook: %v, want secretSet true, version 1", created)
	}
	for _, leak := range []string{whsec, string(key), "tok-secret", `"secret"`} {
		if strings.Contains(r.raw, leak) {
			t.Errorf("create answer holds %q: %s", leak, r.raw)
		}
	}
	if got := st.webhook("h2").Secret; !bytes.Equal(got, key) {
		t.Errorf("stored key: got %q, want the whsec_ value's decoded bytes %q", got, key)
	}

	path := ref + "/webhooks/h2"
	for _, tc := range []struct {
		name, extra string
		wantKey     []byte
	}{
		{"secret absent keeps it", "", key},
		{"raw secret is its own bytes", `,"secret":"plain-text-secret-16"`,
			[]byte("plain-text-secret-16")},
		{"empty secret removes it", `,"secret":""`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := st.webhook("h2")
			kept := `,"extraHeaders":[{"key":"X-Token","value":"******","masked":true}]`
			got := data(t, st.must("edit", "PUT", path, fmt.Sprintf(hookBody, kept+tc.extra),
				200))
			if !bytes.Equal(st.webhook("h2").Secret, tc.wantKey) {
				t.Errorf("stored key: got %q, want %q", st.webhook("h2").Secret, tc.wantKey)
			}
			if got["secretSet"] != (tc.wantKey != nil) || got["version"] != float64(before.Version+1) {
				t.Errorf("answer %v: want secretSet %v and version %d", got, tc.wantKey != nil,
					before.Version+1)
			}
		})
	}

	// A masked header sent back as the API shows it keeps its value; the
	// body's identifier renames the webhook.
	got := data(t, st.must("edit", "PUT", path, `{"identifier":"h3","name":"Renamed",
		"url":"https://example.invalid/hook","enabled":false,"insecure":true,
		"triggers":["ARTIFACT_DELETION"],"description":"d",
		"extraHeaders":[{"key":"X-Token","value":"******","masked":true}]}`, 200))
	if got["identifier"] != "h3" || got["name"] != "Renamed" || got["enabled"] != false ||
		got["url"] != "https://example.invalid/hook" || got["createdAt"] != created["createdAt"] {
		t.Errorf("updated webhook: %v", got)
	}
	h3 := st.webhook("h3")
	want := []store.ExtraHeader{{Key: "X-Token", Value: "tok-secret", Masked: true}}
	if !slices.Equal(h3.ExtraHeaders, want) || !slices.Equal(h3.Triggers,
		[]store.Trigger{store.TriggerArtifactDeletion}) {
		t.Errorf("stored headers %v triggers %v, want %v and deletions", h3.ExtraHeaders,
			h3.Triggers, want)
	}
	st.must("view", "GET", path, "", 404)
	st.must("view", "GET", ref+"/webhooks/h3", "", 200)

	r = st.call("edit", "PUT", ref+"/webhooks/h3", strings.Replace(fmt.Sprintf(hookBody, ""),
		`"h2"`, `"hook1"`, 1))
	if r.status != 409 || detailsField(r) != "identifier" {
		t.Errorf("rename onto an existing webhook: got %d %s, want 409 on identifier",
			r.status, r.raw)
	}
	st.must("edit", "PUT", ref+"/webhooks/missing", fmt.Sprintf(hookBody, ""), 404)
	st.must("view", "PUT", ref+"/webhooks/h3", fmt.Sprintf(hookBody, ""), 403)

	r = st.call("edit", "DELETE", ref+"/webhooks/h3", "")
	if r.status != 200 || strings.TrimSpace(r.raw) != `{"status":"SUCCESS"}` {
		t.Errorf("delete: got %d %s, want 200 {\"status\":\"SUCCESS\"}", r.status, r.raw)
	}
	st.must("view", "GET", ref+"/webhooks/h3", "", 404)
	st.must("edit", "DELETE", ref+"/webhooks/h3", "", 404)
	st.must("view", "DELETE", ref+"/webhooks/hook1", "", 403)
}

func TestWebhookValidationNamesTheField(t *testing.T) {
	st := newSetup(t)
	st.finished()
	short := base64.StdEncoding.EncodeToString([]byte("fifteen bytes!!"))
	long := strings.Repeat("n", maxNameLen+1)
	// with is a valid webhook body but for the fields given, which replace
	// the defaults of the same name.
	with := func(fields string) string {
		body := map[string]any{"identifier": "h", "name": "n", "url": "http://x.example/",
			"enabled": true, "insecure": false}
		if err := json.Unmarshal([]byte("{"+fields+"}"), &body); err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(body)
		return string(raw)
	}

	for _, tc := range []struct {
		name, method, path, body, field string
		want                            int
	}{
		{"identifier pattern", "POST", "/webhooks", with(`"identifier":"1bad id"`),
			"identifier", 400},
		{"identifier taken", "POST", "/webhooks", with(`"identifier":"hook1"`),
			"identifier", 409},
		{"url scheme", "POST", "/webhooks", with(`"url":"ftp://x.example/"`), "url", 400},
		{"url without host", "POST", "/webhooks", with(`"url":"http://:80/"`), "url", 400},
		{"url port too big", "POST", "/webhooks", with(`"url":"http://127.0.0.1:65536/"`),
			"url", 400},
		{"url port zero", "POST", "/webhooks", with(`"url":"http://h:0/"`), "url", 400},
		{"url NUL in fragment", "POST", "/webhooks", with(`"url":"http://h/#a\u0000b"`),
			"url", 400},
		{"url DEL in fragment", "POST", "/webhooks", with(`"url":"http://h/#\u007f"`),
			"url", 400},
		{"url tab in fragment", "POST", "/webhooks", with(`"url":"http://h/#a\tb"`),
			"url", 400},
		{"update url without host", "PUT", "/webhooks/hook1",
			with(`"identifier":"hook1","url":"http://:443/x"`), "url", 400},
		{"trigger", "POST", "/webhooks", with(`"triggers":["ARTIFACT_UPDATE"]`),
			"triggers", 400},
		{"name length", "POST", "/webhooks", with(`"name":"` + long + `"`), "name", 400},
		{"description length", "POST", "/webhooks",
			with(`"description":"` + strings.Repeat("d", 1025) + `"`), "description", 400},
		{"raw secret too short", "POST", "/webhooks", with(`"secret":"fifteen bytes!!"`),
			"secret", 400},
		{"whsec key too short", "POST", "/webhooks",
			with(`"secret":"whsec_` + short + `"`), "secret", 400},
		{"whsec not base64", "PUT", "/webhooks/hook1",
			with(`"secret":"whsec_not base64 at all!!"`), "secret", 400},
		{"masked placeholder with nothing stored", "PUT", "/webhooks/hook1",
			with(`"identifier":"hook1","extraHeaders":[{"key":"X-New","value":"******","masked":true}]`),
			"extraHeaders.value", 400},
		{"update url", "PUT", "/webhooks/hook1", with(`"url":"javascript:alert(1)"`),
			"url", 400},
		{"sort field", "GET", "/webhooks?sort_field=url", "", "sort_field", 400},
		{"sort order", "GET", "/webhooks?sort_order=up", "", "sort_order", 400},
		{"execution result filter", "GET", "/webhooks/hook1/executions?result=PENDING", "",
			"result", 400},
		{"execution trigger filter", "GET", "/webhooks/hook1/executions?trigger=X", "",
			"trigger", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := st.call("edit", tc.method, ref+tc.path, tc.body)
			if r.status != tc.want {
				t.Fatalf("got %d, want %d: %s", r.status, tc.want, r.raw)
			}
			checkErrorShape(t, r)
			if d, _ := r.body["details"].(map[string]any); d["field"] != tc.field {
				t.Errorf("details %v, want field %q", d, tc.field)
			}
			for _, leak := range []string{"fifteen bytes", short, "not base64 at all"} {
				if strings.Contains(r.raw, leak) {
					t.Errorf("error answer quotes the secret: %s", r.raw)
				}
			}
		})
	}
}

// pageWalk reads every page of size 10 of a list and returns the items'
// values of field, checking the paging fields of each page.
func pageWalk(t *testing.T, st *setup, path, items, field string, total int) []string {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	wantPages := (total + 9) / 10
	var got []string
	for page := 0; page <= wantPages; page++ {
		d := data(t, st.must("view", "GET", fmt.Sprintf("%s%spage=%d&size=10", path, sep, page),
			"", 200))
		paging := fmt.Sprint(d["pageCount"], d["itemCount"], d["pageSize"], d["pageIndex"])
		if want := fmt.Sprint(wantPages, total, 10, page); paging != want {
			t.Fatalf("page %d: pageCount itemCount pageSize pageIndex %s, want %s", page,
				paging, want)
		}
		list := d[items].([]any)
		if page == wantPages && len(list) != 0 {
			t.Fatalf("page %d past the end has %d items", page, len(list))
		}
		for _, item := range list {
			got = append(got, fmt.Sprint(item.(map[string]any)[field]))
		}
	}
	return got
}

func TestWebhookListWalksEveryPage(t *testing.T) {
	st := newSetup(t)
	st.must("admin", "POST", "/har/api/v1/registry?space_ref=acct/org/proj",
		`{"identifier":"reg1"}`, 201)
	var identifiers []string
	for i := range 95 {
		id := fmt.Sprintf("hook_%02d", (i*37)%95)
		identifiers = append(identifiers, id)
		st.must("edit", "POST", ref+"/webhooks", fmt.Sprintf(`{"identifier":%q,
			"name":"Name %d","url":"http://127.0.0.1:1/","enabled":true,"insecure":false}`,
			id, i%4), 201)
	}
	sorted := slices.Sorted(slices.Values(identifiers))

	got := pageWalk(t, st, ref+"/webhooks", "webhooks", "identifier", 95)
	if !slices.Equal(got, sorted) {
		t.Errorf("default order: pages together\ngot  %v\nwant %v", got, sorted)
	}
	got = pageWalk(t, st, ref+"/webhooks?sort_field=identifier&sort_order=desc", "webhooks",
		"identifier", 95)
	if want := slices.Clone(sorted); !slices.Equal(got, reverse(want)) {
		t.Errorf("identifier DESC: pages together\ngot  %v\nwant %v", got, want)
	}
	for _, sort := range []string{"name", "createdAt", "modifiedAt"} {
		for _, order := range []string{"ASC", "DESC"} {
			got := pageWalk(t, st, ref+"/webhooks?sort_field="+sort+"&sort_order="+order,
				"webhooks", "identifier", 95)
			if !slices.Equal(slices.Sorted(slices.Values(got)), sorted) {
				t.Errorf("sorted by %s %s: pages are not disjoint and complete: %v", sort, order,
					got)
			}
		}
	}
	got = pageWalk(t, st, ref+"/webhooks?sort_field=createdAt", "webhooks", "identifier", 95)
	if !slices.Equal(got, identifiers) {
		t.Errorf("createdAt: got %v, want creation order %v", got, identifiers)
	}

	got = pageWalk(t, st, ref+"/webhooks?search_term=HOOK_1", "webhooks", "identifier", 10)
	want := []string{"hook_10", "hook_11", "hook_12", "hook_13", "hook_14", "hook_15",
		"hook_16", "hook_17", "hook_18", "hook_19"}
	if !slices.Equal(got, want) {
		t.Errorf("search_term=HOOK_1: got %v, want %v", got, want)
	}
}

func reverse(s []string) []string {
	slices.Reverse(s)
	return s
}

func TestExecutionListWalksEveryPage(t *testing.T) {
	st := newSetup(t)
	hook, first := st.finished()
	results := []store.Result{store.ResultFatalError, store.ResultSuccess, "",
		store.ResultRetriableError}
	triggers := []store.Trigger{store.TriggerArtifactCreation, store.TriggerArtifactDeletion,
		store.TriggerArtifactCreation}
	execs := append([]store.Execution{first}, st.executions(hook, 94, results, triggers)...)
	slices.Reverse(execs) // newest first

	for _, tc := range []struct {
		query string
		keep  func(e store.Execution) bool
	}{
		{"", func(store.Execution) bool { return true }},
		{"?result=FATAL_ERROR", func(e store.Execution) bool {
			return e.Result == store.ResultFatalError
		}},
		{"?result=FATAL_ERROR,RETRIABLE_ERROR&trigger=ARTIFACT_DELETION",
			func(e store.Execution) bool {
				return e.Result != store.ResultSuccess && e.Result != "" &&
					e.TriggerType == store.TriggerArtifactDeletion
			}},
		{"?trigger=ARTIFACT_CREATION&result=SUCCESS&result=FATAL_ERROR",
			func(e store.Execution) bool {
				return (e.Result == store.ResultSuccess || e.Result == store.ResultFatalError) &&
					e.TriggerType == store.TriggerArtifactCreation
			}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			var want []string
			for _, e := range execs {
				if tc.keep(e) {
					want = append(want, fmt.Sprint(e.ID))
				}
			}
			got := pageWalk(t, st, ref+"/webhooks/hook1/executions"+tc.query, "executions",
				"id", len(want))
			if !slices.Equal(got, want) {
				t.Errorf("pages together, newest first:\ngot  %v\nwant %v", got, want)
			}
		})
	}
}

func TestLatestExecutionResult(t *testing.T) {
	st := newSetup(t)
	hook, _ := st.finished()
	st.must("edit", "POST", ref+"/webhooks", fmt.Sprintf(hookBody, ""), 201)

	st.executions(hook, 2, []store.Result{store.ResultFatalError, ""},
		[]store.Trigger{store.TriggerArtifactCreation})
	got := data(t, st.must("view", "GET", ref+"/webhooks/hook1", "", 200))
	if got["latestExecutionResult"] != "FATAL_ERROR" {
		t.Errorf("get: latestExecutionResult %v, want FATAL_ERROR (the newest with a result)",
			got["latestExecutionResult"])
	}

	list := data(t, st.must("view", "GET", ref+"/webhooks", "", 200))["webhooks"].([]any)
	results := map[string]any{}
	for _, w := range list {
		w := w.(map[string]any)
		results[w["identifier"].(string)] = w["latestExecutionResult"]
	}
	if results["hook1"] != "FATAL_ERROR" || results["h2"] != nil {
		t.Errorf("list: latest results %v, want hook1 FATAL_ERROR and none for h2", results)
	}
}

func TestDeleteWebhookDeletesItsHistory(t *testing.T) {
	st := newSetup(t)
	_, exec := st.finished()
	execPath := fmt.Sprintf("%s/webhooks/hook1/executions/%d", ref, exec.ID)
	st.must("view", "GET", execPath, "", 200)

	st.must("edit", "DELETE", ref+"/webhooks/hook1", "", 200)

	st.must("view", "GET", execPath, "", 404)
	st.must("edit", "GET", execPath+"/retrigger", "", 404)
	st.must("view", "GET", ref+"/webhooks/hook1/executions", "", 404)
	if _, err := st.store.GetExecutionByID(context.Background(), exec.ID); err == nil {
		t.Errorf("execution %d is still stored after its webhook was deleted", exec.ID)
	}

	// A new webhook of the same identifier starts with no history.
	st.must("edit", "POST", ref+"/webhooks", `{"identifier":"hook1","name":"h",
		"url":"http://127.0.0.1:1/x","enabled":true,"insecure":false}`, 201)
	st.must("view", "GET", execPath, "", 404)
	st.must("edit", "GET", execPath+"/retrigger", "", 404)
	d := data(t, st.must("view", "GET", ref+"/webhooks/hook1/executions", "", 200))
	if d["itemCount"] != 0.0 {
		t.Errorf("executions of the new webhook: %v, want none", d)
	}
}

func TestRetriggerIdempotencyKey(t *testing.T) {
	st := newSetup(t)
	_, exec := st.finished()
	_, other := st.finished2()
	retrigger := fmt.Sprintf("%s/webhooks/hook1/executions/%d/retrigger", ref, exec.ID)
	withKey := func(k string) http.Header { return http.Header{"Idempotency-Key": {k}} }

	first := st.callWith(st.srv, "edit", "GET", retrigger, "", withKey("deploy-42"))
	if first.status != 200 || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: got %d %s (replayed %q), want 200, not replayed", first.status,
			first.raw, first.header.Get("Idempotent-Replayed"))
	}
	firstID := data(t, first.body)["id"]

	again := st.callWith(st.srv, "edit", "GET", retrigger, "", withKey("deploy-42"))
	if again.status != 200 || data(t, again.body)["id"] != firstID ||
		again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("same key: got %d id %v replayed %q, want 200, id %v, replayed true",
			again.status, data(t, again.body)["id"], again.header.Get("Idempotent-Replayed"),
			firstID)
	}
	if n := len(st.queue.queued); n != 1 {
		t.Errorf("tasks queued: got %d, want 1 for one new execution", n)
	}

	for _, tc := range []struct {
		name, key, path, idem string
	}{
		{"another key", "edit", retrigger, "deploy-43"},
		{"another API key", "admin", retrigger, "deploy-42"},
		{"another execution", "edit", fmt.Sprintf("%s/webhooks/hook1/executions/%d/retrigger",
			ref, other.ID), "deploy-42"},
		{"no key", "edit", retrigger, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.idem != "" {
				h = withKey(tc.idem)
			}
			r := st.callWith(st.srv, tc.key, "GET", tc.path, "", h)
			if r.status != 200 || data(t, r.body)["id"] == firstID {
				t.Errorf("got %d id %v, want 200 and a new execution", r.status,
					data(t, r.body)["id"])
			}
		})
	}

	t.Run("replay while the webhook is disabled", func(t *testing.T) {
		h := st.webhook("hook1")
		h.Enabled = false
		disableWebhook(t, st, h)
		defer func() {
			h.Enabled = true
			disableWebhook(t, st, h)
		}()
		queued := len(st.queue.queued)

		r := st.callWith(st.srv, "edit", "GET", retrigger, "", withKey("deploy-42"))
		if r.status != 200 || data(t, r.body)["id"] != firstID ||
			r.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("same key: got %d %s replayed %q, want 200, id %v, replayed true",
				r.status, r.raw, r.header.Get("Idempotent-Replayed"), firstID)
		}
		r = st.callWith(st.srv, "edit", "GET", retrigger, "", withKey("deploy-44"))
		if r.status != 409 {
			t.Errorf("new key: got %d %s, want 409 (disabled)", r.status, r.raw)
		}
		if n := len(st.queue.queued); n != queued {
			t.Errorf("tasks queued: got %d, want %d: nothing new", n, queued)
		}
	})

	// A day later the key is free again.
	a := New(st.store, st.queue, zap.NewNop(), Config{})
	a.now = func() time.Time { return time.Now().Add(idempotencyLifetime + time.Minute) }
	later := httptest.NewServer(a)
	defer later.Close()
	r := st.callWith(later, "edit", "GET", retrigger, "", withKey("deploy-42"))
	if r.status != 200 || data(t, r.body)["id"] == firstID {
		t.Errorf("after 24h: got %d id %v, want a new execution", r.status, data(t, r.body)["id"])
	}

	for _, bad := range []http.Header{
		withKey(""), withKey(strings.Repeat("k", 256)), withKey("tab\there"),
		withKey("é"), {"Idempotency-Key": {"a", "b"}},
	} {
		r := st.callWith(st.srv, "edit", "GET", retrigger, "", bad)
		if r.status != 400 || detailsField(r) != "Idempotency-Key" {
			t.Errorf("Idempotency-Key %q: got %d %s, want 400 naming the header",
				bad.Values("Idempotency-Key"), r.status, r.raw)
		}
	}
}

// finished2 is a second final execution of hook1.
func (st *setup) finished2() (store.Webhook, store.Execution) {
	st.t.Helper()
	hook := st.webhook("hook1")
	return hook, st.executions(hook, 1, []store.Result{store.ResultSuccess},
		[]store.Trigger{store.TriggerArtifactCreation})[0]
}

// deliveringQueue stands in for the worker: after delay, it finishes every
// execution it is given with SUCCESS.
type deliveringQueue struct {
	store store.Store
	delay time.Duration
	wg    sync.WaitGroup
}

func (q *deliveringQueue) Enqueue(_ context.Context, e store.Execution, _ worker.Payload) error {
	q.wg.Add(1)
	time.AfterFunc(q.delay, func() {
		defer q.wg.Done()
		ctx := context.Background()
		_ = q.store.RecordAttempt(ctx, e.ID, store.AttemptRecord{
			Attempt: store.Attempt{N: 1, Started: time.Now(), Result: store.ResultSuccess,
				StatusCode: 200},
			Final: true, ResponseStatusCode: 200, ResponseStatus: "200 OK",
		})
	})
	return nil
}

func TestRetriggerWait(t *testing.T) {
	st := newSetup(t)
	_, exec := st.finished()
	retrigger := fmt.Sprintf("%s/webhooks/hook1/executions/%d/retrigger", ref, exec.ID)

	// The delivery takes longer than the API's store timeout: the wait must
	// not be cut by it.
	q := &deliveringQueue{store: st.store, delay: time.Second}
	t.Cleanup(q.wg.Wait)
	srv := httptest.NewServer(New(st.store, q, zap.NewNop(),
		Config{RequestTimeout: 250 * time.Millisecond}))
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		name, query string
		final       bool
	}{
		{"without wait", "", false},
		{"wait zero", "?wait=0", false},
		{"wait as a duration", "?wait=10s", true},
		{"wait in seconds", "?wait=10", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := st.callWith(srv, "edit", "GET", retrigger+tc.query, "", nil)
			if r.status != 200 {
				t.Fatalf("got %d, want 200: %s", r.status, r.raw)
			}
			d := data(t, r.body)
			if d["retriggerable"] != tc.final {
				t.Fatalf("retriggerable %v, want %v: %v", d["retriggerable"], tc.final, d)
			}
			if tc.final && (d["result"] != "SUCCESS" || d["response"] == nil) {
				t.Errorf("a final execution answers with its result and response: %v", d)
			}
		})
	}

	// A wait that runs out answers with the execution as it stands.
	slow := &deliveringQueue{store: st.store, delay: time.Hour}
	srv2 := httptest.NewServer(New(st.store, slow, zap.NewNop(), Config{}))
	t.Cleanup(srv2.Close)
	r := st.callWith(srv2, "edit", "GET", retrigger+"?wait=300ms", "", nil)
	if r.status != 200 || data(t, r.body)["retriggerable"] != false {
		t.Errorf("wait ran out: got %d %s, want 200 with the pending execution", r.status,
			r.raw)
	}

	for _, bad := range []string{"61s", "61", "-1s", "soon", "1.5"} {
		r := st.call("edit", "GET", retrigger+"?wait="+bad, "")
		if r.status != 400 || detailsField(r) != "wait" {
			t.Errorf("wait=%s: got %d %s, want 400 naming wait", bad, r.status, r.raw)
		}
	}
}

func TestBulkRetrigger(t *testing.T) {
	st := newSetup(t)
	hook, first := st.finished() // SUCCESS, ARTIFACT_CREATION
	results := []store.Result{store.ResultFatalError, store.ResultRetriableError,
		store.ResultSuccess, ""}
	triggers := []store.Trigger{store.TriggerArtifactCreation, store.TriggerArtifactDeletion}
	execs := append([]store.Execution{first}, st.executions(hook, 12, results, triggers)...)
	bulk := ref + "/webhooks/hook1/executions/retrigger"

	var fatal []int64
	for _, e := range execs {
		if e.Result == store.ResultFatalError {
			fatal = append(fatal, e.ID)
		}
	}

	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"every final", "", 10},
		{"fatal", `{"results":["FATAL_ERROR"]}`, len(fatal)},
		{"failures of creations", `{"results":["FATAL_ERROR","RETRIABLE_ERROR"],
			"trigger":"ARTIFACT_CREATION"}`, 3},
		{"limit", `{"limit":2}`, 2},
		{"since the future", fmt.Sprintf(`{"since":%d}`,
			time.Now().Add(time.Hour).UnixMilli()), 0},
		{"window around now", fmt.Sprintf(`{"since":%d,"until":%d,"results":["FATAL_ERROR"]}`,
			time.Now().Add(-time.Hour).UnixMilli(), time.Now().Add(time.Hour).UnixMilli()),
			len(fatal)},
	} {
		t.Run("dry run "+tc.name, func(t *testing.T) {
			body := `{"dryRun":true}`
			if tc.body != "" {
				body = strings.Replace(tc.body, "{", `{"dryRun":true,`, 1)
			}
			r := st.call("edit", "POST", bulk, body)
			if r.status != 200 || strings.TrimSpace(r.raw) != fmt.Sprintf(
				`{"status":"SUCCESS","data":{"count":%d}}`, tc.want) {
				t.Errorf("got %d %s, want 200 with count %d only", r.status, r.raw, tc.want)
			}
		})
	}
	if len(st.queue.queued) != 0 {
		t.Fatalf("dry runs queued %d tasks", len(st.queue.queued))
	}

	d := data(t, st.must("edit", "POST", bulk, `{"results":["FATAL_ERROR"]}`, 200))
	ids := d["executions"].([]any)
	if d["count"] != float64(len(fatal)) || len(ids) != len(fatal) {
		t.Fatalf("bulk retrigger: %v, want %d executions", d, len(fatal))
	}
	for i, id := range ids {
		e, err := st.store.GetExecutionByID(context.Background(), int64(id.(float64)))
		if err != nil || e.RetriggerOf != fatal[i] || e.State != store.StatePending {
			t.Errorf("execution %v: %+v (%v), want a pending retrigger of %d", id, e, err,
				fatal[i])
		}
		if q := st.queue.queued[i]; q.ExecutionID != e.ID || q.Webhook != "hook1" {
			t.Errorf("task %d: %+v, want execution %d of hook1", i, q, e.ID)
		}
	}

	again := data(t, st.must("edit", "POST", bulk, `{"results":["FATAL_ERROR"]}`, 200))
	if again["count"] != 0.0 || len(again["executions"].([]any)) != 0 {
		t.Errorf("second bulk retrigger: %v, want none: the first superseded them", again)
	}

	for _, tc := range []struct {
		name, key, body, field string
		want                   int
	}{
		{"bad result", "edit", `{"results":["PENDING"]}`, "results", 400},
		{"bad trigger", "edit", `{"trigger":"X"}`, "trigger", 400},
		{"limit zero", "edit", `{"limit":0}`, "limit", 400},
		{"limit too high", "edit", `{"limit":1001}`, "limit", 400},
		{"until before since", "edit", `{"since":2000,"until":1000}`, "until", 400},
		{"negative since", "edit", `{"since":-1}`, "since", 400},
		{"unknown field", "edit", `{"result":["FATAL_ERROR"]}`, "result", 400},
		{"view role", "view", `{}`, "", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := st.call(tc.key, "POST", bulk, tc.body)
			if r.status != tc.want {
				t.Fatalf("got %d, want %d: %s", r.status, tc.want, r.raw)
			}
			checkErrorShape(t, r)
			if d, _ := r.body["details"].(map[string]any); tc.field != "" &&
				d["field"] != tc.field {
				t.Errorf("details %v, want field %q", d, tc.field)
			}
		})
	}
	st.must("edit", "POST", ref+"/webhooks/nope/executions/retrigger", "{}", 404)
	// GET on the bulk path is the execution route with a bad id, not a bulk.
	st.must("edit", "GET", bulk, "", 400)

	disableWebhook(t, st, store.Webhook{Identifier: "hook1", Name: "h",
		URL: "http://127.0.0.1:1/x"})
	st.must("edit", "POST", bulk, `{"dryRun":true}`, 200)
	st.must("edit", "POST", bulk, `{}`, 409)
}
