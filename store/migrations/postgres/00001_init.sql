-- +goose Up

-- Registries are the artifact registries webhooks hang off. A scope level
-- that is absent (org, project) is stored as ''.
CREATE TABLE registries (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account      text        NOT NULL,
    org          text        NOT NULL DEFAULT '',
    project      text        NOT NULL DEFAULT '',
    identifier   text        NOT NULL,
    package_type text        NOT NULL DEFAULT '',
    description  text        NOT NULL DEFAULT '',
    created      timestamptz NOT NULL,
    UNIQUE (account, org, project, identifier)
);

CREATE TABLE webhooks (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    registry_id       bigint      NOT NULL REFERENCES registries (id) ON DELETE CASCADE,
    identifier        text        NOT NULL,
    name              text        NOT NULL DEFAULT '',
    description       text        NOT NULL DEFAULT '',
    url               text        NOT NULL,
    enabled           boolean     NOT NULL DEFAULT true,
    insecure          boolean     NOT NULL DEFAULT false,
    triggers          jsonb       NOT NULL DEFAULT '[]',
    extra_headers     jsonb       NOT NULL DEFAULT '[]',
    secret            bytea,
    secret_identifier text        NOT NULL DEFAULT '',
    created_by        text        NOT NULL DEFAULT '',
    version           bigint      NOT NULL DEFAULT 1,
    created           timestamptz NOT NULL,
    modified          timestamptz NOT NULL,
    UNIQUE (registry_id, identifier)
);

-- Executions are the truth about every delivery; queued tasks only point at
-- them. duration is in nanoseconds. retrigger_of is NULL for none.
CREATE TABLE executions (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id           bigint      NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    registry_id          bigint      NOT NULL REFERENCES registries (id) ON DELETE CASCADE,
    trigger_type         text        NOT NULL,
    retrigger_of         bigint,
    delivery_id          text        NOT NULL,
    state                text        NOT NULL CHECK (state IN ('pending', 'final')),
    result               text        NOT NULL DEFAULT '',
    attempts             integer     NOT NULL DEFAULT 0,
    next_attempt_at      timestamptz,
    claimed_until        timestamptz,
    created              timestamptz NOT NULL,
    duration             bigint      NOT NULL DEFAULT 0,
    error                text        NOT NULL DEFAULT '',
    request_url          text        NOT NULL DEFAULT '',
    request_headers      text        NOT NULL DEFAULT '',
    request_body         text        NOT NULL DEFAULT '',
    response_status_code integer     NOT NULL DEFAULT 0,
    response_status      text        NOT NULL DEFAULT '',
    response_headers     text        NOT NULL DEFAULT '',
    response_body        text        NOT NULL DEFAULT ''
);

CREATE INDEX executions_webhook_id_id_idx ON executions (webhook_id, id DESC);
CREATE INDEX executions_state_next_attempt_at_idx ON executions (state, next_attempt_at);
CREATE INDEX executions_registry_id_idx ON executions (registry_id);

CREATE TABLE attempts (
    execution_id     bigint      NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    n                integer     NOT NULL,
    started          timestamptz NOT NULL,
    duration         bigint      NOT NULL DEFAULT 0,
    result           text        NOT NULL,
    status_code      integer     NOT NULL DEFAULT 0,
    error            text        NOT NULL DEFAULT '',
    response_excerpt text        NOT NULL DEFAULT '',
    PRIMARY KEY (execution_id, n)
);

-- An API key's scope uses '' for absent levels; account '' is every account.
CREATE TABLE api_keys (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    prefix  text        NOT NULL UNIQUE,
    hash    bytea       NOT NULL,
    account text        NOT NULL DEFAULT '',
    org     text        NOT NULL DEFAULT '',
    project text        NOT NULL DEFAULT '',
    role    text        NOT NULL,
    created timestamptz NOT NULL,
    revoked timestamptz
);

-- Event keys seen by CreateExecutions, so a notification sent twice creates
-- its executions once.
CREATE TABLE event_keys (
    registry_id bigint      NOT NULL REFERENCES registries (id) ON DELETE CASCADE,
    key         text        NOT NULL,
    created     timestamptz NOT NULL,
    PRIMARY KEY (registry_id, key)
);

-- +goose Down
DROP TABLE event_keys;
DROP TABLE api_keys;
DROP TABLE attempts;
DROP TABLE executions;
DROP TABLE webhooks;
DROP TABLE registries;
