package sqlite

import (
	"context"
	"fmt"

	"github.com/rehook/rehook/store"
)

// GetExecutionInRegistry implements store.Store. SQLite runs in this
// process, so there is no round trip to save: the three lookups run one
// after the other.
func (s *Store) GetExecutionInRegistry(
	ctx context.Context, scope store.Scope, registry, webhookIdentifier string, id int64,
) (store.Registry, store.Webhook, store.Execution, error) {
	reg, err := s.GetRegistry(ctx, scope, registry)
	if err != nil {
		return store.Registry{}, store.Webhook{}, store.Execution{}, err
	}
	hook, err := s.GetWebhook(ctx, reg.ID, webhookIdentifier)
	if err != nil {
		return store.Registry{}, store.Webhook{}, store.Execution{}, err
	}
	exec, err := s.GetExecution(ctx, hook.ID, id)
	if err == nil && exec.RegistryID != reg.ID {
		err = fmt.Errorf("get execution %d of webhook %d: %w", id, hook.ID, store.ErrNotFound)
	}
	if err != nil {
		return store.Registry{}, store.Webhook{}, store.Execution{}, err
	}
	return reg, hook, exec, nil
}
