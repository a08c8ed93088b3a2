package store

import (
	"fmt"
	"time"
)

// ErrVersionMismatch: UpdateWebhook was given a Version other than the
// stored one; someone changed the webhook in between. It is a kind of
// ErrConflict.
var ErrVersionMismatch = fmt.Errorf("%w: webhook version changed", ErrConflict)

// WebhookSortField is what QueryWebhooks orders by.
type WebhookSortField string

const (
	SortByIdentifier WebhookSortField = "identifier"
	SortByName       WebhookSortField = "name"
	SortByCreated    WebhookSortField = "created"
	SortByModified   WebhookSortField = "modified"
)

// Valid reports whether f is one of the known sort fields.
func (f WebhookSortField) Valid() bool {
	switch f {
	case SortByIdentifier, SortByName, SortByCreated, SortByModified:
		return true
	}
	return false
}

// WebhookQuery asks for one page of a registry's webhooks.
type WebhookQuery struct {
	Page Page
	// SortField orders the webhooks; empty means SortByIdentifier. Ties are
	// broken by id in the same direction, so that pages are disjoint and
	// together complete.
	SortField WebhookSortField
	// Descending reverses the order.
	Descending bool
	// Search keeps the webhooks whose identifier or name contains it,
	// ignoring the case of ASCII letters; empty keeps all. It is a plain
	// substring: % and _ have no special meaning.
	Search string
}

// ExecutionFilter narrows an execution listing. An empty list matches
// anything.
type ExecutionFilter struct {
	// Results keeps executions whose latest result is one of these; an
	// execution not attempted yet has none and never matches a non-empty
	// list.
	Results []Result
	// Triggers keeps executions of these triggers.
	Triggers []Trigger
}

// IdempotencyKey names a retrigger request that must create at most one
// execution: the same key, from the same API key, for the same original
// execution, returns the execution created the first time.
type IdempotencyKey struct {
	APIKeyID int64
	// ExecutionID is the execution being retriggered.
	ExecutionID int64
	Key         string
	// NotBefore is when the window opens: a key recorded before it has
	// expired and is used afresh.
	NotBefore time.Time
}

// Limits of a bulk retrigger.
const (
	DefaultBulkLimit = 100
	MaxBulkLimit     = 1000
)

// RetriggerSelection chooses the executions of a webhook that a bulk
// retrigger re-sends.
//
// An execution is selected when it is final, matches every criterion set,
// and is not superseded. An execution is superseded as soon as a later
// execution of the same delivery exists (the same DeliveryID: a retrigger
// of it or of any execution of its chain), whatever that execution's state
// or result: the delivery has been sent again already (or is being sent), so
// the newest execution, not it, now speaks for the delivery. Each delivery
// therefore offers only its newest execution, and only once that is final,
// so a bulk retrigger sends each delivery at most once.
type RetriggerSelection struct {
	// Results keeps executions whose result is one of these; empty keeps any.
	Results []Result
	// Trigger keeps executions of this trigger; empty keeps any.
	Trigger Trigger
	// Since keeps executions created at or after it; zero means no bound.
	Since time.Time
	// Until keeps executions created before it; zero means no bound.
	Until time.Time
	// Limit is the most executions selected, oldest first; zero means
	// DefaultBulkLimit, and more than MaxBulkLimit is an error.
	Limit int
	// DryRun selects and counts without creating anything.
	DryRun bool
	// RequestURL is the URL recorded on each new execution: the webhook's
	// current one.
	RequestURL string
}

// EffectiveLimit is the selection's limit with the default applied.
func (s RetriggerSelection) EffectiveLimit() int {
	if s.Limit == 0 {
		return DefaultBulkLimit
	}
	return s.Limit
}
