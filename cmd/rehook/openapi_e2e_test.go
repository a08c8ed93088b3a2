package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/rehook/rehook/internal/openapicheck"
	"github.com/rehook/rehook/internal/testenv"
)

// TestServesOpenAPI checks through the real binary that rehook api serves
// its OpenAPI document without an API key, and that the answers of its API
// and admin listener, executions delivered by rehook worker included, match
// it. It runs on the real servers in CI, else on miniredis and SQLite.
func TestServesOpenAPI(t *testing.T) {
	t.Logf("backends: %s", testenv.Describe())
	env := splitEnv(testenv.DatabaseURL(t), testenv.Redis(t))
	apiKey := prepareDatabase(t, env)
	rcv := newReceiver(t)
	start(t, env, "worker")
	p := start(t, env, "api")
	base := waitAPIListening(t, p)
	admin := waitAdmin(t, p)

	doc, err := openapicheck.Send(http.DefaultClient, "GET", base+"/har/api/v1/openapi.yaml",
		nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if doc.Status != http.StatusOK || doc.Header.Get("Content-Type") != "application/yaml" {
		t.Fatalf("GET /har/api/v1/openapi.yaml without a key: got %d %q, want 200 "+
			"application/yaml: %.300s", doc.Status, doc.Header.Get("Content-Type"), doc.Body)
	}
	chk, err := openapicheck.Load(context.Background(), doc.Body)
	if err != nil {
		t.Fatal(err)
	}

	// do sends a request, checks its status and that it matches the
	// document, and returns the answer's data.
	do := func(withKey bool, method, target, body string, want int) map[string]any {
		t.Helper()
		header := http.Header{"Content-Type": {"application/json"}}
		if withKey {
			header.Set("x-api-key", apiKey)
		}
		ex, err := openapicheck.Send(http.DefaultClient, method, target, header, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if ex.Status != want {
			t.Fatalf("%s %s: got %d, want %d: %.300s", method, target, ex.Status, want, ex.Body)
		}
		if err := chk.Check(context.Background(), ex); err != nil {
			t.Error(err)
		}
		var out struct {
			Data map[string]any `json:"data"`
		}
		_ = json.Unmarshal(ex.Body, &out)
		return out.Data
	}

	ref := base + "/har/api/v1/registry/acct/org/proj/reg1/+"
	do(true, "POST", base+"/har/api/v1/registry?space_ref=acct/org/proj",
		`{"identifier":"reg1","packageType":"DOCKER"}`, 201)
	do(true, "POST", ref+"/webhooks", fmt.Sprintf(`{"identifier":"hook1","name":"Hook 1",
		"url":%q,"enabled":true,"insecure":false,"triggers":["ARTIFACT_CREATION"],
		"secret":"0123456789abcdef0123"}`, rcv.URL+"/hook"), 201)
	do(true, "GET", ref+"/webhooks?size=10", "", 200)
	out := do(true, "POST", ref+"/artifact-events", `{"trigger":"ARTIFACT_CREATION",
		"artifact":{"name":"app","version":"1.0"},"principal":{"userName":"alice"}}`, 202)
	id := int64(out["executions"].([]any)[0].(map[string]any)["id"].(float64))
	rcv.next(t)

	exec := fmt.Sprintf("%s/webhooks/hook1/executions/%d", ref, id)
	deadline := time.Now().Add(20 * time.Second)
	for do(true, "GET", exec, "", 200)["retriggerable"] != true {
		if time.Now().After(deadline) {
			t.Fatalf("execution %d not final within 20s", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
	re := do(true, "GET", exec+"/retrigger?wait=10s", "", 200)
	rcv.next(t)
	if re["result"] != "SUCCESS" {
		t.Errorf("retrigger with wait=10s: got %v, want a final SUCCESS", re)
	}
	do(true, "GET", ref+"/webhooks/hook1/executions?result=SUCCESS", "", 200)
	do(true, "POST", ref+"/webhooks/hook1/executions/retrigger", `{"dryRun":true}`, 200)
	do(false, "GET", exec, "", 401)
	do(true, "GET", ref+"/webhooks/nope", "", 404)

	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		do(false, "GET", admin+path, "", 200)
	}
}
