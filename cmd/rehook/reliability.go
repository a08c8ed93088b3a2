package main

import (
	"time"

	"github.com/rehook/rehook/worker"
)

// enqueueCooldown is how long, after an enqueue failed, the API stores
// accepted executions without trying Redis, leaving them to the sweeper, so
// that a Redis that is down does not slow every answer.
const enqueueCooldown = 5 * time.Second

// retention is the worker's retention job as the configuration sets it.
func (cfg config) retention(c *components) *worker.Retention {
	return &worker.Retention{
		Store:    c.store,
		Enqueuer: c.enqueuer,
		Log:      c.log,
		Age:      cfg.Retention,
		Batch:    cfg.RetentionBatch,
		Interval: cfg.RetentionInterval,
	}
}
