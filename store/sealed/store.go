package sealed

import (
	"context"
	"fmt"

	"github.com/rehook/rehook/store"
)

// Store is a store.Store whose webhook secrets are sealed at rest. It
// overrides every method that writes or returns a webhook; the others pass
// through to the store it wraps. ListWebhookSecrets and
// ReplaceWebhookSecret pass through too: they deal in stored forms, for
// Rotate.
type Store struct {
	store.Store
	keys *Keyring
}

var (
	_ store.Store = (*Store)(nil)
)

// Wrap returns s with its webhook secrets sealed by keys.
func Wrap(s store.Store, keys *Keyring) *Store {
	return &Store{Store: s, keys: keys}
}

// Unwrap returns the store that s wraps.
func (s *Store) Unwrap() store.Store { return s.Store }

// write runs fn, which stores w, with w's secret sealed, and leaves w with
// its secret in the clear whatever fn set it to.
func (s *Store) write(w *store.Webhook, fn func() error) error {
	secret := w.Secret
	stored, err := s.keys.Seal(secret)
	if err != nil {
		return err
	}

	w.Secret = stored
	err = fn()
	w.Secret = secret
	return err
}

// open replaces the stored secret of w by the secret.
func (s *Store) open(w *store.Webhook) error {
	if len(w.Secret) == 0 {
		return nil
	}
	secret, err := s.keys.Open(w.Secret)
	if err != nil {
		return fmt.Errorf("secret of webhook %d: %w", w.ID, err)
	}
	w.Secret = secret
	return nil
}

// CreateWebhook implements store.Store.
func (s *Store) CreateWebhook(ctx context.Context, w *store.Webhook) error {
	return s.write(w, func() error { return s.Store.CreateWebhook(ctx, w) })
}

// UpdateWebhook implements store.Store.
func (s *Store) UpdateWebhook(ctx context.Context, w *store.Webhook) error {
	return s.write(w, func() error { return s.Store.UpdateWebhook(ctx, w) })
}

// GetWebhook implements store.Store.
func (s *Store) GetWebhook(ctx context.Context, registryID int64, identifier string) (
	store.Webhook, error) {
	w, err := s.Store.GetWebhook(ctx, registryID, identifier)
	if err != nil {
		return w, err
	}
	return w, s.open(&w)
}

// GetWebhookByID implements store.Store.
func (s *Store) GetWebhookByID(ctx context.Context, id int64) (store.Webhook, error) {
	w, err := s.Store.GetWebhookByID(ctx, id)
	if err != nil {
		return w, err
	}
	return w, s.open(&w)
}

// ListWebhooks implements store.Store.
func (s *Store) ListWebhooks(ctx context.Context, registryID int64) ([]store.Webhook, error) {
	hooks, err := s.Store.ListWebhooks(ctx, registryID)
	if err != nil {
		return nil, err
	}
	return hooks, s.openAll(hooks)
}

// QueryWebhooks implements store.Store.
func (s *Store) QueryWebhooks(ctx context.Context, registryID int64, q store.WebhookQuery) (
	[]store.Webhook, int, error) {
	hooks, total, err := s.Store.QueryWebhooks(ctx, registryID, q)
	if err != nil {
		return nil, 0, err
	}
	return hooks, total, s.openAll(hooks)
}

// GetExecutionInRegistry implements store.Store.
func (s *Store) GetExecutionInRegistry(ctx context.Context, scope store.Scope, registry,
	webhookIdentifier string, id int64) (store.Registry, store.Webhook, store.Execution, error) {
	r, w, e, err := s.Store.GetExecutionInRegistry(ctx, scope, registry, webhookIdentifier, id)
	if err != nil {
		return r, w, e, err
	}
	return r, w, e, s.open(&w)
}

func (s *Store) openAll(hooks []store.Webhook) error {
	for i := range hooks {
		if err := s.open(&hooks[i]); err != nil {
			return err
		}
	}
	return nil
}
