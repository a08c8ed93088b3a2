package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rehook/rehook/store"
)

func testClaimLease(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, w := setup(t, s)
	e := newExecution(t, s, w)
	t0 := now()
	until := t0.Add(30 * time.Second)

	got, err := s.ClaimExecution(ctx, e.ID, t0, until)
	noErr(t, "claim", err)
	want := e
	want.ClaimedUntil = until
	same(t, "claimed execution", got, want)
	stored, err := s.GetExecutionByID(ctx, e.ID)
	noErr(t, "get claimed execution", err)
	same(t, "stored claimed execution", stored, want)

	_, err = s.ClaimExecution(ctx, e.ID, t0.Add(10*time.Second), t0.Add(40*time.Second))
	wantErr(t, "claim within the lease", err, store.ErrNotClaimable)
	_, err = s.ClaimExecution(ctx, e.ID, until, until.Add(30*time.Second))
	wantErr(t, "claim as the lease ends", err, store.ErrNotClaimable)

	later := until.Add(time.Millisecond)
	got, err = s.ClaimExecution(ctx, e.ID, later, later.Add(time.Minute))
	noErr(t, "claim after the lease", err)
	if !got.ClaimedUntil.Equal(later.Add(time.Minute)) {
		t.Errorf("ClaimedUntil: got %v, want %v", got.ClaimedUntil, later.Add(time.Minute))
	}

	_, err = s.ClaimExecution(ctx, e.ID+1000, t0, until)
	wantErr(t, "claim a missing execution", err, store.ErrNotFound)

	other := newExecution(t, s, w)
	_, err = s.ClaimExecution(ctx, other.ID, t0, t0)
	if err == nil {
		t.Errorf("claim with a lease ending when it starts: got no error")
	}
}

func testClaimFinalExecution(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, w := setup(t, s)
	e := newExecution(t, s, w)
	finish(t, s, e.ID, 1)

	_, err := s.ClaimExecution(ctx, e.ID, now(), now().Add(time.Minute))
	wantErr(t, "claim a final execution", err, store.ErrNotClaimable)
	_, err = s.ClaimExecution(ctx, e.ID, now().Add(time.Hour), now().Add(2*time.Hour))
	wantErr(t, "claim a final execution later", err, store.ErrNotClaimable)
}

func testReleaseExecution(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, w := setup(t, s)
	e := newExecution(t, s, w)
	t0 := now()

	_, err := s.ClaimExecution(ctx, e.ID, t0, t0.Add(time.Minute))
	noErr(t, "claim", err)
	noErr(t, "release", s.ReleaseExecution(ctx, e.ID))

	got, err := s.GetExecutionByID(ctx, e.ID)
	noErr(t, "get released execution", err)
	same(t, "released execution", got, e)

	_, err = s.ClaimExecution(ctx, e.ID, t0, t0.Add(time.Minute))
	noErr(t, "claim a released execution", err)

	wantErr(t, "release a missing execution", s.ReleaseExecution(ctx, e.ID+1000),
		store.ErrNotFound)
}

