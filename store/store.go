// Package store owns rehook's domain types and their persistence. Two
// implementations share one contract: Postgres (production) and SQLite (the
// embedded default). Both are tested by the same suite in storetest.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Implementations map their driver's errors onto these in
// one place; callers (the API, the worker) map them onto HTTP codes or retry
// decisions in one place each.
var (
	// ErrNotFound: the row does not exist (or is not visible in the scope asked).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique key is already taken.
	ErrConflict = errors.New("conflict")
	// ErrDuplicateEvent: an event key given to CreateExecutions was seen before.
	ErrDuplicateEvent = errors.New("duplicate event")
	// ErrNotClaimable: the execution is final, or leased by another worker.
	ErrNotClaimable = errors.New("execution not claimable")
	// ErrUnavailable: the database could not be reached; the caller may retry.
	ErrUnavailable = errors.New("store unavailable")
	// ErrInvalidText: a text value holds bytes the database cannot store
	// (a NUL byte, or invalid UTF-8 where the database checks encoding).
	ErrInvalidText = errors.New("text the database cannot store")
)

// Trigger is the artifact event a webhook subscribes to.
type Trigger string

const (
	TriggerArtifactCreation Trigger = "ARTIFACT_CREATION"
	TriggerArtifactDeletion Trigger = "ARTIFACT_DELETION"
)

// Valid reports whether t is one of the known triggers.
func (t Trigger) Valid() bool {
	return t == TriggerArtifactCreation || t == TriggerArtifactDeletion
}

// Result is the outcome of a delivery attempt, and of an execution once final.
type Result string

const (
	ResultSuccess        Result = "SUCCESS"
	ResultRetriableError Result = "RETRIABLE_ERROR"
	ResultFatalError     Result = "FATAL_ERROR"
)

// State is where an execution is in its life.
type State string

const (
	// StatePending: waiting for its first or next attempt.
	StatePending State = "pending"
	// StateFinal: SUCCESS, FATAL_ERROR, or RETRIABLE_ERROR with attempts spent.
	// A final execution is never delivered again.
	StateFinal State = "final"
)

// Role is what an API key may do: view reads, edit also retriggers and
// changes webhooks and posts events, admin also manages registries and keys.
type Role string

const (
	RoleView  Role = "view"
	RoleEdit  Role = "edit"
	RoleAdmin Role = "admin"
)

// Allows reports whether a key of role r may act with role need.
func (r Role) Allows(need Role) bool {
	return r.rank() >= need.rank() && need.rank() > 0
}

