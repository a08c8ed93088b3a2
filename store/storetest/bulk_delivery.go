package storetest

import (
	"testing"

	"github.com/rehook/rehook/store"
)

// testBulkSendsEachDeliveryOnce: a delivery retriggered twice by hand offers
// only its newest execution to a bulk retrigger, so the receiver gets it
// once more, not twice.
func testBulkSendsEachDeliveryOnce(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := newRegistry(t, s, store.Scope{Account: "acct"}, "bulk-once")
	w := newWebhook(t, s, r.ID, "hook")

	orig := &store.Execution{WebhookID: w.ID, TriggerType: store.TriggerArtifactCreation,
		RequestBody: "{}"}
	noErr(t, "create original", s.CreateExecutions(ctx, r.ID, nil, []*store.Execution{orig}))
	finishWith(t, s, orig.ID, store.ResultFatalError)

	var last int64
	for i := 0; i < 2; i++ {
		re := &store.Execution{WebhookID: w.ID, TriggerType: orig.TriggerType,
			RetriggerOf: orig.ID, DeliveryID: orig.DeliveryID, RequestBody: "{}"}
		noErr(t, "create retrigger", s.CreateExecutions(ctx, r.ID, nil, []*store.Execution{re}))
		finishWith(t, s, re.ID, store.ResultFatalError)
		last = re.ID
	}

	n, created, err := s.RetriggerMatching(ctx, w.ID, store.RetriggerSelection{})
	noErr(t, "RetriggerMatching", err)
	same(t, "executions selected", n, 1)
	if len(created) != 1 || created[0].RetriggerOf != last {
		t.Fatalf("created %+v, want one retrigger of the newest execution %d", created, last)
	}
	same(t, "delivery id", created[0].DeliveryID, orig.DeliveryID)
}
