package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
)

// p2 measures the retrigger API alone: the sustained rate of p2Clients
// closed-loop callers, and the latency at a fixed open-loop rate, each
// against a trivial gin handler called the same way. No worker runs, so
// deliveries do not share the CPU; the executions stay pending, so the
// pending limit and its count are off (see defaultMaxPending).
func (bn *bench) p2(ctx context.Context) error {
	r, err := startRig(ctx, bn.b, rigConfig{})
	if err != nil {
		return err
	}
	defer r.close()
	f, err := newFixture(ctx, r.apiStore, "p2", bn.rcv.url)
	if err != nil {
		return err
	}
	defer func() { _ = dropFixture(r.apiStore, f) }()

	trivialURL, stopTrivial, err := startTrivialGin()
	if err != nil {
		return err
	}
	defer stopTrivial()

	rehook := newCaller(r.apiURL, f.key, bn.o.p2Clients)
	defer rehook.close()
	trivial := newCaller(trivialURL, f.key, bn.o.p2Clients)
	defer trivial.close()

	var rate, baseRate []float64
	var p50, p99, base50, base99 []time.Duration
	for i := 0; i < bn.o.rounds; i++ {
		rs, err := sustained(ctx, rehook, f.retriggerPath(), bn.o.p2Clients, bn.o.p2Duration)
		if err != nil {
			return err
		}
		bs, err := sustained(ctx, trivial, "/ping", bn.o.p2Clients, bn.o.p2Duration)
		if err != nil {
			return err
		}
		// The queue holds every task the round enqueued; no worker will take
		// them, so drop them before they weigh on the next round.
		if err := bn.b.flushRedis(ctx); err != nil {
			return err
		}

		l, err := fixedRate(ctx, rehook, f.retriggerPath(), bn.o.p2Rate, bn.o.p2RateFor)
		if err != nil {
			return err
		}
		bl, err := fixedRate(ctx, trivial, "/ping", bn.o.p2Rate, bn.o.p2RateFor)
		if err != nil {
			return err
		}
		if err := bn.b.flushRedis(ctx); err != nil {
			return err
		}

		rate, baseRate = append(rate, rs), append(baseRate, bs)
		p50, p99 = append(p50, percentile(l, 50)), append(p99, percentile(l, 99))
		base50, base99 = append(base50, percentile(bl, 50)), append(base99, percentile(bl, 99))
		bn.logf("P2 round %d/%d: rehook %.0f req/s, p50 %s, p99 %s; trivial gin %.0f req/s, "+
			"p50 %s, p99 %s", i+1, bn.o.rounds, rs, ms(p50[i]), ms(p99[i]), bs, ms(base50[i]),
			ms(base99[i]))
	}

	bn.add(row{
		figure:   fmt.Sprintf("P2 retrigger API, sustained (%d callers)", bn.o.p2Clients),
		rehook:   fmt.Sprintf("%.0f req/s", median(rate)),
		baseline: fmt.Sprintf("%.0f req/s (trivial gin)", median(baseRate)),
		ratio:    ratio(median(rate), median(baseRate)),
		goal:     ">= 3000 req/s", met: met(median(rate) >= 3000),
	})
	for _, x := range []struct {
		name       string
		got, base  []time.Duration
		goal, done string
	}{
		{"p50", p50, base50, "", ""},
		{"p99", p99, base99, "<= 10 ms", met(median(p99) <= 10*time.Millisecond)},
	} {
		bn.add(row{
			figure:   fmt.Sprintf("P2 retrigger API latency %s at %d req/s", x.name, bn.o.p2Rate),
			rehook:   ms(median(x.got)),
			baseline: ms(median(x.base)) + " (trivial gin)",
			ratio:    ratio(float64(median(x.got)), float64(median(x.base))),
			goal:     x.goal, met: x.done,
		})
	}
	return nil
}

// sustained calls path from clients closed-loop callers for d and returns
// the rate of 200 answers. Any other answer ends it with an error.
func sustained(ctx context.Context, c *caller, path string, clients int,
	d time.Duration) (float64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var n atomic.Int64
	errs := make(chan error, clients)
	start := time.Now()
	stop := start.Add(d)
	for range clients {
		go func() {
			for time.Now().Before(stop) {
				if _, err := c.get(ctx, path); err != nil {
					cancel()
					errs <- err
					return
				}
				n.Add(1)
			}
			errs <- nil
		}()
	}
	var first error
	for range clients {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return 0, first
	}
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}

// fixedRate calls path rate times a second for d, open loop: each call
// starts on schedule whether or not the ones before have answered, and its
// latency runs from its scheduled start, so a stall counts against every
// call it delays.
func fixedRate(ctx context.Context, c *caller, path string, rate int,
	d time.Duration) ([]time.Duration, error) {
	n := max(int(float64(rate)*d.Seconds()), 1)
	period := time.Second / time.Duration(rate)
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error

	start := time.Now()
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * period)
		if wait := time.Until(at); wait > 0 {
			select {
			case <-ctx.Done():
				wg.Wait()
				return nil, ctx.Err()
			case <-time.After(wait):
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.get(ctx, path); err != nil {
				errOnce.Do(func() { firstErr = err })
			}
			lat[i] = time.Since(at)
		}()
	}
	wg.Wait()
	return lat, firstErr
}

// startTrivialGin serves the smallest gin handler that answers like
// rehook's API does, on a loopback port.
func startTrivialGin() (string, func(), error) {
	gin.SetMode(gin.ReleaseMode)
	g := gin.New()
	g.GET("/ping", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"status": "SUCCESS", "data": gin.H{"id": 1}})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}
