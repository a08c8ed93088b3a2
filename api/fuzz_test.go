package api

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/rehook/rehook/store"
	"github.com/rehook/rehook/worker"
)

// The fuzz targets below run with their seeds under go test, and search
// further with go test -fuzz (see README, Security). No input may panic or
// be answered with a 5xx.

// fuzzKey is the key of the fuzz targets' fake store: admin of all accounts.
const fuzzKey = "rhk_fuzz_0123456789abcdef0123456789abcdef01234567"

// fuzzStore is a store that holds one registry, acct/org/proj/reg1, with
// one webhook, hook1, and its final execution 1. Writes succeed and are
// forgotten, so that every input meets the same state. Methods the API
// does not call are left to the nil interface: calling one panics, which
// the fuzz targets see as a 500.
type fuzzStore struct {
	store.Store
}

var (
	fuzzScope    = store.Scope{Account: "acct", Org: "org", Project: "proj"}
	fuzzRegistry = store.Registry{ID: 1, Scope: fuzzScope, Identifier: "reg1",
		PackageType: "DOCKER", Created: time.UnixMilli(1)}
	fuzzWebhook = store.Webhook{ID: 1, RegistryID: 1, Identifier: "hook1", Name: "h",
		URL: "http://127.0.0.1:1/x", Enabled: true, Version: 1,
		ExtraHeaders: []store.ExtraHeader{{Key: "X-Token", Value: "v", Masked: true}}}
	fuzzExecution = store.Execution{ID: 1, WebhookID: 1, RegistryID: 1,
		TriggerType: store.TriggerArtifactCreation, DeliveryID: "d", State: store.StateFinal,
		Result: store.ResultSuccess, Attempts: 1, RequestBody: "{}"}
)

func (fuzzStore) GetAPIKeyByPrefix(_ context.Context, prefix string) (store.APIKey, error) {
	k := StoredKey(fuzzKey, store.Scope{}, store.RoleAdmin)
	if prefix != k.Prefix {
		return store.APIKey{}, store.ErrNotFound
	}
	k.ID = 1
	return k, nil
}

func (fuzzStore) CreateRegistry(_ context.Context, r *store.Registry) error {
	if r.Scope == fuzzScope && r.Identifier == fuzzRegistry.Identifier {
		return store.ErrConflict
	}
	r.ID = 2
	return nil
}

func (fuzzStore) GetRegistry(_ context.Context, scope store.Scope, id string) (
	store.Registry, error) {
	if scope != fuzzScope || id != fuzzRegistry.Identifier {
		return store.Registry{}, store.ErrNotFound
	}
	return fuzzRegistry, nil
}

func (fuzzStore) DeleteRegistry(context.Context, int64) error { return nil }

func (fuzzStore) CreateWebhook(_ context.Context, w *store.Webhook) error {
	if w.Identifier == fuzzWebhook.Identifier {
		return store.ErrConflict
	}
	w.ID, w.Version = 2, 1
	return nil
}

func (fuzzStore) GetWebhook(_ context.Context, registryID int64, id string) (
	store.Webhook, error) {
	if registryID != fuzzRegistry.ID || id != fuzzWebhook.Identifier {
		return store.Webhook{}, store.ErrNotFound
	}
	return fuzzWebhook, nil
}

func (fuzzStore) ListWebhooks(context.Context, int64) ([]store.Webhook, error) {
	return []store.Webhook{fuzzWebhook}, nil
}

func (fuzzStore) UpdateWebhook(_ context.Context, w *store.Webhook) error {
	w.Version++
	return nil
}

func (fuzzStore) DeleteWebhook(context.Context, int64) error { return nil }

func (fuzzStore) FindRetrigger(context.Context, store.IdempotencyKey) (store.Execution, error) {
	return store.Execution{}, store.ErrNotFound
}

func (fuzzStore) QueryWebhooks(context.Context, int64, store.WebhookQuery) (
	[]store.Webhook, int, error) {
	return []store.Webhook{fuzzWebhook}, 1, nil
}

