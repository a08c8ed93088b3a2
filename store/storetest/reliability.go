package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rehook/rehook/store"
)

// testReliability runs the contract of interrupted attempts, expired leases
// and retention, on one store, one case after the other: the retention
// cases come first, while the store is empty, since they act on every row,
// and the expired leases next, before other cases leave leases behind.
func testReliability(t *testing.T, s store.Store) {
	for _, tt := range []struct {
		name string
		run  func(t *testing.T, s store.Store)
	}{
		{"DeleteExecutionsBefore", testDeleteExecutionsBefore},
		{"DeleteEventKeysBefore", testDeleteEventKeysBefore},
		{"ListExpiredLeases", testListExpiredLeases},
		{"ClaimRecordsExpiredLeaseAsInterrupted", testClaimRecordsInterruption},
		{"ConcurrentClaimsRecordOneInterruption", testConcurrentClaimsOneInterruption},
		{"InterruptExecution", testInterruptExecution},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, s) })
	}
}

// setupNamed is setup with a registry of the test's own, for cases that
// share a store.
func setupNamed(t *testing.T, s store.Store) (store.Registry, store.Webhook) {
	t.Helper()
	r := newRegistry(t, s, store.Scope{Account: "acct", Org: "org"}, t.Name())
	return r, newWebhook(t, s, r.ID, "hook")
}

// interrupted is the attempt row of an interruption.
func interrupted(id int64, n int, started time.Time, reason string) store.Attempt {
	return store.Attempt{ExecutionID: id, N: n, Started: started, Error: reason,
		Interrupted: true}
}

func testClaimRecordsInterruption(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, w := setupNamed(t, s)
	e := newExecution(t, s, w)
	t0 := now()

	_, err := s.ClaimExecution(ctx, e.ID, t0, t0.Add(30*time.Second))
	noErr(t, "first claim", err)
	later := t0.Add(31 * time.Second)
	got, err := s.ClaimExecution(ctx, e.ID, later, later.Add(30*time.Second))
	noErr(t, "claim after the lease expired", err)
	if got.Attempts != 0 {
		t.Errorf("Attempts after an interruption: got %d, want 0", got.Attempts)
	}

	attempts, err := s.ListAttempts(ctx, e.ID)
	noErr(t, "list attempts", err)
	cut := interrupted(e.ID, 1, t0, store.InterruptedLeaseExpired)
	same(t, "attempts after a lease expired", attempts, []store.Attempt{cut})

	rec := store.AttemptRecord{
		Attempt: store.Attempt{N: 1, Started: later, Result: store.ResultSuccess,
			StatusCode: 200},
		Final: true,
	}
	noErr(t, "record attempt 1 after the interruption", s.RecordAttempt(ctx, e.ID, rec))
	attempts, err = s.ListAttempts(ctx, e.ID)
	noErr(t, "list attempts", err)
	rec.Attempt.ExecutionID = e.ID
	same(t, "attempts after the retry", attempts, []store.Attempt{cut, rec.Attempt})

	// A lease released, or ended by a recorded attempt, is no interruption.
	f := newExecution(t, s, w)
	_, err = s.ClaimExecution(ctx, f.ID, t0, t0.Add(time.Second))
	noErr(t, "claim", err)
	noErr(t, "release", s.ReleaseExecution(ctx, f.ID))
	_, err = s.ClaimExecution(ctx, f.ID, later, later.Add(time.Second))
	noErr(t, "claim after release", err)
	retry := store.AttemptRecord{
		Attempt: store.Attempt{N: 1, Started: later, Result: store.ResultRetriableError},
	}
	noErr(t, "record retriable attempt", s.RecordAttempt(ctx, f.ID, retry))
	last := later.Add(time.Hour)
	_, err = s.ClaimExecution(ctx, f.ID, last, last.Add(time.Second))
	noErr(t, "claim after a recorded attempt", err)
	attempts, err = s.ListAttempts(ctx, f.ID)
	noErr(t, "list attempts", err)
	if len(attempts) != 1 || attempts[0].Interrupted {
		t.Errorf("attempts after release and record: got %+v, want the one recorded", attempts)
	}
}

