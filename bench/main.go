// Command bench measures rehook against the queue it runs on and prints one
// table of figures, each the median over repeated rounds, next to a
// baseline measured in the same run:
//
//	P1  end-to-end throughput: retrigger calls through the HTTP API, store,
//	    asynq, delivery to a receiver that answers 200 at once, recorded;
//	    against bare asynq with a no-op handler, same Redis and concurrency
//	P2  the retrigger API: sustained requests per second, and p50/p99
//	    latency at a fixed rate; against a trivial gin handler
//	P3  latency from a retrigger's 200 to the receiver's hit on an idle
//	    system; against bare asynq's enqueue-to-handler latency
//	P4  peak RSS of a rehook worker process while concurrent deliveries
//	    receive large bodies; against the same worker idle
//	P5  retrigger and list-executions latency with few and with many stored
//	    executions; the large case against the small
//
// It runs rehook in this process, the API on a loopback listener, except
// for P4, which runs the rehook worker binary. The receiver is a loopback
// server of its own. With no flags it uses an in-process Redis and a
// temporary SQLite file; -redis and -db point it at real servers, where it
// takes a Redis database of its own and a Postgres schema of its own, and
// gives both back when it ends.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/rehook/rehook/store/storeopen"
)

// options are the command's flags.
type options struct {
	redisURL string
	dbURL    string
	rounds   int
	short    bool
	phases   string

	concurrency  int
	p1Execs      int
	p2Duration   time.Duration
	p2Clients    int
	p2Rate       int
	p2RateFor    time.Duration
	p3Samples    int
	p4Deliveries int
	p4BodyMB     int
	p5Small      int
	p5Large      int
	p5Samples    int

	cpuProfile    string
	redisCommands bool
	rehookBin     string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.redisURL, "redis", "", "Redis URL, redis://HOST:PORT[/DB]; without a "+
		"database number a free one of 1-15 is taken; empty: an in-process Redis")
	fs.StringVar(&o.dbURL, "db", "", "Postgres URL (the benchmark makes and drops a schema "+
		"of its own); empty: a temporary SQLite file")
	fs.IntVar(&o.rounds, "rounds", 5, "rounds of each measurement; figures are medians")
	fs.BoolVar(&o.short, "short", false, "a run of seconds that only proves the benchmark "+
		"works: one round of small loads, unless flags say otherwise")
	fs.StringVar(&o.phases, "phases", "p1,p2,p3,p4,p5", "comma-separated phases to run")
	fs.IntVar(&o.concurrency, "concurrency", 10, "worker concurrency in P1 and P3, "+
		"and the number of concurrent API callers in P1")
	fs.IntVar(&o.p1Execs, "p1-executions", 2000, "P1: executions per round")
	fs.DurationVar(&o.p2Duration, "p2-duration", 5*time.Second,
		"P2: how long each sustained-rate round lasts")
	fs.IntVar(&o.p2Clients, "p2-clients", 32, "P2: concurrent callers of the sustained rate")
	fs.IntVar(&o.p2Rate, "p2-rate", 500, "P2: fixed request rate of the latency figures, per second")
	fs.DurationVar(&o.p2RateFor, "p2-rate-duration", 4*time.Second,
		"P2: how long each fixed-rate round lasts")
	fs.IntVar(&o.p3Samples, "p3-samples", 100, "P3: retriggers per round")
	fs.IntVar(&o.p4Deliveries, "p4-deliveries", 50, "P4: concurrent deliveries")
	fs.IntVar(&o.p4BodyMB, "p4-body-mb", 50, "P4: size of each response body, in MB")
	fs.IntVar(&o.p5Small, "p5-small", 10_000, "P5: stored executions of the small case")
	fs.IntVar(&o.p5Large, "p5-large", 1_000_000, "P5: stored executions of the large case")
	fs.IntVar(&o.p5Samples, "p5-samples", 200, "P5: calls of each kind per round")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run here")
	fs.BoolVar(&o.redisCommands, "redis-commands", false, "P1: count Redis commands per "+
		"execution from INFO commandstats; only meaningful on a Redis server of its own")
	fs.StringVar(&o.rehookBin, "rehook-bin", "", "P4: the rehook binary; empty: build it "+
		"from ./cmd/rehook")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	if o.short {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		short := map[string]func(){
			"rounds":           func() { o.rounds = 1 },
			"p1-executions":    func() { o.p1Execs = 200 },
			"p2-duration":      func() { o.p2Duration = 500 * time.Millisecond },
			"p2-rate-duration": func() { o.p2RateFor = 500 * time.Millisecond },
			"p3-samples":       func() { o.p3Samples = 10 },
			"p4-deliveries":    func() { o.p4Deliveries = 10 },
			"p4-body-mb":       func() { o.p4BodyMB = 5 },
			"p5-small":         func() { o.p5Small = 1_000 },
			"p5-large":         func() { o.p5Large = 10_000 },
			"p5-samples":       func() { o.p5Samples = 10 },
		}
		for name, apply := range short {
			if !set[name] {
				apply()
			}
		}
	}

	switch {
	case o.rounds < 1:
		return o, fmt.Errorf("-rounds %d: must be at least 1", o.rounds)
	case o.concurrency < 1 || o.p2Clients < 1 || o.p2Rate < 1:
		return o, errors.New("-concurrency, -p2-clients and -p2-rate must be at least 1")
	case o.p1Execs < 1 || o.p3Samples < 1 || o.p4Deliveries < 1 || o.p5Samples < 1:
		return o, errors.New("-p1-executions, -p3-samples, -p4-deliveries and -p5-samples " +
			"must be at least 1")
	case o.p5Small < 1 || o.p5Large < o.p5Small:
		return o, errors.New("-p5-small must be at least 1 and -p5-large at least -p5-small")
	}
	for _, p := range strings.Split(o.phases, ",") {
		if _, ok := phaseNames[p]; !ok {
			return o, fmt.Errorf("-phases: unknown phase %q", p)
		}
	}
	return o, nil
}