func (fuzzStore) LatestResults(context.Context, []int64) (map[int64]store.Result, error) {
	return map[int64]store.Result{1: store.ResultSuccess}, nil
}

func (s fuzzStore) GetExecutionInRegistry(ctx context.Context, scope store.Scope, reg,
	hook string, id int64) (store.Registry, store.Webhook, store.Execution, error) {
	r, err := s.GetRegistry(ctx, scope, reg)
	if err != nil {
		return r, store.Webhook{}, store.Execution{}, err
	}
	w, err := s.GetWebhook(ctx, r.ID, hook)
	if err != nil {
		return r, w, store.Execution{}, err
	}
	e, err := s.GetExecution(ctx, w.ID, id)
	return r, w, e, err
}

func (fuzzStore) GetExecution(_ context.Context, webhookID, id int64) (store.Execution, error) {
	if webhookID != fuzzWebhook.ID || id != fuzzExecution.ID {
		return store.Execution{}, store.ErrNotFound
	}
	return fuzzExecution, nil
}

func (fuzzStore) GetExecutionByID(_ context.Context, id int64) (store.Execution, error) {
	e := fuzzExecution
	e.ID = id
	return e, nil
}

func (fuzzStore) FilterExecutions(context.Context, int64, store.ExecutionFilter, store.Page) (
	[]store.Execution, int, error) {
	return []store.Execution{fuzzExecution}, 1, nil
}

func (fuzzStore) CreateExecutions(_ context.Context, _ int64, _ []string,
	execs []*store.Execution) error {
	for i, e := range execs {
		e.ID = int64(100 + i)
	}
	return nil
}

func (s fuzzStore) CreateRetrigger(ctx context.Context, _ store.IdempotencyKey,
	e *store.Execution) (bool, error) {
	return true, s.CreateExecutions(ctx, e.RegistryID, nil, []*store.Execution{e})
}

func (fuzzStore) RetriggerMatching(context.Context, int64, store.RetriggerSelection) (
	int, []store.Execution, error) {
	return 1, []store.Execution{fuzzExecution}, nil
}

func (fuzzStore) PutEventKey(context.Context, int64, string) error { return nil }

func (fuzzStore) HasEventKey(context.Context, int64, string) (bool, error) { return true, nil }

func (fuzzStore) CountPendingForWebhook(context.Context, int64) (int, error) { return 0, nil }

// nopQueue accepts every execution.
type nopQueue struct{}

func (nopQueue) Enqueue(context.Context, store.Execution, worker.Payload) error { return nil }

// fuzzAPI is the API over the fake store, with the limits rehook runs with.
func fuzzAPI() *API {
	return New(fuzzStore{}, nopQueue{}, zap.NewNop(), Config{MaxPendingPerWebhook: 1000})
}

