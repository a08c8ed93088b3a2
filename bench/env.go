package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// redisDatabases are the Redis databases the benchmark may take, the same
// ones rehook's tests take (database 0 is left alone), under the same lock
// keys, so a benchmark and a test run never share a database.
const redisDatabases = 16

// lockTTL is how long a database lock lives unless renewed; the benchmark
// renews it every lockTTL/4 while it runs.
const lockTTL = 10 * time.Minute

// backends are the Redis database and the SQL database one benchmark run
// uses, and how to give them back.
type backends struct {
	// redisURL names the Redis database, for rehook processes.
	redisURL string
	redisOpt asynq.RedisConnOpt
	// redis is a client of that database, for flushing it between phases.
	redis *redis.Client
	// miniredis is set when the embedded Redis is used.
	miniredis *miniredis.Miniredis

	// dbURL is the database as rehook takes it: postgres://... with the
	// benchmark's own schema as search_path, or sqlite:PATH.
	dbURL    string
	postgres bool

	describeRedis, describeDB string
	cleanups                  []func()
}

// close gives back everything openBackends took, last taken first.
func (b *backends) close() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
}

// openBackends prepares the Redis database and the SQL database. An empty
// redisURL starts an in-process Redis; an empty dbURL makes a SQLite file in
// tmpDir. A Redis URL without a database number gets a free one of 1-15; a
// database that holds keys is refused, since the benchmark flushes it. A
// Postgres URL gets a schema of the benchmark's own, dropped by close.
func openBackends(ctx context.Context, redisURL, dbURL, tmpDir string) (*backends, error) {
	b := &backends{}
	if err := b.openRedis(ctx, redisURL); err != nil {
		b.close()
		return nil, err
	}
	if err := b.openDB(ctx, dbURL, tmpDir); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func (b *backends) openRedis(ctx context.Context, raw string) error {
	if raw == "" {
		return b.startMiniredis(ctx)
	}

	opt, err := redis.ParseURL(raw)
	if err != nil {
		return fmt.Errorf("-redis: %w", err)
	}
	explicit := strings.Trim(urlPath(raw), "/") != ""
	if explicit && (opt.DB < 1 || opt.DB >= redisDatabases) {
		return fmt.Errorf("-redis: database %d: want one of 1-%d (0 is left alone)",
			opt.DB, redisDatabases-1)
	}

	lockOpt := *opt
	lockOpt.DB = 0
	locker := redis.NewClient(&lockOpt)
	b.cleanups = append(b.cleanups, func() { _ = locker.Close() })

	first, last := 1, redisDatabases-1
	if explicit {
		first, last = opt.DB, opt.DB
	}
	db, err := b.lockDatabase(ctx, locker, first, last)
	if err != nil {
		return fmt.Errorf("-redis %s: %w", opt.Addr, err)
	}

	dbOpt := *opt
	dbOpt.DB = db
	b.redis = redis.NewClient(&dbOpt)
	b.cleanups = append(b.cleanups, func() { _ = b.redis.Close() })
	n, err := b.redis.DBSize(ctx).Result()
	if err != nil {
		return fmt.Errorf("-redis %s: %w", opt.Addr, err)
	}
	if n > 0 {
		return fmt.Errorf("-redis %s: database %d holds %d keys; the benchmark flushes its "+
			"database, so it only takes an empty one", opt.Addr, db, n)
	}
	b.cleanups = append(b.cleanups, func() { _ = b.redis.FlushDB(context.Background()).Err() })

	u, _ := url.Parse(raw)
	u.Path = "/" + strconv.Itoa(db)
	b.redisURL = u.String()
	b.redisOpt, err = asynq.ParseRedisURI(b.redisURL)
	if err != nil {
		return fmt.Errorf("-redis: %w", err)
	}
	b.describeRedis = fmt.Sprintf("redis %s db %d", opt.Addr, db)
	return nil
}

// lockDatabase takes the first free database of first..last under the lock
// key rehook's tests use, renews the lock while the benchmark runs, and
// releases it at close.
func (b *backends) lockDatabase(ctx context.Context, locker *redis.Client,
	first, last int) (int, error) {
	token := randomHex()
	for db := first; db <= last; db++ {
		key := "rehook:test:lock:" + strconv.Itoa(db)
		got, err := locker.SetNX(ctx, key, token, lockTTL).Result()
		if err != nil {
			return 0, fmt.Errorf("lock database %d: %w", db, err)
		}
		if !got {
			continue
		}

		renewCtx, stop := context.WithCancel(context.Background())
		go renewLock(renewCtx, locker, key, token)
		b.cleanups = append(b.cleanups, func() {
			stop()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if v, _ := locker.Get(ctx, key).Result(); v == token {
				locker.Del(ctx, key)
			}
		})
		return db, nil
	}
	if first == last {
		return 0, fmt.Errorf("database %d is in use (locked by a test or another run)", first)
	}
	return 0, fmt.Errorf("no free database among %d-%d", first, last)
}

func renewLock(ctx context.Context, locker *redis.Client, key, token string) {
	t := time.NewTicker(lockTTL / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if v, _ := locker.Get(ctx, key).Result(); v == token {
				locker.Expire(ctx, key, lockTTL)
			}
		}
	}
}

