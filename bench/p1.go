package main

import (
	"bufio"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
)

// p1 measures end-to-end throughput: concurrency callers retrigger through
// the API until p1Execs executions are delivered and recorded, against bare
// asynq moving as many no-op tasks with the same concurrency and polling.
func (bn *bench) p1(ctx context.Context) error {
	r, f, bare, stop, err := bn.startWorkerPhase(ctx, "p1")
	if err != nil {
		return err
	}
	defer stop()

	var rehook, base []float64
	var rehookCmds, baseCmds []map[string]int64
	for i := 0; i < bn.o.rounds; i++ {
		before := bn.commandStats(ctx)
		conns := bn.rcv.conns.Load()
		rate, err := bn.p1Rehook(ctx, r, f)
		if err != nil {
			return err
		}
		conns = bn.rcv.conns.Load() - conns
		rehookCmds = append(rehookCmds, diffStats(before, bn.commandStats(ctx)))

		before = bn.commandStats(ctx)
		baseRate, err := bare.throughput(ctx, bn.o.p1Execs, bn.o.concurrency)
		if err != nil {
			return err
		}
		baseCmds = append(baseCmds, diffStats(before, bn.commandStats(ctx)))

		rehook, base = append(rehook, rate), append(base, baseRate)
		bn.logf("P1 round %d/%d: rehook %.0f executions/s (%d deliveries over %d new "+
			"connections), bare asynq %.0f tasks/s", i+1, bn.o.rounds, rate, bn.o.p1Execs, conns,
			baseRate)
	}

	q := ratio(median(rehook), median(base))
	bn.add(row{
		figure: fmt.Sprintf("P1 end-to-end throughput (%d callers, concurrency %d)",
			bn.o.concurrency, bn.o.concurrency),
		rehook:   fmt.Sprintf("%.0f exec/s", median(rehook)),
		baseline: fmt.Sprintf("%.0f tasks/s (bare asynq)", median(base)),
		ratio:    q, goal: "ratio >= 0.5", met: met(q >= 0.5),
	})
	if bn.o.redisCommands {
		bn.noteCommands(rehookCmds, baseCmds)
	}
	return nil
}

