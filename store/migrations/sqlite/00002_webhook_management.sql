-- +goose Up

-- Finding whether a delivery was sent again after an execution (bulk
-- retrigger skips those).
CREATE INDEX executions_delivery_id_id_idx ON executions (delivery_id, id);

-- Idempotency keys of retriggers: the same key, from the same API key, for
-- the same original execution, names the execution created the first time.
-- Keys older than the API's window are expired and deleted as new ones come.
CREATE TABLE idempotency_keys (
    execution_id     INTEGER NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    api_key_id       INTEGER NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    key              TEXT    NOT NULL,
    new_execution_id INTEGER NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    created          INTEGER NOT NULL,
    PRIMARY KEY (execution_id, api_key_id, key)
) STRICT;

CREATE INDEX idempotency_keys_new_execution_id_idx ON idempotency_keys (new_execution_id);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created);

-- +goose Down
DROP TABLE idempotency_keys;
DROP INDEX executions_delivery_id_id_idx;