var phaseNames = map[string]bool{"p1": true, "p2": true, "p3": true, "p4": true, "p5": true}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err == nil {
		err = run(ctx, o, os.Stdout, os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// bench is one run: its options, backends, receiver and the table rows.
type bench struct {
	o        options
	b        *backends
	rcv      *receiver
	tmpDir   string
	progress io.Writer
	rows     []row
	notes    []string
}

// row is one line of the table.
type row struct {
	figure   string
	rehook   string
	baseline string
	ratio    float64
	goal     string
	// met is "yes", "no", or "" when the figure has no goal.
	met string
}

func run(ctx context.Context, o options, stdout, stderr io.Writer) error {
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	tmpDir, err := os.MkdirTemp("", "rehook-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmpDir)

	b, err := openBackends(ctx, o.redisURL, o.dbURL, tmpDir)
	if err != nil {
		return err
	}
	defer b.close()

	s, err := storeopen.Open(ctx, b.dbURL, true)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	_ = s.Close()

	rcv, err := startReceiver()
	if err != nil {
		return err
	}
	defer rcv.close()

	bn := &bench{o: o, b: b, rcv: rcv, tmpDir: tmpDir, progress: stderr}
	fmt.Fprintf(stderr, "bench: %s, %s, %d round(s)\n", b.describeRedis, b.describeDB, o.rounds)

	phases := []struct {
		name string
		run  func(context.Context) error
	}{
		{"p1", bn.p1}, {"p2", bn.p2}, {"p3", bn.p3}, {"p4", bn.p4}, {"p5", bn.p5},
	}
	for _, p := range phases {
		if !strings.Contains(","+o.phases+",", ","+p.name+",") {
			continue
		}
		if err := p.run(ctx); err != nil {
			return fmt.Errorf("%s: %w", strings.ToUpper(p.name), err)
		}
		if err := b.flushRedis(ctx); err != nil {
			return fmt.Errorf("flush redis: %w", err)
		}
	}

	bn.print(stdout)
	return nil
}

// logf reports progress on stderr.
func (bn *bench) logf(format string, args ...any) {
	fmt.Fprintf(bn.progress, format+"\n", args...)
}

func (bn *bench) add(r row) { bn.rows = append(bn.rows, r) }

func (bn *bench) print(w io.Writer) {
	fmt.Fprintf(w, "rehook benchmark, %s\n", time.Now().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "machine: %s/%s, %d CPUs, GOMAXPROCS %d, %s\n", runtime.GOOS,
		runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	if rev := gitRevision(); rev != "" {
		fmt.Fprintf(w, "commit: %s\n", rev)
	}
	fmt.Fprintf(w, "backends: %s, %s\n", bn.b.describeRedis, bn.b.describeDB)
	fmt.Fprintf(w, "rounds: %d (every figure is the median over rounds)\n\n", bn.o.rounds)

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\trehook\tbaseline\tratio\tgoal\tmet")
	for _, r := range bn.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%s\t%s\n", r.figure, r.rehook, r.baseline, r.ratio,
			r.goal, r.met)
	}
	_ = tw.Flush()
	for _, n := range bn.notes {
		fmt.Fprintln(w, n)
	}
}

// gitRevision is the short commit of the working tree, with "+dirty" when
// it has changes; empty when git cannot tell.
func gitRevision() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	rev := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain").Output(); err == nil &&
		len(strings.TrimSpace(string(st))) > 0 {
		rev += "+dirty"
	}
	return rev
}

// met is "yes" or "no".
func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}
