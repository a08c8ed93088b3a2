package api

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestTextTheStoreCannotKeep: NUL bytes and invalid UTF-8 anywhere in a
// request are a 400 naming where they are, on every store, never a 500.
func TestTextTheStoreCannotKeep(t *testing.T) {
	st := newSetup(t)
	st.finished()
	dist := ref + "/artifact-events/distribution"

	for _, tc := range []struct {
		name, method, path, body, field string
	}{
		{"registry description", "POST", "/har/api/v1/registry?space_ref=acct/org/proj",
			`{"identifier":"regnul","description":"a\u0000b"}`, "description"},
		{"webhook name", "POST", ref + "/webhooks", `{"identifier":"nul1","name":"a\u0000b",
			"url":"http://127.0.0.1:1/ok","enabled":true,"insecure":false}`, "name"},
		{"extra header in a list", "POST", ref + "/webhooks", `{"identifier":"nul2","name":"n",
			"url":"http://127.0.0.1:1/ok","enabled":true,"insecure":false,
			"extraHeaders":[{"key":"X-A","value":"\u0000"}]}`, "extraHeaders.value"},
		{"artifact name", "POST", ref + "/artifact-events",
			`{"trigger":"ARTIFACT_CREATION","artifact":{"name":"a\u0000"}}`, "artifact.name"},
		{"search term NUL", "GET", ref + "/webhooks?search_term=%00", "", "search_term"},
		{"search term invalid UTF-8", "GET", ref + "/webhooks?search_term=%FF", "", "search_term"},
		{"webhook identifier in the path", "GET", ref + "/webhooks/%00", "", "path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := st.call("admin", tc.method, tc.path, tc.body)
			if r.status != 400 {
				t.Fatalf("got %d, want 400: %s", r.status, r.raw)
			}
			checkErrorShape(t, r)
			if d, _ := r.body["details"].(map[string]any); d["field"] != tc.field {
				t.Errorf("details %v, want field %q", d, tc.field)
			}
		})
	}

	// A Distribution envelope with one bad event is refused whole: the good
	// event before it fires nothing.
	postDist := func(body string) (int, string) {
		req, _ := http.NewRequest("POST", st.srv.URL+dist, strings.NewReader(body))
		req.Header.Set("x-api-key", st.keys["edit"])
		req.Header.Set("Content-Type", "application/vnd.docker.distribution.events.v2+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	push := func(id, repo string) string {
		return `{"id":"` + id + `","action":"push","target":{"mediaType":` +
			`"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1","repository":"` +
			repo + `","tag":"t"}}`
	}
	for _, tc := range []struct{ name, body string }{
		{"NUL in the second event", `{"events":[` + push("good-1", "app") + `,` +
			push("bad-1", `a\u0000`) + `]}`},
		{"trailing data", `{"events":[` + push("good-2", "app") + `]} {"more":1}`},
		{"too many events", `{"events":[` + strings.Repeat(push("x", "app")+",", 500) +
			push("y", "app") + `]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, body := postDist(tc.body); status != 400 {
				t.Fatalf("got %d, want 400: %s", status, body)
			}
		})
	}
	if n := len(st.queue.queued); n != 0 {
		t.Fatalf("refused envelopes queued %d executions, want 0", n)
	}
}
