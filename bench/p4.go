package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rehook/rehook/store"
)

// p4 measures the memory of a rehook worker process (the real binary):
// its peak RSS (VmHWM) after p4Deliveries concurrent deliveries each
// received a p4BodyMB body, against its peak while idle, before the load.
// Every round runs a fresh process, since a peak only grows.
func (bn *bench) p4(ctx context.Context) error {
	if runtime.GOOS != "linux" {
		bn.notes = append(bn.notes, "P4 skipped: it reads /proc, which only Linux has")
		return nil
	}
	bin, err := bn.rehookBinary(ctx)
	if err != nil {
		return err
	}

	r, err := startRig(ctx, bn.b, rigConfig{maxPending: defaultMaxPending})
	if err != nil {
		return err
	}
	defer r.close()
	f, err := newFixture(ctx, r.apiStore, "p4", bn.rcv.url)
	if err != nil {
		return err
	}
	defer func() { _ = dropFixture(r.apiStore, f) }()
	defer bn.rcv.set(answerOK)

	var idle, peak []float64
	for i := 0; i < bn.o.rounds; i++ {
		idleKB, peakKB, err := bn.p4Round(ctx, bin, r, f)
		if err != nil {
			return err
		}
		idle, peak = append(idle, float64(idleKB)/1024), append(peak, float64(peakKB)/1024)
		bn.logf("P4 round %d/%d: worker peak RSS %.1f MB loaded, %.1f MB idle",
			i+1, bn.o.rounds, peak[i], idle[i])
	}

	bn.add(row{
		figure: fmt.Sprintf("P4 worker peak RSS, %d concurrent deliveries of %d MB bodies",
			bn.o.p4Deliveries, bn.o.p4BodyMB),
		rehook:   fmt.Sprintf("%.1f MB", median(peak)),
		baseline: fmt.Sprintf("%.1f MB (idle worker)", median(idle)),
		ratio:    ratio(median(peak), median(idle)),
		goal:     "<= 150 MB", met: met(median(peak) <= 150),
	})
	return nil
}

// rehookBinary is -rehook-bin, or rehook built into the temporary directory.
func (bn *bench) rehookBinary(ctx context.Context) (string, error) {
	if bn.o.rehookBin != "" {
		return bn.o.rehookBin, nil
	}
	bin := filepath.Join(bn.tmpDir, "rehook")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin,
		"github.com/rehook/rehook/cmd/rehook").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build rehook (or give -rehook-bin): %v\n%s", err, out)
	}
	return bin, nil
}

// p4Round runs one worker process through one load and returns its peak
// RSS before and after the load, in kB.
func (bn *bench) p4Round(ctx context.Context, bin string, r *rig, f fixture) (
	idleKB, peakKB int64, err error) {
	n := bn.o.p4Deliveries
	bn.rcv.set(bigBodies(n, int64(bn.o.p4BodyMB)<<20))

	w, err := startWorkerProcess(ctx, bin, bn.b, n)
	if err != nil {
		return 0, 0, err
	}
	defer w.stop()

	// Let the idle worker run its start-up and first polls before reading
	// its idle peak.
	select {
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	case <-time.After(time.Second):
	}
	if idleKB, err = vmHWM(w.cmd.Process.Pid); err != nil {
		return 0, 0, err
	}

	c := newCaller(r.apiURL, f.key, n)
	defer c.close()
	var mu sync.Mutex
	var ids []int64
	err = spread(ctx, n, n, func(ctx context.Context) error {
		id, err := c.retrigger(ctx, f)
		mu.Lock()
		ids = append(ids, id)
		mu.Unlock()
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	if err := waitFinal(ctx, r.apiStore, ids, 2*time.Minute); err != nil {
		return 0, 0, fmt.Errorf("%w; worker output:\n%s", err, w.output())
	}

	peakKB, err = vmHWM(w.cmd.Process.Pid)
	return idleKB, peakKB, err
}

// bigBodies answers each delivery with a body of size bytes, once n
// deliveries have arrived (or 10s have passed), so that n deliveries
// receive their bodies at the same time.
func bigBodies(n int, size int64) http.HandlerFunc {
	arrived := newCounter(n)
	chunk := bytes.Repeat([]byte("rehook-benchmark-body\n"), (1<<20)/22)
	return func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		arrived.add()
		select {
		case <-arrived.done:
		case <-time.After(10 * time.Second):
		case <-req.Context().Done():
			return
		}

		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		for sent := int64(0); sent < size; {
			k := min(int64(len(chunk)), size-sent)
			if _, err := w.Write(chunk[:k]); err != nil {
				return // the worker read what it records and hung up
			}
			sent += k
		}
	}
}

// waitFinal polls the executions until every one is final.
func waitFinal(ctx context.Context, s store.Store, ids []int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, id := range ids {
		for {
			e, err := s.GetExecutionByID(ctx, id)
			if err != nil {
				return err
			}
			if e.State == store.StateFinal {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("execution %d not final within %s", id, timeout)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// workerProcess is a running `rehook worker`.
type workerProcess struct {
	cmd  *exec.Cmd
	done chan struct{}

	mu    sync.Mutex
	lines []string
}

// startWorkerProcess runs `rehook worker` on the benchmark's Redis and
// database, allowed to deliver to loopback, and waits until it has started.
func startWorkerProcess(ctx context.Context, bin string, b *backends,
	concurrency int) (*workerProcess, error) {
	cmd := exec.Command(bin, "worker")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REHOOK_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env,
		"REHOOK_DATABASE_URL="+b.dbURL,
		"REHOOK_REDIS_URL="+b.redisURL,
		"REHOOK_WORKER_CONCURRENCY="+strconv.Itoa(concurrency),
		"REHOOK_ALLOW_LOOPBACK=true",
		"REHOOK_ALLOW_PLAINTEXT_SECRETS=true",
		"REHOOK_LOG_FORMAT=json",
		"REHOOK_LOG_LEVEL=info",
	)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start rehook worker: %w", err)
	}

	w := &workerProcess{cmd: cmd, done: make(chan struct{})}
	started := make(chan struct{})
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			w.mu.Lock()
			w.lines = append(w.lines, line)
			w.mu.Unlock()
			if strings.Contains(line, `"msg":"worker started"`) {
				once.Do(func() { close(started) })
			}
		}
		_ = cmd.Wait()
	}()

	select {
	case <-started:
		return w, nil
	case <-w.done:
		return nil, fmt.Errorf("rehook worker exited at start:\n%s", w.output())
	case <-ctx.Done():
		w.stop()
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		w.stop()
		return nil, errors.New("rehook worker did not start within 30s:\n" + w.output())
	}
}

// stop interrupts the worker and waits for it to end, killing it if it
// takes longer than its shutdown timeout.
func (w *workerProcess) stop() {
	_ = w.cmd.Process.Signal(os.Interrupt)
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
	}
}

// output is the last lines the worker wrote.
func (w *workerProcess) output() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines[max(len(w.lines)-20, 0):], "\n")
}

// vmHWM is the peak resident set size of a process, in kB.
func vmHWM(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}