func testConcurrentClaimsOneInterruption(t *testing.T, s store.Store) {
	ctx := ctxTimeout(t)
	_, w := setupNamed(t, s)
	e := newExecution(t, s, w)
	t0 := now()
	_, err := s.ClaimExecution(ctx, e.ID, t0, t0.Add(time.Second))
	noErr(t, "first claim", err)

	later := t0.Add(2 * time.Second)
	const claimers = 8
	start := make(chan struct{})
	won := make(chan int, claimers)
	var wg sync.WaitGroup
	for range claimers {
		wg.Go(func() {
			<-start
			if _, err := s.ClaimExecution(ctx, e.ID, later, later.Add(time.Minute)); err == nil {
				won <- 1
			}
		})
	}
	close(start)
	wg.Wait()
	close(won)

	if n := len(won); n != 1 {
		t.Errorf("claims won after the lease expired: got %d, want 1", n)
	}
	attempts, err := s.ListAttempts(ctx, e.ID)
	noErr(t, "list attempts", err)
	if len(attempts) != 1 || !attempts[0].Interrupted {
		t.Errorf("attempts: got %+v, want exactly one interruption", attempts)
	}
}

func testInterruptExecution(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, w := setupNamed(t, s)
	e := newExecution(t, s, w)
	t0 := now()

	wantErr(t, "interrupt an unleased execution",
		s.InterruptExecution(ctx, e.ID, t0, store.InterruptedShutdown), store.ErrNotClaimable)
	wantErr(t, "interrupt a missing execution",
		s.InterruptExecution(ctx, e.ID+1000, t0, store.InterruptedShutdown), store.ErrNotFound)

	_, err := s.ClaimExecution(ctx, e.ID, t0, t0.Add(time.Minute))
	noErr(t, "claim", err)
	at := t0.Add(3 * time.Second)
	noErr(t, "interrupt", s.InterruptExecution(ctx, e.ID, at, store.InterruptedShutdown))

	got, err := s.GetExecutionByID(ctx, e.ID)
	noErr(t, "get execution", err)
	same(t, "execution after an interruption", got, e)
	attempts, err := s.ListAttempts(ctx, e.ID)
	noErr(t, "list attempts", err)
	cut := interrupted(e.ID, 1, t0, store.InterruptedShutdown)
	same(t, "attempts", attempts, []store.Attempt{cut})

	// Claimable at once, and the handed-back lease is not counted twice.
	_, err = s.ClaimExecution(ctx, e.ID, at, at.Add(time.Minute))
	noErr(t, "claim after the interruption", err)
	finish(t, s, e.ID, 1)
	attempts, err = s.ListAttempts(ctx, e.ID)
	noErr(t, "list attempts", err)
	if len(attempts) != 2 || !attempts[0].Interrupted || attempts[1].Interrupted {
		t.Errorf("attempts: got %+v, want the interruption then attempt 1", attempts)
	}
	wantErr(t, "interrupt a final execution",
		s.InterruptExecution(ctx, e.ID, at, store.InterruptedShutdown), store.ErrNotClaimable)
}

