-- +goose Up

-- Times are INTEGER microseconds since the Unix epoch (UTC); NULL where a
-- time is absent. Booleans are INTEGER 0 or 1; JSON columns are TEXT.

-- Registries are the artifact registries webhooks hang off. A scope level
-- that is absent (org, project) is stored as ''.
CREATE TABLE registries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account      TEXT    NOT NULL,
    org          TEXT    NOT NULL DEFAULT '',
    project      TEXT    NOT NULL DEFAULT '',
    identifier   TEXT    NOT NULL,
    package_type TEXT    NOT NULL DEFAULT '',
    description  TEXT    NOT NULL DEFAULT '',
    created      INTEGER NOT NULL,
    UNIQUE (account, org, project, identifier)
) STRICT;

CREATE TABLE webhooks (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    registry_id       INTEGER NOT NULL REFERENCES registries (id) ON DELETE CASCADE,
    identifier        TEXT    NOT NULL,
    name              TEXT    NOT NULL DEFAULT '',
    description       TEXT    NOT NULL DEFAULT '',
    url               TEXT    NOT NULL,
    enabled           INTEGER NOT NULL DEFAULT 1,
    insecure          INTEGER NOT NULL DEFAULT 0,
    triggers          TEXT    NOT NULL DEFAULT '[]',
    extra_headers     TEXT    NOT NULL DEFAULT '[]',
    secret            BLOB,
    secret_identifier TEXT    NOT NULL DEFAULT '',
    created_by        TEXT    NOT NULL DEFAULT '',
    version           INTEGER NOT NULL DEFAULT 1,
    created           INTEGER NOT NULL,
    modified          INTEGER NOT NULL,
    UNIQUE (registry_id, identifier)
) STRICT;

-- Executions are the truth about every delivery; queued tasks only point at
-- them. duration is in nanoseconds. retrigger_of is NULL for none.
CREATE TABLE executions (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id           INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    registry_id          INTEGER NOT NULL REFERENCES registries (id) ON DELETE CASCADE,
    trigger_type         TEXT    NOT NULL,
    retrigger_of         INTEGER,
    delivery_id          TEXT    NOT NULL,
    state                TEXT    NOT NULL CHECK (state IN ('pending', 'final')),
    result               TEXT    NOT NULL DEFAULT '',
    attempts             INTEGER NOT NULL DEFAULT 0,
    next_attempt_at      INTEGER,
    claimed_until        INTEGER,
    created              INTEGER NOT NULL,
    duration             INTEGER NOT NULL DEFAULT 0,
    error                TEXT    NOT NULL DEFAULT '',
    request_url          TEXT    NOT NULL DEFAULT '',
    request_headers      TEXT    NOT NULL DEFAULT '',
    request_body         TEXT    NOT NULL DEFAULT '',
    response_status_code INTEGER NOT NULL DEFAULT 0,
    response_status      TEXT    NOT NULL DEFAULT '',
    response_headers     TEXT    NOT NULL DEFAULT '',
    response_body        TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX executions_webhook_id_id_idx ON executions (webhook_id, id DESC);
CREATE INDEX executions_state_next_attempt_at_idx ON executions (state, next_attempt_at);
CREATE INDEX executions_registry_id_idx ON executions (registry_id);

CREATE TABLE attempts (
    execution_id     INTEGER NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    n                INTEGER NOT NULL,
    started          INTEGER NOT NULL,
    duration         INTEGER NOT NULL DEFAULT 0,
    result           TEXT    NOT NULL,
    status_code      INTEGER NOT NULL DEFAULT 0,
    error            TEXT    NOT NULL DEFAULT '',
    response_excerpt TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (execution_id, n)
) STRICT;

-- An API key's scope uses '' for absent levels; account '' is every account.
CREATE TABLE api_keys (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    prefix  TEXT    NOT NULL UNIQUE,
    hash    BLOB    NOT NULL,
    account TEXT    NOT NULL DEFAULT '',
    org     TEXT    NOT NULL DEFAULT '',
    project TEXT    NOT NULL DEFAULT '',
    role    TEXT    NOT NULL,
    created INTEGER NOT NULL,
    revoked INTEGER
) STRICT;

-- Event keys seen by CreateExecutions, so a notification sent twice creates
-- its executions once.
CREATE TABLE event_keys (
    registry_id INTEGER NOT NULL REFERENCES registries (id) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    created     INTEGER NOT NULL,
    PRIMARY KEY (registry_id, key)
) STRICT;

-- +goose Down
DROP TABLE event_keys;
DROP TABLE api_keys;
DROP TABLE attempts;
DROP TABLE executions;
DROP TABLE webhooks;
DROP TABLE registries;
