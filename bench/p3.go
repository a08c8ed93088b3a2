package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
)

// p3 measures, on an idle system, the time from a retrigger's 200 to the
// receiver's hit, one retrigger at a time, against the time bare asynq
// takes from an enqueue's return to its handler's start.
func (bn *bench) p3(ctx context.Context) error {
	r, f, bare, stop, err := bn.startWorkerPhase(ctx, "p3")
	if err != nil {
		return err
	}
	defer stop()

	var p50, p99, base50, base99 []time.Duration
	for i := 0; i < bn.o.rounds; i++ {
		l, err := bn.p3Rehook(ctx, r, f)
		if err != nil {
			return err
		}
		bl, err := bn.p3Bare(ctx, bare)
		if err != nil {
			return err
		}
		p50, p99 = append(p50, percentile(l, 50)), append(p99, percentile(l, 99))
		base50, base99 = append(base50, percentile(bl, 50)), append(base99, percentile(bl, 99))
		bn.logf("P3 round %d/%d: rehook p50 %s, p99 %s; bare asynq p50 %s, p99 %s",
			i+1, bn.o.rounds, ms(p50[i]), ms(p99[i]), ms(base50[i]), ms(base99[i]))
	}

	for _, x := range []struct {
		name      string
		got, base []time.Duration
		limit     time.Duration
	}{
		{"p50", p50, base50, 20 * time.Millisecond},
		{"p99", p99, base99, 100 * time.Millisecond},
	} {
		bn.add(row{
			figure:   "P3 idle latency, retrigger 200 to receiver hit, " + x.name,
			rehook:   ms(median(x.got)),
			baseline: ms(median(x.base)) + " (bare asynq)",
			ratio:    ratio(float64(median(x.got)), float64(median(x.base))),
			goal:     "<= " + ms(x.limit), met: met(median(x.got) <= x.limit),
		})
	}
	return nil
}

// idlePause lets the system settle between two samples, for a random time
// so that samples fall at every phase of the worker's polling.
func idlePause(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(10*time.Millisecond + rand.N(40*time.Millisecond)):
		return nil
	}
}

type hitAt struct {
	id int64
	at time.Time
}

func (bn *bench) p3Rehook(ctx context.Context, r *rig, f fixture) ([]time.Duration, error) {
	hits := make(chan hitAt, 16)
	bn.rcv.set(func(w http.ResponseWriter, req *http.Request) {
		at := time.Now()
		id, _ := strconv.ParseInt(req.Header.Get("X-Rehook-Execution-Id"), 10, 64)
		_, _ = io.Copy(io.Discard, req.Body)
		hits <- hitAt{id, at}
		_, _ = io.WriteString(w, "ok")
	})
	defer bn.rcv.set(answerOK)
	recorded := make(chan int64, 16)
	onRecorded := func(id int64) { recorded <- id }
	r.onRecorded.Store(&onRecorded)
	defer r.onRecorded.Store(nil)

	c := newCaller(r.apiURL, f.key, 1)
	defer c.close()

	lat := make([]time.Duration, 0, bn.o.p3Samples)
	for range bn.o.p3Samples {
		if err := idlePause(ctx); err != nil {
			return nil, err
		}
		id, err := c.retrigger(ctx, f)
		if err != nil {
			return nil, err
		}
		answered := time.Now()

		hit, err := waitFor(ctx, hits, func(h hitAt) bool { return h.id == id }, "receiver hit")
		if err != nil {
			return nil, err
		}
		lat = append(lat, max(hit.at.Sub(answered), 0))
		if _, err := waitFor(ctx, recorded, func(got int64) bool { return got == id },
			"attempt recorded"); err != nil {
			return nil, err
		}
	}
	return lat, nil
}

func (bn *bench) p3Bare(ctx context.Context, bare *bareAsynq) ([]time.Duration, error) {
	started := make(chan time.Time, 16)
	handled := func(*asynq.Task) { started <- time.Now() }
	bare.handled.Store(&handled)
	defer bare.handled.Store(nil)

	lat := make([]time.Duration, 0, bn.o.p3Samples)
	for range bn.o.p3Samples {
		if err := idlePause(ctx); err != nil {
			return nil, err
		}
		_, err := bare.client.EnqueueContext(ctx, asynq.NewTask(bareType,
			[]byte(`{"execution_id":1}`), asynq.Queue(bareQueue)))
		if err != nil {
			return nil, err
		}
		enqueued := time.Now()

		at, err := waitFor(ctx, started, func(time.Time) bool { return true }, "task handled")
		if err != nil {
			return nil, err
		}
		lat = append(lat, max(at.Sub(enqueued), 0))
	}
	return lat, nil
}

// waitFor returns the first value from ch that ok accepts, dropping others,
// or an error after 30s.
func waitFor[T any](ctx context.Context, ch <-chan T, ok func(T) bool, what string) (T, error) {
	var zero T
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case v := <-ch:
			if ok(v) {
				return v, nil
			}
		case <-ctx.Done():
			return zero, ctx.Err()
		case <-deadline.C:
			return zero, fmt.Errorf("no %s within 30s", what)
		}
	}
}
