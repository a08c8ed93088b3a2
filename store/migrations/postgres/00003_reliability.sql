-- +goose Up

-- When the current lease of an execution began, so that an attempt cut off
-- by a dead worker can be recorded with its start. NULL while unleased.
ALTER TABLE executions ADD COLUMN claimed_at timestamptz;

-- Attempts that were cut off before their result was known: the worker
-- died (its lease expired) or was shut down mid-delivery. They spend no
-- attempt: n is the number of the attempt that was cut off, and the attempt
-- that follows has the same n.
CREATE TABLE attempt_interruptions (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id bigint      NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    n            integer     NOT NULL,
    started      timestamptz NOT NULL,
    detected     timestamptz NOT NULL,
    reason       text        NOT NULL
);

CREATE INDEX attempt_interruptions_execution_id_idx ON attempt_interruptions (execution_id);

-- Retention deletes by age, a batch at a time.
CREATE INDEX executions_created_idx ON executions (created);
CREATE INDEX event_keys_created_idx ON event_keys (created);

-- +goose Down
DROP INDEX event_keys_created_idx;
DROP INDEX executions_created_idx;
DROP TABLE attempt_interruptions;
ALTER TABLE executions DROP COLUMN claimed_at;