func testListExpiredLeases(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, w := setupNamed(t, s)
	execs := newExecutions(t, s, w, 4, time.Time{})
	t0 := now()
	claimUntil := func(i int, until time.Time) {
		t.Helper()
		_, err := s.ClaimExecution(ctx, execs[i].ID, t0, until)
		noErr(t, fmt.Sprintf("claim execution %d", i), err)
	}
	claimUntil(0, t0.Add(10*time.Second))
	claimUntil(1, t0.Add(5*time.Second))
	claimUntil(3, t0.Add(time.Second))
	finish(t, s, execs[3].ID, 1)

	for _, tc := range []struct {
		name   string
		before time.Time
		limit  int
		want   []int64
	}{
		{"both expired, longest first", t0.Add(20 * time.Second), 10,
			[]int64{execs[1].ID, execs[0].ID}},
		{"one expired", t0.Add(7 * time.Second), 10, []int64{execs[1].ID}},
		{"limit", t0.Add(20 * time.Second), 1, []int64{execs[1].ID}},
		{"none expired", t0, 10, []int64{}},
		{"limit 0", t0.Add(20 * time.Second), 0, []int64{}},
	} {
		got, err := s.ListExpiredLeases(ctx, tc.before, tc.limit)
		noErr(t, tc.name, err)
		same(t, tc.name, got, tc.want)
	}
}

func testDeleteExecutionsBefore(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, w := setupNamed(t, s)
	before := now().Add(-time.Millisecond)
	execs := newExecutions(t, s, w, 5, time.Time{})
	finish(t, s, execs[0].ID, 1)
	t0 := now()
	_, err := s.ClaimExecution(ctx, execs[4].ID, t0, t0.Add(time.Hour))
	noErr(t, "claim", err)
	cutoff := t0.Add(time.Second)

	n, err := s.DeleteExecutionsBefore(ctx, before, t0, 10)
	noErr(t, "delete before any was created", err)
	if n != 0 {
		t.Errorf("deleted before any was created: got %d, want 0", n)
	}

	var batches []int
	for range 4 {
		n, err := s.DeleteExecutionsBefore(ctx, cutoff, t0, 2)
		noErr(t, "delete a batch", err)
		batches = append(batches, n)
	}
	same(t, "batch sizes", batches, []int{2, 2, 0, 0})

	for i, e := range execs[:4] {
		_, err := s.GetExecutionByID(ctx, e.ID)
		wantErr(t, fmt.Sprintf("get deleted execution %d", i), err, store.ErrNotFound)
	}
	_, err = s.GetExecutionByID(ctx, execs[4].ID)
	noErr(t, "get the leased execution, kept", err)
	attempts, err := s.ListAttempts(ctx, execs[0].ID)
	noErr(t, "list attempts of a deleted execution", err)
	if len(attempts) != 0 {
		t.Errorf("attempts of a deleted execution: got %+v, want none", attempts)
	}

	n, err = s.DeleteExecutionsBefore(ctx, cutoff, t0.Add(2*time.Hour), 0)
	noErr(t, "delete with limit 0", err)
	if n != 0 {
		t.Errorf("deleted with limit 0: got %d, want 0", n)
	}
	n, err = s.DeleteExecutionsBefore(ctx, cutoff, t0.Add(2*time.Hour), 10)
	noErr(t, "delete once the lease ended", err)
	if n != 1 {
		t.Errorf("deleted once the lease ended: got %d, want 1", n)
	}
}

func testDeleteEventKeysBefore(t *testing.T, s store.Store) {
	ctx := t.Context()
	r, w := setupNamed(t, s)
	keys := []string{"k1", "k2", "k3"}
	create := func(keys []string) error {
		t.Helper()
		e := store.Execution{WebhookID: w.ID, TriggerType: store.TriggerArtifactCreation}
		return s.CreateExecutions(ctx, r.ID, keys, []*store.Execution{&e})
	}
	noErr(t, "create with keys", create(keys))
	wantErr(t, "create with a seen key", create(keys[:1]), store.ErrDuplicateEvent)
	cutoff := now().Add(time.Second)

	var batches []int
	for range 3 {
		n, err := s.DeleteEventKeysBefore(ctx, cutoff, 2)
		noErr(t, "delete a batch", err)
		batches = append(batches, n)
	}
	same(t, "batch sizes", batches, []int{2, 1, 0})
	noErr(t, "create with a key deleted", create(keys[:1]))
}