func testRecordAttempts(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, w := setup(t, s)
	e := newExecution(t, s, w)
	t0 := now()

	_, err := s.ClaimExecution(ctx, e.ID, t0, t0.Add(time.Minute))
	noErr(t, "claim", err)
	retryAt := t0.Add(5 * time.Minute)
	first := store.Attempt{
		ExecutionID:     e.ID,
		N:               1,
		Started:         t0,
		Duration:        1500 * time.Millisecond,
		Result:          store.ResultRetriableError,
		StatusCode:      503,
		Error:           "503 Service Unavailable",
		ResponseExcerpt: "busy",
	}
	rec := store.AttemptRecord{
		Attempt:            first,
		NextAttemptAt:      retryAt,
		RequestURL:         "http://127.0.0.1:9/hook",
		RequestHeaders:     "Content-Type: application/json",
		ResponseStatusCode: 503,
		ResponseStatus:     "503 Service Unavailable",
		ResponseHeaders:    "Retry-After: 300",
		ResponseBody:       "busy",
	}
	noErr(t, "record retriable attempt", s.RecordAttempt(ctx, e.ID, rec))

	want := e
	want.Attempts = 1
	want.Result = store.ResultRetriableError
	want.Duration = first.Duration
	want.Error = first.Error
	want.NextAttemptAt = retryAt
	want.RequestURL = rec.RequestURL
	want.RequestHeaders = rec.RequestHeaders
	want.ResponseStatusCode = 503
	want.ResponseStatus = rec.ResponseStatus
	want.ResponseHeaders = rec.ResponseHeaders
	want.ResponseBody = rec.ResponseBody
	got, err := s.GetExecutionByID(ctx, e.ID)
	noErr(t, "get execution", err)
	same(t, "execution after a retriable attempt", got, want)

	_, err = s.ClaimExecution(ctx, e.ID, t0, t0.Add(time.Minute))
	noErr(t, "claim again: recording released the lease", err)
	second := store.Attempt{
		ExecutionID: e.ID,
		N:           2,
		Started:     t0.Add(time.Second),
		Duration:    20 * time.Millisecond,
		Result:      store.ResultSuccess,
		StatusCode:  200,
	}
	rec = store.AttemptRecord{
		Attempt:            second,
		Final:              true,
		RequestURL:         "http://127.0.0.1:9/hook",
		ResponseStatusCode: 200,
		ResponseStatus:     "200 OK",
	}
	noErr(t, "record final attempt", s.RecordAttempt(ctx, e.ID, rec))

	want.State = store.StateFinal
	want.Attempts = 2
	want.Result = store.ResultSuccess
	want.Duration = second.Duration
	want.Error = ""
	want.NextAttemptAt = time.Time{}
	want.RequestHeaders = ""
	want.ResponseStatusCode = 200
	want.ResponseStatus = "200 OK"
	want.ResponseHeaders = ""
	want.ResponseBody = ""
	got, err = s.GetExecutionByID(ctx, e.ID)
	noErr(t, "get execution", err)
	same(t, "execution after a final attempt", got, want)

	attempts, err := s.ListAttempts(ctx, e.ID)
	noErr(t, "list attempts", err)
	same(t, "attempts", attempts, []store.Attempt{first, second})

	attempts, err = s.ListAttempts(ctx, e.ID+1000)
	noErr(t, "list attempts of a missing execution", err)
	if len(attempts) != 0 {
		t.Errorf("attempts of a missing execution: got %+v, want none", attempts)
	}
}

func testRecordAttemptOnFinalExecution(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, w := setup(t, s)
	e := newExecution(t, s, w)
	finish(t, s, e.ID, 1)
	before, err := s.GetExecutionByID(ctx, e.ID)
	noErr(t, "get final execution", err)

	rec := store.AttemptRecord{
		Attempt: store.Attempt{N: 2, Started: now(), Result: store.ResultFatalError},
		Final:   true,
	}
	wantErr(t, "record attempt on a final execution", s.RecordAttempt(ctx, e.ID, rec),
		store.ErrNotClaimable)

	after, err := s.GetExecutionByID(ctx, e.ID)
	noErr(t, "get final execution", err)
	same(t, "final execution after a refused attempt", after, before)
	attempts, err := s.ListAttempts(ctx, e.ID)
	noErr(t, "list attempts", err)
	if len(attempts) != 1 {
		t.Errorf("attempts: got %d, want only the first", len(attempts))
	}

	wantErr(t, "record attempt on a missing execution", s.RecordAttempt(ctx, e.ID+1000, rec),
		store.ErrNotFound)

	other := newExecution(t, s, w)
	rec.Attempt.N = 0
	if err := s.RecordAttempt(ctx, other.ID, rec); err == nil {
		t.Errorf("record attempt number 0: got no error")
	}
}

func testRecordAttemptRepeatedNumber(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, w := setup(t, s)
	e := newExecution(t, s, w)
	rec := store.AttemptRecord{
		Attempt: store.Attempt{N: 1, Started: now(), Result: store.ResultRetriableError},
	}
	noErr(t, "record attempt 1", s.RecordAttempt(ctx, e.ID, rec))
	claimed, err := s.ClaimExecution(ctx, e.ID, now(), now().Add(time.Minute))
	noErr(t, "claim", err)

	rec.Final = true
	rec.Attempt.Result = store.ResultSuccess
	wantErr(t, "record attempt 1 again", s.RecordAttempt(ctx, e.ID, rec), store.ErrConflict)

	got, err := s.GetExecutionByID(ctx, e.ID)
	noErr(t, "get execution", err)
	same(t, "execution after a refused attempt", got, claimed)
}

