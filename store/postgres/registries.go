package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rehook/rehook/store"
	"github.com/rehook/rehook/store/internal/rowprep"
)

const registryColumns = `id, account, org, project, identifier, package_type, description, created`

// CreateRegistry inserts r and sets its ID and Created. A registry with the
// same scope and identifier gives store.ErrConflict.
func (s *Store) CreateRegistry(ctx context.Context, r *store.Registry) error {
	created := rowprep.Now()

	var id int64
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		return c.QueryRow(ctx, `
			INSERT INTO registries
				(account, org, project, identifier, package_type, description, created)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			RETURNING id`,
			r.Scope.Account, r.Scope.Org, r.Scope.Project, r.Identifier, r.PackageType,
			r.Description, created,
		).Scan(&id)
	})
	if err != nil {
		return fmt.Errorf("create registry %q in %s: %w", r.Identifier, r.Scope, err)
	}

	r.ID = id
	r.Created = created
	return nil
}

// GetRegistry returns the registry of exactly that scope and identifier.
func (s *Store) GetRegistry(
	ctx context.Context, scope store.Scope, identifier string,
) (store.Registry, error) {
	var r store.Registry
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		row := c.QueryRow(ctx, `
			SELECT `+registryColumns+` FROM registries
			WHERE account = $1 AND org = $2 AND project = $3 AND identifier = $4`,
			scope.Account, scope.Org, scope.Project, identifier)

		var err error
		r, err = scanRegistry(row)
		return err
	})
	if err != nil {
		return store.Registry{}, fmt.Errorf("get registry %q in %s: %w", identifier, scope, err)
	}
	return r, nil
}

// DeleteRegistry deletes a registry with its webhooks, their executions and
// its event keys.
func (s *Store) DeleteRegistry(ctx context.Context, id int64) error {
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		return oneRow(c.Exec(ctx, `DELETE FROM registries WHERE id = $1`, id))
	})
	if err != nil {
		return fmt.Errorf("delete registry %d: %w", id, err)
	}
	return nil
}

func scanRegistry(row pgx.Row) (store.Registry, error) {
	var r store.Registry
	err := row.Scan(&r.ID, &r.Scope.Account, &r.Scope.Org, &r.Scope.Project, &r.Identifier,
		&r.PackageType, &r.Description, &r.Created)
	if err != nil {
		return store.Registry{}, err
	}
	r.Created = r.Created.UTC()
	return r, nil
}

const webhookColumns = `id, registry_id, identifier, name, description, url, enabled, insecure,
	triggers, extra_headers, secret, secret_identifier, created_by, version, created, modified`

// CreateWebhook inserts w and sets its ID, Created and Modified, and its
// Version to 1 when it is zero. An identifier already used in the registry
// gives store.ErrConflict; a registry that does not exist store.ErrNotFound.
func (s *Store) CreateWebhook(ctx context.Context, w *store.Webhook) error {
	triggers, err := rowprep.EncodeList(w.Triggers)
	if err != nil {
		return fmt.Errorf("create webhook %q: triggers: %w", w.Identifier, err)
	}
	headers, err := rowprep.EncodeList(w.ExtraHeaders)
	if err != nil {
		return fmt.Errorf("create webhook %q: extra headers: %w", w.Identifier, err)
	}

	var secret []byte
	if len(w.Secret) > 0 {
		secret = w.Secret
	}
	version := w.Version
	if version == 0 {
		version = 1
	}
	created := rowprep.Now()

	var id int64
	err = s.withConn(ctx, func(c *pgxpool.Conn) error {
		return c.QueryRow(ctx, `
			INSERT INTO webhooks
				(registry_id, identifier, name, description, url, enabled, insecure, triggers,
				extra_headers, secret, secret_identifier, created_by, version, created, modified)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)
			RETURNING id`,
			w.RegistryID, w.Identifier, w.Name, w.Description, w.URL, w.Enabled, w.Insecure,
			triggers, headers, secret, w.SecretIdentifier, w.CreatedBy, version, created,
		).Scan(&id)
	})
	if err != nil {
		return fmt.Errorf("create webhook %q in registry %d: %w", w.Identifier, w.RegistryID, err)
	}

	w.ID = id
	w.Version = version
	w.Created = created
	w.Modified = created
	return nil
}

// GetWebhook returns the webhook of a registry by its identifier.
func (s *Store) GetWebhook(
	ctx context.Context, registryID int64, identifier string,
) (store.Webhook, error) {
	var w store.Webhook
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		row := c.QueryRow(ctx, `
			SELECT `+webhookColumns+` FROM webhooks
			WHERE registry_id = $1 AND identifier = $2`,
			registryID, identifier)

		var err error
		w, err = scanWebhook(row)
		return err
	})
	if err != nil {
		return store.Webhook{}, fmt.Errorf("get webhook %q in registry %d: %w",
			identifier, registryID, err)
	}
	return w, nil
}