// serveFuzz sends one request to a and checks the answer: not a 5xx, and
// an error in the error shape.
func serveFuzz(t *testing.T, a *API, method, target string, header http.Header,
	body []byte) *httptest.ResponseRecorder {
	t.Helper()
	u, err := url.ParseRequestURI(target)
	if err != nil {
		t.Skip("not a request URI")
	}
	req := &http.Request{Method: method, URL: u, RequestURI: target, Header: header,
		Body: http.NoBody, Host: "127.0.0.1", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	if body != nil {
		req.Body = nopCloser{bytes.NewReader(body)}
		req.ContentLength = int64(len(body))
	}
	req = req.WithContext(context.Background())
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("x-api-key", fuzzKey)

	w := httptest.NewRecorder()
	a.ServeHTTP(w, req)
	if w.Code >= 500 {
		t.Fatalf("%s %s: got %d %s", method, target, w.Code, w.Body)
	}
	if w.Code >= 400 && !strings.HasPrefix(w.Body.String(), `{"code":"`+strconv.Itoa(w.Code)+`"`) {
		t.Fatalf("%s %s: error %d without the error shape: %s", method, target, w.Code, w.Body)
	}
	return w
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// checkAPIError fails unless err is nil or a 400 for the client.
func checkAPIError(t *testing.T, what string, err error) {
	t.Helper()
	var ae *apiError
	if err != nil && (!errors.As(err, &ae) || ae.status != http.StatusBadRequest) {
		t.Fatalf("%s: got error %v, want nil or a 400", what, err)
	}
}

func FuzzSplitRegistryPath(f *testing.F) {
	for _, s := range []string{
		"acct/org/proj/reg1/+/webhooks/hook1/executions/1/retrigger",
		"acct%2Forg%2Fproj%2Freg1%2F%2B/webhooks",
		"acct%2Forg%2Fproj%2Freg1/webhooks/hook1",
		"acct/reg/%2B",
		"a/b/c/d/reg1/+/x",
		"acct/o%20rg/reg1/+",
		"%zz/+",
		"acct/reg1/+/webhooks/h%2Fi/",
		"acct%2Forg/proj/reg1/+/webhooks",
		"acct/org/proj/reg1/+/+",
		"",
		"+",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, escaped string) {
		ref, rest, err := splitRegistryPath(escaped)
		checkAPIError(t, "splitRegistryPath", err)
		if err != nil {
			return
		}

		for _, part := range strings.Split(ref.String(), "/") {
			if part != "+" && !identifierPattern.MatchString(part) {
				t.Fatalf("ref %q of %q has segment %q", ref, escaped, part)
			}
		}
		again, _, err := splitRegistryPath(ref.String())
		if err != nil || again != ref {
			t.Fatalf("ref %q of %q does not parse back: %v, %v", ref, escaped, again, err)
		}
		if slices.Contains(rest, "+") {
			t.Fatalf("%q: rest %q holds a +: the ref is malformed", escaped, rest)
		}
		for _, method := range fuzzMethods {
			if rt, params, _ := match(method, rest); rt != nil && len(params) != countParams(rt) {
				t.Fatalf("route %s matched %q with params %q", rt.name, rest, params)
			}
		}
		if _, err := ParseScope(ref.Scope.String()); err != nil {
			t.Fatalf("scope %q of %q does not parse back: %v", ref.Scope, escaped, err)
		}
	})
}

// countParams is the number of segments a route captures.
func countParams(rt *route) int {
	n := 0
	for _, p := range rt.pattern {
		if p == "" {
			n++
		}
	}
	return n
}

func FuzzParseExecutionID(f *testing.F) {
	for _, s := range []string{"1", "0", "-5", "abc", "9223372036854775807",
		"9223372036854775808", "+7", "007", " 1", "1e3", "0x10", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseExecutionID(s)
		checkAPIError(t, "parseExecutionID", err)
		if err == nil && (id <= 0 || strconv.FormatInt(id, 10) != s) {
			t.Fatalf("parseExecutionID(%q) = %d, want a positive id written canonically", s, id)
		}
	})
}

