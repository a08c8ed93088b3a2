package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rehook/rehook/internal/webhookverify"
)

// doWith calls the API with extra request headers and returns the status,
// the response headers and the decoded body.
func (c client) doWith(method, path, body string, header http.Header) (int, http.Header,
	map[string]any) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("x-api-key", c.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		c.t.Fatalf("%s %s: %d, not JSON: %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, resp.Header, out
}

// verifySigned checks a delivery's signatures with the independent verifier
// and returns its webhook-id.
func verifySigned(t *testing.T, secret string, h hit) string {
	t.Helper()
	id, _, err := webhookverify.Standard(secret, h.header, []byte(h.body), time.Now())
	if err != nil {
		t.Fatalf("Standard Webhooks signature: %v\nheaders %v", err, h.header)
	}
	if err := webhookverify.Harness(secret, h.header, []byte(h.body)); err != nil {
		t.Fatalf("X-Harness-Signature: %v", err)
	}
	return id
}

// TestDevSignedDeliveriesAndRetriggers runs rehook dev and goes through
// signed deliveries, a retrigger that waits for its delivery under an
// Idempotency-Key, a bulk retrigger, a webhook update and a delete.
func TestDevSignedDeliveriesAndRetriggers(t *testing.T) {
	rcv := newReceiver(t)
	p := start(t, devEnv(t.TempDir()), "dev")
	c := client{t: t, base: p.stdout.wait(t, listenLine, 60*time.Second), key: testKey}

	secret := webhookverify.Secret([]byte("e2e signing key, 32 bytes long!!"))
	ref := "/har/api/v1/registry/acct/reg1/+"
	hookPath := ref + "/webhooks/signed"
	c.must("POST", "/har/api/v1/registry?space_ref=acct", `{"identifier":"reg1"}`, 201)
	out := c.must("POST", ref+"/webhooks", fmt.Sprintf(`{"identifier":"signed","name":"Signed",
		"url":%q,"enabled":true,"insecure":false,"secret":%q}`, rcv.URL+"/hook", secret), 201)
	hook := out["data"].(map[string]any)
	if hook["secretSet"] != true || strings.Contains(fmt.Sprint(out), secret[6:]) {
		t.Fatalf("created webhook: %v, want secretSet and no secret", hook)
	}

	out = c.must("POST", ref+"/artifact-events", `{"trigger":"ARTIFACT_CREATION",
		"artifact":{"name":"café/app","version":"1.0 ✓"},"principal":{"userName":"zoë"}}`, 202)
	id := int64(out["data"].(map[string]any)["executions"].([]any)[0].(map[string]any)["id"].(float64))
	first := rcv.next(t)
	deliveryID := verifySigned(t, secret, first)
	if deliveryID != first.header.Get("X-Rehook-Delivery-Id") {
		t.Errorf("webhook-id %q, X-Rehook-Delivery-Id %q: want the same", deliveryID,
			first.header.Get("X-Rehook-Delivery-Id"))
	}
	for name, want := range map[string]string{
		"X-Rehook-Webhook": "signed", "X-Rehook-Trigger": "ARTIFACT_CREATION",
		"X-Rehook-Execution-Id": fmt.Sprint(id), "X-Rehook-Retrigger": "false",
		"User-Agent": "rehook/" + version,
	} {
		if got := first.header.Get(name); got != want {
			t.Errorf("delivery header %s: got %q, want %q", name, got, want)
		}
	}
	execPath := fmt.Sprintf("%s/executions/%d", hookPath, id)
	done := c.waitFinal(execPath)
	request := done["request"].(map[string]any)
	if request["body"] != first.body {
		t.Errorf("stored body %q, sent %q: want the same bytes", request["body"], first.body)
	}
	headers := request["headers"].(string)
	if !strings.Contains(headers, "Webhook-Signature: v1,") || strings.Contains(headers, secret) {
		t.Errorf("recorded headers should hold the signature, not the secret:\n%s", headers)
	}

	// A retrigger that waits for its delivery, under an Idempotency-Key.
	idem := http.Header{"Idempotency-Key": {"e2e-retrigger-1"}}
	status, _, out := c.doWith("GET", execPath+"/retrigger?wait=10s", "", idem)
	re := out["data"].(map[string]any)
	if status != 200 || re["retriggerable"] != true || re["result"] != "SUCCESS" {
		t.Fatalf("retrigger with wait=10s: %d %v, want 200 and a final SUCCESS", status, re)
	}
	second := rcv.next(t)
	if got := verifySigned(t, secret, second); got != deliveryID || second.body != first.body {
		t.Errorf("retrigger delivery: webhook-id %q body %q, want %q and the same body", got,
			second.body, deliveryID)
	}
	status, header, out := c.doWith("GET", execPath+"/retrigger?wait=10s", "", idem)
	if status != 200 || out["data"].(map[string]any)["id"] != re["id"] ||
		header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("same Idempotency-Key: %d %v (replayed %q), want execution %v again", status,
			out, header.Get("Idempotent-Replayed"), re["id"])
	}
	list := c.must("GET", hookPath+"/executions", "", 200)["data"].(map[string]any)
	if list["itemCount"] != 2.0 {
		t.Errorf("executions after a repeated keyed retrigger: %v, want 2", list["itemCount"])
	}

	// Bulk: the original is superseded by its retrigger, which is the one
	// re-sent.
	out = c.must("POST", hookPath+"/executions/retrigger", `{"dryRun":true}`, 200)
	if n := out["data"].(map[string]any)["count"]; n != 1.0 {
		t.Errorf("bulk dry run: count %v, want 1", n)
	}
	out = c.must("POST", hookPath+"/executions/retrigger", `{"results":["SUCCESS"]}`, 200)
	ids := out["data"].(map[string]any)["executions"].([]any)
	if len(ids) != 1 {
		t.Fatalf("bulk retrigger: %v, want one execution", out)
	}
	third := rcv.next(t)
	if got := verifySigned(t, secret, third); got != deliveryID {
		t.Errorf("bulk retrigger delivery: webhook-id %q, want %q", got, deliveryID)
	}
	bulkExec := c.waitFinal(fmt.Sprintf("%s/executions/%d", hookPath, int64(ids[0].(float64))))
	if bulkExec["retriggerOf"] != re["id"] {
		t.Errorf("bulk retrigger of %v, want of %v", bulkExec["retriggerOf"], re["id"])
	}

	// Update (the secret kept), then delete with the history.
	out = c.must("PUT", hookPath, fmt.Sprintf(`{"name":"Renamed","url":%q,"enabled":true,
		"insecure":false}`, rcv.URL+"/hook2"), 200)
	if d := out["data"].(map[string]any); d["version"] != 2.0 || d["secretSet"] != true ||
		d["latestExecutionResult"] != "SUCCESS" {
		t.Errorf("updated webhook: %v", d)
	}
	c.must("DELETE", hookPath, "", 200)
	c.must("GET", execPath, "", 404)
	c.must("GET", execPath+"/retrigger", "", 404)
}
