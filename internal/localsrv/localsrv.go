// Package localsrv starts Redis and PostgreSQL servers of rehook's own on
// free loopback ports, from the redis-server and PostgreSQL binaries of the
// machine, so that reliability tests and the chaos run can stop, kill and
// restart them without touching any server someone else uses.
package localsrv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrMissing is returned when the server's binaries are not installed.
var ErrMissing = errors.New("server binaries not found")

// FreePort returns a loopback TCP port that nothing listened on a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitPort waits until something accepts connections on the loopback port,
// or the process exits, or timeout passes.
func waitPort(port int, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("server on port %d exited before it listened", port)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %s: %w", addr, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Redis is a redis-server of its own on a loopback port, keeping nothing on
// disk: a restart loses every key, as a crashed Redis without persistence
// does.
type Redis struct {
	Port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRedis starts redis-server on a free loopback port; dir receives its
// log.
func StartRedis(dir string) (*Redis, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, fmt.Errorf("redis-server: %w", ErrMissing)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	r := &Redis{Port: port, dir: dir}
	return r, r.Start()
}

// URL is the server's redis:// URL.
func (r *Redis) URL() string { return "redis://127.0.0.1:" + strconv.Itoa(r.Port) }

// PID is the process id of the running server, 0 when stopped.
func (r *Redis) PID() int {
	if r.cmd == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// Start starts the server on its port again after Stop.
func (r *Redis) Start() error {
	if r.cmd != nil {
		return errors.New("redis is running")
	}
	log, err := os.OpenFile(filepath.Join(r.dir, "redis.log"),
		os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(r.Port),
		"--save", "", "--appendonly", "no", "--dir", r.dir)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		log.Close()
		close(done)
	}()
	r.cmd, r.done = cmd, done

	if err := waitPort(r.Port, done, 10*time.Second); err != nil {
		r.Stop()
		return err
	}
	return nil
}

// Stop ends the server by its PID (SIGTERM, then SIGKILL after 5s) and
// waits for it to exit. Stopping a stopped server does nothing.
func (r *Redis) Stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	r.cmd, r.done = nil, nil
}

// Postgres is a PostgreSQL cluster of its own in a directory, listening on a
// loopback port with trust authentication for user postgres. As root, it
// runs as the postgres user, since PostgreSQL refuses to run as root.
type Postgres struct {
	Port  int
	dir   string
	bin   string
	runAs *user.User
}

// FindPostgresBin returns the directory of initdb and pg_ctl: the newest
// /usr/lib/postgresql/*/bin, else wherever PATH has them.
func FindPostgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("initdb: %w", ErrMissing)
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// StartPostgres creates a cluster in a new directory under parent (the
// system's temporary directory when empty; as root, the postgres user must
// be able to reach it) and starts it on a free loopback port. Call Remove
// when done.
func StartPostgres(parent string) (*Postgres, error) {
	bin, err := FindPostgresBin()
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}

	p := &Postgres{Port: port, bin: bin}
	if os.Geteuid() == 0 {
		if p.runAs, err = user.Lookup("postgres"); err != nil {
			return nil, fmt.Errorf("running as root needs a postgres user: %w", err)
		}
	}
	if p.dir, err = os.MkdirTemp(parent, "rehook-pg-"); err != nil {
		return nil, err
	}
	if err := p.chown(p.dir); err != nil {
		return nil, err
	}

	out, err := p.run("initdb", "-D", p.data(), "-U", "postgres", "--auth=trust",
		"--no-sync", "-E", "UTF8")
	if err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return p, p.Start()
}

func (p *Postgres) data() string { return filepath.Join(p.dir, "data") }

func (p *Postgres) chown(path string) error {
	if p.runAs == nil {
		return nil
	}
	uid, _ := strconv.Atoi(p.runAs.Uid)
	gid, _ := strconv.Atoi(p.runAs.Gid)
	return os.Chown(path, uid, gid)
}

// run runs one of the cluster's binaries, as the postgres user when root.
func (p *Postgres) run(name string, args ...string) ([]byte, error) {
	path := filepath.Join(p.bin, name)
	var cmd *exec.Cmd
	if p.runAs != nil {
		cmd = exec.Command("runuser", append([]string{"-u", p.runAs.Username, "--", path},
			args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = p.dir
	return cmd.CombinedOutput()
}

// URL is a postgres:// URL of database postgres on the cluster.
func (p *Postgres) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.Port)
}

// Start starts the cluster and waits until it accepts connections.
func (p *Postgres) Start() error {
	opts := strings.Join([]string{"-p", strconv.Itoa(p.Port), "-k", p.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"}, " ")
	out, err := p.run("pg_ctl", "start", "-D", p.data(), "-w", "-t", "60",
		"-l", filepath.Join(p.dir, "postgres.log"), "-o", opts)
	if err != nil {
		return fmt.Errorf("pg_ctl start: %w\n%s", err, out)
	}
	return waitPort(p.Port, nil, 30*time.Second)
}

// Stop stops the cluster ("fast": connections are cut at once) and waits.
func (p *Postgres) Stop() error {
	out, err := p.run("pg_ctl", "stop", "-D", p.data(), "-m", "fast", "-w", "-t", "60")
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// Remove stops the cluster if it runs and deletes its directory.
func (p *Postgres) Remove() {
	if _, err := os.Stat(filepath.Join(p.data(), "postmaster.pid")); err == nil {
		_ = p.Stop()
	}
	_ = os.RemoveAll(p.dir)
}