// FuzzQueryParsing reads a query string and an Idempotency-Key header with
// every parser of the API's queries.
func FuzzQueryParsing(f *testing.F) {
	for _, seed := range []struct{ query, key string }{
		{"page=0&size=20", "deploy-1"},
		{"page=-1&size=101", ""},
		{"sort_field=modifiedAt&sort_order=desc&search_term=Hook", "x"},
		{"sort_field=nope&sort_order=up", "\x00"},
		{"result=FATAL_ERROR,RETRIABLE_ERROR&trigger=ARTIFACT_CREATION&result=SUCCESS", "é"},
		{"result=,&trigger=", strings.Repeat("k", 256)},
		{"wait=10s", "k"},
		{"wait=60", "k"},
		{"wait=61s&wait=1", "k"},
		{"wait=-1ns", ""},
		{"wait=1e3h", ""},
		{"page=1000001&size=1", ""},
		{"search_term=%25_%5C", ""},
		{"%zz=1&page=%", ""},
	} {
		f.Add(seed.query, seed.key)
	}
	f.Fuzz(func(t *testing.T, query, key string) {
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		c.Request = &http.Request{URL: &url.URL{Path: "/", RawQuery: query},
			Header: http.Header{}}
		if key != "" {
			c.Request.Header[idempotencyHeader] = []string{key}
		}

		page, err := parsePage(c)
		checkAPIError(t, "parsePage", err)
		if err == nil && (page.Index < 0 || page.Index > maxPageIndex || page.Size < 1 ||
			page.Size > maxPageSize) {
			t.Fatalf("parsePage(%q) = %+v, out of range", query, page)
		}
		q, err := parseWebhookQuery(c)
		checkAPIError(t, "parseWebhookQuery", err)
		if err == nil && (q.SortField != "" && !q.SortField.Valid() ||
			len(q.Search) > maxSearchTermLen) {
			t.Fatalf("parseWebhookQuery(%q) = %+v", query, q)
		}
		filter, err := parseExecutionFilter(c)
		checkAPIError(t, "parseExecutionFilter", err)
		for _, r := range filter.Results {
			if !validResult(r) {
				t.Fatalf("parseExecutionFilter(%q) kept result %q", query, r)
			}
		}
		for _, tr := range filter.Triggers {
			if !tr.Valid() {
				t.Fatalf("parseExecutionFilter(%q) kept trigger %q", query, tr)
			}
		}
		wait, err := parseWait(c)
		checkAPIError(t, "parseWait", err)
		if wait < 0 || wait > maxRetriggerWait {
			t.Fatalf("parseWait(%q) = %s, out of range", query, wait)
		}
		got, err := parseIdempotencyKey(c)
		checkAPIError(t, "parseIdempotencyKey", err)
		if err == nil && got != "" && (len(got) > maxIdempotencyKey || !printableASCII(got)) {
			t.Fatalf("parseIdempotencyKey(%q) = %q", key, got)
		}
		if err != nil && strings.Contains(err.Error(), key) && key != "" && !printableASCII(key) {
			t.Fatalf("error %q quotes an unprintable key", err)
		}
	})
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// fuzzMethods are the methods FuzzAPIRequest picks from.
var fuzzMethods = []string{"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"}

// FuzzAPIRequest sends any request under /registry through the whole API:
// routing, the registry_ref, ids and query parsing, bodies and headers.
func FuzzAPIRequest(f *testing.F) {
	seeds := []struct {
		method byte
		path   string
		header string
		body   string
	}{
		{0, "acct/org/proj/reg1/+/webhooks?page=0&size=5&sort_field=name&sort_order=DESC", "", ""},
		{0, "acct/org/proj/reg1/+/webhooks/hook1/executions?result=SUCCESS" +
			"&trigger=ARTIFACT_CREATION", "", ""},
		{0, "acct/org/proj/reg1/+/webhooks/hook1/executions/1/retrigger?wait=1s", "k-1", ""},
		{0, "acct%2Forg%2Fproj%2Freg1%2F%2B/webhooks/hook1/executions/1", "", ""},
		{1, "acct/org/proj/reg1/+/webhooks/hook1/executions/retrigger", "",
			`{"results":["FATAL_ERROR"],"since":1,"until":2,"limit":5}`},
		{1, "acct/org/proj/reg1/+/webhooks", "", `{"identifier":"h2","name":"n",` +
			`"url":"http://127.0.0.1:1/","enabled":true,"insecure":false,"secret":"whsec_AAAA"}`},
		{2, "acct/org/proj/reg1/+/webhooks/hook1", "", `{"name":"n","url":"https://h/",` +
			`"enabled":true,"insecure":false,"extraHeaders":[{"key":"X-Token","value":"******",` +
			`"masked":true}]}`},
		{3, "acct/org/proj/reg1/+/webhooks/hook1", "", ""},
		{3, "acct/org/proj/reg1/+", "", ""},
		{1, "acct/org/proj/reg1/+/artifact-events", "",
			`{"trigger":"ARTIFACT_DELETION","artifact":{"name":"a","digest":"sha256:0"}}`},
		{5, "acct/org/proj/reg1/+/webhooks", "", ""},
		{0, "acct/org/proj/reg1/+/webhooks/hook1/executions/99999999999999999999", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.header, []byte(s.body))
	}
	a := fuzzAPI()
	f.Fuzz(func(t *testing.T, method byte, path, idempotencyKey string, body []byte) {
		header := http.Header{"Content-Type": {"application/json"}}
		if idempotencyKey != "" {
			header[idempotencyHeader] = []string{idempotencyKey}
		}
		m := fuzzMethods[int(method)%len(fuzzMethods)]
		serveFuzz(t, a, m, Prefix+"/registry/"+path, header, body)
	})
}

func FuzzArtifactEvent(f *testing.F) {
	for _, s := range []string{
		`{"trigger":"ARTIFACT_CREATION","artifact":{"name":"app","version":"1.0","tag":"1.0",` +
			`"digest":"sha256:abc"},"principal":{"id":7,"userName":"alice"}}`,
		`{"trigger":"ARTIFACT_DELETION","artifact":{"name":"app"}}`,
		`{"trigger":"ARTIFACT_UPDATE","artifact":{"name":"a"}}`,
		`{"trigger":"ARTIFACT_CREATION","artifact":{}}`,
		`{"trigger":"ARTIFACT_CREATION","artifact":{"name":5}}`,
		`{"trigger":"ARTIFACT_CREATION","artifact":{"name":"a"},"principal":{"id":1e999}}`,
		`{"trigger":"ARTIFACT_CREATION","artifact":{"name":"a"}} trailing`,
		`{"trigger":`,
		`[]`,
		``,
	} {
		f.Add([]byte(s))
	}
	a := fuzzAPI()
	f.Fuzz(func(t *testing.T, body []byte) {
		w := serveFuzz(t, a, "POST", Prefix+"/registry/acct/org/proj/reg1/+/artifact-events",
			http.Header{"Content-Type": {"application/json"}}, body)
		if w.Code == http.StatusAccepted && !utf8.Valid(w.Body.Bytes()) {
			t.Fatalf("202 with invalid UTF-8: %q", w.Body)
		}
	})
}

func FuzzDistributionEvent(f *testing.F) {
	v2 := "application/vnd.docker.distribution.events.v2+json"
	if raw, err := readTestdata("distribution-v3.1.2-push.json"); err == nil {
		f.Add(v2, raw)
	}
	for _, s := range []struct{ contentType, body string }{
		{v2, `{"events":[{"id":"e1","action":"push","target":{"mediaType":` +
			`"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1","repository":"app",` +
			`"tag":"1.0"},"request":{"id":"r1"},"actor":{"name":"alice"}}]}`},
		{v2, `{"events":[{"id":"e2","action":"delete","target":{"digest":"sha256:1",` +
			`"repository":"app"},"request":{"id":"r2"}}]}`},
		{v2, `{"events":[{"id":"","action":"push"}]}`},
		{v2, `{"events":[{"id":"e3","action":"pull","target":{"repository":"app"}}]}`},
		{v2, `{"events":null}`},
		{v2, `{"events":[{"id":"e4","target":{"size":-1e400}}]}`},
		{"application/vnd.docker.distribution.events.v1+json; charset=utf-8", `{"events":[]}`},
		{"text/plain", `{}`},
		{"", ``},
	} {
		f.Add(s.contentType, []byte(s.body))
	}
	a := fuzzAPI()
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		header := http.Header{}
		if contentType != "" {
			header.Set("Content-Type", contentType)
		}
		serveFuzz(t, a, "POST",
			Prefix+"/registry/acct/org/proj/reg1/+/artifact-events/distribution", header, body)
	})
}
