package worker

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rehook/rehook/internal/webhookverify"
	"github.com/rehook/rehook/store"
)

// signedHit is a delivery as a receiver saw it.
type signedHit struct {
	header http.Header
	body   []byte
}

// TestSignedDeliveryAndRetrigger delivers a body whose bytes any re-encoding
// would change, from a webhook with a secret, then its retrigger, and checks
// with a verifier written from the Standard Webhooks specification that the
// bytes stored, sent and signed are the same, that both deliveries carry the
// one delivery id, and that each is signed at its own time.
func TestSignedDeliveryAndRetrigger(t *testing.T) {
	key := []byte("worker-signing-key-0123")
	secret := webhookverify.Secret(key)
	hits := make(chan signedHit, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hits <- signedHit{header: r.Header.Clone(), body: body}
	}))
	defer srv.Close()
	next := func() signedHit {
		t.Helper()
		select {
		case h := <-hits:
			return h
		case <-time.After(15 * time.Second):
			t.Fatal("no delivery within 15s")
		}
		return signedHit{}
	}

	e := newEnv(t, HandlerConfig{}, true)
	ctx := context.Background()
	hook := store.Webhook{RegistryID: e.reg.ID, Identifier: "signed", Name: "signed",
		URL: srv.URL, Enabled: true, Secret: key}
	if err := e.store.CreateWebhook(ctx, &hook); err != nil {
		t.Fatal(err)
	}
	body := "{ \"zeta\":1,  \"alpha\": \"naïve ✓ 日本語 🚀\" ,\"list\":[3, 1],\"esc\":\"\\u00e9\"}\n"
	orig := e.execution(hook, body, true)

	first := next()
	stored := e.waitFinal(orig.ID)
	if stored.RequestBody != body || string(first.body) != body {
		t.Fatalf("bytes differ:\nstored %q\nsent   %q\nwant   %q", stored.RequestBody,
			first.body, body)
	}
	id, firstAt, err := webhookverify.Standard(secret, first.header, first.body, time.Now())
	if err != nil || id != orig.DeliveryID {
		t.Fatalf("first delivery: webhook-id %q (want %q): %v", id, orig.DeliveryID, err)
	}
	if err := webhookverify.Harness(secret, first.header, first.body); err != nil {
		t.Errorf("first delivery: %v", err)
	}
	if !strings.Contains(stored.RequestHeaders, "Webhook-Id: "+orig.DeliveryID+"\n") ||
		strings.Contains(stored.RequestHeaders, string(key)) {
		t.Errorf("recorded headers should show the signature, never the key:\n%s",
			stored.RequestHeaders)
	}

	re := &store.Execution{WebhookID: hook.ID, RegistryID: e.reg.ID,
		TriggerType: orig.TriggerType, RetriggerOf: orig.ID, DeliveryID: orig.DeliveryID,
		RequestURL: hook.URL, RequestBody: stored.RequestBody}
	if err := e.store.CreateExecutions(ctx, e.reg.ID, nil, []*store.Execution{re}); err != nil {
		t.Fatal(err)
	}
	if err := e.queue.Enqueue(ctx, *re, Payload{}); err != nil {
		t.Fatal(err)
	}

	second := next()
	id, secondAt, err := webhookverify.Standard(secret, second.header, second.body, time.Now())
	if err != nil || id != orig.DeliveryID {
		t.Fatalf("retrigger: webhook-id %q (want the original's %q): %v", id, orig.DeliveryID,
			err)
	}
	if string(second.body) != body || second.header.Get("X-Rehook-Retrigger") != "true" {
		t.Errorf("retrigger sent %q, X-Rehook-Retrigger %q", second.body,
			second.header.Get("X-Rehook-Retrigger"))
	}
	if secondAt.Before(firstAt) {
		t.Errorf("retrigger signed at %v, before the original's %v", secondAt, firstAt)
	}
	e.waitFinal(re.ID)
}