// p1Rehook runs one round and returns executions recorded per second.
func (bn *bench) p1Rehook(ctx context.Context, r *rig, f fixture) (float64, error) {
	n := bn.o.p1Execs
	done := newCounter(n)
	onRecorded := func(int64) { done.add() }
	r.onRecorded.Store(&onRecorded)
	defer r.onRecorded.Store(nil)

	c := newCaller(r.apiURL, f.key, bn.o.concurrency)
	defer c.close()

	start := time.Now()
	err := spread(ctx, n, bn.o.concurrency, func(ctx context.Context) error {
		_, err := c.retrigger(ctx, f)
		return err
	})
	if err != nil {
		return 0, err
	}
	if err := done.wait(ctx, 10*time.Minute, "executions recorded"); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// spread runs fn n times on workers goroutines and returns the first error.
func spread(ctx context.Context, n, workers int, fn func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for next.Add(1) <= int64(n) {
				if err := fn(ctx); err != nil {
					cancel()
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// bareAsynq is asynq alone: a server with a no-op handler, configured as
// rehook's worker configures its own (concurrency, polling intervals), on
// a queue of its own.
type bareAsynq struct {
	server  *asynq.Server
	client  *asynq.Client
	handled atomic.Pointer[func(t *asynq.Task)]
}

const (
	bareQueue = "bench"
	bareType  = "bench:noop"
)

// startWorkerPhase starts what P1 and P3 share: a rig with a worker, a
// fixture webhook named name, and bare asynq with the same concurrency to
// compare with. stop releases all three.
func (bn *bench) startWorkerPhase(ctx context.Context, name string) (
	r *rig, f fixture, bare *bareAsynq, stop func(), err error) {
	r, err = startRig(ctx, bn.b, rigConfig{worker: true, concurrency: bn.o.concurrency,
		maxPending: defaultMaxPending})
	if err != nil {
		return nil, f, nil, nil, err
	}
	f, err = newFixture(ctx, r.apiStore, name, bn.rcv.url)
	if err != nil {
		r.close()
		return nil, f, nil, nil, err
	}
	bare = newBareAsynq(bn.b.redisOpt, bn.o.concurrency)
	if err := bare.start(); err != nil {
		_ = dropFixture(r.apiStore, f)
		r.close()
		return nil, f, nil, nil, err
	}
	stop = func() {
		bare.stop()
		_ = dropFixture(r.apiStore, f)
		r.close()
	}
	return r, f, bare, stop, nil
}

func newBareAsynq(redis asynq.RedisConnOpt, concurrency int) *bareAsynq {
	b := &bareAsynq{client: asynq.NewClient(redis)}
	b.server = asynq.NewServer(redis, asynq.Config{
		Concurrency: concurrency,
		Queues:      map[string]int{bareQueue: 1},
		// The same intervals as rehook's worker.ServerConfig defaults.
		TaskCheckInterval:        20 * time.Millisecond,
		DelayedTaskCheckInterval: 200 * time.Millisecond,
		Logger:                   nopLogger{},
		LogLevel:                 asynq.ErrorLevel,
	})
	return b
}

func (b *bareAsynq) start() error {
	mux := asynq.NewServeMux()
	mux.HandleFunc(bareType, func(_ context.Context, t *asynq.Task) error {
		if f := b.handled.Load(); f != nil {
			(*f)(t)
		}
		return nil
	})
	return b.server.Start(mux)
}

func (b *bareAsynq) stop() {
	b.server.Shutdown()
	_ = b.client.Close()
}

// throughput enqueues n tasks from callers goroutines and returns tasks
// handled per second.
func (b *bareAsynq) throughput(ctx context.Context, n, callers int) (float64, error) {
	done := newCounter(n)
	handled := func(*asynq.Task) { done.add() }
	b.handled.Store(&handled)
	defer b.handled.Store(nil)

	payload := []byte(`{"execution_id":1}`)
	start := time.Now()
	err := spread(ctx, n, callers, func(ctx context.Context) error {
		_, err := b.client.EnqueueContext(ctx, asynq.NewTask(bareType, payload,
			asynq.Queue(bareQueue)))
		return err
	})
	if err != nil {
		return 0, err
	}
	if err := done.wait(ctx, 10*time.Minute, "bare asynq tasks handled"); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

type nopLogger struct{}

func (nopLogger) Debug(...any) {}
func (nopLogger) Info(...any)  {}
func (nopLogger) Warn(...any)  {}
func (nopLogger) Error(...any) {}
func (nopLogger) Fatal(...any) {}

// commandStats reads INFO commandstats: calls per command. Nil when not
// asked for, or when the server cannot tell (the in-process Redis).
func (bn *bench) commandStats(ctx context.Context) map[string]int64 {
	if !bn.o.redisCommands || bn.b.miniredis != nil {
		return nil
	}
	raw, err := bn.b.redis.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil
	}
	out := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(raw))
	for sc.Scan() {
		// cmdstat_evalsha:calls=12,usec=...
		name, rest, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		if n, err := strconv.ParseInt(calls, 10, 64); err == nil {
			out[name] = n
		}
	}
	return out
}

func diffStats(before, after map[string]int64) map[string]int64 {
	if before == nil || after == nil {
		return nil
	}
	d := map[string]int64{}
	for k, v := range after {
		if v-before[k] > 0 {
			d[k] = v - before[k]
		}
	}
	d["info"]-- // the INFO that read the second snapshot
	return d
}

// noteCommands adds the Redis commands per execution of P1 to the notes.
func (bn *bench) noteCommands(rehook, base []map[string]int64) {
	if rehook[0] == nil {
		bn.notes = append(bn.notes, "Redis commands: not counted (the in-process Redis "+
			"has no INFO commandstats)")
		return
	}
	per := func(rounds []map[string]int64) (float64, string) {
		sum := map[string]int64{}
		var total int64
		for _, m := range rounds {
			for k, v := range m {
				sum[k] += v
				total += v
			}
		}
		n := float64(len(rounds)) * float64(bn.o.p1Execs)
		names := make([]string, 0, len(sum))
		for k := range sum {
			names = append(names, k)
		}
		sort.Slice(names, func(i, j int) bool { return sum[names[i]] > sum[names[j]] })
		var parts []string
		for _, k := range names {
			if v := float64(sum[k]) / n; v >= 0.05 {
				parts = append(parts, fmt.Sprintf("%s %.2f", k, v))
			}
		}
		return float64(total) / n, strings.Join(parts, ", ")
	}
	rt, rd := per(rehook)
	bt, bd := per(base)
	bn.notes = append(bn.notes,
		fmt.Sprintf("Redis commands per execution in P1 (server-wide INFO commandstats): "+
			"rehook %.2f (%s); bare asynq %.2f (%s)", rt, rd, bt, bd))
}