// GetWebhookByID returns a webhook by its id.
func (s *Store) GetWebhookByID(ctx context.Context, id int64) (store.Webhook, error) {
	var w store.Webhook
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		row := c.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1`, id)

		var err error
		w, err = scanWebhook(row)
		return err
	})
	if err != nil {
		return store.Webhook{}, fmt.Errorf("get webhook %d: %w", id, err)
	}
	return w, nil
}

// ListWebhooks returns a registry's webhooks ordered by identifier; none is
// an empty list, not an error.
func (s *Store) ListWebhooks(ctx context.Context, registryID int64) ([]store.Webhook, error) {
	webhooks := []store.Webhook{}
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, `
			SELECT `+webhookColumns+` FROM webhooks
			WHERE registry_id = $1
			ORDER BY identifier`,
			registryID)
		if err != nil {
			return err
		}

		webhooks, err = pgx.AppendRows(webhooks, rows, rowTo(scanWebhook))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list webhooks of registry %d: %w", registryID, err)
	}
	return webhooks, nil
}

func scanWebhook(row pgx.Row) (store.Webhook, error) {
	var w store.Webhook
	var triggers, headers []byte
	err := row.Scan(&w.ID, &w.RegistryID, &w.Identifier, &w.Name, &w.Description, &w.URL,
		&w.Enabled, &w.Insecure, &triggers, &headers, &w.Secret, &w.SecretIdentifier,
		&w.CreatedBy, &w.Version, &w.Created, &w.Modified)
	if err != nil {
		return store.Webhook{}, err
	}

	if w.Triggers, err = rowprep.DecodeList[store.Trigger](triggers); err != nil {
		return store.Webhook{}, fmt.Errorf("webhook %d: triggers: %w", w.ID, err)
	}
	if w.ExtraHeaders, err = rowprep.DecodeList[store.ExtraHeader](headers); err != nil {
		return store.Webhook{}, fmt.Errorf("webhook %d: extra headers: %w", w.ID, err)
	}
	if len(w.Secret) == 0 {
		w.Secret = nil
	}
	w.Created = w.Created.UTC()
	w.Modified = w.Modified.UTC()
	return w, nil
}

const apiKeyColumns = `id, prefix, hash, account, org, project, role, created, revoked`

// CreateAPIKey inserts k and sets its ID and Created. A prefix already taken
// gives store.ErrConflict.
func (s *Store) CreateAPIKey(ctx context.Context, k *store.APIKey) error {
	created := rowprep.Now()
	revoked := rowprep.Time(k.Revoked)

	var id int64
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		return c.QueryRow(ctx, `
			INSERT INTO api_keys (prefix, hash, account, org, project, role, created, revoked)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			RETURNING id`,
			k.Prefix, k.Hash, k.Scope.Account, k.Scope.Org, k.Scope.Project, string(k.Role),
			created, dbNullTime(revoked),
		).Scan(&id)
	})
	if err != nil {
		return fmt.Errorf("create api key %q: %w", k.Prefix, err)
	}

	k.ID = id
	k.Created = created
	k.Revoked = revoked
	return nil
}

// GetAPIKeyByPrefix returns the key with that prefix, revoked or not.
func (s *Store) GetAPIKeyByPrefix(ctx context.Context, prefix string) (store.APIKey, error) {
	var k store.APIKey
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		row := c.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE prefix = $1`, prefix)

		var err error
		k, err = scanAPIKey(row)
		return err
	})
	if err != nil {
		return store.APIKey{}, fmt.Errorf("get api key %q: %w", prefix, err)
	}
	return k, nil
}

// ListAPIKeys returns every key, revoked ones too, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context) ([]store.APIKey, error) {
	keys := []store.APIKey{}
	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY id`)
		if err != nil {
			return err
		}

		keys, err = pgx.AppendRows(keys, rows, rowTo(scanAPIKey))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return keys, nil
}

// RevokeAPIKey marks a key revoked at `at` (now when zero). A key revoked
// before keeps its first revocation time.
func (s *Store) RevokeAPIKey(ctx context.Context, id int64, at time.Time) error {
	if at.IsZero() {
		at = rowprep.Now()
	}

	err := s.withConn(ctx, func(c *pgxpool.Conn) error {
		return oneRow(c.Exec(ctx, `
			UPDATE api_keys SET revoked = coalesce(revoked, $2)
			WHERE id = $1`,
			id, dbTime(at)))
	})
	if err != nil {
		return fmt.Errorf("revoke api key %d: %w", id, err)
	}
	return nil
}

func scanAPIKey(row pgx.Row) (store.APIKey, error) {
	var k store.APIKey
	var role string
	var revoked *time.Time
	err := row.Scan(&k.ID, &k.Prefix, &k.Hash, &k.Scope.Account, &k.Scope.Org, &k.Scope.Project,
		&role, &k.Created, &revoked)
	if err != nil {
		return store.APIKey{}, err
	}

	k.Role = store.Role(role)
	k.Created = k.Created.UTC()
	k.Revoked = fromNullTime(revoked)
	return k, nil
}
