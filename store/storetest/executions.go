package storetest

import (
	"regexp"
	"testing"
	"time"

	"github.com/rehook/rehook/store"
)

var uuidPattern = regexp.MustCompile(
	`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func testCreateExecutions(t *testing.T, s store.Store) {
	ctx := t.Context()
	r, w := setup(t, s)
	other := newWebhook(t, s, r.ID, "other")
	later := now().Add(time.Hour)

	first := store.Execution{
		WebhookID:      w.ID,
		TriggerType:    store.TriggerArtifactCreation,
		RequestHeaders: "Content-Type: application/json",
		RequestBody:    `{"artifact":"app:1.0"}`,
	}
	second := store.Execution{
		WebhookID:     other.ID,
		TriggerType:   store.TriggerArtifactDeletion,
		DeliveryID:    "delivery-given",
		RetriggerOf:   12345,
		NextAttemptAt: later,
	}
	third := store.Execution{WebhookID: w.ID, TriggerType: store.TriggerArtifactCreation}
	execs := []*store.Execution{&first, &second, &third}

	before := now()
	noErr(t, "create executions", s.CreateExecutions(ctx, r.ID, nil, execs))
	after := now()

	ids := map[int64]bool{}
	for i, e := range execs {
		if e.ID == 0 || ids[e.ID] {
			t.Fatalf("execution %d: ID %d is zero or repeated", i, e.ID)
		}
		ids[e.ID] = true
		checkCreated(t, "execution", e.Created, before, after)
		if e.State != store.StatePending {
			t.Errorf("execution %d: State %q, want pending", i, e.State)
		}
		if e.RegistryID != r.ID {
			t.Errorf("execution %d: RegistryID %d, want %d", i, e.RegistryID, r.ID)
		}
	}
	if !first.NextAttemptAt.Equal(first.Created) {
		t.Errorf("NextAttemptAt: got %v, want Created %v", first.NextAttemptAt, first.Created)
	}
	if !second.NextAttemptAt.Equal(later) {
		t.Errorf("NextAttemptAt: got %v, want %v", second.NextAttemptAt, later)
	}
	if second.DeliveryID != "delivery-given" {
		t.Errorf("DeliveryID: got %q, want the one given", second.DeliveryID)
	}
	for _, e := range []store.Execution{first, third} {
		if !uuidPattern.MatchString(e.DeliveryID) {
			t.Errorf("DeliveryID %q is not a random UUID", e.DeliveryID)
		}
	}
	if first.DeliveryID == third.DeliveryID {
		t.Errorf("two executions got the same DeliveryID %q", first.DeliveryID)
	}

	for _, e := range execs {
		got, err := s.GetExecution(ctx, e.WebhookID, e.ID)
		noErr(t, "get execution", err)
		same(t, "get execution", got, *e)

		got, err = s.GetExecutionByID(ctx, e.ID)
		noErr(t, "get execution by id", err)
		same(t, "get execution by id", got, *e)
	}

	_, err := s.GetExecution(ctx, other.ID, first.ID)
	wantErr(t, "get execution through another webhook", err, store.ErrNotFound)
	_, err = s.GetExecutionByID(ctx, third.ID+1000)
	wantErr(t, "get missing execution", err, store.ErrNotFound)

	noErr(t, "create no executions", s.CreateExecutions(ctx, r.ID, nil, nil))
}

func testCreateExecutionsErrors(t *testing.T, s store.Store) {
	ctx := t.Context()
	r, w := setup(t, s)
	other := newRegistry(t, s, r.Scope, "other")

	orphan := store.Execution{WebhookID: w.ID + 1000, TriggerType: store.TriggerArtifactCreation}
	err := s.CreateExecutions(ctx, r.ID, nil, []*store.Execution{&orphan})
	wantErr(t, "create execution of a missing webhook", err, store.ErrNotFound)
	if orphan.ID != 0 {
		t.Errorf("a failed create set ID %d", orphan.ID)
	}

	good := store.Execution{WebhookID: w.ID}
	err = s.CreateExecutions(ctx, r.ID+other.ID+1000, []string{"k"}, []*store.Execution{&good})
	wantErr(t, "create executions in a missing registry", err, store.ErrNotFound)

	mismatched := store.Execution{WebhookID: w.ID, RegistryID: other.ID}
	err = s.CreateExecutions(ctx, r.ID, nil, []*store.Execution{&mismatched})
	if err == nil {
		t.Errorf("create execution of registry %d in registry %d: got no error",
			other.ID, r.ID)
	}

	both := []*store.Execution{{WebhookID: w.ID}, {WebhookID: w.ID + 1000}}
	err = s.CreateExecutions(ctx, r.ID, nil, both)
	wantErr(t, "create a good and a bad execution", err, store.ErrNotFound)
	_, total, err := s.ListExecutions(ctx, w.ID, store.Page{Size: 10})
	noErr(t, "list executions", err)
	if total != 0 {
		t.Errorf("executions after failed creates: got %d, want 0", total)
	}
}

func testDuplicateEventKeysWriteNothing(t *testing.T, s store.Store) {
	ctx := t.Context()
	r, w := setup(t, s)
	other := newRegistry(t, s, r.Scope, "other")
	otherHook := newWebhook(t, s, other.ID, "hook")
	create := func(registryID, webhookID int64, keys ...string) (store.Execution, error) {
		e := store.Execution{WebhookID: webhookID, TriggerType: store.TriggerArtifactCreation}
		err := s.CreateExecutions(ctx, registryID, keys, []*store.Execution{&e})
		return e, err
	}
	count := func() int {
		_, total, err := s.ListExecutions(ctx, w.ID, store.Page{Size: 1})
		noErr(t, "list executions", err)
		return total
	}

	_, err := create(r.ID, w.ID, "e1", "e2")
	noErr(t, "first event", err)

	dup, err := create(r.ID, w.ID, "e3", "e2")
	wantErr(t, "event with a key seen before", err, store.ErrDuplicateEvent)
	if dup.ID != 0 {
		t.Errorf("a duplicate event set ID %d", dup.ID)
	}
	if got := count(); got != 1 {
		t.Errorf("executions after a duplicate event: got %d, want 1", got)
	}

	_, err = create(r.ID, w.ID, "e3")
	noErr(t, "key of the rolled back event", err)
	_, err = create(r.ID, w.ID, "e4", "e4")
	noErr(t, "key repeated within one event", err)
	_, err = create(other.ID, otherHook.ID, "e1")
	noErr(t, "same key in another registry", err)
	_, err = create(r.ID, w.ID)
	noErr(t, "event without keys", err)
	_, err = create(r.ID, w.ID)
	noErr(t, "another event without keys", err)

	noErr(t, "keys without executions", s.CreateExecutions(ctx, r.ID, []string{"e5"}, nil))
	_, err = create(r.ID, w.ID, "e5")
	wantErr(t, "key recorded without executions", err, store.ErrDuplicateEvent)

	if got := count(); got != 5 {
		t.Errorf("executions: got %d, want 5", got)
	}
}

func testListExecutionsPages(t *testing.T, s store.Store) {
	ctx := t.Context()
	r, w := setup(t, s)
	other := newWebhook(t, s, r.ID, "other")
	newExecutions(t, s, other, 3, time.Time{})
	all := newExecutions(t, s, w, 95, time.Time{})

	seen := map[int64]bool{}
	lastID := int64(1) << 62
	for index := 0; index < 10; index++ {
		page, total, err := s.ListExecutions(ctx, w.ID, store.Page{Index: index, Size: 10})
		noErr(t, "list page", err)
		if total != 95 {
			t.Fatalf("page %d: total %d, want 95", index, total)
		}
		wantLen := 10
		if index == 9 {
			wantLen = 5
		}
		if len(page) != wantLen {
			t.Fatalf("page %d: %d executions, want %d", index, len(page), wantLen)
		}

		for _, e := range page {
			if e.WebhookID != w.ID {
				t.Fatalf("page %d: execution %d of webhook %d", index, e.ID, e.WebhookID)
			}
			if e.ID >= lastID {
				t.Fatalf("page %d: execution %d after %d, want newest first", index, e.ID, lastID)
			}
			if seen[e.ID] {
				t.Fatalf("page %d: execution %d seen on an earlier page", index, e.ID)
			}
			seen[e.ID] = true
			lastID = e.ID
		}
	}
	for _, e := range all {
		if !seen[e.ID] {
			t.Errorf("execution %d is on no page", e.ID)
		}
	}

	page, total, err := s.ListExecutions(ctx, w.ID, store.Page{Index: 10, Size: 10})
	noErr(t, "list page past the end", err)
	if len(page) != 0 || total != 95 {
		t.Errorf("page past the end: got %d executions and total %d, want 0 and 95",
			len(page), total)
	}

	page, _, err = s.ListExecutions(ctx, w.ID, store.Page{Index: 0, Size: 1})
	noErr(t, "list newest", err)
	same(t, "newest execution", page[0], all[len(all)-1])

	page, total, err = s.ListExecutions(ctx, w.ID+1000, store.Page{Size: 10})
	noErr(t, "list executions of a missing webhook", err)
	if len(page) != 0 || total != 0 {
		t.Errorf("executions of a missing webhook: got %d and total %d, want none", len(page),
			total)
	}
}

func testListDuePending(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, w := setup(t, s)
	t0 := now()

	due := newExecutions(t, s, w, 1, t0.Add(-time.Minute))[0]
	notYet := newExecutions(t, s, w, 1, t0.Add(time.Hour))[0]
	leased := newExecutions(t, s, w, 1, t0.Add(-time.Minute))[0]
	leaseEnded := newExecutions(t, s, w, 1, t0.Add(-time.Minute))[0]
	final := newExecutions(t, s, w, 1, t0.Add(-time.Minute))[0]
	dueNow := newExecutions(t, s, w, 1, t0)[0]

	_, err := s.ClaimExecution(ctx, leased.ID, t0.Add(-time.Minute), t0.Add(time.Minute))
	noErr(t, "claim", err)
	_, err = s.ClaimExecution(ctx, leaseEnded.ID, t0.Add(-time.Minute), t0.Add(-time.Second))
	noErr(t, "claim", err)
	finish(t, s, final.ID, 1)

	ids, err := s.ListDuePending(ctx, t0, 100)
	noErr(t, "list due", err)
	same(t, "due executions", ids, []int64{due.ID, leaseEnded.ID, dueNow.ID})

	ids, err = s.ListDuePending(ctx, t0, 2)
	noErr(t, "list due with a limit", err)
	same(t, "due executions, limit 2", ids, []int64{due.ID, leaseEnded.ID})

	ids, err = s.ListDuePending(ctx, t0.Add(2*time.Hour), 100)
	noErr(t, "list due later", err)
	same(t, "due executions later", ids, []int64{due.ID, notYet.ID, leased.ID, leaseEnded.ID,
		dueNow.ID})

	ids, err = s.ListDuePending(ctx, t0, 0)
	noErr(t, "list due with limit 0", err)
	if len(ids) != 0 {
		t.Errorf("due executions, limit 0: got %v, want none", ids)
	}
}