// startMiniredis starts an in-process Redis on a loopback port. It only
// expires keys when its clock is moved, so a ticker moves it.
func (b *backends) startMiniredis(ctx context.Context) error {
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		return fmt.Errorf("start in-process redis: %w", err)
	}
	tickCtx, stop := context.WithCancel(ctx)
	b.cleanups = append(b.cleanups, func() { stop(); mr.Close() })
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-tickCtx.Done():
				return
			case now := <-t.C:
				mr.FastForward(now.Sub(last))
				last = now
			}
		}
	}()

	b.miniredis = mr
	b.redisURL = "redis://" + mr.Addr()
	b.redis = redis.NewClient(&redis.Options{Addr: mr.Addr()})
	b.cleanups = append(b.cleanups, func() { _ = b.redis.Close() })
	var err error
	b.redisOpt, err = asynq.ParseRedisURI(b.redisURL)
	if err != nil {
		return err
	}
	b.describeRedis = "in-process miniredis"
	return nil
}

func (b *backends) openDB(ctx context.Context, raw, tmpDir string) error {
	switch {
	case raw == "":
		b.dbURL = "sqlite:" + tmpDir + "/rehook.db"
		b.describeDB = "sqlite (temporary file)"
		return nil
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
	default:
		return errors.New("-db: want postgres://... (or nothing, for a temporary SQLite file)")
	}

	conn, err := pgx.Connect(ctx, plainConnURL(raw))
	if err != nil {
		return fmt.Errorf("-db: %w", err)
	}
	defer conn.Close(ctx)
	schema := "rehook_bench_" + randomHex()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return fmt.Errorf("-db: create schema: %w", err)
	}
	b.cleanups = append(b.cleanups, func() { dropSchema(raw, schema) })

	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("-db: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	b.dbURL = u.String()
	b.postgres = true
	b.describeDB = fmt.Sprintf("postgres %s schema %s", u.Host, schema)
	return nil
}

func dropSchema(base, schema string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, plainConnURL(base))
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: drop schema %s: %v\n", schema, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
		fmt.Fprintf(os.Stderr, "bench: drop schema %s: %v\n", schema, err)
	}
}

// flushRedis empties the benchmark's Redis database: tasks left by one
// phase must not be delivered in the next.
func (b *backends) flushRedis(ctx context.Context) error {
	if b.miniredis != nil {
		b.miniredis.FlushAll()
		return nil
	}
	return b.redis.FlushDB(ctx).Err()
}

// plainConnURL is a Postgres URL without the pool_ parameters, which only a
// pool understands, for a single connection.
func plainConnURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	for k := range q {
		if strings.HasPrefix(k, "pool_") {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func urlPath(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Path
}

func randomHex() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
