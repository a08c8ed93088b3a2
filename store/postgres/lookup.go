package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rehook/rehook/store"
)

// registryByRef selects the id of the registry of $1-$4 (account, org,
// project, identifier).
const registryByRef = `(SELECT id FROM registries
	WHERE account = $1 AND org = $2 AND project = $3 AND identifier = $4)`

// GetExecutionInRegistry implements store.Store. The three queries go to
// Postgres as one batch, in one round trip, each finding its parent by the
// path's names rather than by the answer of the query before.
func (s *Store) GetExecutionInRegistry(
	ctx context.Context, scope store.Scope, registry, webhookIdentifier string, id int64,
) (store.Registry, store.Webhook, store.Execution, error) {
	var reg store.Registry
	var hook store.Webhook
	var exec store.Execution
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		ref := []any{scope.Account, scope.Org, scope.Project, registry}
		b := &pgx.Batch{}
		b.Queue(`SELECT `+registryColumns+` FROM registries
			WHERE account = $1 AND org = $2 AND project = $3 AND identifier = $4`, ref...)
		b.Queue(`SELECT `+webhookColumns+` FROM webhooks
			WHERE registry_id = `+registryByRef+` AND identifier = $5`,
			append(ref, webhookIdentifier)...)
		b.Queue(`SELECT `+executionColumns+` FROM executions
			WHERE id = $6 AND registry_id = `+registryByRef+` AND webhook_id = (
				SELECT id FROM webhooks
				WHERE registry_id = `+registryByRef+` AND identifier = $5)`,
			append(ref, webhookIdentifier, id)...)
		results := c.SendBatch(ctx, b)
		defer results.Close()

		var err error
		if reg, err = scanRegistry(results.QueryRow()); err != nil {
			return err
		}
		if hook, err = scanWebhook(results.QueryRow()); err != nil {
			return err
		}
		if exec, err = scanExecution(results.QueryRow()); err != nil {
			return err
		}
		return results.Close()
	})
	if err != nil {
		return store.Registry{}, store.Webhook{}, store.Execution{},
			fmt.Errorf("get execution %d of webhook %q in registry %q in %s: %w",
				id, webhookIdentifier, registry, scope, err)
	}
	return reg, hook, exec, nil
}