func (r Role) rank() int {
	switch r {
	case RoleView:
		return 1
	case RoleEdit:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Scope is an account, an org of an account, or a project of an org. An empty
// Account means every account (only keys have such a scope).
type Scope struct {
	Account string
	Org     string
	Project string
}

// Covers reports whether an API key with scope s may act on objects in o.
func (s Scope) Covers(o Scope) bool {
	if s.Account == "" {
		return true
	}
	if s.Account != o.Account {
		return false
	}
	if s.Org != "" && s.Org != o.Org {
		return false
	}
	if s.Project != "" && s.Project != o.Project {
		return false
	}
	return true
}

// String is the scope as a path: "acct", "acct/org" or "acct/org/proj"; "*"
// for the all-accounts scope.
func (s Scope) String() string {
	switch {
	case s.Account == "":
		return "*"
	case s.Org == "":
		return s.Account
	case s.Project == "":
		return s.Account + "/" + s.Org
	}
	return s.Account + "/" + s.Org + "/" + s.Project
}

// Registry is an artifact registry that webhooks hang off.
type Registry struct {
	ID          int64
	Scope       Scope
	Identifier  string
	PackageType string
	Description string
	Created     time.Time
}

// ExtraHeader is a header the webhook adds to every delivery. Masked values
// are sent as they are but shown and recorded as "******".
type ExtraHeader struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Masked bool   `json:"masked"`
}

// Webhook is where executions are delivered.
type Webhook struct {
	ID          int64
	RegistryID  int64
	Identifier  string
	Name        string
	Description string
	URL         string
	Enabled     bool
	Insecure    bool
	// Triggers the webhook fires on; empty means all.
	Triggers     []Trigger
	ExtraHeaders []ExtraHeader
	// Secret is the signing key; nil when none is set.
	Secret           []byte
	SecretIdentifier string
	CreatedBy        string
	Version          int64
	Created          time.Time
	Modified         time.Time
}

// Fires reports whether the webhook is subscribed to t.
func (w Webhook) Fires(t Trigger) bool {
	if len(w.Triggers) == 0 {
		return true
	}
	for _, have := range w.Triggers {
		if have == t {
			return true
		}
	}
	return false
}

// Execution is one delivery of an event to a webhook, with its latest
// attempt's request and response. The row is the truth; queued tasks only
// point at it.
type Execution struct {
	ID          int64
	WebhookID   int64
	RegistryID  int64
	TriggerType Trigger
	// RetriggerOf is the id of the execution this one re-sends; 0 for none.
	RetriggerOf int64
	// DeliveryID is shared by an execution and all its retriggers.
	DeliveryID string
	State      State
	// Result of the latest attempt; empty before the first one.
	Result   Result
	Attempts int
	// NextAttemptAt is when a pending execution is due (first or retry).
	NextAttemptAt time.Time
	// ClaimedUntil is the lease of the worker delivering it; zero when free.
	ClaimedUntil time.Time
	Created      time.Time
	Duration     time.Duration
	Error        string

	RequestURL     string
	RequestHeaders string
	RequestBody    string

	ResponseStatusCode int
	ResponseStatus     string
	ResponseHeaders    string
	ResponseBody       string
}

// Attempt is the record of one delivery attempt of an execution.
type Attempt struct {
	ExecutionID int64
	N           int
	Started     time.Time
	Duration    time.Duration
	Result      Result
	StatusCode  int
	Error       string
	// ResponseExcerpt is the start of the response body.
	ResponseExcerpt string
	// Interrupted marks an attempt cut off before its result was known (its
	// worker died or was shut down): Result is empty, Error says why, and it
	// spent no attempt, so the attempt after it has the same N.
	Interrupted bool
}

// AttemptRecord is what the worker writes after an attempt: the attempt row
// and the execution's new latest state, in one transaction.
type AttemptRecord struct {
	Attempt Attempt
	// Final marks the execution final; otherwise it stays pending and is due
	// again at NextAttemptAt.
	Final         bool
	NextAttemptAt time.Time

	RequestURL         string
	RequestHeaders     string
	ResponseStatusCode int
	ResponseStatus     string
	ResponseHeaders    string
	ResponseBody       string
}

// APIKey is a key's stored form: a public prefix to find it by and a hash of
// the whole key to compare against. The key itself is never stored.
type APIKey struct {
	ID      int64
	Prefix  string
	Hash    []byte
	Scope   Scope
	Role    Role
	Created time.Time
	// Revoked is zero while the key is valid.
	Revoked time.Time
}

// Page asks for one page of a list; Index counts from 0.
type Page struct {
	Index int
	Size  int
}

// Offset is the number of rows before the page.
func (p Page) Offset() int { return p.Index * p.Size }

// Store is rehook's persistence. Every method is bounded by ctx and returns
// the sentinel errors above where they apply.
type Store interface {
	Ping(ctx context.Context) error
	Close() error

	CreateRegistry(ctx context.Context, r *Registry) error
	GetRegistry(ctx context.Context, scope Scope, identifier string) (Registry, error)
	DeleteRegistry(ctx context.Context, id int64) error

	CreateWebhook(ctx context.Context, w *Webhook) error
	GetWebhook(ctx context.Context, registryID int64, identifier string) (Webhook, error)
	GetWebhookByID(ctx context.Context, id int64) (Webhook, error)
	ListWebhooks(ctx context.Context, registryID int64) ([]Webhook, error)

	// CreateExecutions inserts pending executions (setting ID, Created and,
	// when empty, DeliveryID) in one transaction. When eventKeys are given,
	// they are recorded for the registry in the same transaction; if any was
	// recorded before, nothing is written and ErrDuplicateEvent is returned.
	CreateExecutions(ctx context.Context, registryID int64, eventKeys []string, execs []*Execution) error
	// GetExecution returns the execution only if it belongs to webhookID.
	GetExecution(ctx context.Context, webhookID, id int64) (Execution, error)
	GetExecutionByID(ctx context.Context, id int64) (Execution, error)
	// ListExecutions returns a webhook's executions newest first, and the
	// total count.
	ListExecutions(ctx context.Context, webhookID int64, page Page) ([]Execution, int, error)
	ListAttempts(ctx context.Context, executionID int64) ([]Attempt, error)

	// ClaimExecution leases a pending execution until `until`, if it is not
	// final and not leased by someone else at `now`. It returns the execution
	// as claimed, or ErrNotClaimable. A lease that expired without a recorded
	// attempt (its worker died) is recorded, in the same transaction, as an
	// interrupted attempt with reason InterruptedLeaseExpired.
	ClaimExecution(ctx context.Context, id int64, now, until time.Time) (Execution, error)
	// RecordAttempt stores an attempt and the execution's latest state and
	// releases the lease, only while the execution is still pending.
	RecordAttempt(ctx context.Context, executionID int64, rec AttemptRecord) error
	// ReleaseExecution drops a lease without recording an attempt.
	ReleaseExecution(ctx context.Context, id int64) error
	// ListDuePending returns ids of pending, unleased executions due before
	// `before`, oldest first, at most limit.
	ListDuePending(ctx context.Context, before time.Time, limit int) ([]int64, error)

	CreateAPIKey(ctx context.Context, k *APIKey) error
	GetAPIKeyByPrefix(ctx context.Context, prefix string) (APIKey, error)
	ListAPIKeys(ctx context.Context) ([]APIKey, error)
	RevokeAPIKey(ctx context.Context, id int64, at time.Time) error

	// Event keys outside CreateExecutions: what the API remembers of a
	// registry's events to interpret later ones.

	// PutEventKey records key for the registry; a key already there is kept
	// as it is, without error.
	PutEventKey(ctx context.Context, registryID int64, key string) error
	// HasEventKey reports whether key was recorded for the registry.
	HasEventKey(ctx context.Context, registryID int64, key string) (bool, error)

	// Webhook management, idempotent and bulk retriggers (issue 3); the
	// types they take are in manage.go.

	// UpdateWebhook writes every field of the webhook w.ID but its
	// RegistryID, CreatedBy and Created, increments its Version and sets
	// Modified, and updates w with the stored row. A non-zero w.Version must
	// equal the stored one, else ErrVersionMismatch. A missing webhook is
	// ErrNotFound; an identifier taken in the registry ErrConflict.
	UpdateWebhook(ctx context.Context, w *Webhook) error
	// DeleteWebhook deletes a webhook together with its executions, their
	// attempts and idempotency keys: its history goes with it.
	DeleteWebhook(ctx context.Context, id int64) error
	// QueryWebhooks returns one page of a registry's webhooks, searched and
	// sorted as q says, and how many match in all.
	QueryWebhooks(ctx context.Context, registryID int64, q WebhookQuery) ([]Webhook, int, error)
	// LatestResults maps each of the webhooks to the result of its newest
	// execution that has one; a webhook with none is left out.
	LatestResults(ctx context.Context, webhookIDs []int64) (map[int64]Result, error)
	// FilterExecutions is ListExecutions keeping only what f matches.
	FilterExecutions(ctx context.Context, webhookID int64, f ExecutionFilter, page Page) (
		[]Execution, int, error)
	// CreateRetrigger creates the pending execution e, as CreateExecutions
	// does, unless key was recorded since key.NotBefore: then it sets e to
	// the execution created under the key and returns false. The check and
	// the creation are one transaction, so concurrent calls with one key
	// create one execution.
	CreateRetrigger(ctx context.Context, key IdempotencyKey, e *Execution) (bool, error)
	// RetriggerMatching selects a webhook's executions as sel says and,
	// unless sel.DryRun, creates for each a pending retrigger (same trigger,
	// delivery id and request body, RetriggerOf its id), all in one
	// transaction that excludes other bulk retriggers of the webhook. It
	// returns how many were selected and the executions created, in the
	// order of their originals. A missing webhook is ErrNotFound.
	RetriggerMatching(ctx context.Context, webhookID int64, sel RetriggerSelection) (
		int, []Execution, error)
	// FindRetrigger returns the execution created under key if key was
	// recorded since key.NotBefore, else ErrNotFound. It writes nothing, so
	// the API can answer a repeated key with the first execution even when
	// a new retrigger would be refused now (webhook disabled, pending
	// executions at their limit).
	FindRetrigger(ctx context.Context, key IdempotencyKey) (Execution, error)

	// Reliability: interrupted attempts, lease recovery and retention
	// (issue 5); see reliability.go.

	// InterruptExecution records the attempt running under the execution's
	// lease as interrupted, for reason, and drops the lease, in one
	// transaction; the attempt count is unchanged. An execution that is
	// final or not leased gives ErrNotClaimable, a missing one ErrNotFound.
	InterruptExecution(ctx context.Context, id int64, at time.Time, reason string) error
	// ListExpiredLeases returns ids of pending executions whose lease ended
	// before `before`, the longest expired first, at most limit.
	ListExpiredLeases(ctx context.Context, before time.Time, limit int) ([]int64, error)
	// DeleteExecutionsBefore deletes, oldest first, at most limit executions
	// created before `before` with their attempts, leaving those leased at
	// `now`, in one short transaction; it returns how many it deleted.
	DeleteExecutionsBefore(ctx context.Context, before, now time.Time, limit int) (int, error)
	// DeleteEventKeysBefore deletes at most limit event keys recorded before
	// `before` and returns how many it deleted.
	DeleteEventKeysBefore(ctx context.Context, before time.Time, limit int) (int, error)

	// Operations: metrics and delivery logs (issue 6).

	// CountPending returns how many executions are pending, leased or not.
	CountPending(ctx context.Context) (int, error)
	// GetRegistryByID returns the registry with that id.
	GetRegistryByID(ctx context.Context, id int64) (Registry, error)

	// Performance: the retrigger's lookups in one round trip (issue 7).

	// GetExecutionInRegistry returns the registry of scope and identifier,
	// its webhook webhookIdentifier, and that webhook's execution id, as
	// GetRegistry, GetWebhook and GetExecution would, but at once. Any of
	// the three missing, or an execution of another registry, is
	// ErrNotFound, without saying which.
	GetExecutionInRegistry(ctx context.Context, scope Scope, registry, webhookIdentifier string,
		id int64) (Registry, Webhook, Execution, error)

	// Security: abuse limits and secret rotation (issue 4); see security.go.

	// CountPendingForWebhook returns how many executions of the webhook are
	// pending, leased or not.
	CountPendingForWebhook(ctx context.Context, webhookID int64) (int, error)
	// ListWebhookSecrets returns, in id order, at most limit webhooks with
	// an id above afterID that have a secret, each with its secret exactly
	// as stored (sealed or not: see store/sealed).
	ListWebhookSecrets(ctx context.Context, afterID int64, limit int) ([]WebhookSecret, error)
	// ReplaceWebhookSecret stores next as the secret of webhook id if its
	// stored secret is still prev, leaving Version and Modified as they are:
	// the secret means the same, only its stored form changes. A secret
	// changed in between is ErrConflict, a missing webhook ErrNotFound.
	ReplaceWebhookSecret(ctx context.Context, id int64, prev, next []byte) error
}
