-- +goose Up

-- Counting a webhook's pending executions, which bounds its retriggers,
-- reads only the pending ones.
CREATE INDEX executions_webhook_id_pending_idx ON executions (webhook_id)
    WHERE state = 'pending';

-- +goose Down
DROP INDEX executions_webhook_id_pending_idx;