func testRecordAttemptCleansText(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, w := setup(t, s)
	e := newExecution(t, s, w)

	rec := store.AttemptRecord{
		Attempt: store.Attempt{
			N:               1,
			Started:         now(),
			Result:          store.ResultFatalError,
			Error:           "bad\xffbyte",
			ResponseExcerpt: "nul\x00byte",
		},
		Final:        true,
		ResponseBody: "ok\x00\xfe\xff",
	}
	noErr(t, "record attempt with binary text", s.RecordAttempt(ctx, e.ID, rec))

	got, err := s.GetExecutionByID(ctx, e.ID)
	noErr(t, "get execution", err)
	if got.ResponseBody != "ok\uFFFD\uFFFD" || got.Error != "bad\uFFFDbyte" {
		t.Errorf("ResponseBody, Error: got %q, %q; want %q, %q", got.ResponseBody, got.Error,
			"ok\uFFFD\uFFFD", "bad\uFFFDbyte")
	}
	attempts, err := s.ListAttempts(ctx, e.ID)
	noErr(t, "list attempts", err)
	if len(attempts) != 1 || attempts[0].ResponseExcerpt != "nul\uFFFDbyte" {
		t.Errorf("attempts: got %+v, want one with excerpt %q", attempts, "nul\uFFFDbyte")
	}
}

func testConcurrentClaimsOneWins(t *testing.T, s store.Store) {
	ctx := ctxTimeout(t)
	_, w := setup(t, s)
	e := newExecution(t, s, w)
	t0 := now()

	const claimers = 8
	start := make(chan struct{})
	errs := make([]error, claimers)
	var wg sync.WaitGroup
	for i := range claimers {
		wg.Go(func() {
			<-start
			_, errs[i] = s.ClaimExecution(ctx, e.ID, t0, t0.Add(time.Minute))
		})
	}
	close(start)
	wg.Wait()

	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrNotClaimable):
			t.Errorf("claimer %d: got error %v, want nil or %v", i, err, store.ErrNotClaimable)
		}
	}
	if won != 1 {
		t.Errorf("claims won: got %d, want exactly 1", won)
	}
}

// testConcurrentWorkers runs workers that each create, claim and finish
// executions and read lists at the same time, as the API and the worker
// pool do; no store may fail under that load (SQLite must not report
// SQLITE_BUSY).
func testConcurrentWorkers(t *testing.T, s store.Store) {
	ctx := ctxTimeout(t)
	r, w := setup(t, s)

	const workers, rounds = 8, 25
	var wg sync.WaitGroup
	for worker := range workers {
		wg.Go(func() {
			for round := range rounds {
				if err := workRound(t, s, r, w, fmt.Sprintf("w%d-r%d", worker, round)); err != nil {
					t.Errorf("worker %d round %d: %v", worker, round, err)
					return
				}
			}
		})
	}
	wg.Wait()

	_, total, err := s.ListExecutions(ctx, w.ID, store.Page{Size: 1})
	noErr(t, "list executions", err)
	if total != workers*rounds {
		t.Errorf("executions: got %d, want %d", total, workers*rounds)
	}
	ids, err := s.ListDuePending(ctx, now().Add(time.Hour), 10)
	noErr(t, "list due", err)
	if len(ids) != 0 {
		t.Errorf("due executions after every one was finished: got %v", ids)
	}
}

// workRound creates one execution under an event key, claims it, reads,
// and finishes it.
func workRound(t *testing.T, s store.Store, r store.Registry, w store.Webhook, key string) error {
	ctx := t.Context()
	e := store.Execution{WebhookID: w.ID, TriggerType: store.TriggerArtifactCreation}
	if err := s.CreateExecutions(ctx, r.ID, []string{key}, []*store.Execution{&e}); err != nil {
		return fmt.Errorf("create: %w", err)
	}

	t0 := now()
	if _, err := s.ClaimExecution(ctx, e.ID, t0, t0.Add(time.Minute)); err != nil {
		return fmt.Errorf("claim: %w", err)
	}
	if _, _, err := s.ListExecutions(ctx, w.ID, store.Page{Size: 10}); err != nil {
		return fmt.Errorf("list: %w", err)
	}
	if _, err := s.ListDuePending(ctx, t0, 10); err != nil {
		return fmt.Errorf("list due: %w", err)
	}

	rec := store.AttemptRecord{
		Attempt: store.Attempt{N: 1, Started: t0, Result: store.ResultSuccess, StatusCode: 200},
		Final:   true,
	}
	if err := s.RecordAttempt(ctx, e.ID, rec); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	return nil
}
