package storetest

import (
	"testing"

	"github.com/rehook/rehook/store"
)

// testSecurity covers the store side of the abuse limits and of secret
// rotation.
func testSecurity(t *testing.T, s store.Store) {
	ctx := t.Context()
	r, w := setup(t, s)
	other := newWebhook(t, s, r.ID, "other")

	t.Run("CountPendingForWebhook", func(t *testing.T) {
		n, err := s.CountPendingForWebhook(ctx, w.ID)
		noErr(t, "count with none", err)
		same(t, "pending with none", n, 0)

		execs := newExecutions(t, s, w, 3, now())
		newExecution(t, s, other)
		finish(t, s, execs[0].ID, 1)

		n, err = s.CountPendingForWebhook(ctx, w.ID)
		noErr(t, "count", err)
		same(t, "pending of the webhook (one of three final, another webhook's left out)", n, 2)

		n, err = s.CountPendingForWebhook(ctx, 1<<40)
		noErr(t, "count of a missing webhook", err)
		same(t, "pending of a missing webhook", n, 0)
	})

	t.Run("ListAndReplaceWebhookSecrets", func(t *testing.T) {
		var withSecret []store.Webhook
		for i, id := range []string{"s1", "s2", "s3"} {
			h := store.Webhook{RegistryID: r.ID, Identifier: id, Name: id,
				URL: "http://127.0.0.1:9/" + id, Enabled: true,
				Secret: []byte("secret-number-" + string(rune('a'+i)) + "-0123456789")}
			noErr(t, "create webhook with a secret", s.CreateWebhook(ctx, &h))
			withSecret = append(withSecret, h)
		}

		// The secrets are listed as stored, which a wrapping store (see
		// store/sealed) may have encrypted: compare ids, and use the
		// stored forms only as ReplaceWebhookSecret's prev.
		ids := func(list []store.WebhookSecret) []int64 {
			out := []int64{}
			for _, ws := range list {
				if len(ws.Secret) == 0 {
					t.Errorf("webhook %d listed with an empty secret", ws.WebhookID)
				}
				out = append(out, ws.WebhookID)
			}
			return out
		}
		first, err := s.ListWebhookSecrets(ctx, 0, 2)
		noErr(t, "list first page", err)
		same(t, "first page (webhooks without a secret left out)", ids(first),
			[]int64{withSecret[0].ID, withSecret[1].ID})

		got, err := s.ListWebhookSecrets(ctx, withSecret[1].ID, 2)
		noErr(t, "list second page", err)
		same(t, "second page", ids(got), []int64{withSecret[2].ID})

		got, err = s.ListWebhookSecrets(ctx, withSecret[2].ID, 2)
		noErr(t, "list past the end", err)
		same(t, "past the end", got, []store.WebhookSecret{})

		h, stored := withSecret[0], first[0].Secret
		next := []byte("the same secret in another stored form")
		noErr(t, "replace", s.ReplaceWebhookSecret(ctx, h.ID, stored, next))
		after, err := s.ListWebhookSecrets(ctx, 0, 1)
		noErr(t, "list after replace", err)
		same(t, "stored secret after replace", after[0].Secret, next)
		hook, err := s.GetWebhookByID(ctx, h.ID)
		noErr(t, "get after replace", err)
		same(t, "version after replace (unchanged)", hook.Version, h.Version)
		same(t, "modified after replace (unchanged)", hook.Modified, h.Modified)

		err = s.ReplaceWebhookSecret(ctx, h.ID, stored, []byte("stale replacement"))
		wantErr(t, "replace from a stale secret", err, store.ErrConflict)
		after, err = s.ListWebhookSecrets(ctx, 0, 1)
		noErr(t, "list after stale replace", err)
		same(t, "stored secret after stale replace (kept)", after[0].Secret, next)

		err = s.ReplaceWebhookSecret(ctx, 1<<40, nil, next)
		wantErr(t, "replace on a missing webhook", err, store.ErrNotFound)
	})
}
