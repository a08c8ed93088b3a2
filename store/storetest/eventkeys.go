package storetest

import (
	"context"
	"testing"

	"github.com/rehook/rehook/store"
)

func testEventKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := newRegistry(t, s, store.Scope{Account: "acct"}, "keys")
	other := newRegistry(t, s, store.Scope{Account: "acct"}, "other")

	has, err := s.HasEventKey(ctx, r.ID, "manifest:app@sha256:1")
	noErr(t, "HasEventKey before any put", err)
	same(t, "key before put", has, false)

	noErr(t, "PutEventKey", s.PutEventKey(ctx, r.ID, "manifest:app@sha256:1"))
	noErr(t, "PutEventKey again", s.PutEventKey(ctx, r.ID, "manifest:app@sha256:1"))
	has, err = s.HasEventKey(ctx, r.ID, "manifest:app@sha256:1")
	noErr(t, "HasEventKey after put", err)
	same(t, "key after put", has, true)

	has, err = s.HasEventKey(ctx, other.ID, "manifest:app@sha256:1")
	noErr(t, "HasEventKey in another registry", err)
	same(t, "key of another registry", has, false)

	// A key put this way also makes CreateExecutions see the event as seen.
	err = s.CreateExecutions(ctx, r.ID, []string{"manifest:app@sha256:1"}, nil)
	wantErr(t, "CreateExecutions with a put key", err, store.ErrDuplicateEvent)
}
